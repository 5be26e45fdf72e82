"""Custom layers from plugins (specc.register_layer): validated, built, penalized, saved and
loaded like catalog layers; a spec never makes specc import a module."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import specc
from specc import custom_layers
from specc.errors import SpecError

ROOT = Path(__file__).resolve().parent.parent
PLUGINS = Path(__file__).resolve().parent / "plugins"
TRANSFORMER = ROOT / "specs" / "transformer"
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3",
       "PYTHONPATH": os.pathsep.join([str(ROOT), str(PLUGINS), str(TRANSFORMER)])}


def _run(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], capture_output=True, text=True,
                          env=env or ENV, cwd=ROOT)


def _forget(*types: str, modules: tuple[str, ...] = ()) -> None:
    for t in types:
        custom_layers.unregister_layer(t)
    for m in modules:
        sys.modules.pop(m, None)


@pytest.fixture()
def transformer():
    """The keras.io transformer plugin (registration only: no Keras imported by it)."""
    sys.path.insert(0, str(TRANSFORMER))
    import transformer_layers

    yield transformer_layers
    _forget("TokenAndPositionEmbedding", "TransformerBlock", modules=("transformer_layers",))
    sys.path.remove(str(TRANSFORMER))


@pytest.fixture()
def scaled():
    """The test plugin that registers ScaledDense as a class (arguments from its signature)."""
    sys.path.insert(0, str(PLUGINS))
    import specc_layer_plugin

    yield specc_layer_plugin
    _forget("ScaledDense", "ScaledDenseNoShape", modules=("specc_layer_plugin",))
    sys.path.remove(str(PLUGINS))


TEXT = (TRANSFORMER / "transformer_text.yaml").read_text()


def _errors(text: str, file: str = "t.yaml") -> list[str]:
    with pytest.raises(SpecError) as err:
        specc.loads(text, file)
    return [d.render() for d in err.value.diagnostics]


# ------------------------------------------------------------------------------ validation

def test_unknown_type_without_plugin_says_where_types_come_from() -> None:
    assert _errors(TEXT)[0] == (
        "t.yaml:13:29: error: unknown layer type 'TokenAndPositionEmbedding' (see the spec "
        "reference for the list; a custom type comes from a plugin: --plugin MODULE, or an "
        "installed package's `specc.layers` entry point)  [unknown-type]")


def test_a_misspelt_type_suggests_registered_names(transformer) -> None:
    assert _errors(TEXT.replace("type: TransformerBlock", "type: TransfomerBlock")) == [
        "t.yaml:14:31: error: unknown layer type 'TransfomerBlock' (did you mean "
        "'TransformerBlock'?) (see the spec reference for the list; registered by plugins: "
        "TokenAndPositionEmbedding, TransformerBlock)  [unknown-type]"]


def test_arguments_are_validated_with_located_errors(transformer) -> None:
    bad = TEXT.replace("num_heads: 2", "num_heads: 0").replace("ff_dim: 32", "ff_dims: 32")
    assert _errors(bad) == [
        "t.yaml:14:5: error: missing required key 'ff_dim'  [missing-key]",
        "t.yaml:14:75: error: layers[1] (transformer).num_heads: must be greater than 0 "
        "(got 0)  [bad-value]",
        "t.yaml:14:78: error: unknown key 'ff_dims' in a TransformerBlock layer (did you "
        "mean 'ff_dim'?)  [unknown-key]",
    ]
    assert _errors(TEXT.replace("embed_dim: 32, num_heads", "embed_dim: '32', num_heads")) == [
        "t.yaml:14:60: error: layers[1] (transformer).embed_dim: expected an integer, got a "
        "string '32'  [bad-type]"]


def test_shape_rules_run_at_validation(transformer) -> None:
    assert _errors(TEXT.replace("shape: [200]", "shape: [300]")) == [
        "t.yaml:13:5: error: layer 'embedding' (TokenAndPositionEmbedding): sequences of 300 "
        "tokens are longer than maxlen 200  [shape]"]
    assert _errors(TEXT.replace("ff_dim: 32}", "ff_dim: 32}\n  - {name: again, "
                                "type: TransformerBlock, embed_dim: 16, num_heads: 1, ff_dim: 8}")
                   )[0] == ("t.yaml:15:5: error: layer 'again' (TransformerBlock): its residual "
                            "connections need 16 features (embed_dim), got 32  [shape]")


def test_parameter_counts_reach_the_budget(transformer) -> None:
    from specc.budget import measure
    from specc.topology import resolve_reads

    spec = specc.loads(TEXT, "t.yaml")
    sizes = measure(spec, resolve_reads(spec))
    # keras.io's model: 646,400 + 10,656 + 660 + 42 (Keras's own count, checked below)
    assert sizes.of("embedding").params == (20000 + 200) * 32
    assert sizes.of("transformer").params == 10_656
    assert sizes.total_params == 657_758
    with pytest.raises(SpecError) as err:
        from specc.budget import Limits

        specc.loads(TEXT, "t.yaml", limits=Limits(max_params=600_000))
    assert err.value.code == "budget"


def test_without_a_shape_rule_nothing_after_it_is_shape_checked(scaled) -> None:
    spec = ("specc: 1\nname: m\ninputs: {x: {shape: [6]}}\nlayers:\n"
            "  - {name: h, type: %s, units: 4}\n"
            "  - {name: r, type: Reshape, target_shape: [5]}\n"
            "outputs: [r]\nloss: mse\n")
    assert _errors(spec % "ScaledDense") == [
        "t.yaml:6:5: error: layer 'r' (Reshape): cannot reshape (batch, 4) (4 values) to "
        "(batch, 5) (5 values)  [shape]"]
    specc.loads(spec % "ScaledDenseNoShape", "t.yaml")     # unknown shape: not judged


def test_signature_derived_arguments(scaled) -> None:
    model = custom_layers.lookup("ScaledDense").model
    assert set(model.model_fields) == {"name", "from_", "call", "dtype", "trainable", "type",
                                       "units", "activation", "use_bias"}
    spec = "specc: 1\nname: m\ninputs: {x: {shape: [6]}}\nlayers:\n  - {name: h, %s}\n" \
           "outputs: [h]\nloss: mse\n"
    assert _errors(spec % "type: ScaledDense, units: 0")[0].endswith(
        "layers[0] (h).units: must be greater than 0 (got 0)  [bad-value]")
    assert "did you mean 'relu'?" in _errors(
        spec % "type: ScaledDense, units: 2, activation: rleu")[0]
    assert "missing required key 'units'" in _errors(spec % "type: ScaledDense")[0]


def test_a_plugins_model_keeps_its_validators_but_not_a_looser_config() -> None:
    from pydantic import BaseModel, ConfigDict, field_validator

    class Args(BaseModel):
        model_config = ConfigDict(extra="allow", strict=False)
        k: int

        @field_validator("k")
        @classmethod
        def even(cls, v: int) -> int:
            if v % 2:
                raise ValueError("k must be even")
            return v

    specc.register_layer("Even", "nowhere:Even", args=Args)
    try:
        spec = ("specc: 1\nname: m\ninputs: {x: {shape: [2]}}\nlayers:\n"
                "  - {name: h, type: Even, %s}\noutputs: [h]\nloss: mse\n")
        assert _errors(spec % "k: 2, zz: 1") == [
            "t.yaml:5:33: error: unknown key 'zz' in an Even layer  [unknown-key]"]
        assert _errors(spec % "k: '2'") == [
            "t.yaml:5:30: error: layers[0] (h).k: expected an integer, got a string '2'  "
            "[bad-type]"]
        assert _errors(spec % "k: 3") == [
            "t.yaml:5:30: error: layers[0] (h).k: k must be even (got 3)  [bad-value]"]
        specc.loads(spec % "k: 2", "t.yaml")
    finally:
        custom_layers.unregister_layer("Even")


def test_registration_mistakes_are_refused_at_once() -> None:
    from pydantic import BaseModel

    class Args(BaseModel):
        n: int

    class Named(BaseModel):
        name: str

    class Unannotated:
        def __init__(self, n, **kwargs):
            pass

    cases = [
        (("Dense", "m:C"), {"args": Args}, "is a built-in layer type"),
        (("bad name", "m:C"), {"args": Args}, "is not a layer type name"),
        (("T", "m:C"), {}, "needs args="),
        (("T", "no colon"), {"args": Args}, "is not 'module:Class'"),
        (("T", "m:C"), {"args": Named}, "args may not define 'name'"),
        (("T", "m:C"), {"args": Args, "weights": {"gamma": "g"}}, "weight kind 'gamma'"),
        (("T", "m:C"), {"args": Args, "inputs": 0}, "inputs must be >= 1"),
        (("T", Unannotated), {}, "argument 'n' of "),
    ]
    for (name, layer), options, message in cases:
        with pytest.raises(ValueError, match=message):
            specc.register_layer(name, layer, **options)
    assert custom_layers.lookup("T") is None


def test_schema_with_plugin_lists_the_registered_layers() -> None:
    plain = _run("-m", "specc", "schema", "--no-config")     # no [tool.specc] plugins
    plugged = _run("-m", "specc", "schema", "--no-config", "--plugin", "transformer_layers")
    assert plain.returncode == plugged.returncode == 0, plugged.stderr
    defs = json.loads(plugged.stdout)["$defs"]
    assert "TransformerBlock" not in json.loads(plain.stdout)["$defs"]
    block = defs["TransformerBlock"]
    assert {"embed_dim", "num_heads", "ff_dim", "rate", "name", "from"} <= set(block["properties"])
    assert set(block["required"]) == {"embed_dim", "num_heads", "ff_dim", "name", "type"}
    import jsonschema

    import yaml

    jsonschema.validate(yaml.safe_load(TEXT), json.loads(plugged.stdout))


def test_validate_with_a_lazy_plugin(tmp_path: Path) -> None:
    # importing no Keras while it validates: test_imports.py
    cli = _run("-m", "specc", "validate", str(TRANSFORMER / "transformer_text.yaml"),
               "--plugin", "transformer_layers")
    assert cli.returncode == 0 and cli.stderr == "1 spec file valid\n", cli.stdout + cli.stderr


def test_a_spec_never_imports_a_plugin(transformer) -> None:
    before: set[str] = set()
    for text in ("layers: [{name: h, type: NoSuchType}]",     # what any first spec imports
                 "layers: [{name: h, type: 'transformer_layers_keras:TransformerBlock'}]",
                 "layers: [{name: h, type: 'os:system'}]"):
        with pytest.raises(SpecError):
            specc.loads(f"specc: 1\nname: m\ninputs: {{x: {{shape: [2]}}}}\n{text}\n"
                        "outputs: [h]\nloss: mse\n", "h.yaml")
        before = before or set(sys.modules)
    assert set(sys.modules) - before == set()


def test_an_installed_entry_point_registers_layers(tmp_path: Path) -> None:
    spec = ("specc: 1\nname: m\ninputs: {x: {shape: [3]}}\nlayers:\n"
            "  - {name: d, type: InstalledDouble}\noutputs: [d]\nloss: mse\n")
    env = {**ENV, "PYTHONPATH": os.pathsep.join([str(PLUGINS / "layers_site"), str(ROOT)])}
    code = ("import specc\n"
            f"specc.loads({spec!r}, 'e.yaml')\n"
            "try:\n    specc.build(specc.loads(" + repr(spec) + ", 'e.yaml'))\n"
            "except specc.SpecError as exc:\n    print(exc.diagnostics[0].render())\n")
    run = _run("-c", code, env=env)
    assert run.returncode == 0, run.stderr
    assert run.stdout == (
        "e.yaml:5:5: error: layer 'd' (InstalledDouble) cannot be built: the plugin "
        "specc_installed_layers registered 'InstalledDouble' as "
        "specc_installed_layers_keras:Double, which cannot be imported (ModuleNotFoundError: "
        "No module named 'specc_installed_layers_keras')  [build]\n")
    # the other installed plugin fails to import: an unknown type names it, in one line
    unknown = tmp_path / "u.yaml"
    unknown.write_text(spec.replace("InstalledDouble", "Tripled"))
    run = _run("-m", "specc", "validate", str(unknown), env=env)
    assert run.returncode == 2 and run.stdout == ""
    assert run.stderr == (
        "specc: error: layer type 'Tripled' is unknown and the installed plugin 'broken' "
        "(entry point specc_broken_layers of scaled-layers 0.1) cannot be imported "
        "(RuntimeError: a bug in the layer plugin); fix or uninstall it\n")


# ------------------------------------------------------------------------------ Keras

def _keras_io_model():
    """keras.io's Transformer text classifier, as written there (its classes take no name)."""
    import keras
    from keras import layers, ops

    class TransformerBlock(layers.Layer):
        def __init__(self, embed_dim, num_heads, ff_dim, rate=0.1):
            super().__init__()
            self.att = layers.MultiHeadAttention(num_heads=num_heads, key_dim=embed_dim)
            self.ffn = keras.Sequential(
                [layers.Dense(ff_dim, activation="relu"), layers.Dense(embed_dim)])
            self.layernorm1 = layers.LayerNormalization(epsilon=1e-6)
            self.layernorm2 = layers.LayerNormalization(epsilon=1e-6)
            self.dropout1 = layers.Dropout(rate)
            self.dropout2 = layers.Dropout(rate)

        def call(self, inputs):
            attn_output = self.att(inputs, inputs)
            attn_output = self.dropout1(attn_output)
            out1 = self.layernorm1(inputs + attn_output)
            ffn_output = self.ffn(out1)
            ffn_output = self.dropout2(ffn_output)
            return self.layernorm2(out1 + ffn_output)

    class TokenAndPositionEmbedding(layers.Layer):
        def __init__(self, maxlen, vocab_size, embed_dim):
            super().__init__()
            self.token_emb = layers.Embedding(input_dim=vocab_size, output_dim=embed_dim)
            self.pos_emb = layers.Embedding(input_dim=maxlen, output_dim=embed_dim)

        def call(self, x):
            maxlen = ops.shape(x)[-1]
            positions = ops.arange(start=0, stop=maxlen, step=1)
            positions = self.pos_emb(positions)
            x = self.token_emb(x)
            return x + positions

    vocab_size, maxlen, embed_dim, num_heads, ff_dim = 20000, 200, 32, 2, 32
    inputs = layers.Input(shape=(maxlen,))
    x = TokenAndPositionEmbedding(maxlen, vocab_size, embed_dim)(inputs)
    x = TransformerBlock(embed_dim, num_heads, ff_dim)(x)
    x = layers.GlobalAveragePooling1D()(x)
    x = layers.Dropout(0.1)(x)
    x = layers.Dense(20, activation="relu")(x)
    x = layers.Dropout(0.1)(x)
    outputs = layers.Dense(2, activation="softmax")(x)
    return keras.Model(inputs=inputs, outputs=outputs)


