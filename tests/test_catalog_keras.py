"""Completeness of the layer catalog, against Keras: for every catalog type, drawn arguments
and input shapes give the static shape, parameter count and output dtype that Keras builds.

For each type a draw (DRAWS below) picks valid arguments, input shapes and an input dtype;
the type's definition (specc.catalog) predicts the output shape, `count_params()` and the
output dtype; the Keras layer is instantiated, called on `keras.Input`s and counted. A static
shape problem must be one Keras refuses too.

Examples per type: 3 in CI (derandomized: the same ones every run); for a longer run, e.g.
`SPECC_CATALOG_EXAMPLES=50 SPECC_CATALOG_SEED=random pytest tests/test_catalog_keras.py`.
"""
from __future__ import annotations

import os
import re
from typing import Any, Callable

import numpy as np
import pytest
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st

from specc import catalog
from specc.catalog import ShapeProblem

pytestmark = pytest.mark.keras

EXAMPLES = int(os.environ.get("SPECC_CATALOG_EXAMPLES", "3"))
DERANDOMIZE = os.environ.get("SPECC_CATALOG_SEED", "fixed") != "random"

#: Dtype policies drawn for a layer (mixed ones keep float32 weights: every initializer works).
POLICIES = (None, "float32", "mixed_float16", "mixed_bfloat16", "float64")

Draw = Callable[[Any], tuple[dict[str, Any], list[tuple[int, ...]], str]]
DRAWS: dict[str, Draw] = {}


def draws(*types: str) -> Callable[[Draw], Draw]:
    def register(fn: Draw) -> Draw:
        for t in types:
            DRAWS[t] = fn
        return fn
    return register


def dims(draw: Any, rank: int, low: int = 1, high: int = 6) -> tuple[int, ...]:
    return tuple(draw(st.integers(low, high)) for _ in range(rank))


def shape(draw: Any, low_rank: int = 1, high_rank: int = 3) -> tuple[int, ...]:
    return dims(draw, draw(st.integers(low_rank, high_rank)))


def per_axis(draw: Any, k: int, low: int, high: int) -> Any:
    """One int for every axis, or a list of one per axis."""
    if k == 1 or draw(st.booleans()):
        return draw(st.integers(low, high))
    return [draw(st.integers(low, high)) for _ in range(k)]


def float_or_int(draw: Any, keeps: bool) -> str:
    return draw(st.sampled_from(["float32", "int32"])) if keeps else "float32"


# --- core, activations, regularization, preprocessing ----------------------------------------

@draws("Dense")
def _dense(draw):
    return ({"units": draw(st.integers(1, 8)), "use_bias": draw(st.booleans())},
            [shape(draw)], "float32")


@draws("Embedding")
def _embedding(draw):
    return ({"input_dim": draw(st.integers(1, 20)), "output_dim": draw(st.integers(1, 8))},
            [shape(draw, 1, 2)], draw(st.sampled_from(["int32", "int64"])))


@draws("Identity")
def _identity(draw):
    return {}, [shape(draw)], float_or_int(draw, True)


@draws("Masking", "Dropout", "GaussianDropout", "GaussianNoise", "ReLU", "LeakyReLU")
def _elementwise_unary(draw):
    args = {}
    return args, [shape(draw)], "float32"


def _with_rate(draw, type_: str) -> dict[str, Any]:
    return {"stddev": 0.1} if type_ == "GaussianNoise" else \
        {"rate": 0.5} if "Dropout" in type_ else {}


@draws("Activation")
def _activation(draw):
    return ({"activation": draw(st.sampled_from(["relu", "tanh", "softmax", "linear"]))},
            [shape(draw)], "float32")


def _axis(draw, rank: int, batch: bool = False) -> int:
    """A valid axis of a tensor of `rank` (batch included), negative or not."""
    a = draw(st.integers(0 if batch else 1, rank - 1))
    return a - rank if draw(st.booleans()) else a


@draws("Softmax", "UnitNormalization")
def _softmax(draw):
    s = shape(draw)
    return {"axis": _axis(draw, len(s) + 1)}, [s], "float32"


@draws("Rescaling")
def _rescaling(draw):
    s = shape(draw)
    return ({"scale": draw(st.floats(-2, 2)), "offset": draw(st.floats(-2, 2))}, [s],
            float_or_int(draw, True))


