"""Penalties between two tensors (`pair_penalties:`) and the weight kind `orthogonal`.

Each term against the README's formulas written out in numpy (float64) and against a
hand-written Keras model (plain layers, the terms written with keras.ops and keras.losses the
way keras.io's Distiller writes them, the gradient taken by Keras's own train step); both
strategies (`add_loss`, `output`) give the same loss and the same SGD step. Then the located
errors of validation, which need no Keras.

Tolerances: values against numpy float64, rel 1e-5 (float32 forward pass); the strategies
against each other, rel 1e-6 (the same ops on the same tensors); weights after one SGD step
(lr 0.1) against the hand-written model, rtol 1e-5, atol 1e-6.
"""
from __future__ import annotations

import numpy as np
import pytest

import specc
from specc.errors import SpecError
from specc.validation import loads

B = 6
EPS = 1e-7
LR = 0.1

SPEC = """specc: 1
name: pairs
seed: 3
inputs: {x: {shape: [6, 6, 2]}}
layers:
  - {name: t_conv, type: Conv2D, filters: 3, kernel_size: 3, activation: relu, from: x}
  - {name: t_pool, type: GlobalAveragePooling2D}
  - {name: t_logits, type: Dense, units: 5}
  - {name: s_conv, type: Conv2D, filters: 3, kernel_size: 3, activation: tanh, from: x}
  - {name: s_pool, type: GlobalAveragePooling2D}
  - {name: s_logits, type: Dense, units: 5}
outputs: [s_logits]
loss: {type: categorical_crossentropy, from_logits: true}
pair_penalties:
  - {name: distill, layers: [s_logits, t_logits], kind: distillation, temperature: 3.0,
     rate: 0.7}
  - {name: distill_maps, layers: [s_conv, t_conv], kind: distillation, temperature: 2.0,
     rate: 0.3}
  - {name: match, layers: [s_conv, t_conv], kind: mse, rate: 0.5}
  - {name: cos, layers: [s_conv, t_conv], kind: cosine, rate: 0.4}
  - {name: match_both, layers: [s_pool, t_pool], kind: mse, rate: 0.2, stop_gradient: false}
weight_penalties:
  - {name: ortho, layers: "*", kind: orthogonal, rate: 0.01}
optimizer: {type: sgd, learning_rate: 0.1}
"""
PAIRS = ("distill", "distill_maps", "match", "cos", "match_both")
TERMS = (*PAIRS, "ortho")
KERNELS = ("t_conv", "t_logits", "s_conv", "s_logits")


def with_via(via: str) -> str:
    """SPEC with every pair clause given `via:` in the spec itself."""
    return SPEC.replace("rate: 0.7}", f"rate: 0.7, via: {via}}}").replace(
        "rate: 0.3}", f"rate: 0.3, via: {via}}}").replace(
        "rate: 0.5}", f"rate: 0.5, via: {via}}}").replace(
        "rate: 0.4}", f"rate: 0.4, via: {via}}}").replace(
        "stop_gradient: false}", f"stop_gradient: false, via: {via}}}")


# -- the README's formulas in numpy (float64) -------------------------------------------------

def np_log_softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=-1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


def np_distillation(s, t, temperature: float, rate: float) -> float:
    log_q, log_p = np_log_softmax(s / temperature), np_log_softmax(t / temperature)
    kl = (np.exp(log_p) * (log_p - log_q)).sum(axis=-1)          # one per row n
    return rate * temperature ** 2 * float(kl.mean())


def np_mse(s, t, rate: float) -> float:
    return rate * float(((s - t) ** 2).mean())


def np_cosine(s, t, rate: float) -> float:
    s, t = s.reshape(len(s), -1), t.reshape(len(t), -1)
    cos = (s * t).sum(axis=1) / ((np.linalg.norm(s, axis=1) + EPS)
                                 * (np.linalg.norm(t, axis=1) + EPS))
    return rate * float((1.0 - cos).mean())


def np_orthogonal(kernels: list[np.ndarray], rate: float) -> float:
    total = 0.0
    for w in kernels:
        w = np.asarray(w, np.float64)
        m = w.reshape(-1, w.shape[-1])        # conv (kh, kw, in, out) -> (kh·kw·in, out)
        total += float(((m.T @ m - np.eye(m.shape[1])) ** 2).sum())
    return rate * total