def _structure(layer) -> list[str]:
    """Class names of a layer and every sublayer, depth first, in tracking order."""
    return [type(l).__name__ for l in layer._flatten_layers(include_self=True)]


def test_transformer_spec_equals_the_keras_io_model(transformer) -> None:
    spec_model = specc.build(specc.load(TRANSFORMER / "transformer_text.yaml"))
    hand = _keras_io_model()
    assert [type(l).__name__ for l in spec_model.layers] == [
        "InputLayer", "TokenAndPositionEmbedding", "TransformerBlock",
        "GlobalAveragePooling1D", "Dropout", "Dense", "Dropout", "Dense"]
    assert [_structure(l) for l in spec_model.layers] == [_structure(l) for l in hand.layers]
    assert spec_model.count_params() == hand.count_params() == 657_758
    assert [tuple(w.shape) for w in spec_model.weights] == [tuple(w.shape) for w in hand.weights]
    hand.set_weights(spec_model.get_weights())
    tokens = np.random.RandomState(0).randint(0, 20000, size=(8, 200))
    ours = spec_model.predict(tokens.astype("int32"), verbose=0)
    theirs = hand.predict(tokens.astype("float32"), verbose=0)   # keras.io's float input
    # the same ops on the same weights: equal to float32 rounding (tolerance 1e-6 absolute)
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-6)


