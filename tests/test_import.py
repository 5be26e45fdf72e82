"""`specc import`, `weights: FILE`, and freezing (`trainable: false`, `freeze:`).

The reference for every number is the source Keras model itself (written by hand here, or
built by keras.applications): the spec's build, given the same weights, must compute the same
outputs within RTOL of the largest output value, hold the same layers and parameters.
A few small architectures run here; tests/benchmarks/import_coverage.py runs them all.
"""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any, Final

import pytest

keras = pytest.importorskip("keras")
np = pytest.importorskip("numpy")
h5py = pytest.importorskip("h5py")

import specc  # noqa: E402
from helpers import CONVNEXT_LAYERS, checked_difference  # noqa: E402
from specc import importer  # noqa: E402
from specc.cli import main  # noqa: E402

ROOT: Final = Path(__file__).resolve().parents[1]
#: Outputs of the spec's build against the source model: max |a - b| <= RTOL * max |a|.
RTOL: Final = 1e-6


def _outputs(model: Any, xs: list[Any]) -> list[Any]:
    got = model.predict(xs if len(xs) > 1 else xs[0], verbose=0)
    return [np.asarray(a) for a in (got if isinstance(got, (list, tuple)) else [got])]


def _batch(model: Any, seed: int = 0) -> list[Any]:
    rng = np.random.default_rng(seed)
    return [rng.standard_normal((3, *t.shape[1:])).astype("float32") for t in model.inputs]


def assert_same_outputs(source: Any, built: Any) -> None:
    xs = _batch(source)
    want, got = _outputs(source, xs), _outputs(built, xs)
    assert len(want) == len(got)
    for a, b in zip(want, got):
        assert a.shape == b.shape
        assert np.max(np.abs(a - b)) <= RTOL * np.max(np.abs(a)), np.max(np.abs(a - b))


def import_and_build(model: Any, tmp_path: Path, weights: bool = True) -> tuple[Any, Path]:
    imported = importer.convert(model)
    spec = tmp_path / "imported.yaml"
    importer.write(imported, spec, with_weights=weights)
    built = specc.build(spec)
    if not weights:
        importer.assign(built, imported)
    return built, spec


def _owners(model: Any) -> dict[str, tuple[str, list[tuple[int, ...]]]]:
    out = {}
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            out.update(_owners(layer))
        elif layer.weights:
            out[layer.name] = (type(layer).__name__, [tuple(w.shape) for w in layer.weights])
    return out


# --- a hand-written model with what applications lack -----------------------------------------

def zoo_model() -> Any:
    """Two inputs, a shared Dense (a second call), a nested Sequential, raw ops with
    constants on both sides, an LSTM's states read by a second LSTM, Bidirectional,
    MultiHeadAttention with a key, and two outputs."""
    L = keras.layers
    keras.utils.set_random_seed(3)
    a = keras.Input((6, 4), name="seq")
    b = keras.Input((5,), name="vec")
    enc, h, c = L.LSTM(8, return_sequences=True, return_state=True, name="enc")(a)
    dec = L.LSTM(8, return_sequences=True, name="dec")(a, initial_state=[h, c])
    att = L.MultiHeadAttention(2, 4, name="att")(dec, enc, key=a, use_causal_mask=True,
                                                 return_attention_scores=False)
    bi = L.Bidirectional(L.GRU(3), name="bi")(att)
    shared = L.Dense(5, activation="tanh", name="shared")
    s1, s2 = shared(b), shared(L.Dense(5, name="pre")(b))
    mixed = (s1 + 0.5) * 2.0 - s2
    mixed = 1.0 - mixed
    inner = keras.Sequential([L.Dense(7, activation="relu", name="in1"),
                              L.Dense(3, name="in2")], name="inner")
    both = L.Concatenate(name="cat")([bi, inner(mixed)])
    y1 = L.Dense(2, activation="softmax", name="y1")(both)
    y2 = L.Dense(1, name="y2")(L.Add(name="sum")([s1, s2]))
    return keras.Model([a, b], [y1, y2], name="zoo")


