"""`specc import` of models with layer classes specc does not know (what keras-hub's backbones
are made of), without keras-hub: each refused class is one line naming it as Keras registers it
and as `specc.register_layer` takes it, with the hook and the README section; once a plugin
registers the class (with `call_args` for a mask passed to its call) the model imports, and
the spec's build computes the source model's outputs.

tests/benchmarks/import_keras_hub.py runs the same on keras-hub's own backbones.
"""
from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any, Final

import pytest

keras = pytest.importorskip("keras")
np = pytest.importorskip("numpy")

import specc  # noqa: E402
from specc import importer  # noqa: E402
from specc.cli import main  # noqa: E402

ROOT: Final = Path(__file__).resolve().parents[1]
#: Outputs of the spec's build against the source model: max |a - b| <= RTOL * max |a|.
RTOL: Final = 1e-6
HOOK: Final = ("register it with specc.register_layer in a plugin (--plugin MODULE or the "
               'entry-point group specc.layers; README: "Plugins: custom layers")')


@keras.saving.register_keras_serializable(package="hubtest")
class Encoder(keras.layers.Layer):
    """A registered Keras class that no specc plugin registers (as keras_hub>TransformerEncoder)."""

    def call(self, x):
        return x * 2.0


class Unnamed(keras.layers.Layer):
    """A class not registered serializable: Keras cannot name it in a file."""

    def call(self, x):
        return x + 1.0


def _model(*layers: Any) -> Any:
    x = keras.Input((4,), name="x")
    y = keras.layers.Dense(4, name="d")(x)
    for layer in layers:
        y = layer(y)
    return keras.Model(x, y, name="m")


def test_an_unknown_registered_class_is_one_line_naming_it_and_the_hook() -> None:
    with pytest.raises(importer.ImportRefused) as info:
        importer.convert(_model(Encoder(name="enc_0"), Encoder(name="enc_1")))
    assert info.value.lines == [
        f"layer 'enc_{k}' (hubtest>Encoder, class {__name__}:Encoder): specc does not know "
        f"this class; {HOOK}" for k in (0, 1)]
    headings = re.findall(r"^## (.+)$", (ROOT / "README.md").read_text(), re.MULTILINE)
    assert "Plugins: custom layers" in headings        # the section the line points to


def test_an_unregistered_class_says_keras_must_register_it_first() -> None:
    with pytest.raises(importer.ImportRefused) as info:
        importer.convert(_model(Unnamed(name="u")))
    assert info.value.lines == [
        f"layer 'u' ({__name__}:Unnamed): specc does not know this class, and it is not "
        "registered serializable (register_layer needs "
        f"@keras.saving.register_keras_serializable first); {HOOK}"]


def test_a_keras_layer_the_catalog_lacks_is_named_as_keras_s() -> None:
    from specc.catalog import LAYER_TYPES

    assert "ReversibleEmbedding" not in LAYER_TYPES
    x = keras.Input((5,), dtype="int32", name="ids")
    y = keras.layers.ReversibleEmbedding(10, 4, name="emb")(x)
    with pytest.raises(importer.ImportRefused) as info:
        importer.convert(keras.Model(x, y))
    assert info.value.lines == [f"layer 'emb' (keras.layers.ReversibleEmbedding): a Keras layer "
                                f"specc's catalog does not have; {HOOK}"]


