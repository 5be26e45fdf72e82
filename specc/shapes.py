"""Static shapes: what Keras would reject for its shapes, found at validation, without Keras.

Shapes here leave out the batch axis; None is an unknown size. Each rule computes a layer's
output shape from its input shapes or returns a problem. Layers without a rule (and any
channels_first layout) give an unknown shape, and nothing downstream of them is judged: a
rule only reports what Keras would certainly refuse.
"""
from __future__ import annotations

import math
from typing import Any, Callable, Final, Optional

Shape = tuple[Optional[int], ...]


class ShapeProblem(Exception):
    """A message saying what the layer needs and what it got."""


def _fmt(shape: Shape) -> str:
    return "(" + ", ".join(["batch", *("None" if d is None else str(d) for d in shape)]) + ")"


def _axes(value: Any, k: int) -> list[int]:
    return [value] * k if isinstance(value, int) else list(value)


def _rank(layer: Any, shape: Shape, rank: int, what: str) -> None:
    if len(shape) != rank:
        raise ShapeProblem(f"{layer.type} needs inputs of shape (batch, {what}), got {_fmt(shape)}")


def _window(n: Optional[int], size: int, stride: int, dilation: int, padding: str,
            what: str) -> Optional[int]:
    if n is None:
        return None
    if padding in ("same", "causal"):
        return math.ceil(n / stride)
    span = dilation * (size - 1) + 1
    if n < span:
        raise ShapeProblem(f"its {what} spans {span} but the input axis has only {n} "
                           "(use padding: same, or a smaller window)")
    return (n - span) // stride + 1


def _spatial(layer: Any, shape: Shape, k: int, size: Any, stride: Any, dilation: Any,
             what: str) -> list[Optional[int]]:
    names = {1: "steps, channels", 2: "rows, cols, channels", 3: "d1, d2, d3, channels"}[k]
    _rank(layer, shape, k + 1, names)
    sizes, strides, dilations = _axes(size, k), _axes(stride, k), _axes(dilation, k)
    return [_window(n, s, st, d, layer.padding, what)
            for n, s, st, d in zip(shape[:k], sizes, strides, dilations)]


def _conv(layer: Any, shapes: list[Shape]) -> Shape | None:
    k = int(layer.type[-2])
    shape = shapes[0]
    out = _spatial(layer, shape, k, layer.kernel_size, layer.strides,
                   getattr(layer, "dilation_rate", 1), "kernel")
    channels = shape[-1]
    if layer.type.startswith("DepthwiseConv"):
        return (*out, None if channels is None else channels * layer.depth_multiplier)
    return (*out, layer.filters)


def _deconv_length(n: Optional[int], size: int, stride: int, dilation: int, padding: str,
                   extra: Optional[int]) -> Optional[int]:
    """Keras's transposed-convolution output length (backend_utils, TF padding rules)."""
    if n is None:
        return None
    span = dilation * (size - 1) + 1
    if padding == "valid":
        return (n - 1) * stride + span + (max(span, stride) - span if extra is None else extra)
    return n * stride if extra is None else (n - 1) * stride + span % 2 + extra


def _conv_transpose(layer: Any, shapes: list[Shape]) -> Shape | None:
    k = int(layer.type[4])                        # Conv2DTranspose -> 2
    shape = shapes[0]
    _rank(layer, shape, k + 1, {1: "steps, channels", 2: "rows, cols, channels",
                                3: "d1, d2, d3, channels"}[k])
    extra = ([None] * k if layer.output_padding is None else _axes(layer.output_padding, k))
    out = [_deconv_length(n, s, st, d, layer.padding, e) for n, s, st, d, e in zip(
        shape[:k], _axes(layer.kernel_size, k), _axes(layer.strides, k),
        _axes(layer.dilation_rate, k), extra)]
    return (*out, layer.filters)


def _margins(value: Any, k: int) -> list[tuple[int, int]]:
    """Padding or cropping as (before, after) per axis, from any of its spellings."""
    if isinstance(value, int):
        return [(value, value)] * k
    if k == 1:                                    # a 1D layer's list is its [before, after]
        return [(value[0], value[1])]
    return [(v, v) if isinstance(v, int) else (v[0], v[1]) for v in value]


