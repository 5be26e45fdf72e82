"""keras.io's siamese network with its contrastive loss (specs/siamese_contrastive): specc's
model, built from the spec and its one-file plugin, against the model and loss written as on
keras.io, on the same weights and batch; plugin losses and metrics under every strategy, saved
and loaded in safe mode, and on the other backends."""
from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest
from keras import ops

import specc
from specc import config

from helpers import ROOT, SPECS

SIAMESE = SPECS / "siamese_contrastive"
SPEC = SIAMESE / "siamese_contrastive.yaml"
PLUGIN = SIAMESE / "siamese_plugin.py"
#: Two float32 graphs computing the same thing (tolerances of the comparisons below).
ATOL = 1e-6


@pytest.fixture()
def plugin():
    with config.plugins_imported(config.Options(plugins=(str(PLUGIN),))):
        yield


def _batch(n: int = 16, seed: int = 0) -> tuple[list[np.ndarray], np.ndarray]:
    rng = np.random.default_rng(seed)
    images = [rng.uniform(0, 1, (n, 28, 28, 1)).astype("float32") for _ in range(2)]
    return images, (np.arange(n) % 2).astype("float32").reshape(n, 1)


# keras.io's code (https://keras.io/examples/vision/siamese_contrastive/), as published.
def euclidean_distance(vects):
    x, y = vects
    sum_square = ops.sum(ops.square(x - y), axis=1, keepdims=True)
    return ops.sqrt(ops.maximum(sum_square, keras.backend.epsilon()))


def loss(margin=1):
    def contrastive_loss(y_true, y_pred):
        square_pred = ops.square(y_pred)
        margin_square = ops.square(ops.maximum(margin - (y_pred), 0))
        return ops.mean((1 - y_true) * square_pred + (y_true) * margin_square)

    return contrastive_loss


def _keras_io_model() -> tuple[keras.Model, list[keras.layers.Layer]]:
    input = keras.layers.Input((28, 28, 1))
    x = keras.layers.BatchNormalization()(input)
    x = keras.layers.Conv2D(4, (5, 5), activation="tanh")(x)
    x = keras.layers.AveragePooling2D(pool_size=(2, 2))(x)
    x = keras.layers.Conv2D(16, (5, 5), activation="tanh")(x)
    x = keras.layers.AveragePooling2D(pool_size=(2, 2))(x)
    x = keras.layers.Flatten()(x)
    x = keras.layers.BatchNormalization()(x)
    x = keras.layers.Dense(10, activation="tanh")(x)
    embedding_network = keras.Model(input, x)

    input_1 = keras.layers.Input((28, 28, 1))
    input_2 = keras.layers.Input((28, 28, 1))
    tower_1 = embedding_network(input_1)
    tower_2 = embedding_network(input_2)
    merge_layer = keras.layers.Lambda(euclidean_distance, output_shape=(1,))(
        [tower_1, tower_2])
    normal_layer = keras.layers.BatchNormalization()(merge_layer)
    output_layer = keras.layers.Dense(1, activation="sigmoid")(normal_layer)
    siamese = keras.Model(inputs=[input_1, input_2], outputs=output_layer)
    siamese.compile(loss=loss(margin=1), optimizer="RMSprop", metrics=["accuracy"])
    weighted = [l for l in embedding_network.layers if l.weights] + [
        l for l in siamese.layers if l.weights and l is not embedding_network]
    return siamese, weighted


def _numpy_contrastive(y: np.ndarray, p: np.ndarray, margin: float = 1.0) -> float:
    p = p.astype("float64")
    return float(np.mean((1 - y) * p ** 2 + y * np.maximum(margin - p, 0) ** 2))


def _same_weights() -> tuple[keras.Model, keras.Model, list[tuple]]:
    ours = specc.build(SPEC)
    theirs, weighted = _keras_io_model()
    mine = [l for l in ours.layers if l.weights]
    assert [type(l).__name__ for l in mine] == [type(l).__name__ for l in weighted]
    for a, b in zip(mine, weighted):
        b.set_weights(a.get_weights())
    assert ours.count_params() == theirs.count_params() == 5_324
    return ours, theirs, list(zip(mine, weighted))


def test_the_spec_equals_keras_ios_model_and_loss(plugin) -> None:
    ours, theirs, pairs = _same_weights()
    assert type(ours.get_layer("distance")).__module__ == "siamese_plugin"  # imported now
    assert ours.loss.name == "contrastive" and ours.loss.args == {"margin": 1.0}
    images, y = _batch()
    p_ours = ours.predict(images, verbose=0)
    p_theirs = theirs.predict(images, verbose=0)
    np.testing.assert_allclose(p_ours, p_theirs, rtol=0, atol=ATOL)
    ours_logs = ours.evaluate(images, y, verbose=0, return_dict=True)
    theirs_logs = theirs.evaluate(images, y, verbose=0, return_dict=True)
    assert abs(ours_logs["loss"] - theirs_logs["loss"]) <= ATOL
    assert abs(ours_logs["task_loss"] - _numpy_contrastive(y, p_ours)) <= ATOL
    assert abs(ours_logs["accuracy"] - theirs_logs["accuracy"]) <= ATOL
    # one RMSprop step from the same weights on the same batch: the same loss (BatchNormalization
    # in training mode) and the same weights after it
    ours_step = ours.train_on_batch(images, y, return_dict=True)
    theirs_step = theirs.train_on_batch(images, y, return_dict=True)
    assert abs(ours_step["loss"] - theirs_step["loss"]) <= ATOL
    for mine, other in pairs:
        for a, b in zip(mine.get_weights(), other.get_weights()):
            np.testing.assert_allclose(a, b, rtol=0, atol=1e-5)


