"""Runtime behaviour of the compiled models (the contract's "three strategies are one loss",
"the loss, broken down", saving and reproducibility), checked against tests/reference.py:

- `fit` with only the real targets (arrays, dicts keyed by output name, tf.data) under
  `via: output`; `predict` returns only the declared outputs;
- dict inputs keyed by input name; `sample_weight` weights the task loss only, every strategy;
- several batches: each logged key is the batch-size-weighted mean; a batch of one works;
- `fit` history: `loss`, `task_loss`, every clause and their `val_` twins, with the values of
  the hand-written reference, and a traced SGD step equal to the hand-computed one;
- `.keras` files load with safe_mode=True and give identical logs and predictions;
- no Lambda layer, no auto-numbered layer name; `seed` reproduces weights and loss across
  fresh processes.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import reference as ref

keras = pytest.importorskip("keras")
import specc  # noqa: E402
import tensorflow as tf  # noqa: E402

B = 6
LR = 0.1
TWO = os.path.join(ref.ROOT, "specs", "two_outputs.yaml")


# -- the traced fit of two_outputs (two inputs, two outputs), every strategy ----------------
class Fitted:
    """two_outputs with SGD(LR): one `fit` epoch of one batch, dict inputs and targets,
    sample weights, and validation data with its own sample weights."""

    def __init__(self, tmp) -> None:
        self.spec = ref.sgd_variant(ref.read_spec(TWO), LR)
        self.path = ref.write_spec(self.spec, tmp / "two_outputs_sgd.yaml")
        self.hand = ref.HandModel(self.spec)
        self.x, self.y = ref.make_batch(self.spec, self.hand, B, seed=1)
        self.xv, self.yv = ref.make_batch(self.spec, self.hand, B, seed=2)
        rng = np.random.default_rng(3)
        self.sw = rng.uniform(0.1, 2.0, size=B).astype("float32")
        self.swv = rng.uniform(0.1, 2.0, size=B).astype("float32")
        self.models = {via: specc.build(self.path, via=via) for via in ref.STRATEGIES}
        ref.perturb_zero_weights(self.models[None])
        for via in ref.STRATEGIES[1:]:
            ref.copy_weights(self.models[None], self.models[via])
        self.before = ref.weights_by_path(self.models[None])
        self.history = {}
        for via, model in self.models.items():
            h = model.fit(self.x, self.y, sample_weight=self.sw, batch_size=B, epochs=1,
                          shuffle=False, verbose=0,
                          validation_data=(self.xv, self.yv, self.swv))
            self.history[via] = {k: v[0] for k, v in h.history.items()}

    def hand_at(self, weights: dict) -> ref.HandModel:
        for layer in self.hand.layers.values():
            layer.set_weights([weights[v.path] for v in layer.weights])
        return self.hand


@pytest.fixture(scope="module")
def fitted(tmp_path_factory) -> Fitted:
    return Fitted(tmp_path_factory.mktemp("fitted"))


def test_fit_history_has_the_breakdown_and_val_twins(fitted):
    keys = ["loss", "task_loss", *ref.clause_names(fitted.spec)]
    for via, h in fitted.history.items():
        missing = [k for k in keys + [f"val_{k}" for k in keys] if k not in h]
        assert not missing, f"via={via}: {missing} not in {sorted(h)}"


@pytest.mark.parametrize("via", ref.STRATEGIES, ids=str)
def test_fit_logs_match_reference_and_sample_weight_weights_task_only(fitted, via):
    h = fitted.history[via]
    # training logs: computed before the update, with the training sample weights
    hand = fitted.hand_at(fitted.before)
    train = ref.reference_logs(fitted.spec, hand, fitted.x, fitted.y, fitted.sw)
    unweighted = ref.reference_logs(fitted.spec, hand, fitted.x, fitted.y)
    assert abs(train["task_loss"] - unweighted["task_loss"]) > 1e-3   # the weights matter
    for key in ref.clause_names(fitted.spec):
        assert train[key] == unweighted[key]        # the reference: terms ignore weights
    for key, value in train.items():
        np.testing.assert_allclose(h[key], value, rtol=1e-5, atol=1e-8,
                                   err_msg=f"via={via}: {key}")
    # validation logs: after the update, with the validation sample weights
    hand = fitted.hand_at(ref.weights_by_path(fitted.models[via]))
    val = ref.reference_logs(fitted.spec, hand, fitted.xv, fitted.yv, fitted.swv)
    for key, value in val.items():
        np.testing.assert_allclose(h[f"val_{key}"], value, rtol=1e-5, atol=1e-8,
                                   err_msg=f"via={via}: val_{key}")


@pytest.mark.parametrize("via", ref.STRATEGIES, ids=str)
def test_traced_fit_step_equals_hand_gradient_step(fitted, via):
    """Gradient of (sample-weighted task loss + unweighted penalties), plain SGD."""
    hand = fitted.hand_at(fitted.before)
    expected = ref.hand_sgd_step(fitted.spec, hand, fitted.x, fitted.y, LR, fitted.sw)
    got = ref.weights_by_path(fitted.models[via])
    assert got.keys() == expected.keys()
    for name in got:
        step_got = got[name] - fitted.before[name]
        step_expected = expected[name] - fitted.before[name]
        scale = np.abs(step_expected).max()
        assert scale > 0
        np.testing.assert_allclose(step_got, step_expected, rtol=1e-4, atol=1e-5 * scale,
                                   err_msg=f"via={via}: update of {name}")


MAX_ULPS, AFTER_TRAINING_RTOL = ref.MAX_ULPS, ref.AFTER_TRAINING_RTOL
float32_ulps, assert_within_ulps = ref.float32_ulps, ref.assert_within_ulps


def test_float32_ulps() -> None:
    one = np.float32(1.0)
    up = np.nextafter(one, np.float32(2))
    assert float32_ulps(1.0, 1.0) == 0 and float32_ulps(0.0, -0.0) == 0
    assert float32_ulps(float(one), float(up)) == 1
    assert float32_ulps(float(np.nextafter(up, np.float32(2))), 1.0) == 2
    tiny = float(np.nextafter(np.float32(0), np.float32(1)))   # the smallest subnormal
    assert float32_ulps(-tiny, tiny) == 2
    assert float32_ulps(0.6238121390342712, 0.623812198638916) == 1   # issue 9's difference


def test_traced_fit_is_the_same_for_every_strategy(fitted):
    """One SGD step from the same weights, every strategy: the training logs (same weights
    and batch) within MAX_ULPS; the weights and the validation logs (after the step) within
    the after-training bound."""
    first = fitted.history[None]
    train = {k: v for k, v in first.items() if not k.startswith("val_")}
    for via in ref.STRATEGIES[1:]:
        h = fitted.history[via]
        assert h.keys() == first.keys(), f"via={via}"
        assert_within_ulps({k: h[k] for k in train}, train, f"via={via}, training logs")
        for key in first.keys() - train.keys():
            np.testing.assert_allclose(h[key], first[key], rtol=AFTER_TRAINING_RTOL, atol=0,
                                       err_msg=f"via={via}: {key}")
        other = ref.weights_by_path(fitted.models[via])
        for name, value in ref.weights_by_path(fitted.models[None]).items():
            np.testing.assert_allclose(other[name], value, rtol=1e-6, atol=1e-7,
                                       err_msg=f"via={via}: {name}")


def test_same_weights_give_the_same_logs_for_every_strategy(fitted):
    """The trained weights of the default strategy copied into every strategy's model:
    evaluate gives the total and every term within MAX_ULPS."""
    args = dict(sample_weight=fitted.swv, batch_size=B, return_dict=True, verbose=0)
    logs = {}
    for via in ref.STRATEGIES:
        model = specc.build(fitted.path, via=via)
        ref.copy_weights(fitted.models[None], model)
        logs[via] = model.evaluate(fitted.xv, fitted.yv, **args)
    assert set(logs[None]) >= {"loss", "task_loss", *ref.clause_names(fitted.spec)}
    for via in ref.STRATEGIES[1:]:
        assert_within_ulps(logs[via], logs[None], f"via={via}, evaluate")


@pytest.mark.parametrize("via", ref.STRATEGIES, ids=str)
def test_saved_model_loads_in_safe_mode_with_identical_logs(fitted, via, tmp_path):
    model = fitted.models[via]
    path = str(tmp_path / f"{via}.keras")
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    assert [l.name for l in loaded.layers] == [l.name for l in model.layers]
    for a, b in zip(model.weights, loaded.weights):
        assert a.path == b.path and np.array_equal(a.numpy(), b.numpy())

    args = dict(sample_weight=fitted.swv, batch_size=B, return_dict=True, verbose=0)
    # bit-identical on purpose: a saved model is the same graph on the same weights, and fit's
    # validation ran the very test function that evaluate runs (one process, one CPU)
    logs = model.evaluate(fitted.xv, fitted.yv, **args)
    assert loaded.evaluate(fitted.xv, fitted.yv, **args) == logs
    for key in ["loss", "task_loss", *ref.clause_names(fitted.spec)]:
        assert logs[key] == fitted.history[via][f"val_{key}"]

    expected, got = (m.predict(fitted.xv, batch_size=B, verbose=0) for m in (model, loaded))
    assert isinstance(got, (list, tuple)) and len(got) == 2      # declared outputs only
    assert [g.shape for g in got] == [(B, 3), (B, 1)]
    for e, g in zip(expected, got):
        assert np.array_equal(e, g)
    assert not _lambda_layers(loaded)


# -- via: output with only the real targets: arrays, dicts, tf.data ------------------------
def test_output_strategy_fits_with_real_targets_only(fitted):
    """`fitted` trained via=output from dicts; arrays and a tf.data.Dataset (with the same
    sample weights) give the same step, and no dummy targets are asked for."""
    spec = fitted.spec
    models = [specc.build(fitted.path, via="output") for _ in range(2)]
    for m in models:
        assert len(m.outputs) > len(spec["outputs"])          # the taps are model outputs
        for v in m.trainable_weights:
            v.assign(fitted.before[v.path])
    x, y, sw = fitted.x, fitted.y, fitted.sw
    xs = [x[n] for n in ref.input_names(spec)]
    ys = [y[o] for o in spec["outputs"]]
    histories = [
        models[0].fit(xs, ys, sample_weight=sw, batch_size=B, epochs=1, shuffle=False,
                      verbose=0).history,
        models[1].fit(tf.data.Dataset.from_tensor_slices((x, y, sw)).batch(B), epochs=1,
                      shuffle=False, verbose=0).history,
    ]
    reference = {k: v for k, v in fitted.history["output"].items() if not k.startswith("val_")}
    expected = ref.weights_by_path(fitted.models["output"])
    for form, m, h in zip(["arrays", "tf.data"], models, histories):
        assert {k: v[0] for k, v in h.items()} == reference, form
        got = ref.weights_by_path(m)
        for name in got:
            np.testing.assert_allclose(got[name], expected[name], rtol=1e-6, atol=1e-7,
                                       err_msg=f"{form}: {name}")


def test_dict_inputs_and_targets_equal_positional(fitted):
    model = fitted.models["output"]
    spec = fitted.spec
    args = dict(batch_size=B, return_dict=True, verbose=0)
    by_name = model.evaluate(fitted.xv, fitted.yv, **args)
    positional = model.evaluate(ref.as_model_input(spec, fitted.xv),
                                ref.as_model_target(spec, fitted.yv), **args)
    reordered = model.evaluate(dict(reversed(list(fitted.xv.items()))),
                               dict(reversed(list(fitted.yv.items()))), **args)
    assert by_name == positional == reordered


@pytest.mark.parametrize("sid", [ref.spec_id(p) for p in ref.SPEC_FILES] + ["kitchen_sink"])
def test_predict_returns_declared_outputs_only(paths, sid):
    spec = ref.read_spec(paths[sid])
    model = specc.build(paths[sid], via="output")
    hand = ref.HandModel(spec)
    hand.copy_weights_from(model)
    x, _ = ref.make_batch(spec, hand, B, seed=4)
    pred = model.predict(ref.as_model_input(spec, x), batch_size=B, verbose=0)
    _, out = hand.numpy(x)
    outs = spec["outputs"]
    pred = [pred] if len(outs) == 1 else pred
    if len(outs) == 1:
        assert isinstance(pred[0], np.ndarray)
    assert len(pred) == len(outs)
    for name, p in zip(outs, pred):
        assert p.shape == out[name].shape, name
        np.testing.assert_allclose(p, out[name], rtol=1e-5, atol=1e-6, err_msg=name)


@pytest.mark.parametrize("sid", ["kitchen_sink"])
def test_sample_weight_weights_task_loss_only_every_strategy(paths, sid):
    """Batch-statistic kinds and weight terms too (eager evaluate: cheap; traced: above)."""
    spec = ref.read_spec(paths[sid])
    hand = ref.HandModel(spec)
    x, y = ref.make_batch(spec, hand, B, seed=5)
    sw = np.random.default_rng(6).uniform(0.1, 3.0, size=B).astype("float32")
    X, Y = ref.as_model_input(spec, x), ref.as_model_target(spec, y)
    logs = {}
    for via in ref.STRATEGIES:
        model = specc.build(paths[sid], via=via)
        model.run_eagerly = True
        weighted = model.evaluate(X, Y, sample_weight=sw, batch_size=B, return_dict=True,
                                  verbose=0)
        plain = model.evaluate(X, Y, batch_size=B, return_dict=True, verbose=0)
        hand.copy_weights_from(model)
        expected = ref.reference_logs(spec, hand, x, y, sw)
        for key in ref.clause_names(spec):
            assert weighted[key] == plain[key], f"via={via}: {key} changed with sample_weight"
        assert abs(weighted["task_loss"] - plain["task_loss"]) > 1e-4
        for key, value in expected.items():
            np.testing.assert_allclose(weighted[key], value, rtol=1e-5, atol=1e-8,
                                       err_msg=f"via={via}: {key}")
        logs[via] = weighted
    for via in ref.STRATEGIES[1:]:
        for key in ["loss", "task_loss", *ref.clause_names(spec)]:
            np.testing.assert_allclose(logs[via][key], logs[None][key], rtol=1e-6,
                                       err_msg=f"via={via}: {key}")


@pytest.mark.parametrize("via", ref.STRATEGIES, ids=str)
def test_batches_of_any_size_every_strategy(paths, via):
    """Several batches: each key is the batch-size-weighted mean of the per-batch values;
    a batch of one: decorrelation is 0 and nothing is NaN (eager evaluate: cheap)."""
    spec = ref.read_spec(paths["kitchen_sink"])
    hand = ref.HandModel(spec)
    x, y = ref.make_batch(spec, hand, 7, seed=8)
    model = specc.build(paths["kitchen_sink"], via=via)
    model.run_eagerly = True
    hand.copy_weights_from(model)
    head = lambda d, a, b: {k: v[a:b] for k, v in d.items()}  # noqa: E731
    logs = model.evaluate(ref.as_model_input(spec, x), ref.as_model_target(spec, y),
                          batch_size=4, return_dict=True, verbose=0)
    parts = [ref.reference_logs(spec, hand, head(x, a, b), head(y, a, b))
             for a, b in ((0, 4), (4, 7))]
    for key in parts[0]:
        np.testing.assert_allclose(logs[key], (4 * parts[0][key] + 3 * parts[1][key]) / 7,
                                   rtol=1e-5, atol=1e-8, err_msg=key)
    one = model.evaluate(ref.as_model_input(spec, head(x, 0, 1)),
                         ref.as_model_target(spec, head(y, 0, 1)), return_dict=True, verbose=0)
    assert one["trunk_decor"] == 0.0           # exact: one sample minus its own mean is 0
    expected = ref.reference_logs(spec, hand, head(x, 0, 1), head(y, 0, 1))
    for key, value in expected.items():
        np.testing.assert_allclose(one[key], value, rtol=1e-5, atol=1e-8, err_msg=key)


# -- structure: no Lambda, names from the spec ----------------------------------------------
AUTO_NAME = re.compile(r"^[a-z][a-z0-9_]*?_\d+$")


def _lambda_layers(model) -> list[str]:
    return [l.name for l in model._flatten_layers(include_self=False)
            if isinstance(l, keras.layers.Lambda)]


def test_no_lambda_and_every_layer_named_from_the_spec(paths):
    for sid, path in paths.items():
        spec = ref.read_spec(path)
        own = set(spec["inputs"]) | set(ref.layer_names(spec))
        for via in ref.STRATEGIES:
            model = specc.build(path, via=via, compile=False)
            where = f"{sid} via={via}"
            assert model.name == spec["name"], where
            assert not _lambda_layers(model), where
            assert '"Lambda"' not in json.dumps(model.get_config(), default=str), where
            names = [l.name for l in model.layers]
            assert len(names) == len(set(names)), where
            assert own <= set(names), (where, own - set(names))
            for name in names:
                if name in own:
                    continue
                base = [n for n in ref.layer_names(spec) if name.startswith(n + "_")]
                assert base, f"{where}: layer {name!r} is not derived from a spec layer"
                suffix = name[len(max(base, key=len)) + 1:]
                assert suffix and not suffix.isdigit(), f"{where}: {name!r}"
                assert not AUTO_NAME.match(name) or name in own, f"{where}: {name!r}"


# -- seed: same weights and loss in two fresh processes --------------------------------------
PROBE = textwrap.dedent("""
    import json, sys
    sys.path.insert(0, {tests!r})
    import numpy as np
    import specc
    import reference as ref
    out = {{}}
    for path in {paths!r}:
        model = specc.build(path)
        digest = ref.weights_hash(model)
        if path not in {losses!r}:
            out[path] = [digest]
            continue
        spec = ref.read_spec(path)
        hand = ref.HandModel(spec)
        x, y = ref.make_batch(spec, hand, 6, seed=0)
        model.run_eagerly = True
        logs = model.evaluate(ref.as_model_input(spec, x), ref.as_model_target(spec, y),
                              batch_size=6, return_dict=True, verbose=0)
        out[path] = [digest, float(logs["loss"]).hex()]
    print("RESULT" + json.dumps(out))
