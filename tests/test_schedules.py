"""Scheduled rates (specc.schedules): formulas against numpy written out by hand, validation,
and (with Keras) the term at a given optimizer step, for every strategy, saved and reloaded."""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

import specc
from specc import schedules
from specc.validation import loads

ROOT = Path(__file__).resolve().parents[1]

KL_WARMUP = """\
specc: 1
name: kl_warmup
seed: 3
inputs:
  x: {shape: [6]}
layers:
  - {name: h, type: Dense, units: 5, activation: sigmoid}
  - {name: out, type: Dense, units: 1}
outputs: [out]
loss: mse
penalties:
  - {name: sparse, layer: h, kind: kl_sparsity, target: 0.1, rate: {schedule: linear, from: 0, to: 1.0e-3, steps: 1000}}
weight_penalties:
  - {name: decay, layers: h, kind: l2, rate: {schedule: piecewise, boundaries: [100, 1000], values: [1.0e-2, 1.0e-3, 0]}}
optimizer: {type: sgd, learning_rate: 0.01}
"""


def hand(s: dict, t: float) -> float:
    """Each schedule's README formula, written out separately from specc.schedules."""
    kind = s["schedule"]
    if kind == "constant":
        return s["value"]
    if kind in ("linear", "cosine"):
        f = min(max((t - s.get("start", 0)) / s["steps"], 0.0), 1.0)
        if kind == "linear":
            return s["from"] + (s["to"] - s["from"]) * f
        return s["to"] + (s["from"] - s["to"]) * (1 + math.cos(math.pi * f)) / 2
    if kind == "piecewise":
        k = sum(t >= b for b in s["boundaries"])
        return s["values"][k]
    u = max(t - s.get("start", 0), 0.0)
    frac = (u / s["period"]) % 1.0
    return s["low"] + (s["high"] - s["low"]) * (1 - abs(2 * frac - 1))


SCHEDULES = [
    {"schedule": "constant", "value": 0.3},
    {"schedule": "linear", "from": 0.0, "to": 1e-3, "steps": 1000},
    {"schedule": "linear", "from": 1.0, "to": 0.1, "steps": 50, "start": 20},
    {"schedule": "cosine", "from": 1e-2, "to": 0.0, "steps": 300},
    {"schedule": "piecewise", "boundaries": [10, 200], "values": [1.0, 0.5, 0.0]},
    {"schedule": "cyclical", "low": 0.0, "high": 2.0, "period": 40, "start": 5},
]


@pytest.mark.parametrize("s", SCHEDULES, ids=lambda s: s["schedule"])
def test_schedules_follow_their_formulas(s: dict) -> None:
    steps = np.array([0, 1, 5, 9, 10, 11, 20, 25, 45, 69, 70, 150, 199, 200, 300, 500, 1000,
                      2000], dtype=np.float64)
    got = schedules.value(s, steps, np)
    np.testing.assert_allclose(got, [hand(s, float(t)) for t in steps], rtol=1e-12, atol=1e-15)
    assert schedules.formula(s)


def test_the_warmup_at_0_500_and_2000() -> None:
    s = SCHEDULES[1]
    assert [float(schedules.value(s, t, np)) for t in (0.0, 500.0, 2000.0)] == [0.0, 5e-4, 1e-3]
    assert schedules.formula(s) == ("linear 0 → 0.001 over steps 0..1000: "
                                    "0 + (0.001 − 0) · clip(t / 1000, 0, 1)")


def test_a_rate_may_be_a_schedule_and_is_validated() -> None:
    spec = loads(KL_WARMUP, "k.yaml")
    assert spec.penalties[0].params["rate"] == {"schedule": "linear", "from": 0.0, "to": 1e-3,
                                                "steps": 1000, "start": 0}

    def errors(rate: str) -> list[str]:
        with pytest.raises(specc.SpecError) as info:
            loads(KL_WARMUP.replace("{schedule: linear, from: 0, to: 1.0e-3, steps: 1000}",
                                    rate), "k.yaml")
        return [d.render() for d in info.value.diagnostics]

    assert "invalid value 'linaer' (did you mean 'linear'?)" in errors(
        "{schedule: linaer, from: 0, to: 1, steps: 3}")[0]
    assert "rate: a schedule needs `schedule: constant|linear|cosine|piecewise|cyclical`" in \
        errors("{from: 0, to: 1}")[0]
    assert "rate.to: must be greater than or equal to 0" in errors(
        "{schedule: linear, from: 0, to: -1, steps: 3}")[0]
    assert "rate.boundaries: must increase" in errors(
        "{schedule: piecewise, boundaries: [5, 5], values: [1, 2, 3]}")[0]
    assert "give one value more than boundaries" in errors(
        "{schedule: piecewise, boundaries: [5], values: [1, 2, 3]}")[0]