def reference(a: dict[str, np.ndarray], kernels: list[np.ndarray]) -> dict[str, float]:
    return {
        "distill": np_distillation(a["s_logits"], a["t_logits"], 3.0, 0.7),
        "distill_maps": np_distillation(a["s_conv"], a["t_conv"], 2.0, 0.3),
        "match": np_mse(a["s_conv"], a["t_conv"], 0.5),
        "cos": np_cosine(a["s_conv"], a["t_conv"], 0.4),
        "match_both": np_mse(a["s_pool"], a["t_pool"], 0.2),
        "ortho": np_orthogonal(kernels, 0.01),
    }


def test_numpy_reference_by_hand() -> None:
    """The references themselves, on values worked out on paper."""
    s, t = np.array([[0.0, 0.0]]), np.array([[np.log(3.0), 0.0]])   # p = (3/4, 1/4), q = (½, ½)
    kl = 0.75 * np.log(1.5) + 0.25 * np.log(0.5)
    assert np_distillation(s, t, 1.0, 2.0) == pytest.approx(2.0 * kl)
    assert np_distillation(s, 2 * t, 2.0, 1.0) == pytest.approx(4.0 * kl)   # T² · KL at T = 2
    assert np_mse(np.array([[1.0, 2.0]]), np.array([[0.0, 0.0]]), 2.0) == pytest.approx(5.0)
    assert np_cosine(np.array([[1.0, 0.0], [1.0, 1.0]]), np.array([[0.0, 3.0], [2.0, 2.0]]),
                     1.0) == pytest.approx(0.5, rel=1e-6)
    q = np.array([[0.6, -0.8], [0.8, 0.6]])                    # orthogonal: 0
    assert np_orthogonal([q, q.reshape(1, 1, 2, 2)], 1.0) == pytest.approx(0.0, abs=1e-12)
    assert np_orthogonal([2 * np.eye(2)], 0.5) == pytest.approx(0.5 * 2 * 9)


# -- with Keras ---------------------------------------------------------------------------------

def batch() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(11)
    x = rng.normal(size=(B, 6, 6, 2)).astype("float32")
    y = np.eye(5, dtype="float32")[rng.integers(0, 5, size=B)]
    return x, y


RATES = {"distill": 0.7, "distill_maps": 0.3, "match": 0.5, "cos": 0.4, "match_both": 0.2,
         "ortho": 0.01}


def hand_model(keras, source, rates: dict | None = None):
    """The spec's network in plain Keras, its loss written out in compute_loss (keras.io's
    Distiller: T² · KLDivergence(softmax(t/T), softmax(s/T)); MeanSquaredError;
    1 + CosineSimilarity on the flattened samples; ‖WᵀW − I‖² with keras.ops)."""
    ops = keras.ops
    x_in = keras.Input((6, 6, 2), name="x")
    t_conv = keras.layers.Conv2D(3, 3, activation="relu", name="t_conv")(x_in)
    t_pool = keras.layers.GlobalAveragePooling2D(name="t_pool")(t_conv)
    t_logits = keras.layers.Dense(5, name="t_logits")(t_pool)
    s_conv = keras.layers.Conv2D(3, 3, activation="tanh", name="s_conv")(x_in)
    s_pool = keras.layers.GlobalAveragePooling2D(name="s_pool")(s_conv)
    s_logits = keras.layers.Dense(5, name="s_logits")(s_pool)

    kl = keras.losses.KLDivergence()
    mse = keras.losses.MeanSquaredError()
    cosine = keras.losses.CosineSimilarity()
    cce = keras.losses.CategoricalCrossentropy(from_logits=True)

    def distill(s, t, temperature):
        t = ops.stop_gradient(t)
        return temperature ** 2 * kl(ops.softmax(t / temperature, axis=-1),
                                     ops.softmax(s / temperature, axis=-1))

    def flat(a):
        return ops.reshape(a, (ops.shape(a)[0], -1))

    class Hand(keras.Model):
        def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None,
                         training=True):
            sl, tl, sc, tc, sp, tp = y_pred
            r = rates or RATES
            terms = {
                "distill": r["distill"] * distill(sl, tl, 3.0),
                "distill_maps": r["distill_maps"] * distill(sc, tc, 2.0),
                "match": r["match"] * mse(ops.stop_gradient(tc), sc),
                "cos": r["cos"] * (1.0 + cosine(flat(ops.stop_gradient(tc)), flat(sc))),
                "match_both": r["match_both"] * mse(tp, sp),
            }
            ortho = 0.0
            for name in KERNELS:
                w = self.get_layer(name).kernel
                m = ops.reshape(w, (-1, w.shape[-1]))
                ortho = ortho + ops.sum(ops.square(ops.matmul(ops.transpose(m), m)
                                                   - ops.eye(w.shape[-1])))
            return cce(y, sl) + sum(terms.values()) + r["ortho"] * ortho

    model = Hand(x_in, [s_logits, t_logits, s_conv, t_conv, s_pool, t_pool])
    for name in (*KERNELS,):
        model.get_layer(name).set_weights(source.get_layer(name).get_weights())
    model.compile(optimizer=keras.optimizers.SGD(LR))
    return model