def test_transformer_saves_and_loads_in_safe_mode(transformer, tmp_path: Path) -> None:
    import keras

    model = specc.build(specc.load(TRANSFORMER / "transformer_text.yaml"))
    path = tmp_path / "t.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    tokens = np.random.RandomState(1).randint(0, 20000, size=(4, 200)).astype("int32")
    # bit-identical on purpose: the same graph on the same weights in one process
    np.testing.assert_array_equal(loaded.predict(tokens, verbose=0),
                                  model.predict(tokens, verbose=0))
    # a fresh process without the plugin: one line naming the class and where it lives
    code = ("import specc\nfrom specc.errors import UsageError\ntry:\n"
            f"    specc.load_model({str(path)!r})\n"
            "except UsageError as exc:\n    print(exc)\n")
    env = {**ENV, "PYTHONPATH": str(ROOT)}
    run = _run("-c", code, env=env)
    assert run.returncode == 0, run.stderr
    assert run.stdout == (
        f"{path}: layer 'embedding' is of class 'transformer_layers>TokenAndPositionEmbedding' "
        "(module transformer_layers_keras), which no imported plugin registers: import the "
        "plugin that defines it first (`--plugin MODULE`, `import MODULE`, or install its "
        "`specc.layers` entry point)\n")
    # with the plugin imported (its Keras module is imported by specc.load_model)
    run = _run("-c", "import specc, transformer_layers\n"
                     f"print(specc.load_model({str(path)!r}).count_params())\n")
    assert run.stdout == "657758\n", run.stderr