def test_a_graph_with_shares_nesting_ops_and_ports_round_trips(tmp_path: Path) -> None:
    model = zoo_model()
    built, spec = import_and_build(model, tmp_path)
    text = spec.read_text()
    assert "specc: 2" in text                       # a share, ports and call arguments
    assert "{name: shared_call2, share: shared}" in text      # it reads `pre`, written before
    assert "call: {initial_state: [enc.state_h, enc.state_c]}" in text
    assert "call: {use_causal_mask: true}" in text
    assert "type: Rescaling" in text and "Lambda" not in text
    assert _owners(model) == _owners(built)
    assert model.count_params() == built.count_params()
    assert [t.name for t in built.inputs] == ["seq", "vec"]
    assert_same_outputs(model, built)


def test_constant_operations_are_exact_rescalings(tmp_path: Path) -> None:
    """x + c, x * c, x - c and c - x become Rescaling layers computing the same floats."""
    x = keras.Input((4,), name="x")
    y = keras.layers.Dense(4, name="d")(x)
    out = keras.layers.Identity(name="out")(3.0 - ((y + 0.1) * 7.0 - 2.5))
    model = keras.Model(x, out, name="ops")
    built, spec = import_and_build(model, tmp_path)
    data = specc.load(spec)
    kinds = [(l.type, getattr(l, "scale", None), getattr(l, "offset", None)) for l in data.layers]
    assert kinds[1:5] == [("Rescaling", 1.0, 0.1), ("Rescaling", 7.0, 0.0),
                          ("Rescaling", 1.0, -2.5), ("Rescaling", -1.0, 3.0)]
    xs = _batch(model)
    kernel, bias = (w.astype("float64") for w in model.get_layer("d").get_weights())
    scaled = ((xs[0].astype("float64") @ kernel + bias) + 0.1) * 7.0
    want = 3.0 - (scaled - 2.5)
    # Two graphs of the same float32 ops: TensorFlow may fuse the Dense's bias with the add
    # after it in one and not the other (1 ulp apart on an AMD EPYC). Every intermediate is
    # below 32 in magnitude (float32 ulp <= 3.9e-6 there): both within 1e-5 of float64.
    assert max(np.max(np.abs(scaled)), np.max(np.abs(want))) < 32
    for got in (_outputs(model, xs)[0], _outputs(built, xs)[0]):
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-5)


@pytest.mark.parametrize("name", ["MobileNetV3Small", "EfficientNetB0", "DenseNet121"])
def test_applications_round_trip(name: str, tmp_path: Path) -> None:
    model = getattr(keras.applications, name)(weights=None, input_shape=(32, 32, 3), classes=5)
    imported = importer.convert(model)
    built, _ = import_and_build(model, tmp_path, weights=False)
    owners = {k: v for k, v in _owners(model).items() if k not in imported.in_spec}
    assert owners == _owners(built)
    trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    assert trainable == sum(int(np.prod(w.shape)) for w in built.trainable_weights)
    statistics = sum(int(np.prod(w.shape)) for n in imported.in_spec
                     for w in model.get_layer(n).weights)
    assert model.count_params() - statistics == built.count_params()
    assert_same_outputs(model, built)
    assert not imported.in_spec
    if name == "EfficientNetB0":      # a Normalization without statistics: 3 + 3 + 1 weights
        assert "mean" not in next(e for e in imported.data["layers"]
                                  if e["name"] == "normalization")
        assert built.get_layer("normalization").count_params() == 7


def test_initializer_objects_serialize_without_warnings() -> None:
    """Imported specs are full of `{type: VarianceScaling, ...}`: keras_kwargs() dumps them
    without Pydantic's "serialized value may not be as expected" warning."""
    import warnings

    from specc.spec.layers import LAYER_TYPES

    init = {"type": "VarianceScaling", "scale": 2.0, "mode": "fan_out",
            "distribution": "truncated_normal"}
    layer = LAYER_TYPES["Conv2D"].model_validate(
        {"name": "c", "type": "Conv2D", "filters": 2, "kernel_size": 1,
         "kernel_initializer": init}, context={"format": 2})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        kwargs = layer.keras_kwargs()
    assert kwargs["kernel_initializer"] == init