def activations(keras, model, x) -> dict[str, np.ndarray]:
    names = ("s_logits", "t_logits", "s_conv", "t_conv", "s_pool", "t_pool")
    probe = keras.Model(model.inputs, [model.get_layer(n).output for n in names])
    return {n: keras.ops.convert_to_numpy(v).astype(np.float64)
            for n, v in zip(names, probe(x))}


@pytest.fixture(scope="module")
def built(keras):
    """One model per strategy (the default, add_loss, output; forced and written in the
    spec), all with the default's weights, and their evaluate logs on one batch."""
    x, y = batch()
    models, logs = {}, {}
    for key, text, via in (("default", SPEC, None), ("add_loss", SPEC, "add_loss"),
                           ("output", SPEC, "output"), ("spec_output", with_via("output"), None),
                           ("forced_activity", SPEC, "activity_regularizer")):
        model = specc.build(loads(text, "pairs.yaml"), via=via)
        if models:
            model.set_weights(models["default"].get_weights())
        models[key] = model
        model.run_eagerly = True                                  # tiny: no tracing
        logs[key] = model.evaluate(x, y, batch_size=B, verbose=0, return_dict=True)
    return models, logs


def test_every_term_equals_numpy(keras, built) -> None:
    models, logs = built
    x, y = batch()
    model = models["default"]
    kernels = [keras.ops.convert_to_numpy(model.get_layer(n).kernel) for n in KERNELS]
    want = reference(activations(keras, model, x), kernels)
    for key, got in logs.items():
        for name, value in want.items():
            assert got[name] == pytest.approx(value, rel=1e-5), (key, name)
        assert got["loss"] == pytest.approx(got["task_loss"] + sum(got[n] for n in TERMS),
                                            rel=1e-6)
    assert all(v > 1e-3 for v in want.values()), want       # no term is trivially 0


def test_the_strategies_are_one_loss_and_one_step(keras, built) -> None:
    models, logs = built
    for key in ("output", "spec_output", "forced_activity"):
        for name in ("loss", "task_loss", *TERMS):
            assert logs[key][name] == pytest.approx(logs["add_loss"][name], rel=1e-6), \
                (key, name)
    # output taps are extra outputs that predict leaves out
    assert [t.name for t in models["output"].layers if "pair" in t.name] == \
        ["s_logits_distill_pair_out", "s_conv_distill_maps_pair_out", "s_conv_match_pair_out",
         "s_conv_cos_pair_out", "s_pool_match_both_pair_out"]
    x, y = batch()
    assert models["output"].predict(x, verbose=0).shape == (B, 5)
    after = {}
    for key in ("add_loss", "output"):
        models[key].train_on_batch(x, y)
        after[key] = models[key].get_weights()
    for p, q in zip(after["output"], after["add_loss"]):
        np.testing.assert_allclose(p, q, rtol=1e-6, atol=1e-7)


