"""Static rules (specc.rules): what Keras builds and then fails on at the first fit, refused at
validation with a located error naming the layer. For each rule, a spec it refuses and a
neighbour it accepts; a few pairs are also run through Keras, which must fail on the refused
spec (built without the rules) and evaluate the accepted one."""
from __future__ import annotations

from typing import Any

import pytest
import yaml

import specc
from specc.errors import SpecError

HEAD = "specc: 1\nname: m\n"


def spec_text(inputs: str, layers: list[str], tail: str = "outputs: [out]\nloss: mse\n",
              extra: str = "") -> str:
    body = "".join(f"  - {line}\n" for line in layers)
    return f"{HEAD}inputs: {inputs}\nlayers:\n{body}{tail}{extra}"


def problems(text: str) -> list[tuple[int, str, str]]:
    """(line, code, message) of each diagnostic; [] for a valid spec."""
    try:
        specc.loads(text, "r.yaml")
    except SpecError as exc:
        return [(d.line, d.code, d.message) for d in exc.diagnostics]
    return []


# -- dtypes ------------------------------------------------------------------------------

def test_strings_are_read_by_the_string_layers_only() -> None:
    text = spec_text("{x: {shape: [4], dtype: string}}", ["{name: out, type: Dense, units: 2}"])
    assert problems(text) == [(5, "dtype", (
        "layer 'out' (Dense) reads strings from input 'x'; only StringLookup and "
        "TextVectorization read strings: put one of them between (it turns text into integer "
        "ids)"))]
    # said once, where strings are first read: not again by what reads that layer
    chain = ["{name: f, type: Flatten}", "{name: out, type: Dense, units: 2}"]
    assert [p[:2] for p in problems(spec_text("{x: {shape: [4], dtype: string}}", chain))] == [
        (5, "dtype")]
    vectorized = ["{name: v, type: TextVectorization, output_sequence_length: 6}",
                  "{name: e, type: Embedding, input_dim: 50, output_dim: 3}",
                  "{name: f, type: Flatten}", "{name: out, type: Dense, units: 2}"]
    assert problems(spec_text("{x: {shape: [1], dtype: string}}", vectorized)) == []
    assert problems(spec_text("{x: {shape: [1]}}", vectorized)) == [(5, "dtype", (
        "layer 'v' (TextVectorization) reads strings, but it reads float32 values from input "
        "'x'; give it an input of dtype string"))]
    # its int64 ids reach a Dense: refused as any integer tensor is
    dense = [vectorized[0], "{name: out, type: Dense, units: 2}"]
    assert [p[:2] for p in problems(spec_text("{x: {shape: [1], dtype: string}}", dense))] == [
        (6, "dtype")]


def test_lookup_arguments_that_need_each_other() -> None:
    def message(layer: str) -> list[str]:
        return [m for _, _, m in problems(spec_text("{x: {shape: [3], dtype: string}}",
                                                    [layer, "{name: out, type: Dense, "
                                                     "units: 2}"]))]

    assert message("{name: s, type: StringLookup, output_mode: multi_hot}") == [
        "layers[0] (s): output_mode multi_hot without a vocabulary: the output's size is "
        "known only once the vocabulary is adapted, after the model is built; give "
        "max_tokens and pad_to_max_tokens: true (or a vocabulary)"]
    assert message("{name: s, type: StringLookup, vocabulary: [a, b, a], output_mode: "
                   "count}") == ["layers[0] (s): the vocabulary holds 'a' twice"]
    assert message("{name: s, type: StringLookup, vocabulary: [b, '[UNK]'], output_mode: "
                   "count}") == ["layers[0] (s): the vocabulary holds '[UNK]', a token the "
                                 "layer adds itself (mask or OOV): leave it out"]
    # Keras's own form (get_vocabulary()): the mask and OOV tokens first, in its order
    assert message("{name: s, type: StringLookup, vocabulary: ['[UNK]', b], output_mode: "
                   "count}") == []
    assert message("{name: s, type: StringLookup, vocabulary: ['[UNK]', '[UNK]', b], "
                   "output_mode: count}") == ["layers[0] (s): the vocabulary holds '[UNK]', "
                                              "a token the layer adds itself (mask or OOV): "
                                              "leave it out"]
    assert message("{name: s, type: StringLookup, vocabulary: ['[UNK]'], output_mode: "
                   "count}") == ["layers[0] (s): the vocabulary holds only the mask and OOV "
                                 "tokens: give its tokens"]
    assert message("{name: s, type: StringLookup, output_mode: count, max_tokens: 8, "
                   "pad_to_max_tokens: true}") == []