# --- registered layer classes: keras.applications' own (ConvNeXt), a user's plugin -------------

def test_convnext_tiny_round_trips_with_its_registered_layers(tmp_path: Path) -> None:
    """ConvNeXtTiny's LayerScale is written as `type: LayerScale` (specc.applications_layers,
    loaded by specc itself): the same layers, parameters and outputs; saved, it loads with
    safe_mode=True."""
    model = keras.applications.ConvNeXtTiny(weights=None, input_shape=(32, 32, 3), classes=5)
    imported = importer.convert(model)
    built, spec = import_and_build(model, tmp_path, weights=False)
    text = spec.read_text()
    assert "{name: convnext_tiny_stage_0_block_0_layer_scale, type: LayerScale, " \
           "init_values: 1.0e-06, projection_dim: 96}" in text     # specc.yaml_writer: 1.0e-06
    assert text.count("type: LayerScale") == 18 and "specc: 1" in text
    assert any("LayerScale: written as type LayerScale (registered by specc)" in note
               for note in imported.notes)
    assert _owners(model) == _owners(built)
    assert model.count_params() == built.count_params() == 27_823_973
    assert_same_outputs(model, built)
    saved = tmp_path / "built.keras"
    built.save(saved)
    loaded = keras.saving.load_model(saved, safe_mode=True)
    name = "convnext_tiny_stage_3_block_2_layer_scale"
    assert type(loaded.get_layer(name)) is type(model.get_layer(name))
    assert_same_outputs(model, loaded)


def test_stochastic_depth_from_a_keras_file(tmp_path: Path, capsys) -> None:
    """keras.applications' ConvNeXt with drop_path_rate > 0 (which no public constructor
    passes) has StochasticDepth layers too; from a .keras file, through the command."""
    from keras.src.applications.convnext import ConvNeXt

    keras.utils.set_random_seed(5)
    model = ConvNeXt(depths=[1, 1, 1, 1], projection_dims=[8, 8, 16, 16], drop_path_rate=0.25,
                     layer_scale_init_value=0.5, name="small_convnext", weights=None,
                     input_shape=(32, 32, 3), classes=3)
    saved = tmp_path / "small.keras"
    model.save(saved)
    out = tmp_path / "small.yaml"
    assert main(["import", str(saved), "-o", str(tmp_path / "folded.yaml"), "--weights",
                 "--check"]) == 0
    printed = capsys.readouterr().out
    assert "check: structure same" in printed
    assert checked_difference(printed) <= 1e-6     # two graphs: a stated tolerance
    assert main(["import", str(saved), "-o", str(out), "--weights", "--check", "--flat"]) == 0
    printed = capsys.readouterr().out
    assert "check: structure same" in printed
    assert checked_difference(printed) <= 1e-6     # two graphs: a stated tolerance
    text = out.read_text()
    assert "type: StochasticDepth, drop_path_rate: 0.25}" in text
    assert "type: LayerScale, init_values: 0.5, projection_dim: 16}" in text
    built = specc.build(out)
    assert built.count_params() == model.count_params()
    assert_same_outputs(model, built)                      # inference: StochasticDepth is x


VALIDATE_CONVNEXT_LAYERS: Final = f"""
import specc
text = {CONVNEXT_LAYERS!r}
specc.loads(text, "ok.yaml")
for bad, fixed in (("projection_dim: 8", "projection_dim: 6"),
                   ("drop_path_rate: 0.1", "drop_path_rate: 1.0")):
    try:
        specc.loads(text.replace(bad, fixed), "bad.yaml")
    except specc.SpecError as exc:
        print(exc.diagnostics[0].render())
"""