def _zero_padding(layer: Any, shapes: list[Shape]) -> Shape | None:
    k = int(layer.type[-2])
    _rank(layer, shapes[0], k + 1, "spatial axes..., channels")
    out = [None if n is None else n + a + b
           for n, (a, b) in zip(shapes[0][:k], _margins(layer.padding, k))]
    return (*out, shapes[0][-1])


def _cropping(layer: Any, shapes: list[Shape]) -> Shape | None:
    k = int(layer.type[-2])
    _rank(layer, shapes[0], k + 1, "spatial axes..., channels")
    out = []
    for n, (a, b) in zip(shapes[0][:k], _margins(layer.cropping, k)):
        if n is not None and a + b >= n:
            raise ShapeProblem(f"cropping {a} + {b} leaves nothing of an axis of size {n}")
        out.append(None if n is None else n - a - b)
    return (*out, shapes[0][-1])


def _upsampling(layer: Any, shapes: list[Shape]) -> Shape | None:
    k = int(layer.type[-2])
    _rank(layer, shapes[0], k + 1, "spatial axes..., channels")
    out = [None if n is None else n * f for n, f in zip(shapes[0][:k], _axes(layer.size, k))]
    return (*out, shapes[0][-1])


def _attention(layer: Any, shapes: list[Shape]) -> Shape | None:
    """Query shape, last axis replaced by `output_shape`; rank-1 queries: see specc.rules."""
    query = shapes[0]
    if len(query) < 2 or any(len(s) < 2 for s in shapes):
        return None
    value = shapes[1] if len(shapes) > 1 else query
    key = shapes[2] if len(shapes) > 2 else value
    if len(key) != len(value) or any(a is not None and b is not None and a != b
                                     for a, b in zip(key[:-1], value[:-1])):
        raise ShapeProblem(f"key {_fmt(key)} and value {_fmt(value)} must match except on "
                           "the last axis")
    out = layer.output_shape
    if out is None:
        return query
    return (*query[:-1], *([out] if isinstance(out, int) else out))


def _dot(layer: Any, shapes: list[Shape]) -> Shape | None:
    """Keras's Dot: each input loses its contracted axis (axes count the batch as 0)."""
    a, b = shapes
    axes = layer.axes if isinstance(layer.axes, list) else [layer.axes] * 2
    ranks = (len(a) + 1, len(b) + 1)
    if not all(-r <= x < r for x, r in zip(axes, ranks)):
        return None                          # out of range: Keras's own error
    ax = [x % r for x, r in zip(axes, ranks)]
    if not all(x >= 1 for x in ax):
        return None                          # the batch axis: Keras's own rules
    da, db = a[ax[0] - 1], b[ax[1] - 1]
    if da is not None and db is not None and da != db:
        raise ShapeProblem(f"axes {axes} contract {da} values of {_fmt(a)} with {db} of "
                           f"{_fmt(b)}; they must be equal")
    out = [d for i, d in enumerate(a, 1) if i != ax[0]] + \
        [d for i, d in enumerate(b, 1) if i != ax[1]]
    return tuple(out) or (1,)


def _pool(layer: Any, shapes: list[Shape]) -> Shape | None:
    k = int(layer.type[-2])
    strides = layer.strides if layer.strides is not None else layer.pool_size
    out = _spatial(layer, shapes[0], k, layer.pool_size, strides, 1, "pool window")
    return (*out, shapes[0][-1])


def _global_pool(layer: Any, shapes: list[Shape]) -> Shape | None:
    k = int(layer.type[-2])
    _rank(layer, shapes[0], k + 1, "spatial axes..., channels")
    if getattr(layer, "keepdims", False):
        return (*([1] * k), shapes[0][-1])
    return (shapes[0][-1],)


def _dense(layer: Any, shapes: list[Shape]) -> Shape | None:
    shape = shapes[0]
    if not shape:
        raise ShapeProblem("Dense needs inputs with a feature axis, got (batch,)")
    if shape[-1] is None:
        raise ShapeProblem(f"Dense needs a known last axis, got {_fmt(shape)}")
    return (*shape[:-1], layer.units)


def _flatten(layer: Any, shapes: list[Shape]) -> Shape | None:
    shape = shapes[0]
    return (None,) if any(d is None for d in shape) else (math.prod(shape),)