PENALIZED = """\
specc: 1
name: scaled
seed: 3
inputs:
  x: {shape: [6]}
layers:
  - {name: h, type: ScaledDense, units: 4, activation: tanh}
  - {name: out, type: Dense, units: 1}
outputs: [out]
loss: mse
penalties:
  - {name: pre, layer: h, at: pre_activation, kind: l2, rate: 0.5}
  - {name: post, layer: h, kind: l1, rate: 0.25}
weight_penalties:
  - {name: decay, layers: "h*", weights: [kernel, bias], kind: l2, rate: 0.1}
"""


@pytest.mark.parametrize("via", specc.VIAS)
def test_penalties_attach_to_a_custom_layer(scaled, via: str, tmp_path: Path) -> None:
    import keras

    model = specc.build(specc.loads(PENALIZED, "p.yaml"), via=via)
    x = np.random.RandomState(0).randn(5, 6).astype("float32")
    y = np.zeros((5, 1), "float32")
    logs = model.evaluate(x, y, batch_size=5, verbose=0, return_dict=True)
    h = model.get_layer("h")
    kernel, bias, scale = (w.numpy().astype("float64") for w in (h.kernel, h.bias, h.scale))
    z = (x.astype("float64") @ kernel + bias) * scale
    # tolerance: float32 against float64, 1e-5 relative
    assert logs["pre"] == pytest.approx(0.5 * np.mean(np.sum(z ** 2, axis=1)), rel=1e-5)
    assert logs["post"] == pytest.approx(0.25 * np.mean(np.sum(np.abs(np.tanh(z)), axis=1)),
                                         rel=1e-5)
    assert logs["decay"] == pytest.approx(0.1 * (np.sum(kernel ** 2) + np.sum(bias ** 2)),
                                          rel=1e-5)
    assert logs["loss"] == pytest.approx(
        logs["task_loss"] + logs["pre"] + logs["post"] + logs["decay"], rel=1e-5)
    path = tmp_path / "m.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    again = loaded.evaluate(x, y, batch_size=5, verbose=0, return_dict=True)
    assert again == pytest.approx(logs, rel=1e-6)