def test_validating_convnext_layers() -> None:
    """The types need no --plugin to validate (nor Keras: test_imports.py); bad arguments are
    located."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", VALIDATE_CONVNEXT_LAYERS], capture_output=True,
                         text=True, env=env, check=True).stdout.splitlines()
    assert out == [
        "bad.yaml:5:5: error: layer 's' (LayerScale): scales 6 channels (projection_dim), "
        "got 8  [shape]",
        "bad.yaml:6:54: error: layers[1] (d).drop_path_rate: must be less than 1 (got 1.0)  "
        "[bad-value]"]


def test_specc_declares_its_applications_layers_as_an_entry_point() -> None:
    """pyproject's `specc.layers` entry point names the module that registers the types (an
    installed specc finds it like any plugin's)."""
    import importlib
    import tomllib

    from specc import custom_layers

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    module = project["entry-points"][custom_layers.ENTRY_POINT_GROUP]["applications"]
    assert module in custom_layers.BUNDLED
    importlib.import_module(module)
    for name in ("LayerScale", "StochasticDepth", "CustomScaleLayer"):
        assert custom_layers.lookup(name).plugin == module


@pytest.fixture()
def scaled_plugin(monkeypatch) -> Any:
    """tests/plugins/specc_layer_plugin.py (ScaledDense, registered as a class, arguments
    from its signature); forgotten afterwards."""
    from specc import custom_layers

    monkeypatch.syspath_prepend(str(ROOT / "tests" / "plugins"))
    import specc_layer_plugin

    yield specc_layer_plugin
    for name in ("ScaledDense", "ScaledDenseNoShape"):
        custom_layers.unregister_layer(name)
    sys.modules.pop("specc_layer_plugin", None)


def test_a_user_registered_layer_round_trips(tmp_path: Path, capsys, scaled_plugin) -> None:
    """A plugin's class is written as its registered type, arguments at their default left
    out, a second call as a share; the spec rebuilds the model (outputs to RTOL, the same
    parameters)."""
    ScaledDense = scaled_plugin.ScaledDense
    keras.utils.set_random_seed(2)
    x = keras.Input((5,), name="x")
    a = ScaledDense(5, activation="relu", name="a")
    h = ScaledDense(3, use_bias=False, name="b")(a(a(x)))
    model = keras.Model(x, keras.layers.Dense(2, name="out")(h), name="user")
    rng = np.random.default_rng(1)
    for layer in model.layers[1:]:                 # not the initial ones (scale = 1, bias = 0)
        layer.set_weights([rng.standard_normal(w.shape).astype("float32")
                           for w in layer.weights])
    saved = tmp_path / "user.keras"
    model.save(saved)
    spec = tmp_path / "user.yaml"
    assert main(["import", str(saved), "-o", str(spec), "--weights",
                 "--plugin", "specc_layer_plugin"]) == 0
    text = spec.read_text()
    assert "  - {name: a, type: ScaledDense, units: 5, activation: relu}\n" \
           "  - {name: a_call2, share: a}\n" \
           "  - {name: b, type: ScaledDense, units: 3, use_bias: false}\n" in text
    assert "which the plugin specc_layer_plugin registers (give --plugin specc_layer_plugin" \
        in text
    built = specc.build(spec)
    assert type(built.get_layer("b")) is ScaledDense
    assert _owners(model) == _owners(built)
    assert built.count_params() == model.count_params() == (5 * 5 + 5 + 5) + (5 * 3 + 3) + \
        (3 * 2 + 2)
    assert_same_outputs(model, built)


def test_a_registered_layer_with_a_regularizer_is_refused(scaled_plugin) -> None:
    x = keras.Input((5,), name="x")
    y = scaled_plugin.ScaledDense(4, kernel_regularizer="l2", name="a")(x)
    with pytest.raises(importer.ImportRefused) as info:
        importer.convert(keras.Model(x, y, name="m"))
    assert info.value.lines == ["layer 'a' (ScaledDense): it has a kernel_regularizer (write "
                                "it as a penalty clause: weight_penalties)"]


# --- refusals: one line each, nothing written --------------------------------------------------

@keras.saving.register_keras_serializable(package="test_import")
class Doubler(keras.layers.Layer):
    def call(self, x):
        return x * 2.0