def test_a_piecewise_learning_rate_is_checked_like_a_piecewise_rate() -> None:
    # Keras's PiecewiseConstantDecay by name: the same two checks, located on the same keys
    def errors(schedule: str) -> list[str]:
        with pytest.raises(specc.SpecError) as info:
            loads(KL_WARMUP.replace("learning_rate: 0.01", f"learning_rate: {schedule}"),
                  "k.yaml")
        return [d.render() for d in info.value.diagnostics]

    lr = "{schedule: PiecewiseConstantDecay, boundaries: %s, values: %s}"
    assert errors(lr % ("[5, 3]", "[0.1, 0.01, 0.001]")) == [
        "k.yaml:15:86: error: optimizer.learning_rate.boundaries: must increase  [bad-value]"]
    assert errors(lr % ("[5]", "[0.1, 0.01, 0.001]")) == [
        "k.yaml:15:99: error: optimizer.learning_rate.values: give one value more than boundaries "
        "(1 boundaries, 3 values)  [bad-value]"]


def test_explain_prints_the_schedule_as_a_formula(tmp_path) -> None:
    from specc.explain import composition

    lines = composition(specc.lower(loads(KL_WARMUP, "k.yaml")))
    assert any("rate=[linear 0 → 0.001 over steps 0..1000" in line for line in lines)
    assert any("rate=[piecewise: 0.01 for t < 100; 0.001 for 100 ≤ t < 1000; 0 for t ≥ 1000]"
               in line for line in lines)
    assert any(line.startswith("  t = the optimizer step") for line in lines)


def test_the_schema_accepts_a_schedule() -> None:
    import jsonschema
    import yaml

    schema = json.loads((ROOT / "schemas" / "specc.schema.json").read_text())
    jsonschema.validate(yaml.safe_load(KL_WARMUP), schema)


# -- with Keras ------------------------------------------------------------------------------

def _kl(a: np.ndarray, rho: float = 0.1) -> float:
    q = np.clip(a.astype(np.float64).mean(axis=0), 1e-7, 1 - 1e-7)
    return float(np.sum(rho * np.log(rho / q) + (1 - rho) * np.log((1 - rho) / (1 - q))))


@pytest.mark.parametrize("via", ["activity_regularizer", "add_loss", "output"])
def test_one_step_at_0_500_and_2000_against_numpy(via: str, tmp_path) -> None:
    keras = pytest.importorskip("keras")
    model = specc.build(loads(KL_WARMUP, "k.yaml"), via=via)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(8, 6)).astype("float32")
    y = rng.normal(size=(8, 1)).astype("float32")
    probe = keras.Model(model.inputs, model.get_layer("h").output)
    for t, rate, decay_rate in ((0, 0.0, 1e-2), (500, 5e-4, 1e-3), (2000, 1e-3, 0.0)):
        model.optimizer.iterations.assign(t)
        a = keras.ops.convert_to_numpy(probe(x))
        w = keras.ops.convert_to_numpy(model.get_layer("h").kernel)
        logs = model.train_on_batch(x, y, return_dict=True)     # the term of step t itself
        assert logs["sparse_rate"] == pytest.approx(rate, rel=1e-6, abs=0)
        assert logs["sparse"] == pytest.approx(rate * _kl(a), rel=1e-5, abs=1e-12)
        assert logs["decay_rate"] == pytest.approx(decay_rate, rel=1e-6, abs=0)
        assert logs["decay"] == pytest.approx(decay_rate * float(np.sum(w.astype(np.float64) ** 2)),
                                              rel=1e-5, abs=1e-12)
        assert int(keras.ops.convert_to_numpy(model.optimizer.iterations)) == t + 1
    # saved with the model, restored by load_model(safe_mode=True)
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras", safe_mode=True)
    for m in (model, loaded):
        m.optimizer.iterations.assign(500)
    assert loaded.test_on_batch(x, y, return_dict=True) == pytest.approx(
        model.test_on_batch(x, y, return_dict=True), rel=1e-6)