EMBED = ["{name: e, type: Embedding, input_dim: 10, output_dim: 3}", "{name: f, type: Flatten}",
         "{name: out, type: Dense, units: 2}"]


def warnings_of(text: str) -> list[tuple[int, str, str]]:
    """(line, code, message) of each warning of a spec that must be valid."""
    from specc.rules import spec_warnings

    return [(d.line, d.code, d.message) for d in spec_warnings(specc.loads(text, "r.yaml"))]


@pytest.mark.parametrize(("dtype", "cast"), [("float32", "any fraction is dropped"),
                                             ("float16", "any fraction is dropped"),
                                             ("bool", "false and true become ids 0 and 1")])
def test_embedding_warns_about_non_integer_inputs(dtype: str, cast: str) -> None:
    """Keras casts what an Embedding reads to int32: valid, with a warning."""
    text = spec_text(f"{{x: {{shape: [4], dtype: {dtype}}}}}", EMBED)
    assert problems(text) == []
    assert warnings_of(text) == [(5, "dtype", (
        f"layer 'e' (Embedding) looks up integer ids, but it reads {dtype} values from input "
        f"'x': Keras casts them to int32 ({cast}); declare input 'x' with `dtype: int32`"))]


@pytest.mark.parametrize("dtype", ["int32", "int64"])
def test_embedding_takes_integer_inputs(dtype: str) -> None:
    text = spec_text(f"{{x: {{shape: [4], dtype: {dtype}}}}}", EMBED)
    assert problems(text) == [] and warnings_of(text) == []


def test_embedding_dtype_flows_through_reshapes_and_from_weighted_layers() -> None:
    through = spec_text("{x: {shape: [2, 2]}}", ["{name: r, type: Reshape, target_shape: [4]}",
                                                  *EMBED])
    assert [(l, c) for l, c, _ in warnings_of(through)] == [(6, "dtype")]
    assert "reads float32 values from input 'x'" in warnings_of(through)[0][2]
    ints = through.replace("shape: [2, 2]}", "shape: [2, 2], dtype: int64}")
    assert warnings_of(ints) == []
    after_dense = spec_text("{x: {shape: [4], dtype: int32}}",
                            ["{name: d, type: Dense, units: 4}", *EMBED])
    assert warnings_of(after_dense.replace("dtype: int32", "dtype: float32")) == [(6, "dtype", (
        "layer 'e' (Embedding) looks up integer ids, but it reads float32 values from layer "
        "'d' (Dense): Keras casts them to int32 (any fraction is dropped); an Embedding should "
        "read integer ids, such as an int32 input"))]


@pytest.mark.keras
@pytest.mark.filterwarnings("ignore")
def test_keras_looks_up_float_ids_as_their_integer_part() -> None:
    """What the warning says Keras does: float32 ids 3.0 and 3.7 both look up row 3."""
    import keras
    import numpy as np

    text = spec_text("{x: {shape: [4], dtype: float32}}", EMBED)
    model = specc.build(specc.loads(text, "r.yaml"))
    table = model.get_layer("e").get_weights()[0]
    looked_up = keras.Model(model.inputs, model.get_layer("e").output)
    ids = np.array([[0.0, 3.0, 3.7, 9.2]], dtype="float32")
    np.testing.assert_allclose(np.asarray(looked_up(ids)), table[[0, 3, 3, 9]][None],
                               rtol=0, atol=1e-6)