def test_a_custom_layer_in_blocks_repeat_and_share(scaled) -> None:
    text = """\
specc: 2
name: blocks
seed: 2
inputs:
  x: {shape: [4]}
blocks:
  pair:
    params: {units: int}
    layers:
      - {name: a, type: ScaledDense, units: "${units}", activation: relu}
      - {name: b, type: ScaledDense, units: 4}
layers:
  - {name: stack, use: pair, with: {units: 8}, repeat: 2}
  - {name: again, share: stack2, from: stack1}
  - {name: out, type: Add, from: [stack2, again]}
outputs: [out]
loss: mse
penalties:
  - {name: p, layer: stack1.a, at: pre_activation, kind: l2, rate: 0.1}
  - {name: q, layer: again.a, kind: l1, rate: 0.2}
"""
    model = specc.build(specc.loads(text, "b.yaml"))
    names = [l.name for l in model.layers]
    for n in ("stack1.a", "stack1.b", "stack2.a", "stack2.b"):
        assert type(model.get_layer(n)).__name__ == "ScaledDense", names
    assert not any(n.startswith("again.") and "activity" not in n for n in names), names
    x = np.random.RandomState(0).randn(3, 4)
    logs = model.evaluate(x.astype("float32"), np.zeros((3, 4), "float32"), verbose=0,
                          return_dict=True)

    def dense(name, v):
        layer = model.get_layer(name)
        k, b, s = (w.numpy().astype("float64") for w in (layer.kernel, layer.bias, layer.scale))
        return (v @ k + b) * s

    z1 = dense("stack1.a", x)
    stack1 = dense("stack1.b", np.maximum(z1, 0))
    stack2 = dense("stack2.b", np.maximum(dense("stack2.a", stack1), 0))
    again_a = np.maximum(dense("stack2.a", stack1), 0)        # the shared call on stack1
    again = dense("stack2.b", again_a)
    # tolerance: float32 against float64, 1e-5 relative
    assert logs["p"] == pytest.approx(0.1 * np.mean(np.sum(z1 ** 2, axis=1)), rel=1e-5)
    assert logs["q"] == pytest.approx(0.2 * np.mean(np.sum(np.abs(again_a), axis=1)), rel=1e-5)
    np.testing.assert_allclose(model.predict(x.astype("float32"), verbose=0), stack2 + again,
                               rtol=1e-5, atol=1e-6)


