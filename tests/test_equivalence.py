"""specc's models against independent references (tests/reference.py), for every spec in
specs/ (plus a kitchen-sink spec) and every strategy:

- `evaluate` equals the contract's formulas in numpy float64 on a hand-written Keras model
  holding the same weights (total `loss`, `task_loss`, every clause's key);
- the strategies are one loss: evaluate logs within 2 float32 ulps (the README's promise),
  and after one SGD step the same
  weights, equal to a step computed with tf.GradientTape on the hand-written loss.
"""
from __future__ import annotations

import numpy as np
import pytest

import reference as ref

keras = pytest.importorskip("keras")
import specc  # noqa: E402

B = 6          # one small batch, evaluated as one batch
LR = 0.1
IDS = [ref.spec_id(p) for p in ref.SPEC_FILES] + ["kitchen_sink"]
#: Evaluated eagerly (tracing its test function costs ~3 s a model): the kitchen sink, under
#: every strategy so that they compare within the ulp bound (traced and eager differ by
#: round-off).
#: Its default, which mixes all three strategies in one model, is also evaluated traced, like
#: every spec of specs/ under every strategy.
EAGER = {("kitchen_sink", via) for via in ref.STRATEGIES}
DROPOUT_IDS = ["mnist_cnn"]


# -- shared state (module scope: every model is built and traced once) ---------------------
class Cases:
    """Per spec: the YAML, a hand model, one batch; per (spec, via): a model and its logs."""

    def __init__(self, paths: dict[str, str], tmp) -> None:
        self.paths = paths
        self.tmp = tmp
        self._spec: dict = {}
        self._eval: dict = {}

    def spec(self, sid: str):
        if sid not in self._spec:
            spec = ref.read_spec(self.paths[sid])
            hand = ref.HandModel(spec)
            x, y = ref.make_batch(spec, hand, B, seed=len(sid))
            self._spec[sid] = (spec, hand, x, y)
        return self._spec[sid]

    def evaluated(self, sid: str, via):
        """The compiled model for (spec, via), its weights set to the default strategy's."""
        if (sid, via) not in self._eval:
            spec, _, x, y = self.spec(sid)
            model = specc.build(self.paths[sid], via=via)
            if via is None:
                ref.perturb_zero_weights(model)
            else:
                ref.copy_weights(self.evaluated(sid, None)[0], model)
            model.run_eagerly = (sid, via) in EAGER
            logs = model.evaluate(ref.as_model_input(spec, x), ref.as_model_target(spec, y),
                                  batch_size=B, return_dict=True, verbose=0)
            self._eval[(sid, via)] = (model, logs)
        return self._eval[(sid, via)]

    def variant(self, sid: str, dropout) -> str:
        """The spec with plain SGD(LR) (and dropout rates set to `dropout` unless None)."""
        path = self.tmp / f"{sid}_sgd_{dropout}.yaml"
        if not path.exists():
            ref.write_spec(ref.sgd_variant(self.spec(sid)[0], LR, dropout), path)
        return str(path)


@pytest.fixture(scope="module")
def cases(paths, tmp_path_factory) -> Cases:
    return Cases(paths, tmp_path_factory.mktemp("variants"))


def breakdown_keys(spec: dict) -> list[str]:
    return ["loss", "task_loss", *ref.clause_names(spec)]


# -- the reference itself ------------------------------------------------------------------
def test_reference_formulas_by_hand():
    a = np.array([[1.0, -2.0], [3.0, 0.0]])
    t = ref.np_activation_term
    assert t({"kind": "l1", "rate": 0.5}, a) == pytest.approx(0.5 * (3 + 3) / 2)
    assert t({"kind": "l2", "rate": 0.5}, a) == pytest.approx(0.5 * (5 + 9) / 2)
    assert t({"kind": "l2", "rate": 0.5, "reduction": "sum"}, a) == pytest.approx(0.5 * 14)
    assert t({"kind": "l1_l2", "l1": 1.0, "l2": 2.0}, a) == pytest.approx(3 + 2 * 7)
    assert t({"kind": "l1_l2", "l1": 1.0, "l2": 2.0, "reduction": "sum"}, a) == \
        pytest.approx(6 + 2 * 14)
    assert t({"kind": "mean_abs", "rate": 2.0}, a) == pytest.approx(2.0 * 6 / 4)
    kl = {"kind": "kl_sparsity", "rate": 1.0, "target": 0.25}
    assert t(kl, np.array([[0.5, 0.0], [0.0, 0.5]])) == pytest.approx(0.0, abs=1e-12)
    q = 0.5
    one = 0.25 * np.log(0.25 / q) + 0.75 * np.log(0.75 / (1 - q))
    assert t(kl, np.array([[1.0], [0.0]])) == pytest.approx(one)
    # clipped to [1e-7, 1 - 1e-7]: all-zero units stay finite
    assert np.isfinite(t(kl, np.zeros((3, 2))))
    dec = {"kind": "decorrelation", "rate": 3.0}
    assert t(dec, np.array([[1.0, 0.0], [0.0, 2.0]])) == pytest.approx(0.0)
    assert t(dec, np.array([[1.0, 1.0], [2.0, 2.0]])) == pytest.approx(3.0, rel=1e-6)
    assert t(dec, np.array([[1.0, 1.0], [-2.0, -2.0], [1.0, 1.0]])) == \
        pytest.approx(3.0 * (-1 - 1 + 1 - 1 - 1 + 1) / 6, rel=1e-6)
    assert t(dec, np.ones((1, 4))) == 0.0