def test_one_sgd_step_equals_the_hand_written_model(keras) -> None:
    """The gradient of every term (stop_gradient included: the teacher's weights move by the
    one clause that says `stop_gradient: false` only) against keras.io-style code."""
    x, y = batch()
    for via in ("add_loss", "output"):
        model = specc.build(loads(SPEC, "pairs.yaml"), via=via)
        hand = hand_model(keras, model)
        # Eager steps: traced TensorFlow steps (XLA's or grappler's rewrites) differ from the
        # eager step by up to ~2e-4 in a gradient here, for either model, from run to run.
        model.run_eagerly = hand.run_eagerly = True
        before = {n: [w.copy() for w in model.get_layer(n).get_weights()] for n in KERNELS}
        model.train_on_batch(x, y)
        hand.train_on_batch(x, y)
        for name in KERNELS:
            for got, want in zip(model.get_layer(name).get_weights(),
                                 hand.get_layer(name).get_weights()):
                np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6,
                                           err_msg=f"{via}: {name}")
        # the teacher moved (match_both and ortho reach it) and the student moved more
        assert np.abs(model.get_layer("t_conv").get_weights()[0] - before["t_conv"][0]).max() > 0


def test_stop_gradient_keeps_the_teacher_out_of_the_step(keras) -> None:
    """Without the one `stop_gradient: false` clause and the weight clause, one step leaves
    the teacher's weights exactly as they were: no pair term reaches them."""
    text = SPEC.replace(", stop_gradient: false", "").split("weight_penalties:")[0] + \
        "optimizer: {type: sgd, learning_rate: 0.1}\n"
    x, y = batch()
    for via in ("add_loss", "output"):
        model = specc.build(loads(text, "pairs.yaml"), via=via)
        before = [model.get_layer(n).get_weights() for n in ("t_conv", "t_logits")]
        model.train_on_batch(x, y)
        for old, layer in zip(before, ("t_conv", "t_logits")):
            for p, q in zip(old, model.get_layer(layer).get_weights()):
                np.testing.assert_array_equal(p, q)     # no gradient at all: bit-identical
        assert not np.array_equal(before[0][0], 0)


def test_saved_and_loaded_with_safe_mode(keras, tmp_path) -> None:
    x, y = batch()
    for via in ("add_loss", "output"):
        model = specc.build(loads(SPEC, "pairs.yaml"), via=via)
        model.run_eagerly = True
        want = model.evaluate(x, y, batch_size=B, verbose=0, return_dict=True)
        path = tmp_path / f"{via}.keras"
        model.save(path)
        loaded = keras.saving.load_model(path, safe_mode=True)
        loaded.run_eagerly = True
        got = loaded.evaluate(x, y, batch_size=B, verbose=0, return_dict=True)
        for name in ("loss", *TERMS):
            assert got[name] == pytest.approx(want[name], rel=1e-6), (via, name)


def test_orthogonal_on_a_recurrent_and_a_dense_kernel(keras) -> None:
    """Every kernel variable of the layers hit is its own W (an LSTM: kernel and recurrent
    kernel), against numpy."""
    text = """specc: 1
name: ortho_rnn
inputs: {x: {shape: [4, 3]}}
layers:
  - {name: rnn, type: LSTM, units: 2}
  - {name: out, type: Dense, units: 1}
outputs: [out]
loss: mse
weight_penalties:
  - {name: ortho, layers: [rnn, out], kind: orthogonal, rate: 0.5}
"""
    model = specc.build(loads(text, "o.yaml"))
    x = np.random.default_rng(0).normal(size=(3, 4, 3)).astype("float32")
    got = model.evaluate(x, np.zeros((3, 1), "float32"), verbose=0, return_dict=True)
    kernels = [keras.ops.convert_to_numpy(v) for v in model.trainable_weights
               if "kernel" in v.path]
    assert len(kernels) == 3
    assert got["ortho"] == pytest.approx(np_orthogonal(kernels, 0.5), rel=1e-5)


def test_a_teacher_branch_read_only_by_a_pair_penalty_is_built(keras) -> None:
    """The teacher reaches no output: it is in the model because the clause reads it."""
    model = specc.build(loads(SPEC, "pairs.yaml"))
    assert {"t_conv", "t_pool", "t_logits"} <= {layer.name for layer in model.layers}


# -- validation (no Keras) ----------------------------------------------------------------------

def errors(text: str) -> list[str]:
    with pytest.raises(SpecError) as info:
        loads(text, "p.yaml")
    return [f"{d.span.line}:{d.span.column} {d.code}: {d.message}" for d in info.value.diagnostics]