@pytest.mark.keras
@pytest.mark.filterwarnings("ignore")
def test_format1_return_state_changes_nothing_in_the_model() -> None:
    """What the format 1 `return_state` warning says: the states are computed and dropped;
    the layers after it read its output alone (same outputs, same weights)."""
    import numpy as np

    plain = spec_text("{x: {shape: [5, 3]}}", ["{name: l, type: LSTM, units: 4}",
                                                "{name: out, type: Dense, units: 2}"])
    states = plain.replace("units: 4}", "units: 4, return_state: true}")
    assert [c for _, c, _ in warnings_of(states)] == ["return-state"]
    a, b = (specc.build(specc.loads(t, "r.yaml")) for t in (plain, states))
    b.set_weights(a.get_weights())
    x = np.random.default_rng(0).standard_normal((3, 5, 3)).astype("float32")
    ya, yb = np.asarray(a(x)), np.asarray(b(x))
    assert ya.shape == yb.shape == (3, 2)
    np.testing.assert_allclose(yb, ya, rtol=1e-5, atol=1e-6)


WEIGHTS = ["{name: a, type: Dense, units: 4, dtype: DA}", "{name: out, type: Dense, units: 2}"]
DECAY = "weight_penalties:\n  - {name: decay, layers: [a, out], kind: l2, rate: 0.01}\n"


def test_weight_clause_over_two_dtypes_is_refused() -> None:
    text = spec_text("{x: {shape: [3]}}", [w.replace("DA", "bfloat16") for w in WEIGHTS],
                     extra=DECAY)
    assert problems(text) == [(10, "dtype", (
        "weight clause 'decay' adds up weights of different dtypes: 'a' (bfloat16), 'out' "
        "(float32); give each dtype its own clause"))]


@pytest.mark.parametrize("dtype", ["float32", "mixed_bfloat16", "mixed_float16"])
def test_weight_clause_over_one_variable_dtype_is_fine(dtype: str) -> None:
    # mixed policies compute in half precision but keep float32 weights
    text = spec_text("{x: {shape: [3]}}", [w.replace("DA", dtype) for w in WEIGHTS], extra=DECAY)
    assert problems(text) == []


# -- ranks and axes ------------------------------------------------------------------------

def test_attention_on_rank_two_input_is_refused() -> None:
    text = spec_text("{x: {shape: [16]}}", [
        "{name: att, type: MultiHeadAttention, num_heads: 2, key_dim: 4}",
        "{name: out, type: Dense, units: 2}"])
    assert problems(text) == [(5, "rank", (
        "layer 'att' (MultiHeadAttention) needs inputs of shape (batch, steps, features), got "
        "(batch, 16); add a steps axis first (Reshape with target_shape [1, 16])"))]
    ok = text.replace("shape: [16]", "shape: [3, 16]").replace(
        "  - {name: out", "  - {name: f, type: Flatten}\n  - {name: out")
    assert problems(ok) == []


@pytest.mark.parametrize("axis,ok", [(-1, True), (2, True), (-3, True), (3, False),
                                     (-4, False), ([1, 2], True), ([1, 3], False)])
def test_softmax_axis_range(axis: Any, ok: bool) -> None:
    text = spec_text("{x: {shape: [5, 4]}}", [f"{{name: s, type: Softmax, axis: {axis}}}",
                                               "{name: f, type: Flatten}",
                                               "{name: out, type: Dense, units: 2}"])
    got = problems(text)
    if ok:
        assert got == []
    else:
        assert [(l, c) for l, c, _ in got] == [(5, "axis")]
        assert got[0][2].startswith("layer 's' (Softmax): axis ")
        assert "is out of range for inputs of rank 3 (batch, 5, 4) (axes are -3..2" in got[0][2]