APPLICATIONS = """\
specc: 1
name: applications_layers
seed: 4
inputs:
  x: {shape: [5, 5, 3]}
layers:
  - {name: conv, type: Conv2D, filters: 8, kernel_size: 3, padding: same}
  - {name: scale, type: LayerScale, init_values: 0.5, projection_dim: 8}
  - {name: drop, type: StochasticDepth, drop_path_rate: 0.1}
  - {name: merge, type: CustomScaleLayer, scale: 0.17, from: [conv, drop]}
outputs: [merge]
loss: mse
"""


def test_keras_applications_custom_layers_are_specc_types(tmp_path: Path) -> None:
    """ConvNeXt's LayerScale and StochasticDepth, InceptionResNetV2's CustomScaleLayer: Keras's
    own classes, registered by specc itself (specc.applications_layers, by module name): a
    spec names them without --plugin (what `specc import` needs to express them)."""
    import keras

    from specc.budget import measure
    from specc.topology import resolve_reads

    spec = specc.loads(APPLICATIONS, "a.yaml")
    assert custom_layers.lookup("LayerScale").plugin == "specc.applications_layers"
    assert _errors(APPLICATIONS.replace("projection_dim: 8", "projection_dim: 4"), "a.yaml") \
        == ["a.yaml:8:5: error: layer 'scale' (LayerScale): scales 4 channels "
            "(projection_dim), got 8  [shape]"]
    model = specc.build(spec)
    assert model.count_params() == measure(spec, resolve_reads(spec)).total_params \
        == 3 * 3 * 3 * 8 + 8 + 8
    x = np.random.RandomState(0).randn(2, 5, 5, 3).astype("float32")
    conv = keras.Model(model.inputs, model.get_layer("conv").output).predict(x, verbose=0)
    # inference: StochasticDepth passes through; conv + (conv * 0.5) * 0.17, to 1e-6
    np.testing.assert_allclose(model.predict(x, verbose=0), conv + conv * 0.5 * 0.17,
                               rtol=1e-6, atol=1e-6)
    path = tmp_path / "a.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    # bit-identical on purpose: the same graph on the same weights in one process
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))