def test_fit_logs_the_rate_each_epoch_and_plots_it(tmp_path) -> None:
    pytest.importorskip("keras")
    from specc.fit import FitOptions, fit

    warm = KL_WARMUP.replace("steps: 1000}", "steps: 6}")
    result = fit(specc.lower(loads(warm, "k.yaml")), tmp_path / "run",
                 FitOptions(epochs=3, batch_size=8, samples=20, verbose=0))  # 16 training samples: 2 steps an epoch
    # the epoch's last step is t = 2·epoch − 1 (0-based)
    assert result.history["sparse_rate"] == pytest.approx([1e-3 * t / 6 for t in (1, 3, 5)],
                                                          rel=1e-6)
    assert result.history["decay_rate"] == pytest.approx([1e-2] * 3)
    assert (tmp_path / "run" / "losses.png").stat().st_size > 0


# -- scheduled loss weights ------------------------------------------------------------------

TWO_OUTPUTS = """\
specc: 1
name: lw
seed: 4
inputs: {x: {shape: [4]}}
layers:
  - {name: h, type: Dense, units: 3, activation: tanh}
  - {name: a, type: Dense, units: 2}
  - {name: b, type: Dense, units: 1, activation: sigmoid, from: h}
outputs: [a, b]
loss: {a: mse, b: binary_crossentropy}
loss_weights: {a: 0.5, b: {schedule: linear, from: 0, to: 2.0, steps: 1000}}
optimizer: {type: sgd, learning_rate: 0.1}
"""


def test_loss_weights_may_be_schedules() -> None:
    warm = {"schedule": "linear", "from": 0.0, "to": 2.0, "steps": 1000, "start": 0}
    assert loads(TWO_OUTPUTS, "lw.yaml").output_weights() == [0.5, warm]
    every = loads(TWO_OUTPUTS.replace(
        "loss_weights: {a: 0.5, b: {schedule: linear, from: 0, to: 2.0, steps: 1000}}",
        "loss_weights: {schedule: constant, value: 3}"), "lw.yaml")
    assert every.output_weights() == [{"schedule": "constant", "value": 3.0}] * 2
    listed = loads(TWO_OUTPUTS.replace(
        "loss_weights: {a: 0.5, b: {schedule: linear, from: 0, to: 2.0, steps: 1000}}",
        "loss_weights: [{schedule: constant, value: 3}, 2]"), "lw.yaml")
    assert listed.output_weights() == [{"schedule": "constant", "value": 3.0}, 2.0]


@pytest.mark.parametrize("weights, message", [
    ("{a: 0.5, b: {schedule: linaer, from: 0, to: 2.0, steps: 1000}}",
     "lw.yaml:11:38: loss_weights.b.schedule: invalid value 'linaer' (did you mean 'linear'?)"),
    ("{a: 0.5, b: {schedule: linear, from: 0, to: 2.0, stpes: 1000}}",
     "lw.yaml:11:64: unknown key 'stpes' (did you mean 'steps'?)"),
    ("{schedule: cyclical, low: 0, hihg: 1, period: 4}",
     "lw.yaml:11:44: unknown key 'hihg' (did you mean 'high'?)"),
    ("[1, {schedule: constant, value: -1}]",
     "lw.yaml:11:47: loss_weights[1].value: must be greater than or equal to 0"),
    ("{c: {schedule: constant, value: 1}}", "lw.yaml:11:16: loss_weights key 'c' is not an output"),
])
def test_bad_scheduled_loss_weights_are_located(weights: str, message: str) -> None:
    text = TWO_OUTPUTS.replace(
        "{a: 0.5, b: {schedule: linear, from: 0, to: 2.0, steps: 1000}}", weights)
    with pytest.raises(specc.SpecError) as info:
        loads(text, "lw.yaml")
    assert any(str(d).startswith(message) for d in info.value.diagnostics), \
        [str(d) for d in info.value.diagnostics]