def _refusing_model() -> Any:
    x = keras.Input((3,), name="x")
    y = keras.layers.Dense(3, name="d")(x)
    y = keras.layers.Lambda(lambda t: t + 1.0, name="plus_one")(y)
    y = Doubler(name="twice")(y)
    y = keras.ops.sin(y)
    return keras.Model(x, keras.layers.Dense(2, kernel_regularizer="l2", name="out")(y),
                       name="refusing")


def test_what_has_no_spec_form_is_refused_one_line_each() -> None:
    with pytest.raises(importer.ImportRefused) as info:
        importer.convert(_refusing_model())
    lines = info.value.lines
    assert len(lines) == 4, lines
    assert lines[0].startswith("layer 'plus_one' (Lambda): a Lambda runs Python code")
    assert lines[1].startswith("layer 'twice' (") and "Doubler" in lines[1]
    for line in lines[:2]:
        assert "specc.register_layer" in line and "specc.layers" in line
    assert lines[2].startswith("operation 'sin") and "(keras.ops Sin(tensor)): no catalog " \
        "layer computes it" in lines[2]
    assert lines[3] == ("layer 'out' (Dense): it has a kernel_regularizer (write it as a "
                        "penalty clause: weight_penalties)")


def test_cli_refuses_a_keras_file_from_its_config_and_writes_nothing(tmp_path: Path,
                                                                      capsys) -> None:
    saved = tmp_path / "m.keras"
    _refusing_model().save(saved)
    out = tmp_path / "spec.yaml"
    assert main(["import", str(saved), "-o", str(out), "--weights"]) == 1
    err = capsys.readouterr().err
    assert "nothing written" in err
    assert "layer 'plus_one' (Lambda): a Lambda runs Python code" in err
    assert "twice" in err and "Doubler" in err
    assert "(keras.ops Sin): no catalog layer computes it" in err   # auto-named sin, sin_1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.keras"]


def test_cli_imports_a_keras_file_with_weights(tmp_path: Path, capsys, monkeypatch) -> None:
    model = zoo_model()
    model.compile(loss="mse")
    model.save(tmp_path / "zoo.keras")
    out = tmp_path / "specs" / "zoo.yaml"
    out.parent.mkdir()
    assert main(["import", str(tmp_path / "zoo.keras"), "-o", str(out), "--weights",
                 "--check"]) == 0
    printed = capsys.readouterr().out
    assert "check: structure same" in printed and f"wrote {out}" in printed
    assert "weights: zoo.weights.h5" in out.read_text()
    assert "\nloss: mse\n" in out.read_text()              # the model's compiled loss
    monkeypatch.chdir(tmp_path)          # the path is relative to the spec, not the cwd
    assert_same_outputs(model, specc.build(out))


def test_check_fails_when_the_outputs_differ(tmp_path: Path, capsys, monkeypatch) -> None:
    # the spec's model gets 1 % noise on one kernel after it is built: the real comparison
    # sees the outputs move, and --check exits 1 (the files stay written: they are the import)
    import numpy as np

    model = zoo_model()
    model.save(tmp_path / "zoo.keras")
    real_build = specc.build

    def noisy_build(*args: Any, **kwargs: Any) -> Any:
        built = real_build(*args, **kwargs)
        layer = next(l for l in built.layers if l.weights)
        kernel = layer.weights[0]
        kernel.assign(np.asarray(kernel) * 1.01 + 0.01)
        return built

    monkeypatch.setattr(specc, "build", noisy_build)
    out = tmp_path / "zoo.yaml"
    assert main(["import", str(tmp_path / "zoo.keras"), "-o", str(out), "--weights",
                 "--check"]) == 1
    printed = capsys.readouterr().out
    assert "check: structure same" in printed and "(FAILED: the outputs may differ by 1e-05" \
        in printed and out.exists()