@draws("Normalization")
def _normalization(draw):
    s = shape(draw)
    if draw(st.booleans()):          # no statistics: Keras's mean, variance and count weights
        return ({"axis": draw(st.sampled_from([None, -1, 1]))}, [s], "float32")
    if draw(st.booleans()):
        return {"mean": 0.5, "variance": 2.0, "axis": None}, [s], "float32"
    return ({"mean": [0.5] * s[-1], "variance": [2.0] * s[-1],
             "invert": draw(st.booleans())}, [s], "float32")


def _vocabulary(draw: Any) -> list[str]:
    return draw(st.lists(st.sampled_from(["a", "b", "c", "dd", "e f"]), min_size=1,
                         max_size=5, unique=True))


def _encoded(draw: Any, args: dict[str, Any], modes: list[str]) -> dict[str, Any]:
    """An output mode, with what it needs: a vocabulary (and idf weights for tf_idf), or
    max_tokens with pad_to_max_tokens; int mode with or without a vocabulary."""
    mode = draw(st.sampled_from(modes))
    args["output_mode"] = mode
    if draw(st.booleans()):
        args["vocabulary"] = _vocabulary(draw)
        if mode == "tf_idf":
            args["idf_weights"] = [1.5] * len(args["vocabulary"])
        if draw(st.booleans()):
            args["max_tokens"] = len(args["vocabulary"]) + 3
            args["pad_to_max_tokens"] = mode != "int" and draw(st.booleans())
    elif mode != "int" or draw(st.booleans()):
        args.update(max_tokens=draw(st.integers(2, 12)), pad_to_max_tokens=mode != "int")
    return args


@draws("StringLookup")
def _string_lookup(draw):
    args = _encoded(draw, {}, ["int", "one_hot", "multi_hot", "count", "tf_idf"])
    if draw(st.booleans()):
        args["num_oov_indices"] = draw(st.integers(0, 2))
    if draw(st.booleans()):
        args["mask_token"] = "[MASK]"
    int_mask = ["[MASK]"] if "mask_token" in args and args["output_mode"] == "int" else []
    _leading(draw, args, [*int_mask, *["[UNK]"] * args.get("num_oov_indices", 1)])
    s = (dims(draw, 1) if args["output_mode"] in ("multi_hot", "count", "tf_idf") else
         shape(draw, 0, 2))
    return args, [s], "string"


def _leading(draw: Any, args: dict[str, Any], tokens: list[str]) -> None:
    """Sometimes Keras's get_vocabulary() form: the mask and OOV tokens (by hand, in
    Keras's order) first, with an idf weight each for tf_idf."""
    if "vocabulary" in args and tokens and draw(st.booleans()):
        args["vocabulary"] = [*tokens, *args["vocabulary"]]
        if "idf_weights" in args:
            args["idf_weights"] = [0.5] * len(tokens) + args["idf_weights"]


@draws("TextVectorization")
def _text_vectorization(draw):
    args = _encoded(draw, {}, ["int", "multi_hot", "count", "tf_idf"])
    args["split"] = draw(st.sampled_from(["whitespace", "character", None]))
    args["standardize"] = draw(st.sampled_from(["lower_and_strip_punctuation", "lower", None]))
    if draw(st.booleans()):
        args["ngrams"] = draw(st.one_of(st.integers(1, 3), st.just([1, 2])))
    if args["output_mode"] == "int" and draw(st.booleans()):
        args["output_sequence_length"] = draw(st.integers(1, 6))
    _leading(draw, args, ["", "[UNK]"] if args["output_mode"] == "int" else ["[UNK]"])
    if args["split"] is None:
        s = dims(draw, 1)
    else:
        s = () if args["output_mode"] != "int" else draw(st.sampled_from([(), (1,)]))
    return args, [s], "string"


@draws("SpatialDropout1D", "SpatialDropout2D", "SpatialDropout3D")
def _spatial_dropout(draw):
    return {"rate": 0.5}, [dims(draw, 2)], "float32"        # rank set per type in `drawn`


# --- convolutional, pooling ------------------------------------------------------------------