def replace_pairs(clauses: str) -> str:
    """SPEC with its first clause (lines 15-16, which reads the teacher) and `clauses` (from
    line 17) as its pair penalties."""
    head, tail = SPEC.split("  - {name: distill_maps")
    return head + clauses + "weight_penalties:" + tail.split("weight_penalties:")[1]


def test_the_spec_validates_and_lowers_without_keras() -> None:
    spec = loads(SPEC, "p.yaml")
    graph = specc.lower(spec)
    assert [t.via for t in graph.pair_terms] == ["add_loss"] * 5
    assert graph.term_names == [*PAIRS, "ortho"]
    assert [t.via for t in specc.lower(spec, "output").pair_terms] == ["output"] * 5
    # a forced activity_regularizer cannot carry two tensors: they keep their own strategy
    assert [t.via for t in specc.lower(spec, "activity_regularizer").pair_terms] == \
        ["add_loss"] * 5


def test_shapes_that_differ_are_a_located_error() -> None:
    got = errors(replace_pairs(
        "  - {name: bad, layers: [s_logits, t_pool], kind: mse, rate: 1.0}\n"))
    assert got == ["17:25 pair-shape: pair penalty 'bad': 's_logits' (batch, 5) and 't_pool' "
                   "(batch, 3) differ in shape; mse compares them element by element (put a "
                   "Dense or a Reshape on one side to match the other)"]


def test_distillation_needs_a_class_axis() -> None:
    text = replace_pairs("  - {name: d, layers: [s_one, t_one], kind: distillation, rate: 1.0}\n")
    text = text.replace("outputs: [s_logits]",
                        "  - {name: s_one, type: Dense, units: 1, from: s_pool}\n"
                        "  - {name: t_one, type: Dense, units: 1, from: t_pool}\n"
                        "outputs: [s_logits]")
    got = errors(text)
    assert len(got) == 1 and got[0].startswith("19:23 ")
    assert "pair-shape: pair penalty 'd': distillation takes a softmax over the last axis" in got[0]
    assert "a last axis of size 1" in got[0]


def test_activity_regularizer_is_a_located_error_that_says_why() -> None:
    got = errors(replace_pairs(
        "  - {name: m, layers: [s_conv, t_conv], kind: mse, rate: 1.0, "
        "via: activity_regularizer}\n"))
    assert len(got) == 1 and got[0].startswith("17:68 pair-via: ")
    assert "activity regularizer is called with that layer's output alone" in got[0]
    assert "use add_loss or output" in got[0]


@pytest.mark.parametrize("clause, expected", [
    ("{name: m, layers: [s_conv, t_cnv], kind: mse, rate: 1.0}",
     "17:32 unknown-ref: pair penalty 'm': 't_cnv' names no layer or input (did you mean "
     "'t_conv'?)"),
    ("{name: m, layers: [s_conv, s_conv], kind: cosine, rate: 1.0}",
     "17:32 pair-same: pair penalty 'm' compares 's_conv' with itself: its term would be a "
     "constant; name two different layers"),
    ("{name: m, layers: [s_conv], kind: mse, rate: 1.0}", "17:23 bad-value"),
    ("{name: m, layers: [s_conv, t_conv], kind: kl, rate: 1.0}",
     "17:47 unknown-kind: unknown pair penalty kind 'kl' (known: mse, distillation, cosine)"),
    ("{name: m, layer: s_conv, kind: mse, rate: 1.0}",
     "17:15 unknown-key: unknown key 'layer' (did you mean 'layers'?)"),
    ("{name: m, layers: [s_conv, t_conv], kind: distillation, rate: 1.0, temperature: 0}",
     "17:85 bad-value"),
    ("{name: m, layers: [s_conv, t_conv], kind: mse, rate: -1.0}", "17:58 bad-value"),
    ("{name: s_logits, layers: [s_conv, t_conv], kind: mse, rate: 1.0}",
     "17:12 name-collision"),
    ("{name: distill, layers: [s_conv, t_conv], kind: mse, rate: 1.0}",
     "17:12 duplicate-name"),
    ("{name: m, layers: [s_conv, x], kind: mse, rate: 1.0}",
     "17:23 pair-shape: pair penalty 'm': 's_conv' (batch, 4, 4, 3) and 'x' (batch, 6, 6, 2)"),
])
def test_clause_errors_are_located(clause: str, expected: str) -> None:
    got = errors(replace_pairs(f"  - {clause}\n"))
    assert any(e.startswith(expected) for e in got), got