def test_cli_import_keeps_to_the_size_budget(tmp_path: Path, capsys) -> None:
    x = keras.Input((30,), name="x")
    keras.Model(x, keras.layers.Dense(40, name="wide")(x), name="m").save(tmp_path / "m.keras")
    out = tmp_path / "m.yaml"
    assert main(["import", str(tmp_path / "m.keras"), "-o", str(out), "--weights",
                 "--max-params", "1000"]) == 1
    err = capsys.readouterr().err
    assert "the spec would not validate: the model has 1,240 parameters, over the budget of " \
           "1,000 (--max-params)" in err
    assert not out.exists() and not (tmp_path / "m.weights.h5").exists()
    assert main(["import", str(tmp_path / "m.keras"), "--max-params", "2000"]) == 0
    assert "{name: wide, type: Dense, units: 40}" in capsys.readouterr().out


def test_cli_lists_the_applications(capsys) -> None:
    assert main(["import", "--list"]) == 0
    names = capsys.readouterr().out.split()
    assert "ResNet50" in names and "MobileNetV3Small" in names and names == sorted(names)


def test_cli_usage_errors(tmp_path: Path, capsys) -> None:
    assert main(["import", "--application", "ResNet5O", "-o", str(tmp_path / "a.yaml")]) == 2
    assert "did you mean 'ResNet50'" in capsys.readouterr().err
    assert main(["import", "--application", "ResNet50", "--weights"]) == 2
    assert main(["import", "--application", "ResNet50", "-o", str(tmp_path / "a.txt")]) == 2
    assert main(["import", "--application", "ResNet50", "--input-shape", "8,8,3",
                 "-o", str(tmp_path / "a.yaml")]) == 2        # Keras's own minimum size
    assert "ResNet50" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_a_failed_write_leaves_nothing(tmp_path: Path, monkeypatch) -> None:
    imported = importer.convert(zoo_model())

    def broken(path: Any, arrays: Any) -> None:
        Path(path).write_bytes(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr("specc.weights.write", broken)
    with pytest.raises(OSError):
        importer.write(imported, tmp_path / "s.yaml", with_weights=True)
    assert list(tmp_path.iterdir()) == []


# --- weights: FILE ---------------------------------------------------------------------------

SMALL: Final = """\
specc: 1
name: small
inputs:
  x: {shape: [4]}
layers:
  - {name: h, type: Dense, units: 3, activation: relu}
  - {name: y, type: Dense, units: 2}
outputs: [y]
loss: mse
"""


def _small_weights(tmp_path: Path) -> tuple[Path, dict[str, list[Any]]]:
    rng = np.random.default_rng(1)
    arrays = {"h": [rng.standard_normal((4, 3)), rng.standard_normal(3)],
              "y": [rng.standard_normal((3, 2)), rng.standard_normal(2)]}
    path = tmp_path / "small.weights.h5"
    from specc.weights import write

    write(path, arrays)
    return path, arrays


def test_weights_file_gives_the_model_its_arrays(tmp_path: Path) -> None:
    _, arrays = _small_weights(tmp_path)
    spec = tmp_path / "small.yaml"
    spec.write_text(SMALL + "weights: small.weights.h5\n")
    model = specc.build(spec)
    x = np.random.default_rng(2).standard_normal((5, 4)).astype("float32")
    h = np.maximum(x @ arrays["h"][0].astype("float32") + arrays["h"][1].astype("float32"), 0)
    want = h @ arrays["y"][0].astype("float32") + arrays["y"][1].astype("float32")
    np.testing.assert_allclose(model.predict(x, verbose=0), want, rtol=1e-5, atol=1e-6)


def _error(spec: Path) -> str:
    with pytest.raises(specc.SpecError) as info:
        specc.build(spec)
    return str(info.value)


@pytest.mark.parametrize("case,expected", [
    ("missing", "does not exist"),
    ("suffix", "a weights file ends in '.weights.h5'"),
    ("text", "is not a Keras weights file (no HDF5 signature)"),
    ("folder", "is not a regular file"),
])
def test_weights_file_problems_are_found_at_validation(tmp_path: Path, case: str,
                                                       expected: str) -> None:
    name = {"suffix": "w.h5"}.get(case, "w.weights.h5")
    if case == "text":
        (tmp_path / name).write_text("import os  # not weights\n")
    elif case == "folder":
        (tmp_path / name).mkdir()
    spec = tmp_path / "s.yaml"
    spec.write_text(SMALL + f"weights: {name}\n")
    with pytest.raises(specc.SpecError) as info:
        specc.load(spec)
    assert str(info.value).startswith(f"{spec}:10:10: ")
    assert expected in str(info.value)


def _edit(path: Path, edit: Any) -> None:
    with h5py.File(path, "a") as f:
        edit(f)


@pytest.mark.parametrize("case,expected", [
    ("renamed", "the file has weights for 'hh', which is no layer with weights in the model "
                "(did you mean 'h'?); layer 'h' has weights, the file has none for it"),
    ("shape", "layer 'y' holds arrays of shapes (3, 2), (2,); the file has (3, 3), (2,)"),
    ("link", "/layers/y/vars/0 is a link (ExternalLink)"),
    ("strings", "layers/y/vars/1: not a plain numeric array"),
    ("layout", "its layers are keyed dense, ..., not by the spec's layer names (a file from "
               "Keras's save_weights keys them by class)"),
    ("groups", "no group 'layers'"),
])
def test_mismatched_weights_are_a_located_build_error(tmp_path: Path, case: str,
                                                      expected: str) -> None:
    path, _ = _small_weights(tmp_path)
    if case == "renamed":
        _edit(path, lambda f: f.move("layers/h", "layers/hh"))
    elif case == "shape":
        def edit(f: Any) -> None:
            del f["layers/y/vars/0"]
            f["layers/y/vars/0"] = np.zeros((3, 3))
        _edit(path, edit)
    elif case == "link":
        def edit(f: Any) -> None:
            del f["layers/y/vars/0"]
            f["layers/y/vars/0"] = h5py.ExternalLink("/etc/passwd", "/x")
        _edit(path, edit)
    elif case == "strings":
        def edit(f: Any) -> None:
            del f["layers/y/vars/1"]
            f["layers/y/vars/1"] = np.array([b"a", b"b"])
        _edit(path, edit)
    elif case == "groups":
        _edit(path, lambda f: f.move("layers", "other"))
    elif case == "layout":
        keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)]).save_weights(path)
    spec = tmp_path / "small.yaml"
    spec.write_text(SMALL + "weights: small.weights.h5\n")
    message = _error(spec)
    assert message.startswith(f"{spec}:10:10: weights file "), message
    assert expected in message, message