""")


class Probes:
    """Two fresh processes building every spec (and a reseeded copy): started when this module
    starts, so that they run beside the other tests, and read by the last test."""

    def __init__(self, paths: dict[str, str], tmp) -> None:
        spec = ref.read_spec(paths["mnist_cnn"])
        spec["seed"] = spec["seed"] + 1
        self.mnist = paths["mnist_cnn"]
        self.reseeded = ref.write_spec(spec, tmp / "mnist_cnn_seed.yaml")
        self.paths = [*paths.values(), self.reseeded]
        # every spec's weights; the loss of a few (dropout, two inputs, embedding, every kind)
        losses = [paths[k] for k in ("mnist_cnn", "two_outputs", "lstm_sequence",
                                     "kitchen_sink")]
        code = PROBE.format(tests=os.path.dirname(os.path.abspath(__file__)), paths=self.paths,
                            losses=losses)
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONHASHSEED": "random"}
        self.procs = [subprocess.Popen([sys.executable, "-c", code], cwd=ref.ROOT, env=env,
                                       stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                       text=True)
                      for _ in range(2)]

    def results(self) -> list[dict]:
        out = []
        for p in self.procs:
            stdout, stderr = p.communicate(timeout=300)
            assert p.returncode == 0, stderr[-3000:]
            line = next(l for l in stdout.splitlines() if l.startswith("RESULT"))
            out.append(json.loads(line[len("RESULT"):]))
        return out

    def close(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                p.kill()
                p.communicate()


@pytest.fixture(scope="module", autouse=True)
def probes(paths, tmp_path_factory):
    started = Probes(paths, tmp_path_factory.mktemp("probes"))
    yield started
    started.close()


def test_seed_reproduces_weights_and_loss_in_fresh_processes(probes):
    results = probes.results()
    assert results[0] == results[1]     # bit-identical on purpose: one seed, one CPU, one graph
    assert set(results[0]) == set(probes.paths)
    assert results[0][probes.reseeded][0] != results[0][probes.mnist][0]   # the seed matters


def test_sample_weight_dict_keyed_by_output_name() -> None:
    """Per-output sample weights given as a dict keyed by the spec's output names."""
    model = specc.build(TWO, via="output")
    rng = np.random.RandomState(0)
    x = {"numeric": rng.rand(8, 10).astype("float32"), "extra": rng.rand(8, 4).astype("float32")}
    y = {"kind": np.eye(3, dtype="float32")[rng.randint(0, 3, 8)],
         "value": rng.rand(8, 1).astype("float32")}
    sw = {"kind": rng.rand(8).astype("float32"), "value": rng.rand(8).astype("float32")}
    logs = model.evaluate(x, y, sample_weight=sw, batch_size=8, verbose=0, return_dict=True)
    plain = model.evaluate(x, y, batch_size=8, verbose=0, return_dict=True)
    kind, value = (p.astype("float64") for p in model.predict(x, verbose=0))
    ce = -np.sum(y["kind"] * np.log(np.clip(kind, 1e-7, 1.0)), axis=1)
    se = np.mean((y["value"] - value) ** 2, axis=1)
    expected = np.mean(sw["kind"] * ce) + 0.5 * np.mean(sw["value"] * se)
    assert logs["task_loss"] == pytest.approx(expected, rel=1e-5)
    for clause in ("shared_l1", "shared_l1l2"):          # two traces: equal to 1e-6
        assert logs[clause] == pytest.approx(plain[clause], rel=1e-6, abs=0)