@pytest.mark.parametrize("layer,message", [
    ("{name: n, type: BatchNormalization, axis: 0}",
     "layer 'n' (BatchNormalization): axis 0 is the batch axis; normalize over a feature axis "
     "(-1: the last)"),
    ("{name: n, type: BatchNormalization, axis: 3}",
     "layer 'n' (BatchNormalization): axis 3 is out of range for inputs of rank 3 (batch, 5, "
     "4) (axes are -3..2, or -1 for the last)"),
    ("{name: n, type: LayerNormalization, axis: [1, -3]}",
     "layer 'n' (LayerNormalization): axis -3 is the batch axis; normalize over a feature axis "
     "(-1: the last)"),
    ("{name: n, type: GroupNormalization, groups: 3}",
     "layer 'n' (GroupNormalization): groups 3 does not divide the 4 channels of axis -1"),
])
def test_normalization_axes(layer: str, message: str) -> None:
    text = spec_text("{x: {shape: [5, 4]}}", [layer, "{name: f, type: Flatten}",
                                               "{name: out, type: Dense, units: 2}"])
    assert [(c, m) for _, c, m in problems(text)] == [("axis", message)]


def test_normalization_axes_that_fit() -> None:
    for layer in ("{name: n, type: BatchNormalization, axis: 1}",
                  "{name: n, type: LayerNormalization, axis: [1, 2]}",
                  "{name: n, type: GroupNormalization, groups: 2}",
                  "{name: n, type: UnitNormalization, axis: 0}"):
        text = spec_text("{x: {shape: [5, 4]}}", [layer, "{name: f, type: Flatten}",
                                                   "{name: out, type: Dense, units: 2}"])
        assert problems(text) == [], layer


@pytest.mark.parametrize("args,ok", [
    ("scale: 0.5", True), ("scale: [0.5]", True), ("scale: [1, 2, 3, 4]", True),
    ("scale: [1, 2, 3]", False), ("scale: 1, offset: [1, 2]", False),
    ("scale: [1, 2, 3, 4], offset: [0, 0, 0, 0]", True)])
def test_rescaling_lists_fit_the_channels(args: str, ok: bool) -> None:
    text = spec_text("{x: {shape: [2, 4]}}", [f"{{name: r, type: Rescaling, {args}}}",
                                               "{name: f, type: Flatten}",
                                               "{name: out, type: Dense, units: 2}"])
    got = problems(text)
    if ok:
        assert got == []
    else:
        n = len(yaml.safe_load(f"{{{args}}}").get("offset" if "offset" in args else "scale"))
        assert [(l, c) for l, c, _ in got] == [(5, "rescaling")]
        assert (f"lists {n} values, one per channel, but its input (batch, 2, 4) has 4 "
                "channels (give one value, or 4)") in got[0][2]


# -- losses and metrics --------------------------------------------------------------------

def loss_metric_text(loss: str, metrics: str, units: int = 3) -> str:
    return spec_text("{x: {shape: [4]}}", [
        f"{{name: out, type: Dense, units: {units}, activation: softmax}}"],
        f"outputs: [out]\nloss: {loss}\nmetrics: {metrics}\n")


@pytest.mark.parametrize("loss,metric", [
    ("cosine_similarity", "sparse_categorical_accuracy"),        # the case
    ("categorical_crossentropy", "sparse_categorical_accuracy"),
    ("categorical_crossentropy", "sparse_top_k_categorical_accuracy"),
    ("mse", "sparse_categorical_crossentropy"),
    ("sparse_categorical_crossentropy", "categorical_accuracy"),
    ("sparse_categorical_crossentropy", "top_k_categorical_accuracy"),
    ("sparse_categorical_crossentropy", "auc"),
    ("sparse_categorical_crossentropy", "mae"),
    ("sparse_categorical_crossentropy", "categorical_crossentropy"),
])
def test_loss_and_metric_that_do_not_fit(loss: str, metric: str) -> None:
    got = problems(loss_metric_text(loss, f"[accuracy, {metric}]"))
    assert [(l, c) for l, c, _ in got] == [(8, "metric")]
    assert got[0][2].startswith(f"metric '{metric}' reads ")
    assert f"but the loss '{loss}' of output 'out' reads " in got[0][2]


@pytest.mark.parametrize("loss,metric", [
    ("sparse_categorical_crossentropy", "sparse_categorical_accuracy"),
    ("sparse_categorical_crossentropy", "accuracy"),
    ("categorical_crossentropy", "categorical_accuracy"),
    ("categorical_crossentropy", "auc"),
    ("cosine_similarity", "cosine_similarity"),
    ("mse", "mae"),
    ("{type: sparse_categorical_crossentropy, from_logits: false}",
     "sparse_top_k_categorical_accuracy"),
])
def test_loss_and_metric_that_fit(loss: str, metric: str) -> None:
    assert problems(loss_metric_text(loss, f"[{metric}]")) == []


