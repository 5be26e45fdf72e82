"""The layer catalog as one definition per type (specc.catalog): the registry, and the holes
the definitions closed. No Keras here; tests/test_catalog_keras.py holds the rules to Keras."""
from __future__ import annotations

import pytest

import specc
from specc import catalog
from specc.budget import measure_spec
from specc.errors import SpecError
from specc.spec.layers import LAYER_TYPES

NORMALIZED_CONV = """\
specc: 1
name: normalized
inputs:
  x: {{shape: [8, 8, 3]}}
layers:
  - {{name: norm, type: Normalization, mean: 0.5, variance: 2.0}}
  - {{name: conv, type: Conv2D, filters: 4, kernel_size: {k}}}
  - {{name: flat, type: Flatten}}
  - {{name: out, type: Dense, units: 2}}
outputs: [out]
loss: mse
"""


def test_every_family_module_defines_its_types_once() -> None:
    seen: dict[str, str] = {}
    for family in catalog.FAMILIES:
        for definition in family.LAYERS:
            assert definition.type not in seen, (definition.type, seen.get(definition.type))
            seen[definition.type] = family.__name__
            assert definition.model.__module__ == family.__name__, definition.type
            assert definition.model.__name__ == definition.type
    assert set(seen) == set(LAYER_TYPES) == set(catalog.BUILTIN)


def test_every_built_in_type_has_its_rules() -> None:
    missing = [t for t, d in catalog.BUILTIN.items() if d.shape is None or d.params is None]
    assert missing == []


def test_dtype_rules_are_the_ones_validation_followed() -> None:
    """`float`: exactly the layers with weights and Rescaling; `keeps`: the reshapes."""
    weighted = {t for t, m in LAYER_TYPES.items() if "trainable" in m.model_fields}
    assert {t for t, d in catalog.BUILTIN.items() if d.dtype == "float"} == \
        weighted | {"Rescaling"}
    assert {t for t, d in catalog.BUILTIN.items() if d.dtype == "keeps"} == {
        "Flatten", "Reshape", "Permute", "RepeatVector", "Identity",
        *(f"{kind}{k}D" for kind in ("Cropping", "ZeroPadding") for k in (1, 2, 3))}


def test_a_plugin_type_is_a_definition_in_the_same_registry() -> None:
    from pydantic import BaseModel

    from specc.custom_layers import register_layer, unregister_layer

    class Args(BaseModel):
        units: int

    entry = register_layer("CatalogProbe", "probe_module:Probe", args=Args,
                           shape=lambda a, s: (*s[0][:-1], a.units),
                           params=lambda a, s: s[0][-1] * a.units)
    try:
        definition = catalog.get("CatalogProbe")
        assert definition is entry.definition and definition.model is entry.model
        assert definition.plugin == entry.plugin
        layer = entry.model.model_validate({"name": "p", "type": "CatalogProbe", "units": 3})
        assert definition.shape(layer, [(5, 4)]) == (5, 3)
        assert definition.params(layer, [(5, 4)]) == 12
    finally:
        unregister_layer("CatalogProbe")
    assert catalog.get("CatalogProbe") is None
    with pytest.raises(ValueError, match="built-in"):
        catalog.add(catalog.get("Dense"))
    catalog.remove("Dense")                        # built-in types stay
    assert catalog.get("Dense") is catalog.BUILTIN["Dense"]


def test_shapes_after_normalization_are_checked() -> None:
    """Normalization keeps its input's shape: a 9x9 kernel on the 8x8 input after it is
    refused at validation (it used to validate: the shape after Normalization was unknown)."""
    with pytest.raises(SpecError) as err:
        specc.loads(NORMALIZED_CONV.format(k=9), "n.yaml")
    assert err.value.code == "shape"
    assert "spans 9 but the input axis has only 8" in str(err.value)
    spec = specc.loads(NORMALIZED_CONV.format(k=3), "n.yaml")
    budget = measure_spec(spec)
    assert budget.of("norm").shape == (8, 8, 3) and budget.of("norm").params == 0
    # 3*3*3*4 + 4 kernel and bias; 6*6*4 flattened times 2 units + 2: counted by hand
    assert budget.unknown == [] and budget.total_params == 112 + 144 * 2 + 2