def test_the_saved_model_loads_in_safe_mode(plugin, tmp_path: Path) -> None:
    model = specc.build(SPEC)
    images, y = _batch()
    before = model.evaluate(images, y, verbose=0, return_dict=True)
    path = tmp_path / "siamese.keras"
    model.save(path)
    config_json = json.loads(__import__("zipfile").ZipFile(path).read("config.json"))
    compiled = json.dumps(config_json["compile_config"])
    assert '"specc>PluginLoss"' in compiled and '"siamese_plugin' not in compiled
    loaded = keras.saving.load_model(path, safe_mode=True)
    assert loaded.loss.name == "contrastive"
    after = loaded.evaluate(images, y, verbose=0, return_dict=True)
    assert abs(after["loss"] - before["loss"]) <= ATOL
    # specc.load_model: the same
    again = specc.load_model(path)
    assert abs(again.evaluate(images, y, verbose=0, return_dict=True)["loss"]
               - before["loss"]) <= ATOL


PENALIZED = """\
specc: 1
name: plugged_loss
seed: 3
inputs: {x: {shape: [5]}}
layers:
  - {name: h, type: Dense, units: 4, activation: tanh}
  - {name: out, type: Dense, units: 1, activation: sigmoid}
outputs: [out]
loss: {type: contrastive, margin: 0.8}
metrics: [{type: within, tol: 0.3}]
penalties:
  - {name: energy, layer: h, kind: l2, rate: 0.01}
"""

METRIC = '''\
from keras import ops
import specc


@specc.register_metric("within")
def within(y_true, y_pred, tol: float = 0.5):
    return ops.cast(ops.abs(y_true - y_pred) <= tol, "float32")
'''


@pytest.fixture()
def plugged(tmp_path: Path):
    (tmp_path / "within_metric.py").write_text(METRIC)
    options = config.Options(plugins=(str(PLUGIN), str(tmp_path / "within_metric.py")))
    with config.plugins_imported(options):
        yield


def test_every_strategy_gives_the_same_loss(plugged, tmp_path: Path) -> None:
    spec = specc.loads(PENALIZED, "p.yaml")
    rng = np.random.default_rng(1)
    x = rng.normal(size=(12, 5)).astype("float32")
    y = (np.arange(12) % 2).astype("float32").reshape(12, 1)
    first = specc.build(spec, via=specc.VIAS[0])
    weights = {l.name: l.get_weights() for l in first.layers if l.weights}
    logs = {}
    for via in specc.VIAS:
        model = first if via == specc.VIAS[0] else specc.build(spec, via=via)
        for layer in model.layers:
            if layer.weights:
                layer.set_weights(weights[layer.name])
        logs[via] = model.evaluate(x, y, verbose=0, return_dict=True)
        p = model.predict(x, verbose=0)
        assert abs(logs[via]["task_loss"] - _numpy_contrastive(y, p, 0.8)) <= ATOL
        assert abs(logs[via]["within"] - float(np.mean(np.abs(y - p) <= 0.3))) <= ATOL
        h = np.tanh(x @ weights["h"][0] + weights["h"][1]).astype("float64")
        assert abs(logs[via]["energy"] - 0.01 * np.mean(np.sum(h ** 2, axis=1))) <= ATOL
    for via in specc.VIAS[1:]:
        assert abs(logs[via]["loss"] - logs[specc.VIAS[0]]["loss"]) <= ATOL, via


BACKEND_CHECK = """\
import json, sys
import numpy as np
import keras
import specc
from specc import config
cases = json.loads(sys.argv[1])
options = config.Options(plugins=tuple(cases["plugins"]))
out = {{"backend": keras.backend.backend()}}
with config.plugins_imported(options):
    for key, case in cases["cases"].items():
        model = specc.build(specc.load(case["spec"]), via=case["via"])
        model.load_weights(case["weights"])
        batch = np.load(case["batch"])
        x = [batch[k] for k in sorted(batch.files) if k != "y"]
        logs = model.evaluate(x if len(x) > 1 else x[0], batch["y"], verbose=0,
                              return_dict=True)
        out[key] = {{k: float(v) for k, v in logs.items()}}
print(json.dumps(out))
"""


