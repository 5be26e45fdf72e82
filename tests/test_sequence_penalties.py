"""Sequence-aware penalties: `axis` for the batch statistics, Keras masks for every kind, and
the `ar`/`tar` kinds -- each against the README's formulas written out in numpy (float64),
under every strategy, with the located errors and the warning of validation."""
from __future__ import annotations

import numpy as np
import pytest

import specc
from specc.errors import SpecError
from specc.validation import loads

EPS = 1e-7
B, T, U, H = 6, 5, 3, 4

#: Every built-in kind on one layer, with and without `axis` (one model carries them all).
CLAUSES = {
    "p_l1": "kind: l1, rate: 0.3",
    "p_l2": "kind: l2, rate: 0.2",
    "p_l2sum": "kind: l2, rate: 0.01, reduction: sum",
    "p_l1l2": "kind: l1_l2, l1: 0.1, l2: 0.05",
    "p_mean": "kind: mean_abs, rate: 0.7",
    "p_kl": "kind: kl_sparsity, target: 0.2, rate: 0.1",
    "p_klu": "kind: kl_sparsity, target: 0.2, rate: 0.1, axis: -1",
    "p_klt": "kind: kl_sparsity, target: 0.3, rate: 0.1, axis: [1]",
    "p_dec": "kind: decorrelation, rate: 0.5",
    "p_decu": "kind: decorrelation, rate: 0.5, axis: 2",
    "p_ar": "kind: ar, rate: 2.0",
    "p_tar": "kind: tar, rate: 3.0",
}


def spec_text(masked: bool, via: str | None = None, optimizer: str = "sgd", version: int = 2,
              mask: str | None = None) -> str:
    first = "  - {name: m, type: Masking}\n" if masked else "  - {name: m, type: Identity}\n"
    extra = (f", via: {via}" if via else "") + (f", mask: {mask}" if mask else "")
    clauses = "".join(f"  - {{name: {n}, layer: h, {c}{extra}}}\n" for n, c in CLAUSES.items())
    return f"""specc: {version}
name: seq
seed: 5
inputs: {{x: {{shape: [{T}, {U}]}}}}
layers:
{first}  - {{name: h, type: Dense, units: {H}, activation: sigmoid}}
  - {{name: pool, type: GlobalAveragePooling1D}}
  - {{name: out, type: Dense, units: 1}}
outputs: [out]
loss: mse
penalties:
{clauses}optimizer: {{type: {optimizer}, learning_rate: 0.1}}
"""


# -- the README's formulas in numpy ----------------------------------------------------------

def rows(x: np.ndarray, axis) -> np.ndarray:
    """(rows, features): the named axes are the features, the batch and the rest the rows."""
    if axis is None:
        return x.reshape(x.shape[0], -1)
    named = sorted(a % x.ndim for a in (axis if isinstance(axis, list) else [axis]))
    rest = [d for d in range(x.ndim) if d not in named]
    return np.transpose(x, rest + named).reshape(-1, int(np.prod([x.shape[d] for d in named])))


def kl(rho: float, q: np.ndarray) -> np.ndarray:
    q = np.clip(q, EPS, 1 - EPS)
    return rho * np.log(rho / q) + (1 - rho) * np.log((1 - rho) / (1 - q))