def _conv_common(draw, k: int, transpose: bool = False) -> tuple[dict[str, Any], tuple]:
    strides = per_axis(draw, k, 1, 3)
    strided = strides != 1 and strides != [1] * k
    args = {"kernel_size": per_axis(draw, k, 1, 4), "strides": strides,
            "padding": draw(st.sampled_from(["valid", "same"])),
            "use_bias": draw(st.booleans())}
    if not strided and draw(st.booleans()):
        args["dilation_rate"] = per_axis(draw, k, 1, 2)
    if transpose and strided and draw(st.booleans()):
        s = [strides] * k if isinstance(strides, int) else strides
        args["output_padding"] = [draw(st.integers(0, x - 1)) for x in s]
    return args, dims(draw, k, 1, 10)


def _conv_draw(type_: str) -> Draw:
    k = int(re.search(r"(\d)D", type_).group(1))

    def draw_conv(draw):
        args, spatial_dims = _conv_common(draw, k, "Transpose" in type_)
        n = draw(st.integers(1, 4))
        if type_.startswith(("Separable", "Depthwise")):
            args["depth_multiplier"] = draw(st.integers(1, 3))
        if not type_.startswith("Depthwise"):
            args["filters"] = draw(st.integers(1, 5))
        if type_ in ("Conv1D", "Conv2D", "Conv3D") and draw(st.booleans()):
            groups = draw(st.integers(1, 3))
            args["groups"], n = groups, n * groups
            args["filters"] *= groups
        if type_ == "Conv1D" and draw(st.booleans()):
            args["padding"] = "causal"
        return args, [(*spatial_dims, n)], "float32"

    return draw_conv


for _t in ("Conv1D", "Conv2D", "Conv3D", "Conv1DTranspose", "Conv2DTranspose",
           "Conv3DTranspose", "SeparableConv1D", "SeparableConv2D", "DepthwiseConv1D",
           "DepthwiseConv2D"):
    DRAWS[_t] = _conv_draw(_t)


def _pool_draw(type_: str) -> Draw:
    k = int(type_[-2])

    def draw_pool(draw):
        if type_.startswith("Global"):
            return ({"keepdims": draw(st.booleans())}, [dims(draw, k + 1, 1, 8)], "float32")
        args = {"pool_size": per_axis(draw, k, 1, 3),
                "padding": draw(st.sampled_from(["valid", "same"]))}
        if draw(st.booleans()):
            args["strides"] = per_axis(draw, k, 1, 3)
        return args, [dims(draw, k + 1, 1, 8)], "float32"

    return draw_pool


for _k in (1, 2, 3):
    for _p in ("MaxPooling", "AveragePooling", "GlobalMaxPooling", "GlobalAveragePooling"):
        DRAWS[f"{_p}{_k}D"] = _pool_draw(f"{_p}{_k}D")


# --- reshaping -------------------------------------------------------------------------------

@draws("Flatten")
def _flatten(draw):
    return {}, [shape(draw)], float_or_int(draw, True)