@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_other_backends_give_the_same_loss(plugged, backend: str, tmp_path: Path) -> None:
    """The siamese spec, and a plugin loss, a plugin metric and a penalty under each
    strategy: the same weights and batch on TensorFlow (here) and on `backend`."""
    if importlib.util.find_spec(backend) is None:
        pytest.skip(f"{backend} is not installed")
    penalized = tmp_path / "penalized.yaml"
    penalized.write_text(PENALIZED)
    rng = np.random.default_rng(2)
    images, y = _batch(8, seed=2)
    x = rng.normal(size=(8, 5)).astype("float32")
    cases, expected = {}, {}
    for key, spec, via, arrays in (
            [("siamese", SPEC, None, {"a": images[0], "b": images[1], "y": y})]
            + [(f"penalized_{via}", penalized, via, {"x": x, "y": y}) for via in specc.VIAS]):
        model = specc.build(specc.load(spec), via=via)
        weights, batch = tmp_path / f"{key}.weights.h5", tmp_path / f"{key}.npz"
        model.save_weights(weights)
        np.savez(batch, **arrays)
        inputs = [arrays[k] for k in sorted(arrays) if k != "y"]
        expected[key] = model.evaluate(inputs if len(inputs) > 1 else inputs[0], y, verbose=0,
                                       return_dict=True)
        cases[key] = {"spec": str(spec), "via": via, "weights": str(weights),
                      "batch": str(batch)}
    payload = {"plugins": [str(PLUGIN), str(tmp_path / "within_metric.py")], "cases": cases}
    env = {**os.environ, "KERAS_BACKEND": backend, "PYTHONPATH": str(ROOT),
           "TF_CPP_MIN_LOG_LEVEL": "3"}
    run = subprocess.run([sys.executable, "-c", BACKEND_CHECK.format(), json.dumps(payload)],
                         capture_output=True, text=True, env=env, cwd=tmp_path, timeout=900)
    assert run.returncode == 0, run.stderr[-2000:]
    result = json.loads(run.stdout.strip().splitlines()[-1])
    assert result["backend"] == backend
    for key, logs in expected.items():
        for name in ("loss", "task_loss", *(("energy", "within") if key != "siamese" else ())):
            # two backends' float32 kernels
            assert abs(result[key][name] - logs[name]) <= 1e-5, (key, name)


def test_a_saved_plugin_loss_without_its_plugin_is_one_line(plugged, tmp_path: Path) -> None:
    path = tmp_path / "plugged.keras"
    specc.build(specc.loads(PENALIZED, "p.yaml")).save(path)
    code = ("import specc\n"
            f"try:\n    specc.load_model({str(path)!r})\n"
            "except specc.errors.UsageError as exc:\n    print(exc)\n")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(ROOT),
                                            "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert run.stdout == (
        f"{path}: the model's loss 'contrastive' is registered by no imported plugin: import "
        "the plugin that registers it first (`--plugin MODULE`, [tool.specc] plugins, `import "
        "MODULE`, or install its `specc.losses` entry point)\n"), run.stderr[-2000:]


class ScaledAbsError(keras.losses.Loss):
    """A plugin loss given as a Keras class (built with the spec's arguments)."""

    def __init__(self, scale: float = 1.0, **kwargs):
        super().__init__(**kwargs)
        self.scale = scale

    def call(self, y_true, y_pred):
        return self.scale * ops.mean(ops.abs(y_true - y_pred), axis=-1)


class LargestError(keras.metrics.Metric):
    """A plugin metric given as a stateful Keras class: the largest |error| seen, times k."""

    def __init__(self, k: float = 1.0, **kwargs):
        super().__init__(**kwargs)
        self.k = k
        self.largest = self.add_variable(shape=(), initializer="zeros", name="largest")

    def update_state(self, y_true, y_pred, sample_weight=None):
        self.largest.assign(ops.maximum(self.largest, ops.max(ops.abs(y_true - y_pred))))

    def result(self):
        return self.k * self.largest


def test_keras_classes_as_plugin_loss_and_metric(tmp_path: Path) -> None:
    from specc import custom_losses

    specc.register_loss("scaled_abs", ScaledAbsError)
    specc.register_metric("largest_error", LargestError)
    try:
        spec = specc.loads(PENALIZED.replace("{type: contrastive, margin: 0.8}",
                                             "{type: scaled_abs, scale: 3.0}")
                           .replace("[{type: within, tol: 0.3}]",
                                    "[{type: largest_error, k: 2.0}]"), "c.yaml")
        model = specc.build(spec)
        rng = np.random.default_rng(4)
        x = rng.normal(size=(10, 5)).astype("float32")
        y = rng.uniform(size=(10, 1)).astype("float32")
        logs = model.evaluate(x, y, verbose=0, return_dict=True)
        p = model.predict(x, verbose=0).astype("float64")
        assert abs(logs["task_loss"] - 3.0 * np.mean(np.abs(y - p))) <= ATOL
        assert abs(logs["largest_error"] - 2.0 * np.max(np.abs(y - p))) <= ATOL
        model.save(tmp_path / "c.keras")
        loaded = keras.saving.load_model(tmp_path / "c.keras", safe_mode=True)
        again = loaded.evaluate(x, y, verbose=0, return_dict=True)
        assert abs(again["loss"] - logs["loss"]) <= ATOL
    finally:
        custom_losses.unregister("loss", "scaled_abs")
        custom_losses.unregister("metric", "largest_error")
