"""The layer catalog: one definition per layer type (specc.catalog.definition.LayerDef).

Grouped by family, one module each, as keras/src/layers: a family module holds each type's
argument model (typed like the Keras constructor) and its rules side by side, and ends with
`LAYERS`, its definitions. Adding a layer type is adding it to its family's module (a new
family: a new module, named in FAMILIES). Plugins add their types through
specc.custom_layers.register_layer, which fills in the same definition.

The rest of specc asks `get(type_name)`. No Keras here: `tests/test_layers_catalog.py` checks
the argument models against the Keras signatures, `tests/test_catalog_keras.py` the shape,
parameter and dtype rules against what Keras builds.
"""
# No `from __future__ import annotations`: the union below is evaluated by Pydantic.

from typing import Annotated, Final, Optional, Union

from pydantic import Field

from specc.catalog import (
    activations, attention, convolutional, core, merging, normalization, pooling,
    preprocessing, recurrent, regularization, reshaping, text,
)
from specc.catalog.definition import BOOLEAN_CALL_ARGS, LayerDef, ShapeProblem
from specc.spec.base import LayerSpec

#: The family modules, in the order their types are listed (the JSON schema's order).
FAMILIES: Final = (core, activations, convolutional, pooling, reshaping, regularization,
                   normalization, preprocessing, text, recurrent, attention, merging)

#: Type name -> definition, for the built-in types.
BUILTIN: Final[dict[str, LayerDef]] = {d.type: d for f in FAMILIES for d in f.LAYERS}
#: Type name -> definition: the built-in types and those plugins registered.
_REGISTRY: dict[str, LayerDef] = dict(BUILTIN)

#: Keras class name -> its spec model, for every built-in layer type.
LAYER_TYPES: Final[dict[str, type[LayerSpec]]] = {t: d.model for t, d in BUILTIN.items()}
#: Every built-in layer, told apart by `type` (the JSON schema's layer entry).
AnyLayer = Annotated[Union[tuple(LAYER_TYPES.values())], Field(discriminator="type")]


def get(type_name: str) -> Optional[LayerDef]:
    """The definition of a built-in or registered layer type; None when unknown."""
    return _REGISTRY.get(type_name)


def add(definition: LayerDef) -> None:
    """Register a plugin's layer type (specc.custom_layers.register_layer)."""
    if definition.type in BUILTIN:
        raise ValueError(f"{definition.type!r} is a built-in layer type and cannot be replaced")
    _REGISTRY[definition.type] = definition


def remove(type_name: str) -> None:
    """Forget a plugin's layer type (built-in types stay)."""
    if type_name not in BUILTIN:
        _REGISTRY.pop(type_name, None)


__all__ = ["AnyLayer", "BOOLEAN_CALL_ARGS", "BUILTIN", "FAMILIES", "LAYER_TYPES", "LayerDef",
           "ShapeProblem", "add", "get", "remove"]