def test_metrics_per_output_are_checked_against_their_own_loss() -> None:
    text = spec_text("{x: {shape: [4]}}", [
        "{name: a, type: Dense, units: 3, activation: softmax}",
        "{name: b, type: Dense, units: 3, activation: softmax, from: x}"],
        "outputs: [a, b]\nloss: {a: sparse_categorical_crossentropy, b: "
        "categorical_crossentropy}\nmetrics: {a: [sparse_categorical_accuracy], b: "
        "[categorical_accuracy, sparse_categorical_accuracy]}\n")
    got = problems(text)
    assert [(l, c) for l, c, _ in got] == [(9, "metric")]
    assert "metric 'sparse_categorical_accuracy' reads class ids, but the loss " \
           "'categorical_crossentropy' of output 'b'" in got[0][2]


# -- Keras agrees: the refused specs fail in Keras, their neighbours run ---------------

KERAS_PAIRS = {
    # name -> (refused spec, accepted neighbour)
    "attention_rank": (
        spec_text("{x: {shape: [6]}}", [
            "{name: att, type: MultiHeadAttention, num_heads: 2, key_dim: 2}",
            "{name: out, type: Dense, units: 2}"]),
        spec_text("{x: {shape: [3, 6]}}", [
            "{name: att, type: MultiHeadAttention, num_heads: 2, key_dim: 2}",
            "{name: f, type: Flatten}", "{name: out, type: Dense, units: 2}"])),
    "softmax_axis": (
        spec_text("{x: {shape: [3, 4]}}", ["{name: s, type: Softmax, axis: 3}",
                                            "{name: f, type: Flatten}",
                                            "{name: out, type: Dense, units: 2}"]),
        spec_text("{x: {shape: [3, 4]}}", ["{name: s, type: Softmax, axis: 2}",
                                            "{name: f, type: Flatten}",
                                            "{name: out, type: Dense, units: 2}"])),
    "loss_metric": (loss_metric_text("cosine_similarity", "[sparse_categorical_accuracy]", 5),
                    loss_metric_text("cosine_similarity", "[categorical_accuracy]", 5)),
    "weight_dtypes": (
        spec_text("{x: {shape: [3]}}", [w.replace("DA", "bfloat16") for w in WEIGHTS],
                  extra=DECAY),
        spec_text("{x: {shape: [3]}}", [w.replace("DA", "mixed_bfloat16") for w in WEIGHTS],
                  extra=DECAY)),
    "rescaling": (
        spec_text("{x: {shape: [2, 4]}}", ["{name: r, type: Rescaling, scale: [1, 2, 3]}",
                                            "{name: f, type: Flatten}",
                                            "{name: out, type: Dense, units: 2}"]),
        spec_text("{x: {shape: [2, 4]}}", ["{name: r, type: Rescaling, scale: [1, 2, 3, 4]}",
                                            "{name: f, type: Flatten}",
                                            "{name: out, type: Dense, units: 2}"])),
}


def run_in_keras(text: str) -> BaseException | None:
    """Build the spec without specc's checks and evaluate one batch: the exception, or None
    if Keras ran it."""
    import keras
    import numpy as np

    from specc.graph import lower
    from specc.runtime import emit
    from specc.spec.model import Spec

    spec = Spec.model_validate(yaml.safe_load(text))
    keras.backend.clear_session()
    rng = np.random.default_rng(0)
    try:
        model = emit(lower(spec))
        x = {n: rng.standard_normal((4, *s.shape)).astype(s.dtype)
             for n, s in spec.inputs.items()}
        out = model.outputs[0]
        y = rng.uniform(size=(4, *out.shape[1:])).astype("float32")
        model.evaluate(x, y, verbose=0)
    except Exception as exc:          # noqa: BLE001  (any failure is what we look for)
        return exc
    return None