def test_a_saved_file_is_refused_from_its_config_one_line_per_layer(tmp_path: Path,
                                                                    capsys) -> None:
    saved = tmp_path / "m.keras"
    _model(Encoder(name="enc")).save(saved)
    out = tmp_path / "m.yaml"
    assert main(["import", str(saved), "-o", str(out)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[1:] == [f"  layer 'enc' (hubtest>Encoder, class {__name__}:Encoder): specc does "
                       f"not know this class; {HOOK}"], err
    assert "nothing written" in err[0] and not out.exists()


def test_a_saved_model_subclass_says_to_save_its_functional_form(tmp_path: Path,
                                                                 capsys) -> None:
    """keras-hub's backbones are Model subclasses built from layers: the file holds their
    constructor's arguments; the line says how to get a file with the graph."""

    @keras.saving.register_keras_serializable(package="hubtest")
    class Backbone(keras.Model):
        def __init__(self, units: int = 3, **kwargs):
            x = keras.Input((4,), name="x")
            super().__init__(x, keras.layers.Dense(units, name="d")(x), **kwargs)
            self.units = units

        def get_config(self):
            return {"units": self.units, "name": self.name}

    model = Backbone(name="bb")
    model.save(tmp_path / "bb.keras")
    assert main(["import", str(tmp_path / "bb.keras"), "-o", str(tmp_path / "bb.yaml")]) == 1
    line = capsys.readouterr().err.strip().splitlines()[1]
    assert line.startswith("  model 'bb' (hubtest>Backbone): a subclassed model has no graph")
    assert line.endswith("save keras.Model(model.inputs, model.outputs) and import that")
    keras.Model(model.inputs, model.outputs).save(tmp_path / "f.keras")
    assert main(["import", str(tmp_path / "f.keras"), "-o", str(tmp_path / "f.yaml")]) == 0


@pytest.fixture()
def masked_plugin(monkeypatch) -> Any:
    """tests/plugins/specc_masked_plugin.py (MaskedProjection, call_args=("padding_mask",));
    forgotten afterwards."""
    from specc import custom_layers

    monkeypatch.syspath_prepend(str(ROOT / "tests" / "plugins"))
    import specc_masked_plugin

    yield specc_masked_plugin
    custom_layers.unregister_layer("MaskedProjection")
    sys.modules.pop("specc_masked_plugin", None)


def _masked_model(plugin: Any, by_keyword: bool) -> Any:
    """Two inputs as a keras-hub text backbone has: features and a padding mask passed to a
    registered layer's call; its input by position, or by keyword as keras-hub's decoder
    layers take theirs (`decoder_sequence=x`)."""
    x = keras.Input((6, 5), name="features")
    mask = keras.Input((6,), dtype="int32", name="padding_mask")
    h = keras.layers.Dense(5, activation="tanh", name="d")(x)
    proj = plugin.MaskedProjection(3, name="proj")
    h = proj(x=h, padding_mask=mask) if by_keyword else proj(h, padding_mask=mask)
    return keras.Model([x, mask], keras.layers.Dense(2, name="out")(h), name="masked")


@pytest.mark.parametrize("by_keyword", [False, True])
def test_a_registered_class_with_a_mask_in_its_call_imports_and_rebuilds(
        tmp_path: Path, masked_plugin, by_keyword: bool) -> None:
    keras.utils.set_random_seed(3)
    model = _masked_model(masked_plugin, by_keyword)
    saved = tmp_path / "masked.keras"
    model.save(saved)
    spec = tmp_path / "masked.yaml"
    assert main(["import", str(saved), "-o", str(spec), "--weights",
                 "--plugin", "specc_masked_plugin"]) == 0
    text = spec.read_text()
    assert "  - {name: proj, type: MaskedProjection, units: 3, call: {padding_mask: " \
           "padding_mask}}\n" in text
    built = specc.build(spec)
    assert type(built.get_layer("proj")) is masked_plugin.MaskedProjection
    assert built.count_params() == model.count_params() == (5 * 5 + 5) + 5 * 3 + (3 * 2 + 2)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 6, 5)).astype("float32")
    mask = np.ones((3, 6), "int32")
    mask[1, 4:] = 0
    want = np.asarray(model([x, mask]))
    got = np.asarray(built([x, mask]))
    assert np.max(np.abs(got - want)) <= RTOL * np.max(np.abs(want))
    # the mask reaches the layer: the padded positions are the output bias alone
    bias = model.get_layer("out").get_weights()[1]
    assert np.array_equal(got[1, 4:], np.broadcast_to(bias, (2, 2)))   # 0 @ W + b, exact


def test_call_args_are_checked_when_registered_and_in_a_spec(masked_plugin) -> None:
    from specc.errors import SpecError

    with pytest.raises(ValueError, match="call_args must be a list"):
        specc.register_layer("Bad", masked_plugin.MaskedProjection, call_args="padding_mask")
    text = ("specc: 2\nname: t\ninputs:\n  x: {shape: [6, 5]}\n  m: {shape: [6]}\n"
            "layers:\n  - {name: p, type: MaskedProjection, from: x, units: 3, "
            "call: {attention_mask: m}}\noutputs: [p]\nloss: mse\n")
    with pytest.raises(SpecError) as info:
        specc.loads(text, "t.yaml")
    assert "t.yaml:7:" in str(info.value) and "attention_mask" in str(info.value)
    specc.loads(text.replace("attention_mask", "padding_mask"), "t.yaml")


def test_the_readme_shows_the_refusal_lines_as_they_are() -> None:
    """The README's example (a Lambda and a class saved from a script: its config has no
    module, only the registered name) is what the config check writes for those layers."""
    from specc.importer.sources import _refusal

    text = (ROOT / "README.md").read_text()
    block = text[text.index("specc: cannot import m.keras: 2 parts"):].split("```")[0]
    shown = [line.strip() for line in block.splitlines()[1:] if line.strip()]
    assert shown == [_refusal("plus_one", "Lambda", "keras.layers"),
                     _refusal("twice", "Doubler", "", "mylayers>Doubler")]