def reference(a: np.ndarray, w: np.ndarray) -> dict[str, float]:
    """Every clause of CLAUSES on activations a (B, T, H) with element weights w (1: unmasked)."""
    n = a.shape[0]
    out = {
        "p_l1": 0.3 * np.sum(w * np.abs(a)) / n,
        "p_l2": 0.2 * np.sum(w * a ** 2) / n,
        "p_l2sum": 0.01 * np.sum(w * a ** 2),
        "p_l1l2": 0.1 * np.sum(w * np.abs(a)) / n + 0.05 * np.sum(w * a ** 2) / n,
        "p_mean": 0.7 * np.sum(w * np.abs(a)) / np.sum(w),
        "p_ar": 2.0 * np.sum(w * a ** 2) / np.sum(w),
    }
    v = w[:, 1:] * w[:, :-1]
    out["p_tar"] = 3.0 * np.sum(v * (a[:, 1:] - a[:, :-1]) ** 2) / np.sum(v)
    for name, rho, axis in (("p_kl", 0.2, None), ("p_klu", 0.2, -1), ("p_klt", 0.3, [1])):
        r, rw = rows(a, axis), rows(w, axis)
        count = rw.sum(axis=0)
        seen = count > 0
        q = (rw * r).sum(axis=0)[seen] / count[seen]
        out[name] = 0.1 * float(np.sum(kl(rho, q)))
    for name, axis in (("p_dec", None), ("p_decu", 2)):
        r, rw = rows(a, axis), rows(w, axis)
        live = rw.max(axis=1) > 0
        vecs = (rw * r)[live]
        unit = vecs / (np.linalg.norm(vecs, axis=1, keepdims=True) + EPS)
        cos = unit @ unit.T
        m = len(unit)
        out[name] = 0.5 * (cos.sum() - np.trace(cos)) / (m * (m - 1)) if m > 1 else 0.0
    return {k: float(x) for k, x in out.items()}