@pytest.mark.parametrize("clauses, message", [
    ("  - {name: e, layer: h, kind: l2, rate: {schedule: constant, value: 1}}\n"
     "  - {name: e_rate, layer: h, kind: l1, rate: 1}\n",
     "lw.yaml:15:12: clause name 'e_rate' collides with the logged value of the scheduled rate "
     "of clause 'e' in the training logs"),
    ("  - {name: bb, layer: h, kind: l1_l2, l1: 1, l2: {schedule: constant, value: 1}}\n"
     "  - {name: bb_l1, layer: h, kind: l2, rate: 1}\n", None),       # bb_l1 is not scheduled
    ("  - {name: b_loss, layer: h, kind: l2, rate: 1}\n",
     "lw.yaml:14:12: clause name 'b_loss' collides with the loss of output 'b'"),
    ("  - {name: b_loss, layer: h, kind: mean_abs, rate: 1}\n",
     "lw.yaml:14:12: clause name 'b_loss' collides"),
    ("  - {name: c, layer: h, kind: l2, rate: 1}\n", None),
    ("  - {name: b_loss_weight, layer: h, kind: l2, rate: 1}\n",
     "lw.yaml:14:12: clause name 'b_loss_weight' collides with the scheduled loss weight of "
     "output 'b'"),
    ("  - {name: a_loss_weight, layer: h, kind: l2, rate: 1}\n", None),   # a's is a number
])
def test_log_key_collisions_are_located(clauses: str, message: str | None) -> None:
    text = TWO_OUTPUTS + "penalties:\n" + clauses
    if message is None:
        loads(text, "lw.yaml")
        return
    with pytest.raises(specc.SpecError) as info:
        loads(text, "lw.yaml")
    assert [str(d) for d in info.value.diagnostics][0].startswith(message)


def test_a_scheduled_rate_key_equal_to_another_key_is_located() -> None:
    """A clause `b` with a scheduled rate logs `b_rate`; an output named `b_rate` is taken."""
    text = (TWO_OUTPUTS.replace("name: b,", "name: b_rate,").replace("[a, b]", "[a, b_rate]")
            .replace("b: binary", "b_rate: binary").replace(", b: {", ", b_rate: {")
            + "penalties:\n  - {name: b, layer: h, kind: l2, rate: {schedule: constant, "
              "value: 1}}\n")
    with pytest.raises(specc.SpecError) as info:
        loads(text, "lw.yaml")
    assert [str(d) for d in info.value.diagnostics] == [
        "lw.yaml:14:41: the scheduled rate of clause 'b' is logged as 'b_rate', which is also "
        "an output; rename the clause"]


def test_explain_prints_a_scheduled_loss_weight() -> None:
    from specc.explain import composition

    lines = composition(specc.lower(loads(TWO_OUTPUTS, "lw.yaml")))
    assert lines[1] == ("  task_loss = 0.5 · mse(a) + [linear 0 → 2 over steps 0..1000: 0 + "
                        "(2 − 0) · clip(t / 1000, 0, 1)] · binary_crossentropy(b)")
    assert lines[2].startswith("  t = the optimizer step")


def _batch() -> tuple[np.ndarray, dict[str, np.ndarray]]:
    rng = np.random.default_rng(1)
    x = rng.normal(size=(8, 4)).astype("float32")
    return x, {"a": rng.normal(size=(8, 2)).astype("float32"),
               "b": (rng.random((8, 1)) > 0.5).astype("float32")}