def test_a_plugin_that_registers_an_applications_type_keeps_it() -> None:
    """specc's own registration of LayerScale & co. never replaces a user's."""
    from specc import applications_layers

    custom_layers.registered()                   # specc's own types are loaded
    try:
        custom_layers.unregister_layer("StochasticDepth")
        mine = specc.register_layer("StochasticDepth", "my_layers:Drop",
                                    args=applications_layers.StochasticDepthArgs)
        assert applications_layers.register() == []
        assert custom_layers.lookup("StochasticDepth") is mine
    finally:
        custom_layers.unregister_layer("StochasticDepth")
        assert applications_layers.register() == ["StochasticDepth"]
    assert custom_layers.lookup("StochasticDepth").plugin == "specc.applications_layers"


def test_a_layer_without_rules_is_a_warning_that_says_what_is_not_checked(
        scaled, tmp_path: Path) -> None:
    from specc.rules import spec_warnings

    text = ("specc: 1\nname: m\ninputs: {x: {shape: [6]}}\nlayers:\n"
            "  - {name: h, type: ScaledDenseNoShape, units: 4}\n"
            "  - {name: h2, type: ScaledDenseNoShape, units: 4}\n"
            "  - {name: h3, type: ScaledDense, units: 4}\noutputs: [h3]\nloss: mse\n")
    assert [d.render() for d in spec_warnings(specc.loads(text, "w.yaml"))] == [
        "w.yaml:5:21: warning: layer type 'ScaledDenseNoShape' (plugin specc_layer_plugin) has "
        "no shape rule, so its output shape is unknown at validation: the shapes of the "
        "layers after it are left to Keras at build, and the size budget cannot count them; "
        "and no parameter count, so the size budget leaves its weights out  "
        "[plugin-unchecked]"]


def test_own_activity_puts_the_clause_on_the_layer_itself(scaled) -> None:
    specc.register_layer("ScaledDenseOwn", scaled.ScaledDense, shape=scaled._shape,
                         own_activity=True)
    try:
        text = PENALIZED.replace("type: ScaledDense,", "type: ScaledDenseOwn,").split(
            "weight_penalties:")[0]
        model = specc.build(specc.loads(text, "o.yaml"), via="activity_regularizer")
        names = [l.name for l in model.layers]
        assert "h_activity" not in names and model.get_layer("h_activation") is not None
        assert model.get_layer("h").activity_regularizer is not None
        x = np.random.RandomState(0).randn(5, 6).astype("float32")
        logs = model.evaluate(x, np.zeros((5, 1), "float32"), batch_size=5, verbose=0,
                              return_dict=True)
        h = model.get_layer("h")
        k, b, s = (w.numpy().astype("float64") for w in (h.kernel, h.bias, h.scale))
        z = (x.astype("float64") @ k + b) * s
        assert logs["pre"] == pytest.approx(0.5 * np.mean(np.sum(z ** 2, axis=1)), rel=1e-5)
    finally:
        custom_layers.unregister_layer("ScaledDenseOwn")