def batch(masked: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(7)
    x = rng.normal(size=(B, T, U)).astype("float32")
    y = rng.normal(size=(B, 1)).astype("float32")
    steps = np.ones((B, T), bool)
    if masked:      # padded at the end, at the start, in the middle, one step left, none
        steps[0, 3:] = steps[1, :2] = steps[2, 2] = steps[3, 1:] = False
        x[~steps] = 0.0
    return x, y, steps


# -- with Keras -----------------------------------------------------------------------------

@pytest.mark.parametrize("masked", [False, True], ids=["unmasked", "masked"])
def test_every_kind_against_numpy_and_the_strategies_agree(keras, masked: bool) -> None:
    x, y, steps = batch(masked)
    models, logs = {}, {}
    for via in specc.VIAS:
        model = specc.build(loads(spec_text(masked), "seq.yaml"), via=via)
        if models:
            model.set_weights(next(iter(models.values())).get_weights())
        models[via] = model
        model.run_eagerly = True                   # tiny model: no tracing
        logs[via] = model.evaluate(x, y, batch_size=B, verbose=0, return_dict=True)
    probe = keras.Model(models["add_loss"].inputs, models["add_loss"].get_layer("h").output)
    a = keras.ops.convert_to_numpy(probe(x)).astype(np.float64)
    w = np.broadcast_to(steps[:, :, None], a.shape).astype(np.float64)
    expected = reference(a, w)
    for via, got in logs.items():
        for name, value in expected.items():
            assert got[name] == pytest.approx(value, rel=1e-5, abs=1e-9), (via, name)
        assert got["loss"] == pytest.approx(got["task_loss"] + sum(got[n] for n in CLAUSES),
                                            rel=1e-6)
    for via in ("activity_regularizer", "output"):     # one loss: within float32 round-off
        for name in ("loss", *CLAUSES):
            assert logs[via][name] == pytest.approx(logs["add_loss"][name], rel=1e-6, abs=0)
    # the same gradients: one SGD step gives the same weights under every strategy
    for model in models.values():
        model.train_on_batch(x, y)
    after = {via: m.get_weights() for via, m in models.items()}
    for via in ("activity_regularizer", "output"):
        for p, q in zip(after[via], after["add_loss"]):
            np.testing.assert_allclose(p, q, rtol=1e-6, atol=1e-7)


def test_the_mask_matters_for_every_kind(keras) -> None:
    """Not a vacuous check: with the mask ignored, every term would differ."""
    x, y, steps = batch(True)
    model = specc.build(loads(spec_text(True), "seq.yaml"))
    model.run_eagerly = True
    got = model.evaluate(x, y, batch_size=B, verbose=0, return_dict=True)
    a = keras.ops.convert_to_numpy(
        keras.Model(model.inputs, model.get_layer("h").output)(x)).astype(np.float64)
    assert np.abs(a[~steps]).max() > 0.1          # the masked steps hold real activations
    ignored = reference(a, np.ones(a.shape))
    for name in CLAUSES:
        assert abs(got[name] - ignored[name]) > 1e-4 * abs(ignored[name]), name   # ≫ round-off


@pytest.mark.parametrize("version, mask, honoured", [
    (1, None, False), (1, "true", True), (2, None, True), (2, "false", False)])
def test_format_1_reads_every_step_unless_a_clause_says_mask_true(
        keras, version: int, mask: str | None, honoured: bool) -> None:
    """Format 1's formulas (its contract) read every step; format 2 leaves masked steps out.
    A clause's `mask:` overrides either default."""
    x, y, steps = batch(True)
    model = specc.build(loads(spec_text(True, version=version, mask=mask), "seq.yaml"))
    model.run_eagerly = True
    got = model.evaluate(x, y, batch_size=B, verbose=0, return_dict=True)
    a = keras.ops.convert_to_numpy(
        keras.Model(model.inputs, model.get_layer("h").output)(x)).astype(np.float64)
    w = np.broadcast_to(steps[:, :, None], a.shape) if honoured else np.ones(a.shape)
    want = reference(a, w.astype(np.float64))
    for name in CLAUSES:
        assert got[name] == pytest.approx(want[name], rel=1e-5), name


def test_a_step_masked_in_every_sample_is_left_out_of_the_features(keras) -> None:
    """kl_sparsity with time as the feature axis: a step masked everywhere has no ρ̂."""
    x, y, steps = batch(True)
    steps[:, 4] = False
    x[:, 4] = 0.0
    model = specc.build(loads(spec_text(True), "seq.yaml"))
    model.run_eagerly = True
    got = model.evaluate(x, y, batch_size=B, verbose=0, return_dict=True)
    a = keras.ops.convert_to_numpy(
        keras.Model(model.inputs, model.get_layer("h").output)(x)).astype(np.float64)
    w = np.broadcast_to(steps[:, :, None], a.shape).astype(np.float64)
    q = (w * a).sum(axis=(0, 2))[:4] / w.sum(axis=(0, 2))[:4]
    assert got["p_klt"] == pytest.approx(0.1 * float(np.sum(kl(0.3, q))), rel=1e-5)


def test_embedding_mask_zero_and_a_recurrent_layer(keras) -> None:
    text = """specc: 2
name: tokens
seed: 2
inputs: {ids: {shape: [6], dtype: int32}}
layers:
  - {name: emb, type: Embedding, input_dim: 12, output_dim: 4, mask_zero: true}
  - {name: rnn, type: GRU, units: 3, return_sequences: true}
  - {name: last, type: GlobalMaxPooling1D}
  - {name: out, type: Dense, units: 1}
outputs: [out]
loss: mse
penalties:
  - {name: ar, layer: rnn, kind: ar, rate: 2.0, VIA}
  - {name: tar, layer: rnn, kind: tar, rate: 1.0, VIA}
  - {name: energy, layer: emb, kind: l2, rate: 0.1, VIA}
"""
    ids = np.array([[3, 4, 5, 0, 0, 0], [0, 0, 1, 2, 3, 4], [7, 7, 7, 7, 7, 7],
                    [1, 0, 0, 0, 0, 0]], "int32")
    y = np.ones((4, 1), "float32")
    w = (ids != 0).astype(np.float64)[:, :, None]
    for via in specc.VIAS:
        model = specc.build(loads(text.replace("VIA", f"via: {via}"), "t.yaml"))
        model.run_eagerly = True
        got = model.evaluate(ids, y, batch_size=4, verbose=0, return_dict=True)
        a = keras.ops.convert_to_numpy(
            keras.Model(model.inputs, model.get_layer("rnn").output)(ids)).astype(np.float64)
        e = keras.ops.convert_to_numpy(model.get_layer("emb").embeddings).astype(np.float64)[ids]
        wa = np.broadcast_to(w, a.shape)
        v = wa[:, 1:] * wa[:, :-1]
        assert got["ar"] == pytest.approx(2.0 * np.sum(wa * a ** 2) / np.sum(wa), rel=1e-5), via
        assert got["tar"] == pytest.approx(
            np.sum(v * (a[:, 1:] - a[:, :-1]) ** 2) / np.sum(v), rel=1e-5), via
        assert got["energy"] == pytest.approx(0.1 * np.sum(w * e ** 2) / 4, rel=1e-5), via


def test_saved_and_loaded_with_safe_mode(keras, tmp_path) -> None:
    x, y, _ = batch(True)
    model = specc.build(loads(spec_text(True), "seq.yaml"), via="output")
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras", safe_mode=True)
    for m in (model, loaded):
        m.run_eagerly = True
    assert loaded.evaluate(x, y, batch_size=B, verbose=0, return_dict=True) == pytest.approx(
        model.evaluate(x, y, batch_size=B, verbose=0, return_dict=True), rel=1e-6)


# -- validation (no Keras) ------------------------------------------------------------------

BASE = """specc: 1
name: v
inputs: {x: {shape: [5, 3]}}
layers:
  - {name: rnn, type: LSTM, units: 4, return_sequences: true}
  - {name: last, type: LSTM, units: 4}
  - {name: out, type: Dense, units: 1, activation: sigmoid}
outputs: [out]
loss: mse
penalties:
"""


def errors(clause: str) -> list[str]:
    with pytest.raises(SpecError) as info:
        loads(BASE + f"  - {clause}\n", "v.yaml")
    return [str(d) for d in info.value.diagnostics]


@pytest.mark.parametrize("clause, message", [
    ("{name: a, layer: rnn, kind: kl_sparsity, target: 0.1, rate: 1, axis: 3}",
     "v.yaml:11:74: penalty 'a' on 'rnn' (batch, 5, 4): axis 3 is out of range (axes are "
     "-3..2, the batch is 0; -1 for the last)"),
    ("{name: a, layer: rnn, kind: kl_sparsity, target: 0.1, rate: 1, axis: -4}",
     "v.yaml:11:74: penalty 'a' on 'rnn' (batch, 5, 4): axis -4 is out of range"),
    ("{name: a, layer: rnn, kind: decorrelation, rate: 1, axis: [-1, 0]}",
     "v.yaml:11:68: penalty 'a' on 'rnn' (batch, 5, 4): axis 0 is the batch axis"),
    ("{name: a, layer: rnn, kind: decorrelation, rate: 1, axis: [2, -1]}",
     "v.yaml:11:67: penalty 'a' on 'rnn' (batch, 5, 4): axis -1 is named twice"),
    ("{name: a, layer: out, kind: kl_sparsity, target: 0.1, rate: 1, axis: 2}",
     "v.yaml:11:74: penalty 'a' on 'out' (batch, 1): axis 2 is out of range (axes are -2..1"),
    ("{name: a, layer: last, kind: tar, rate: 1}",
     "v.yaml:11:34: penalty 'a' on 'last' (batch, 4): tar measures a sequence (batch, time, "
     "features), but this tensor has no time axis"),
    ("{name: a, layer: out, kind: ar, rate: 1}",
     "v.yaml:11:33: penalty 'a' on 'out' (batch, 1): ar measures a sequence"),
    ("{name: a, layer: rnn, kind: l2, rate: 1, axis: -1}",
     "v.yaml:11:46: unknown key 'axis' (`axis` is a parameter of the batch statistics "
     "kl_sparsity, decorrelation"),
    ("{name: a, layer: rnn, kind: tar, rate: 1, axis: -1}",
     "v.yaml:11:47: unknown key 'axis'"),
    ("{name: a, layer: rnn, kind: kl_sparsity, target: 0.1, rate: 1, axis: 1.5}",
     "v.yaml:11:74: penalties[0] (a).axis: expected an integer or a list"),
    ("{name: a, layer: rnn, kind: tar, rate: -1}", "v.yaml:11:44: penalties[0] (a).rate: must be "
     "greater than or equal to 0"),
])
def test_located_errors(clause: str, message: str) -> None:
    found = errors(clause)
    assert len(found) == 1, found
    assert found[0].startswith(message), found


def test_valid_axes_and_kinds_validate() -> None:
    spec = loads(BASE + "\n".join([
        "  - {name: a, layer: rnn, kind: kl_sparsity, target: 0.1, rate: 1, axis: -1}",
        "  - {name: b, layer: rnn, kind: decorrelation, rate: 1, axis: [1, 2]}",
        "  - {name: c, layer: rnn, kind: ar, rate: {schedule: linear, from: 0, to: 1, "
        "steps: 10}}",
        "  - {name: d, layer: rnn, kind: tar, rate: 1}",
        "  - {name: e, layer: out, kind: kl_sparsity, target: 0.1, rate: 1}", ""]), "v.yaml")
    params = {c.name: c.params for c in spec.penalties}
    assert params["a"]["axis"] == -1 and params["b"]["axis"] == [1, 2]
    assert "axis" not in params["e"]        # absent stays absent (saved configs unchanged)


def test_a_flattened_batch_statistic_on_a_sequence_warns() -> None:
    from specc.rules import spec_warnings

    spec = loads(BASE + "  - {name: a, layer: rnn, kind: decorrelation, rate: 1}\n"
                 "  - {name: b, layer: rnn, kind: decorrelation, rate: 1, axis: -1}\n"
                 "  - {name: c, layer: out, kind: kl_sparsity, target: 0.1, rate: 1}\n",
                 "v.yaml")
    found = [str(d) for d in spec_warnings(spec) if d.code == "flattened"]
    assert found == ["v.yaml:11:33: penalty 'a': decorrelation on 'rnn' (batch, 5, 4) "
                     "without `axis` flattens every axis after the batch, so each sample is one "
                     "flattened vector; write `axis: -1` for statistics per unit over the batch "
                     "and the other axes"]


def test_masking_is_a_layer_that_keeps_the_shape() -> None:
    spec = loads(BASE.replace("  - {name: rnn,", "  - {name: m, type: Masking, mask_value: -1}\n"
                              "  - {name: rnn,") + "  - {name: a, layer: m, kind: ar, rate: 1}\n",
                 "v.yaml")
    assert spec.layers[0].mask_value == -1.0


def test_the_readme_example_validates_without_warnings() -> None:
    from pathlib import Path

    from specc.rules import spec_warnings

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("### Sequences: `axis`, masks"):]
    text = section[section.index("```yaml\n") + 8:section.index("```\n", 10)]
    spec = loads(text, "README.md")
    assert [c.kind for c in spec.penalties] == ["ar", "tar", "kl_sparsity"]
    assert spec_warnings(spec) == []