def test_validating_a_spec_with_weights_does_not_import_tensorflow(tmp_path: Path) -> None:
    _small_weights(tmp_path)
    spec = tmp_path / "small.yaml"
    spec.write_text(SMALL + "weights: small.weights.h5\n")
    code = textwrap.dedent(f"""
        import sys, specc
        specc.load({str(spec)!r})
        heavy = [m for m in ("tensorflow", "keras", "h5py") if m in sys.modules]
        print(heavy)
    """)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=env, check=True).stdout
    assert out.strip() == "[]"


# --- freezing -----------------------------------------------------------------------------------

FROZEN: Final = """\
specc: 2
name: finetune
seed: 4
inputs:
  x: {shape: [6]}
blocks:
  tower:
    layers:
      - {name: d1, type: Dense, units: 8, activation: relu}
      - {name: bn, type: BatchNormalization}
      - {name: d2, type: Dense, units: 8, activation: relu}
layers:
  - {name: stem, type: Dense, units: 8, activation: relu, trainable: false}
  - {name: backbone, use: tower, trainable: false}
  - {name: mid, type: Dense, units: 8, activation: relu}
  - {name: drop, type: Dropout, rate: 0.1}
  - {name: head, type: Dense, units: 3, activation: softmax}
outputs: [head]
loss: categorical_crossentropy
freeze: ["mid*"]
penalties:
  - {name: energy, layer: backbone.d2, kind: l2, rate: 1.0e-3}
optimizer: {type: sgd, learning_rate: 0.1}
"""