def test_reference_numpy_and_tf_agree():
    rng = np.random.default_rng(0)
    a = rng.uniform(0, 1, size=(5, 3, 4)).astype("float32")
    clauses = [
        {"kind": "l1", "rate": 0.3}, {"kind": "l2", "rate": 0.3},
        {"kind": "l1", "rate": 0.3, "reduction": "sum"},
        {"kind": "l2", "rate": 0.3, "reduction": "sum"},
        {"kind": "l1_l2", "l1": 0.1, "l2": 0.2},
        {"kind": "l1_l2", "l1": 0.1, "l2": 0.2, "reduction": "sum"},
        {"kind": "mean_abs", "rate": 0.3},
        {"kind": "kl_sparsity", "rate": 0.3, "target": 0.1},
        {"kind": "decorrelation", "rate": 0.3},
    ]
    for clause in clauses:
        np.testing.assert_allclose(float(ref.tf_activation_term(clause, a)),
                                   ref.np_activation_term(clause, a), rtol=2e-6,
                                   err_msg=str(clause))


def test_reference_weight_formulas_are_keras_regularizers():
    w = np.random.default_rng(1).normal(size=(4, 3)).astype("float32")
    cases = [({"kind": "l1", "rate": 0.01}, keras.regularizers.L1(0.01)),
             ({"kind": "l2", "rate": 0.01}, keras.regularizers.L2(0.01)),
             ({"kind": "l1_l2", "l1": 0.01, "l2": 0.02}, keras.regularizers.L1L2(0.01, 0.02))]
    for clause, keras_reg in cases:
        expected = float(keras_reg(keras.ops.convert_to_tensor(w)))
        np.testing.assert_allclose(ref.np_weight_term(clause, [w]), expected, rtol=1e-6)
        np.testing.assert_allclose(float(ref.tf_weight_term(clause, [w])), expected, rtol=1e-6)


# -- evaluate == the contract's formulas on the hand-written model ---------------------------
@pytest.mark.parametrize("via", ref.STRATEGIES, ids=lambda v: str(v))
@pytest.mark.parametrize("sid", IDS)
def test_evaluate_matches_hand_model(cases, sid, via):
    spec, hand, x, y = cases.spec(sid)
    model, logs = cases.evaluated(sid, via)
    hand.copy_weights_from(model)
    expected = ref.reference_logs(spec, hand, x, y)
    keys = breakdown_keys(spec)
    assert set(keys) <= set(logs), (keys, sorted(logs))
    for key in keys:
        np.testing.assert_allclose(logs[key], expected[key], rtol=1e-5, atol=1e-8,
                                   err_msg=f"{sid} via={via}: {key}")
    # every term is really there (a zero term would hide a missing path)
    for key in ref.clause_names(spec):
        assert abs(expected[key]) > 1e-6, (sid, key, expected[key])


def test_kitchen_sink_default_traced_matches_hand_model(cases):
    spec, hand, x, y = cases.spec("kitchen_sink")
    eager_model, eager_logs = cases.evaluated("kitchen_sink", None)
    model = specc.build(cases.paths["kitchen_sink"])
    ref.copy_weights(eager_model, model)
    logs = model.evaluate(ref.as_model_input(spec, x), ref.as_model_target(spec, y),
                          batch_size=B, return_dict=True, verbose=0)
    hand.copy_weights_from(model)
    expected = ref.reference_logs(spec, hand, x, y)
    for key in breakdown_keys(spec):
        np.testing.assert_allclose(logs[key], expected[key], rtol=1e-5, atol=1e-8, err_msg=key)
        np.testing.assert_allclose(logs[key], eager_logs[key], rtol=1e-6, err_msg=key)


@pytest.mark.parametrize("sid", IDS)
def test_strategies_give_the_same_evaluate_logs(cases, sid):
    """The README's promise: same weights and batch, every logged value within 2 ulps."""
    logs = [cases.evaluated(sid, via)[1] for via in ref.STRATEGIES]
    for via, other in zip(ref.STRATEGIES[1:], logs[1:]):
        ref.assert_within_ulps(other, logs[0], f"{sid}: via={via} against the default")


