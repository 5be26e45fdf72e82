"""Format 2 models in Keras against independent references: clauses inside blocks and on
shared layers (one term per call site) equal the numpy formulas on a hand-written Keras model
with the same weights, for every strategy; shared weights are counted once; ports and call
arguments build the same model as hand-written Keras; everything saves and loads in safe mode.
"""
from __future__ import annotations

import numpy as np
import pytest

import reference as ref

keras = pytest.importorskip("keras")
import specc  # noqa: E402

SIAMESE = """\
specc: 2
name: siamese_t
seed: 3
inputs:
  a: {shape: [6]}
  b: {shape: [6]}
blocks:
  tower:
    params: {units: int, rate: 0.01}
    layers:
      - {name: d1, type: Dense, units: "${units}", activation: tanh, kernel_initializer: {type: VarianceScaling, scale: 2.0, mode: fan_out}}
      - {name: d2, type: Dense, units: 3, activation: sigmoid}
    penalties:
      - {name: pre, layer: d1, at: pre_activation, kind: l1, rate: "${rate}"}
      - {name: kl, layer: d2, kind: kl_sparsity, rate: 0.05, target: 0.3}
layers:
  - {name: left, use: tower, from: a, with: {units: 5, rate: 0.02}}
  - {name: right, share: left, from: b}
  - {name: diff, type: Subtract, from: [left, right]}
  - {name: out, type: Dense, units: 2, activation: softmax}
outputs: [out]
loss: categorical_crossentropy
weight_penalties:
  - {name: decay, layers: "left.*", kind: l2, rate: 1.0e-3}
"""
CLAUSES = {"pre": {"kind": "l1", "rate": 0.02}, "kl": {"kind": "kl_sparsity", "rate": 0.05,
                                                         "target": 0.3}}
B = 8


@pytest.fixture(scope="module")
def batch() -> tuple[dict, np.ndarray]:
    rng = np.random.default_rng(0)
    x = {"a": rng.normal(size=(B, 6)).astype("float32"),
         "b": rng.normal(size=(B, 6)).astype("float32")}
    y = np.eye(2, dtype="float32")[rng.integers(0, 2, size=B)]
    return x, y


def hand_siamese(model) -> dict[str, np.ndarray]:
    """The same network written by hand (one pair of Dense layers called twice), holding the
    specc model's weights; returns every tensor the clauses and the loss need."""
    d1 = keras.layers.Dense(5)
    d2 = keras.layers.Dense(3)
    head = keras.layers.Dense(2)
    a, b = keras.Input((6,)), keras.Input((6,))
    pre_a, pre_b = d1(a), d1(b)
    out_a = d2(keras.activations.tanh(pre_a))
    out_b = d2(keras.activations.tanh(pre_b))
    sig_a, sig_b = keras.activations.sigmoid(out_a), keras.activations.sigmoid(out_b)
    logits = head(sig_a - sig_b)
    hand = keras.Model([a, b], [pre_a, pre_b, sig_a, sig_b, keras.activations.softmax(logits)])
    for mine, theirs in ((d1, "left.d1"), (d2, "left.d2"), (head, "out")):
        mine.set_weights(model.get_layer(theirs).get_weights())
    return hand


@pytest.mark.parametrize("via", ref.STRATEGIES)
def test_clauses_in_blocks_and_on_shared_layers_match_numpy(tmp_path, batch, via) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(SIAMESE)
    model = specc.build(str(path), via=via)
    x, y = batch
    logs = model.evaluate(x, y, batch_size=B, return_dict=True, verbose=0)
    pre_a, pre_b, sig_a, sig_b, probs = [np.asarray(t, "float64") for t in
                                         hand_siamese(model).predict([x["a"], x["b"]], verbose=0)]
    expected = {
        "left.pre": ref.np_activation_term(CLAUSES["pre"], pre_a),
        "right.pre": ref.np_activation_term(CLAUSES["pre"], pre_b),
        "left.kl": ref.np_activation_term(CLAUSES["kl"], sig_a),
        "right.kl": ref.np_activation_term(CLAUSES["kl"], sig_b),
    }
    kernels = [model.get_layer(n).kernel.numpy().astype("float64") for n in ("left.d1", "left.d2")]
    expected["decay"] = 1e-3 * sum(float((k ** 2).sum()) for k in kernels)   # counted once
    expected["task_loss"] = float(np.mean(-np.sum(y * np.log(np.clip(probs, 1e-7, 1)), axis=1)))
    expected["loss"] = sum(expected.values())
    for key, value in expected.items():
        np.testing.assert_allclose(logs[key], value, rtol=2e-5, atol=1e-7, err_msg=key)