def test_fit_measures_leave_masked_steps_out(keras) -> None:
    """`specc fit`'s per-clause measures (rate 1, over all the data) see the mask too."""
    from specc.fit import measures

    x, _, steps = batch(True)
    spec = loads(spec_text(True), "seq.yaml")
    model = specc.build(spec)
    found = {m.clause: m.value for m in measures(model, specc.lower(spec), x)}
    a = keras.ops.convert_to_numpy(
        keras.Model(model.inputs, model.get_layer("h").output)(x)).astype(np.float64)
    w = np.broadcast_to(steps[:, :, None], a.shape).astype(np.float64)
    assert found["p_ar"] == pytest.approx(np.sum(w * a ** 2) / np.sum(w), rel=1e-5)
    assert found["p_mean"] == pytest.approx(np.sum(w * np.abs(a)) / np.sum(w), rel=1e-5)
    assert found["p_klu"] == pytest.approx(reference(a, w)["p_klu"] / 0.1, rel=1e-5)
    # format 1: every step, as its contract's formulas say
    spec1 = loads(spec_text(True, version=1), "seq.yaml")
    found = {m.clause: m.value for m in measures(specc.build(spec1), specc.lower(spec1), x)}
    assert found["p_ar"] == pytest.approx(np.mean(a ** 2), rel=1e-5)


def test_a_mask_that_does_not_fit_the_leading_axes_is_not_applied(keras) -> None:
    from specc.runtime.terms import weights

    a = keras.ops.ones((2, 3, 5))
    assert weights(a, keras.ops.ones((2, 5), dtype="bool")) is None      # axes moved
    assert weights(a, keras.ops.ones((2, 3, 5, 1), dtype="bool")) is None
    w = weights(a, keras.ops.convert_to_tensor(np.array([[1, 0, 1], [0, 0, 1]], bool)))
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(w)[:, :, 0], [[1, 0, 1], [0, 0, 1]])
    assert tuple(w.shape) == (2, 3, 5)