def test_scheduled_loss_weight_at_0_500_and_2000_against_numpy(tmp_path) -> None:
    keras = pytest.importorskip("keras")
    model = specc.build(loads(TWO_OUTPUTS, "lw.yaml"))
    x, y = _batch()
    for t, r in ((0, 0.0), (500, 1.0), (2000, 2.0)):
        model.optimizer.iterations.assign(t)
        pa, pb = [p.astype(np.float64) for p in model.predict(x, verbose=0)]
        la = float(np.mean((pa - y["a"]) ** 2))
        q = np.clip(pb, 1e-7, 1 - 1e-7)
        lb = float(np.mean(-(y["b"] * np.log(q) + (1 - y["b"]) * np.log(1 - q))))
        logs = model.test_on_batch(x, y, return_dict=True)
        assert logs["b_loss_weight"] == pytest.approx(r, rel=1e-6, abs=0)
        assert logs["a_loss"] == pytest.approx(la, rel=1e-5)        # unweighted, like Keras
        assert logs["b_loss"] == pytest.approx(lb, rel=1e-5)
        assert logs["task_loss"] == pytest.approx(0.5 * la + r * lb, rel=1e-5)
        assert logs["loss"] == pytest.approx(logs["task_loss"], rel=1e-7)
    # saved with the model (and its compiled loss), restored by load_model(safe_mode=True)
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras", safe_mode=True)
    for m in (model, loaded):
        m.optimizer.iterations.assign(700)
    assert loaded.test_on_batch(x, y, return_dict=True) == pytest.approx(
        model.test_on_batch(x, y, return_dict=True), rel=1e-6)


@pytest.mark.parametrize("t, r", [(250, 0.5), (1500, 2.0)])
def test_the_step_equals_keras_with_that_fixed_weight(t: int, r: float) -> None:
    """One SGD step at step t equals the step of the same model compiled by Keras with the
    fixed loss weight r(t): the gradient uses the scheduled weight."""
    keras = pytest.importorskip("keras")
    scheduled = specc.build(loads(TWO_OUTPUTS, "lw.yaml"))
    fixed = specc.build(loads(TWO_OUTPUTS.replace(
        "{schedule: linear, from: 0, to: 2.0, steps: 1000}", str(r)), "lw.yaml"))
    fixed.set_weights(scheduled.get_weights())
    x, y = _batch()
    for m in (scheduled, fixed):
        m.optimizer.iterations.assign(t)
    got = scheduled.train_on_batch(x, y, return_dict=True)
    want = fixed.train_on_batch(x, y, return_dict=True)
    assert got["loss"] == pytest.approx(want["loss"], rel=1e-6)
    for p, q in zip(scheduled.get_weights(), fixed.get_weights()):
        np.testing.assert_allclose(p, q, rtol=1e-6, atol=1e-7)
    assert int(keras.ops.convert_to_numpy(scheduled.optimizer.iterations)) == t + 1


def test_fit_logs_a_scheduled_loss_weight_each_epoch(tmp_path) -> None:
    pytest.importorskip("keras")
    from specc.fit import FitOptions, fit

    text = TWO_OUTPUTS.replace("steps: 1000}", "steps: 6}")
    result = fit(specc.lower(loads(text, "lw.yaml")), tmp_path / "run",
                 FitOptions(epochs=3, batch_size=8, samples=20, verbose=0))  # 16 training samples: 2 steps an epoch
    # the epoch's last step is t = 2·epoch − 1 (0-based)
    assert result.history["b_loss_weight"] == pytest.approx([2.0 * t / 6 for t in (1, 3, 5)],
                                                            rel=1e-6)
    assert (tmp_path / "run" / "losses.png").stat().st_size > 0


def test_format_2_keeps_one_schedule_for_every_output() -> None:
    """Expansion maps `loss_weights` keys to outputs; a schedule's own keys are not outputs
    (even beside an output named `schedule`)."""
    text = """specc: 2
name: f2
inputs: {x: {shape: [4]}}
layers:
  - {name: h, type: Dense, units: 3}
  - {name: schedule, type: Dense, units: 1}
outputs: [schedule]
loss: mse
loss_weights: {schedule: linear, from: 0, to: 1, steps: 10}
"""
    warm = {"schedule": "linear", "from": 0.0, "to": 1.0, "steps": 10, "start": 0}
    assert loads(text, "f2.yaml").output_weights() == [warm]
    keyed = text.replace("{schedule: linear, from: 0, to: 1, steps: 10}",
                         "{schedule: {schedule: linear, from: 0, to: 1, steps: 10}}")
    assert loads(keyed, "f2.yaml").output_weights() == [warm]