def test_shared_weights_are_counted_once(tmp_path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(SIAMESE)
    model = specc.build(str(path))
    hand = hand_siamese(model)
    assert model.count_params() == hand.count_params() == (6 * 5 + 5) + (5 * 3 + 3) + (3 * 2 + 2)
    init = model.get_layer("left.d1").kernel_initializer
    assert type(init).__name__ == "VarianceScaling"
    assert (init.scale, init.mode) == (2.0, "fan_out")


SEQ2SEQ = """\
specc: 2
name: s2s
seed: 5
inputs:
  enc_in: {shape: [null, 7]}
  dec_in: {shape: [null, 9]}
layers:
  - {name: encoder, type: LSTM, units: 4, return_state: true, from: enc_in}
  - {name: decoder, type: LSTM, units: 4, return_sequences: true, from: dec_in, call: {initial_state: [encoder.state_h, encoder.state_c]}}
  - {name: probs, type: Dense, units: 9, activation: softmax}
outputs: [probs]
loss: categorical_crossentropy
penalties:
  - {name: state_energy, layer: encoder.state_h, kind: l2, rate: 0.1}
"""


def test_ports_and_initial_state_build_the_hand_written_model(tmp_path) -> None:
    path = tmp_path / "s2s.yaml"
    path.write_text(SEQ2SEQ)
    model = specc.build(str(path))
    enc_in, dec_in = keras.Input((None, 7)), keras.Input((None, 9))
    _, h, c = keras.layers.LSTM(4, return_state=True)(enc_in)
    seq = keras.layers.LSTM(4, return_sequences=True)(dec_in, initial_state=[h, c])
    hand = keras.Model([enc_in, dec_in], [keras.layers.Dense(9, activation="softmax")(seq), h])
    weighted = [[l for l in m.layers if l.weights] for m in (model, hand)]
    assert [type(l).__name__ for l in weighted[0]] == [type(l).__name__ for l in weighted[1]]
    for mine, theirs in zip(*weighted):
        theirs.set_weights(mine.get_weights())
    assert model.count_params() == hand.count_params()
    rng = np.random.default_rng(1)
    x = [rng.normal(size=(3, 5, 7)).astype("float32"), rng.normal(size=(3, 6, 9)).astype("float32")]
    y = np.eye(9, dtype="float32")[rng.integers(0, 9, size=(3, 6))]
    probs, state_h = hand.predict(x, verbose=0)
    np.testing.assert_allclose(model.predict(x, verbose=0), probs, rtol=1e-5, atol=1e-6)
    logs = model.evaluate(x, y, batch_size=3, return_dict=True, verbose=0)
    np.testing.assert_allclose(logs["state_energy"],
                               0.1 * np.mean(np.sum(state_h.astype("float64") ** 2, axis=1)),
                               rtol=2e-5)


@pytest.mark.parametrize("text", [SIAMESE, SEQ2SEQ], ids=["siamese", "seq2seq"])
def test_format2_models_save_and_load_in_safe_mode(tmp_path, text) -> None:
    path = tmp_path / "m.yaml"
    path.write_text(text)
    model = specc.build(str(path))
    model.save(tmp_path / "m.keras")
    again = keras.saving.load_model(tmp_path / "m.keras", safe_mode=True)
    rng = np.random.default_rng(2)
    x = [rng.normal(size=(2, *[d or 4 for d in i.shape[1:]])).astype("float32")
         for i in model.inputs]
    # bit-identical on purpose: the same graph on the same weights in one process
    np.testing.assert_array_equal(again.predict(x, verbose=0), model.predict(x, verbose=0))
    assert again.count_params() == model.count_params()


def test_one_sgd_step_is_the_same_for_every_strategy_and_the_hand_written_gradient(
        tmp_path, batch) -> None:
    """Clauses inside a shared block, one term per call site: after one SGD step from the same
    weights, every strategy's weights equal a step on the hand-written loss (tf.GradientTape)."""
    import tensorflow as tf

    path = tmp_path / "s.yaml"
    path.write_text(SIAMESE + "optimizer: {type: sgd, learning_rate: 0.1}\n")
    x, y = batch
    start = None
    stepped = {}
    for via in ref.STRATEGIES:
        model = specc.build(str(path), via=via)
        if start is None:
            start = [w.numpy() for w in model.weights]
            hand = hand_siamese(model)
        model.set_weights(start)
        model.train_on_batch(x, y)
        stepped[via] = {w.path: w.numpy() for w in model.weights}
    # the hand-written step
    variables = hand.trainable_variables
    with tf.GradientTape() as tape:
        pre_a, pre_b, sig_a, sig_b, probs = hand([x["a"], x["b"]])
        loss = tf.reduce_mean(keras.losses.categorical_crossentropy(y, probs))
        for a, clause in ((pre_a, "pre"), (pre_b, "pre"), (sig_a, "kl"), (sig_b, "kl")):
            loss += ref.tf_activation_term(CLAUSES[clause], a)
        kernels = [v for v in variables if v.path.endswith("kernel")][:2]   # d1, d2: "left.*"
        loss += ref.tf_weight_term({"kind": "l2", "rate": 1e-3}, kernels)
    grads = tape.gradient(loss, variables)
    expected = [v.numpy() - 0.1 * g.numpy() for v, g in zip(variables, grads)]
    for via, weights in stepped.items():
        got = [weights[f"{name}/{kind}"] for name in ("left.d1", "left.d2", "out")
               for kind in ("kernel", "bias")]
        for g, e in zip(got, expected):
            np.testing.assert_allclose(g, e, rtol=1e-5, atol=1e-6, err_msg=str(via))