@pytest.mark.filterwarnings("ignore")
@pytest.mark.parametrize("case", sorted(KERAS_PAIRS))
def test_keras_fails_on_what_the_rules_refuse(case: str) -> None:
    refused, accepted = KERAS_PAIRS[case]
    assert problems(refused) and not problems(accepted)
    assert run_in_keras(accepted) is None
    assert run_in_keras(refused) is not None


# -- found by the valid => buildable property (tests/buildable_long.py) ----------------------

@pytest.mark.parametrize("dtype", ["int64", "int32", "bool"])
def test_a_layer_with_weights_reading_integers_is_refused(dtype) -> None:
    text = spec_text(f"{{x: {{shape: [4, 4, 3], dtype: {dtype}}}}}",
                     ["{name: conv, type: Conv2D, filters: 2, kernel_size: 3}",
                      "{name: flat, type: Flatten}", "{name: out, type: Dense, units: 2}"])
    assert problems(text) == [(5, "dtype", (
        f"layer 'conv' (Conv2D) computes in floats, but it reads {dtype} values from input "
        "'x'; declare a float dtype for it, or read integer ids with an Embedding"))]
    assert problems(text.replace(f"dtype: {dtype}", "dtype: float32")) == []


def test_a_penalty_on_integer_values_is_refused() -> None:
    text = spec_text("{x: {shape: [4], dtype: int32}}",
                     ["{name: ids, type: Flatten}",
                      "{name: emb, type: Embedding, input_dim: 10, output_dim: 3}",
                      "{name: flat, type: Flatten}", "{name: out, type: Dense, units: 2}"],
                     extra="penalties:\n  - {name: p, layer: ids, kind: l2, rate: 0.1}\n")
    assert problems(text) == [(12, "dtype", (
        "penalty 'p' is on input 'x', which holds int32 values; penalties measure float "
        "tensors"))]
    assert problems(text.replace("layer: ids", "layer: emb")) == []


def test_a_sparse_loss_needs_two_classes() -> None:
    text = spec_text("{x: {shape: [4]}}", ["{name: out, type: Dense, units: 1}"],
                     tail="outputs: [out]\nloss: sparse_categorical_crossentropy\n")
    assert problems(text) == [(7, "loss", (
        "loss 'sparse_categorical_crossentropy' reads the last axis of output 'out' as the "
        "classes, but it has 1: give the output one unit per class (at least 2), or use "
        "binary_crossentropy for one yes/no output"))]
    assert problems(text.replace("units: 1", "units: 3")) == []


def test_an_orthogonal_initializer_in_bfloat16_is_refused() -> None:
    text = spec_text("{x: {shape: [5, 3]}}", ["{name: rnn, type: LSTM, units: 4, dtype: bfloat16}",
                                              "{name: out, type: Dense, units: 2}"])
    assert problems(text) == [(5, "dtype", (
        "layer 'rnn' (LSTM): its recurrent_initializer is orthogonal, which cannot run in "
        "bfloat16 (no QR decomposition in that dtype); use `dtype: mixed_bfloat16` (float32 "
        "weights) or another initializer"))]
    assert problems(text.replace("dtype: bfloat16", "dtype: mixed_bfloat16")) == []
    assert problems(text.replace("dtype: bfloat16}", "dtype: bfloat16, recurrent_initializer: "
                                 "glorot_uniform}")) == []


@pytest.mark.parametrize("policy", ["bfloat16", "mixed_bfloat16", "float16", "float64"])
def test_a_top_k_metric_needs_float32_predictions(policy) -> None:
    text = spec_text("{x: {shape: [4]}}", [f"{{name: out, type: Dense, units: 5, dtype: {policy}}}"],
                     tail="outputs: [out]\nloss: mse\nmetrics: [top_k_categorical_accuracy]\n")
    computed = policy.removeprefix("mixed_")
    assert problems(text) == [(8, "metric", (
        "metric 'top_k_categorical_accuracy' needs float32 predictions, but output 'out' is "
        f"computed in {computed}; give that layer `dtype: float32`, or use another metric"))]
    assert problems(text.replace(f"dtype: {policy}", "dtype: float32")) == []