def test_frozen_layers_keep_their_weights_and_the_head_trains(tmp_path: Path) -> None:
    spec = tmp_path / "f.yaml"
    spec.write_text(FROZEN)
    model = specc.build(spec)
    frozen = ["stem", "backbone.d1", "backbone.bn", "backbone.d2", "mid"]
    assert [l.name for l in model.layers if l.weights and not l.trainable] == frozen
    before = {l.name: [w.numpy() for w in l.weights] for l in model.layers if l.weights}
    rng = np.random.default_rng(0)
    x = rng.standard_normal((16, 6)).astype("float32")
    y = np.eye(3, dtype="float32")[rng.integers(0, 3, 16)]
    logs = model.train_on_batch(x, y, return_dict=True)
    assert logs["energy"] > 0
    for name in frozen:      # BatchNormalization's moving statistics too; untouched: bit-exact
        for w0, w1 in zip(before[name], model.get_layer(name).weights):
            np.testing.assert_array_equal(w0, w1.numpy())
    moved = np.max(np.abs(before["head"][0] - model.get_layer("head").weights[0].numpy()))
    assert moved > 1e-4


def test_freeze_glob_matching_no_layer_is_located(tmp_path: Path) -> None:
    spec = tmp_path / "f.yaml"
    spec.write_text(FROZEN.replace('freeze: ["mid*"]', 'freeze: ["mid*", "drop"]'))
    with pytest.raises(specc.SpecError) as info:
        specc.load(spec)
    assert str(info.value).startswith(f"{spec}:20:18: 'drop' matches no layer with weights "
                                      "(only layers without weights: drop) (layers with "
                                      "weights: stem, backbone.d1, ")


def test_trainable_on_a_use_must_be_a_boolean(tmp_path: Path) -> None:
    spec = tmp_path / "f.yaml"
    spec.write_text(FROZEN.replace("use: tower, trainable: false", "use: tower, trainable: no"))
    with pytest.raises(specc.SpecError) as info:
        specc.load(spec)
    assert str(info.value).startswith(f"{spec}:14:45: trainable: expected true or false, "
                                      "got 'no'")


def test_imported_backbone_frozen_by_glob(tmp_path: Path) -> None:
    """The fine-tuning path: import, freeze the backbone by glob, train the head only."""
    model = keras.applications.MobileNetV3Small(weights=None, input_shape=(32, 32, 3),
                                                classes=4, include_preprocessing=False)
    imported = importer.convert(model)
    spec = tmp_path / "mv3.yaml"
    importer.write(imported, spec, with_weights=True)
    text = spec.read_text() + 'freeze: ["conv*", "expanded_conv*"]\n'
    spec.write_text(text)
    built = specc.build(spec)
    frozen = [l for l in built.layers if l.weights and not l.trainable]
    assert frozen and all(l.name.startswith(("conv", "expanded_conv")) for l in frozen)
    assert {l.name for l in built.layers if l.weights and l.trainable} == {"logits"}


def test_keras_defaults_written_otherwise_are_left_out() -> None:
    # Keras saves a pooling layer's strides=None as its pool_size, and the Embedding's
    # "uniform" as RandomUniform(-0.05, 0.05): neither is written; what differs still is
    keras = pytest.importorskip("keras")
    inp = keras.Input((12,), dtype="int32", name="ids")
    a = keras.layers.Embedding(50, 4, name="embed")(inp)
    b = keras.layers.Embedding(50, 4, name="embed2", embeddings_initializer=keras.initializers
                               .RandomUniform(-0.1, 0.1))(inp)
    x = keras.layers.Concatenate(name="both")([a, b])
    x = keras.layers.MaxPooling1D(2, name="pool")(x)
    x = keras.layers.MaxPooling1D(2, strides=1, name="pool_s1")(x)
    model = keras.Model(inp, keras.layers.GlobalAveragePooling1D(name="avg")(x))
    layers = {e["name"]: e for e in importer.convert(model).data["layers"]}
    assert "embeddings_initializer" not in layers["embed"]
    assert layers["embed2"]["embeddings_initializer"] == {"type": "RandomUniform",
                                                          "minval": -0.1, "maxval": 0.1}
    assert "strides" not in layers["pool"] and layers["pool_s1"]["strides"] in (1, [1])