@draws("Reshape")
def _reshape(draw):
    s = shape(draw)
    total = 1
    for d in s:
        total *= d
    first = draw(st.sampled_from([d for d in range(1, total + 1) if total % d == 0]))
    target = draw(st.sampled_from([[total], [-1], [first, -1], [first, total // first],
                                   [-1, first]]))
    return {"target_shape": target}, [s], float_or_int(draw, True)


@draws("Permute")
def _permute(draw):
    s = shape(draw)
    order = draw(st.permutations(list(range(1, len(s) + 1))))
    return {"dims": order}, [s], float_or_int(draw, True)


@draws("RepeatVector")
def _repeat(draw):
    return {"n": draw(st.integers(1, 4))}, [dims(draw, 1)], float_or_int(draw, True)


def _margins(draw, k: int) -> Any:
    pair = st.lists(st.integers(0, 3), min_size=2, max_size=2)
    if k == 1:
        return draw(st.one_of(st.integers(0, 3), pair))
    return draw(st.one_of(st.integers(0, 3), st.lists(st.one_of(st.integers(0, 3), pair),
                                                      min_size=k, max_size=k)))


def _padding_draw(type_: str) -> Draw:
    k = int(type_[-2])
    key = "padding" if type_.startswith("ZeroPadding") else "cropping"

    def draw_padding(draw):
        return ({key: _margins(draw, k)}, [dims(draw, k + 1, 1, 8)],
                float_or_int(draw, True))

    return draw_padding


def _upsampling_draw(type_: str) -> Draw:
    k = int(type_[-2])

    def draw_upsampling(draw):
        size = draw(st.integers(1, 3)) if k == 1 else per_axis(draw, k, 1, 3)
        return {"size": size}, [dims(draw, k + 1, 1, 5)], "float32"

    return draw_upsampling


for _k in (1, 2, 3):
    DRAWS[f"ZeroPadding{_k}D"] = _padding_draw(f"ZeroPadding{_k}D")
    DRAWS[f"Cropping{_k}D"] = _padding_draw(f"Cropping{_k}D")
    DRAWS[f"UpSampling{_k}D"] = _upsampling_draw(f"UpSampling{_k}D")


# --- normalization ---------------------------------------------------------------------------

@draws("BatchNormalization", "LayerNormalization")
def _batch_norm(draw):
    s = shape(draw)
    args = {"axis": _axis(draw, len(s) + 1), "center": draw(st.booleans()),
            "scale": draw(st.booleans())}
    return args, [s], "float32"


@draws("GroupNormalization")
def _group_norm(draw):
    groups = draw(st.integers(1, 3))
    s = (*shape(draw, 0, 2), groups * draw(st.integers(1, 3)))
    return ({"groups": groups, "center": draw(st.booleans()), "scale": draw(st.booleans())},
            [s], "float32")


# --- recurrent, attention --------------------------------------------------------------------

def _cell(draw, type_: str) -> dict[str, Any]:
    args = {"units": draw(st.integers(1, 5)), "use_bias": draw(st.booleans()),
            "return_sequences": draw(st.booleans())}
    if type_ == "GRU":
        args["reset_after"] = draw(st.booleans())
    return args


@draws("SimpleRNN", "LSTM", "GRU")
def _recurrent(draw):
    return {}, [dims(draw, 2, 1, 5)], "float32"             # the cell: see `drawn`


@draws("Bidirectional")
def _bidirectional(draw):
    inner = draw(st.sampled_from(["SimpleRNN", "LSTM", "GRU"]))
    return ({"layer": {"type": inner, **_cell(draw, inner)},
             "merge_mode": draw(st.sampled_from(["concat", "sum", "mul", "ave"]))},
            [dims(draw, 2, 1, 5)], "float32")


@draws("MultiHeadAttention")
def _attention(draw):
    args = {"num_heads": draw(st.integers(1, 3)), "key_dim": draw(st.integers(1, 4)),
            "use_bias": draw(st.booleans())}
    if draw(st.booleans()):
        args["value_dim"] = draw(st.integers(1, 4))
    if draw(st.booleans()):
        args["output_shape"] = draw(st.integers(1, 5))
    query = dims(draw, 2, 1, 5)
    value = dims(draw, 2, 1, 5)
    shapes = draw(st.sampled_from([[query], [query, value],
                                   [query, value, (value[0], draw(st.integers(1, 5)))]]))
    return args, shapes, "float32"


# --- merging ---------------------------------------------------------------------------------

@draws("Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum")
def _merge(draw):
    s = shape(draw)
    other = tuple(1 if draw(st.integers(0, 4)) == 0 else d for d in s)
    return {}, [s, other], "float32"


@draws("Concatenate")
def _concatenate(draw):
    s = shape(draw)
    axis = _axis(draw, len(s) + 1)
    i = axis % (len(s) + 1) - 1
    other = tuple(draw(st.integers(1, 5)) if j == i else d for j, d in enumerate(s))
    return {"axis": axis}, [s, other], "float32"


@draws("Dot")
def _dot(draw):
    d, n, m = draw(st.integers(1, 5)), draw(st.integers(1, 5)), draw(st.integers(1, 5))
    return draw(st.sampled_from([
        ({"axes": 1}, [(d,), (d,)], "float32"),
        ({"axes": 2}, [(n, d), (m, d)], "float32"),
        ({"axes": [1, 1]}, [(d, n), (d, m)], "float32"),
        ({"axes": [-1, 1]}, [(n, d), (d, m)], "float32"),
    ]))


def drawn(draw: Any, type_: str) -> tuple[dict[str, Any], list[tuple[int, ...]], str]:
    """The draw of `type_`, with the parts its family's draw leaves to the type."""
    args, shapes, dtype = DRAWS[type_](draw)
    args = {**_with_rate(draw, type_), **args}
    if type_.startswith("SpatialDropout"):
        shapes = [dims(draw, int(type_[-2]) + 1, 1, 5)]
    if type_ in ("SimpleRNN", "LSTM", "GRU"):
        args.update(_cell(draw, type_))
        args["return_state"] = draw(st.booleans())
    policy = draw(st.sampled_from(POLICIES))
    if policy is not None and "dtype" in catalog.BUILTIN[type_].model.model_fields:
        args["dtype"] = policy
    return args, shapes, dtype


# --- the test --------------------------------------------------------------------------------

def keras_layer(keras: Any, layer: Any) -> Any:
    if layer.type == "Bidirectional":
        inner = getattr(keras.layers, layer.layer.type)(**layer.layer.keras_kwargs())
        return keras.layers.Bidirectional(inner, **layer.keras_kwargs())
    return getattr(keras.layers, layer.type)(**layer.keras_kwargs())


def keras_call(keras_layer: Any, type_: str, tensors: list[Any]) -> Any:
    if type_ == "MultiHeadAttention":
        query, value, key = (tensors + [None, None])[:3] if len(tensors) > 1 else \
            (tensors[0], tensors[0], None)
        return keras_layer(query, value, key=key)
    return keras_layer(tensors if len(tensors) > 1 else tensors[0])


def zeros(shape: tuple[int, ...], dtype: str) -> Any:
    """A batch of zeros; of strings, a tensor of words (Keras takes no NumPy strings)."""
    if dtype != "string":
        return np.zeros(shape, dtype)
    import tensorflow as tf

    return tf.constant(np.full(shape, "a b", object))


def missing_rules() -> list[str]:
    """The catalog types this test cannot hold to Keras: no draw, or a rule left out."""
    return sorted(t for t, d in catalog.BUILTIN.items()
                  if t not in DRAWS or d.shape is None or d.params is None)


def test_every_catalog_type_is_covered() -> None:
    assert missing_rules() == [], "types without a draw or a rule"
    assert set(DRAWS) == set(catalog.BUILTIN)


@pytest.fixture(scope="module")
def keras() -> Any:
    return pytest.importorskip("keras")


@pytest.mark.parametrize("type_", sorted(catalog.BUILTIN))
def test_rules_match_keras(type_: str, keras: Any) -> None:
    if type_ not in DRAWS:
        pytest.fail(f"{type_}: no draw")
    definition = catalog.BUILTIN[type_]

    @settings(max_examples=EXAMPLES, deadline=None, derandomize=DERANDOMIZE,
              suppress_health_check=list(HealthCheck))
    @given(data=st.data())
    def check(data: Any) -> None:
        args, shapes, dtype = drawn(data.draw, type_)
        layer = definition.model.model_validate({"name": "x", "type": type_, **args},
                                                context={"format": 2})
        try:
            static = definition.shape(layer, shapes)
        except ShapeProblem as problem:
            with pytest.raises(Exception):
                keras_call(keras_layer(keras, layer), type_,
                           [keras.Input(shape=s, dtype=dtype) for s in shapes])
            note(f"refused by both: {problem}")
            return
        built = keras_layer(keras, layer)
        out = keras_call(built, type_, [keras.Input(shape=s, dtype=dtype) for s in shapes])
        first = out[0] if isinstance(out, (list, tuple)) else out
        what = f"{type_} {args} on {shapes} ({dtype})"
        assert static is not None, f"{what}: no static shape"
        assert tuple(static) == tuple(first.shape[1:]), f"{what}: shape"
        params = definition.params(layer, shapes)
        assert params == built.count_params(), f"{what}: parameters"
        expected = definition.output_dtype(layer, dtype)
        assert expected is not None or dtype != "float32", f"{what}: no dtype rule for floats"
        if expected is not None:
            # what the layer computes when run: a symbolic output of a layer with its own
            # compute_output_shape claims the compute dtype even where ints come out
            try:
                values = keras_call(built, type_, [zeros((2, *s), dtype) for s in shapes])
                values = values[0] if isinstance(values, (list, tuple)) else values
                got = keras.backend.standardize_dtype(values.dtype)
            except Exception as exc:     # built, but the backend refuses to run it (TF's
                # Conv3DBackpropInput on some 'same' 1-voxel inputs): the symbolic dtype is
                # the computed one for float inputs
                note(f"{what}: Keras built it but cannot run it: {str(exc)[:200]}")
                got = first.dtype if dtype.startswith("float") else None
            assert got is None or expected == got, f"{what}: dtype"

    check()