def _reshape(layer: Any, shapes: list[Shape]) -> Shape | None:
    target = list(layer.target_shape)
    shape = shapes[0]
    if any(d is None for d in shape):
        return tuple(None if d == -1 else d for d in target)
    total, known = math.prod(shape), math.prod(d for d in target if d != -1)
    if -1 in target:
        if known == 0 or total % known:
            raise ShapeProblem(f"cannot reshape {_fmt(shape)} ({total} values) to {target}")
        return tuple(total // known if d == -1 else d for d in target)
    if known != total:
        raise ShapeProblem(f"cannot reshape {_fmt(shape)} ({total} values) to "
                           f"{_fmt(tuple(target))} ({known} values)")
    return tuple(target)


def _permute(layer: Any, shapes: list[Shape]) -> Shape | None:
    shape = shapes[0]
    if len(layer.dims) != len(shape):
        raise ShapeProblem(f"dims {list(layer.dims)} permute {len(layer.dims)} axes but the "
                           f"input {_fmt(shape)} has {len(shape)}")
    return tuple(shape[d - 1] for d in layer.dims)


def _repeat(layer: Any, shapes: list[Shape]) -> Shape | None:
    _rank(layer, shapes[0], 1, "features")
    return (layer.n, shapes[0][0])


def _embedding(layer: Any, shapes: list[Shape]) -> Shape | None:
    return (*shapes[0], layer.output_dim)


def _recurrent(layer: Any, shapes: list[Shape]) -> Shape | None:
    _rank(layer, shapes[0], 2, "timesteps, features")
    steps = shapes[0][0]
    return (steps, layer.units) if layer.return_sequences else (layer.units,)


def _bidirectional(layer: Any, shapes: list[Shape]) -> Shape | None:
    inner = _recurrent(layer.layer, shapes)
    if layer.merge_mode is None:
        return None
    return (*inner[:-1], inner[-1] * 2) if layer.merge_mode == "concat" else inner


def _same(layer: Any, shapes: list[Shape]) -> Shape | None:
    return shapes[0]


def _spatial_dropout(layer: Any, shapes: list[Shape]) -> Shape | None:
    k = int(layer.type[-2])
    _rank(layer, shapes[0], k + 1, "spatial axes..., channels")
    return shapes[0]


def _elementwise(layer: Any, shapes: list[Shape]) -> Shape | None:
    first = shapes[0]
    if any(len(s) != len(first) for s in shapes):
        return None            # Keras broadcasts ranks in its own way: leave it to Keras
    out = []
    for dims in zip(*shapes):
        known = {d for d in dims if d is not None and d != 1}
        if len(known) > 1:
            raise ShapeProblem(f"{layer.type} needs inputs of one shape, got "
                               + ", ".join(_fmt(s) for s in shapes))
        out.append(known.pop() if known else (1 if all(d == 1 for d in dims) else None))
    return tuple(out)


def _concatenate(layer: Any, shapes: list[Shape]) -> Shape | None:
    rank = len(shapes[0])
    if any(len(s) != rank for s in shapes):
        raise ShapeProblem("Concatenate needs inputs of one rank, got "
                           + ", ".join(_fmt(s) for s in shapes))
    axis = layer.axis if layer.axis >= 0 else rank + 1 + layer.axis   # counting the batch
    if not 1 <= axis <= rank:
        raise ShapeProblem(f"axis {layer.axis} is out of range for inputs of rank {rank + 1}")
    out = []
    for i, dims in enumerate(zip(*shapes), start=1):
        if i == axis:
            out.append(None if None in dims else sum(dims))
            continue
        known = {d for d in dims if d is not None}
        if len(known) > 1:
            raise ShapeProblem("Concatenate needs inputs that match except on the axis "
                               f"{layer.axis}, got " + ", ".join(_fmt(s) for s in shapes))
        out.append(known.pop() if known else None)
    return tuple(out)


_IDENTITY: Final = ("Dropout", "Activation", "BatchNormalization", "LayerNormalization",
                    "GroupNormalization", "UnitNormalization", "Rescaling", "GaussianNoise",
                    "GaussianDropout", "ReLU", "LeakyReLU", "Softmax", "Identity", "Masking")

RULES: Final[dict[str, Callable[[Any, list[Shape]], Shape | None]]] = {
    "Dense": _dense, "Flatten": _flatten, "Reshape": _reshape, "Permute": _permute,
    "RepeatVector": _repeat, "Embedding": _embedding, "Concatenate": _concatenate,
    "SimpleRNN": _recurrent, "LSTM": _recurrent, "GRU": _recurrent,
    "Bidirectional": _bidirectional,
    **{t: _conv for t in ("Conv1D", "Conv2D", "Conv3D", "SeparableConv1D", "SeparableConv2D",
                          "DepthwiseConv1D", "DepthwiseConv2D")},
    **{f"{p}Pooling{k}D": _pool for p in ("Max", "Average") for k in (1, 2, 3)},
    **{f"Global{p}Pooling{k}D": _global_pool for p in ("Max", "Average") for k in (1, 2, 3)},
    **{f"SpatialDropout{k}D": _spatial_dropout for k in (1, 2, 3)},
    **{f"Conv{k}DTranspose": _conv_transpose for k in (1, 2, 3)},
    **{f"ZeroPadding{k}D": _zero_padding for k in (1, 2, 3)},
    **{f"Cropping{k}D": _cropping for k in (1, 2, 3)},
    **{f"UpSampling{k}D": _upsampling for k in (1, 2, 3)},
    "MultiHeadAttention": _attention,
    "Dot": _dot,
    **{t: _elementwise for t in ("Add", "Subtract", "Multiply", "Average", "Maximum",
                                 "Minimum")},
    **{t: _same for t in _IDENTITY},
}


#: Results of output_shape since the last `forget()`: the size budget (specc.budget) walks the
#: graph right after check_shapes and reuses them. (id(layer), shapes) -> (layer, shape); the
#: layer is kept and compared, so another object that gets the same id never hits.
_MEMO: dict[tuple, tuple[Any, Shape | None]] = {}
_MEMO_SIZE: Final = 50_000


def forget() -> None:
    """Drop the remembered results (the budget calls it when its walk is done)."""
    _MEMO.clear()


def _builtin() -> frozenset[str]:
    from specc.spec.layers import LAYER_TYPES

    return frozenset(LAYER_TYPES) | {"(shared call)", "(unknown type)"}


_BUILTIN: Final = _builtin()


def _plugin_rule(layer: Any) -> Callable[[Any, list[Shape]], Shape | None] | None:
    """A registered layer's shape rule (specc.register_layer `shape=`), None without one. What
    the plugin's function raises becomes a ShapeProblem; a result that is not a shape too."""
    rule = getattr(type(layer), "shape_rule", None)
    if rule is None:
        return None

    def run(layer: Any, shapes: list[Shape]) -> Shape | None:
        try:
            shape = rule(layer, [tuple(s) for s in shapes])
        except ValueError as exc:
            raise ShapeProblem(str(exc)) from None
        except Exception as exc:           # the plugin's own bug: say so, located
            raise ShapeProblem(f"the shape rule of plugin {type(layer).plugin} failed "
                               f"({type(exc).__name__}: {exc})") from None
        if shape is None:
            return None
        if not (isinstance(shape, (tuple, list)) and all(
                d is None or (type(d) is int and d > 0) for d in shape)):
            raise ShapeProblem(f"the shape rule of plugin {type(layer).plugin} returned "
                               f"{str(shape)[:60]}, not a shape (a tuple of sizes or None)")
        return tuple(shape)

    return run


def output_shape(layer: Any, shapes: list[Shape]) -> Shape | None:
    """The layer's output shape, None when unknown; raises ShapeProblem."""
    key = (id(layer), *shapes)
    hit = _MEMO.get(key)
    if hit is not None and hit[0] is layer:
        return hit[1]
    rule = RULES.get(layer.type)
    if rule is None and layer.type not in _BUILTIN:      # a plugin's layer: its own rule
        rule = _plugin_rule(layer)
    # (a model's fields are in its __dict__: reading one it lacks would raise and catch)
    if rule is None or layer.__dict__.get("data_format") == "channels_first":
        return None
    shape = rule(layer, shapes)
    if len(_MEMO) < _MEMO_SIZE:
        _MEMO[key] = (layer, shape)
    return shape