def test_a_pair_kind_under_penalties_says_where_it_goes() -> None:
    text = SPEC.replace("weight_penalties:", "penalties:\n  - {name: d, layer: s_logits, "
                        "kind: distillation, rate: 1.0}\nweight_penalties:")
    got = errors(text)
    assert got == ["23:38 unknown-kind: penalty kind 'distillation' compares two tensors: write "
                   "the clause under `pair_penalties:`, with `layers: [s, t]` instead of "
                   "`layer:`"]


def test_orthogonal_on_a_bias_is_a_located_error() -> None:
    text = SPEC.replace('{name: ortho, layers: "*", kind: orthogonal, rate: 0.01}',
                        '{name: ortho, layers: "*", weights: [kernel, bias], kind: orthogonal, '
                        'rate: 0.01}')
    got = errors(text)
    assert len(got) == 1 and "bad-value" in got[0] and "a bias is a vector" in got[0], got


FORMAT_2 = """specc: 2
name: distill2
inputs: {x: {shape: [8]}}
blocks:
  mlp:
    params: {width: 8}
    layers:
      - {name: h, type: Dense, units: "${width}", activation: relu}
      - {name: logits, type: Dense, units: 4}
layers:
  - {name: teacher, use: mlp, with: {width: 32}, from: x}
  - {name: student, use: mlp, from: x}
outputs: [student]
loss: {type: categorical_crossentropy, from_logits: true}
freeze: ["teacher.*"]
pair_penalties:
  - {name: distill, layers: [student, teacher], kind: distillation, temperature: 4.0, rate: 0.9}
  - {name: hint, layers: [student.h, teacher.logits], kind: cosine, rate: 0.1}
"""


def test_format_2_names_paths_and_block_uses() -> None:
    """A block use names its output (as in `outputs:`); a path names a layer inside one.
    The teacher feeds no output: the clause that reads it keeps it."""
    spec = loads(FORMAT_2.replace("student.h, teacher.logits", "student.logits, teacher.logits"),
                 "f2.yaml")
    assert [c.layers for c in spec.pair_penalties] == [["student.logits", "teacher.logits"]] * 2
    got = errors(FORMAT_2)
    assert got == ["18:26 pair-shape: pair penalty 'hint': 'student.h' (batch, 8) and "
                   "'teacher.logits' (batch, 4) differ in shape; cosine compares them element "
                   "by element (put a Dense or a Reshape on one side to match the other)"]


def test_layers_under_penalties_points_at_pair_penalties() -> None:
    text = SPEC.replace("weight_penalties:", "penalties:\n  - {name: d, layers: [s_logits, "
                        "t_logits], kind: l2, rate: 1.0}\nweight_penalties:")
    got = errors(text)
    assert "23:15 unknown-key: unknown key 'layers' (a penalty between two layers is a clause " \
        "under `pair_penalties:`" in "\n".join(got), got


def test_a_scheduled_rate_follows_the_step(keras) -> None:
    """`rate` may be a schedule of the optimizer step, as for every clause; it is logged as
    `<clause>_rate`. Piecewise: 0.5 at step 0, 2.0 from step 1."""
    text = SPEC.replace("temperature: 3.0,\n     rate: 0.7}", "temperature: 3.0,\n     rate: "
                        "{schedule: piecewise, boundaries: [1], values: [0.5, 2.0]}}")
    x, y = batch()
    for via in ("add_loss", "output"):
        model = specc.build(loads(text, "pairs.yaml"), via=via)
        model.run_eagerly = True                                  # tiny: no tracing
        for step, rate in ((0, 0.5), (1, 2.0)):
            if step:
                model.train_on_batch(x, y)
            got = model.evaluate(x, y, batch_size=B, verbose=0, return_dict=True)
            a = activations(keras, model, x)
            assert got["distill_rate"] == pytest.approx(rate)
            assert got["distill"] == pytest.approx(
                np_distillation(a["s_logits"], a["t_logits"], 3.0, rate), rel=1e-5), (via, step)