# -- one SGD step: strategies agree, and equal the hand-computed step ------------------------
# Tracing a train function costs ~2-3 s a model on 2 cores, so these steps run eagerly (the same
# compute_loss and gradient code); test_runtime.py checks traced `fit` steps against the same
# hand-computed step (two_outputs, every strategy, with sample weights).
STEP_CASES = [(sid, "eager") for sid in IDS]


def _step_all(path: str, spec: dict, x: dict, y: dict, mode: str):
    """Build every strategy from `path`, give them the same weights, train one batch."""
    models = [specc.build(path, via=via) for via in ref.STRATEGIES]
    ref.perturb_zero_weights(models[0])
    for m in models[1:]:
        ref.copy_weights(models[0], m)
    before = ref.weights_by_path(models[0])
    logs = []
    for m in models:
        m.run_eagerly = mode == "eager"
        if keras.backend.backend() == "torch":
            # torch draws the mask of a Dropout without a `seed` from torch's global generator,
            # not from the layer's (copied) seed state: seed it alike for every model
            keras.utils.set_random_seed(0)
        logs.append(m.train_on_batch(ref.as_model_input(spec, x), ref.as_model_target(spec, y),
                                     return_dict=True))
    return models, before, logs


def _assert_same_weights(models, rtol=1e-6) -> None:
    first = ref.weights_by_path(models[0])
    for via, m in zip(ref.STRATEGIES[1:], models[1:]):
        other = ref.weights_by_path(m)
        assert other.keys() == first.keys()
        for path in first:
            np.testing.assert_allclose(other[path], first[path], rtol=rtol, atol=1e-7,
                                       err_msg=f"via={via}: {path}")


@pytest.mark.parametrize("sid,mode", STEP_CASES)
def test_one_sgd_step_equals_hand_gradient_step(cases, sid, mode):
    if keras.backend.backend() != "tensorflow":
        pytest.skip("the hand step is written with tf.GradientTape; test_backends.py checks "
                    "this backend's step against TensorFlow's")
    _, _, x, y = cases.spec(sid)
    path = cases.variant(sid, dropout=0.0)
    variant = ref.read_spec(path)
    models, before, logs = _step_all(path, variant, x, y, mode)
    assert all(type(m.optimizer) is keras.optimizers.SGD for m in models)

    # the training step's logs (computed before the update) are the reference's too
    hand = ref.HandModel(variant)
    for layer in hand.layers.values():
        layer.set_weights([before[v.path] for v in layer.weights])
    expected_logs = ref.reference_logs(variant, hand, x, y)
    for via, log in zip(ref.STRATEGIES, logs):
        for key in breakdown_keys(variant):
            np.testing.assert_allclose(log[key], expected_logs[key], rtol=1e-5, atol=1e-8,
                                       err_msg=f"{sid} via={via}: train log {key}")
        ref.assert_within_ulps(log, logs[0], f"{sid}: train logs of via={via}")

    _assert_same_weights(models)

    expected = ref.hand_sgd_step(variant, hand, x, y, LR)
    for via, m in zip(ref.STRATEGIES, models):
        got = ref.weights_by_path(m)
        assert got.keys() == expected.keys()
        for name in got:
            step_got = got[name] - before[name]
            step_expected = expected[name] - before[name]
            scale = np.abs(step_expected).max()
            assert scale > 0, f"{sid}: {name} did not move"
            np.testing.assert_allclose(step_got, step_expected, rtol=1e-4,
                                       atol=1e-5 * scale,
                                       err_msg=f"{sid} via={via}: update of {name}")


@pytest.mark.parametrize("sid", DROPOUT_IDS)
def test_one_step_with_dropout_same_across_strategies(cases, sid):
    """Dropout active in training: same weights and seed state give the same step."""
    spec, hand, x, y = cases.spec(sid)
    assert any(l["type"] == "Dropout" and l["rate"] > 0 for l in spec["layers"])
    path = cases.variant(sid, dropout=None)
    models, before, logs = _step_all(path, spec, x, y, "eager")
    for via, log in zip(ref.STRATEGIES[1:], logs[1:]):
        ref.assert_within_ulps(log, logs[0], f"{sid}: train logs of via={via}")
    _assert_same_weights(models)
    # dropout was really on: the training loss is not the inference-mode one
    for layer in hand.layers.values():
        layer.set_weights([before[v.path] for v in layer.weights])
    assert logs[0]["task_loss"] != pytest.approx(ref.reference_logs(spec, hand, x, y)["task_loss"],
                                                 rel=1e-4)
