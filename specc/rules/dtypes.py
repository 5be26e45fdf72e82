"""Dtype rules: what reaches a kernel in a dtype (or an int32 attribute) Keras cannot run."""
from __future__ import annotations

from typing import Final, Iterator

from specc import catalog
from specc.budget import has_weights, of_context
from specc.catalog.text import STRING_READERS
from specc.context import Context, Problem
from specc.errors import quote
from specc.rules.common import INTEGER_DTYPES, VARIABLE_DTYPE, described, dtype_sources


def check_string_reads(ctx: Context) -> Iterator[Problem]:
    """Strings (an input of dtype `string`) are read by StringLookup and TextVectorization
    (and plugin layers, which say what they read); any other layer, or a penalty, on them
    fails at the first batch. The string readers fail on anything else."""
    if not ctx.graph_ok:
        return
    sources = dtype_sources(ctx)
    strings = any(i.dtype == "string" for i in ctx.spec.inputs.values())
    refused: set[str] = set()        # reported, or after one reported: said once
    for size in of_context(ctx).layers:                    # graph order
        i = size.path[1]
        layer = ctx.spec.layers[i]
        reads = ctx.reads.get(layer.name, ())
        definition = catalog.get(layer.type)
        if layer.type in STRING_READERS:
            dtype, origin = sources.get(reads[0], (None, "")) if reads else (None, "")
            if dtype is not None and dtype != "string":
                yield (("layers", i), f"{described(layer)} reads strings, but it reads {dtype} "
                       f"values from {origin}; give it an input of dtype string", "dtype")
            continue
        if not strings or (definition is not None and definition.plugin):
            continue
        if any(ref in refused for ref in reads):
            refused.add(layer.name)
            continue
        for ref in reads:
            dtype, origin = sources.get(ref, (None, ""))
            if dtype == "string":
                refused.add(layer.name)
                yield (("layers", i), f"{described(layer)} reads strings from {origin}; only "
                       "StringLookup and TextVectorization read strings: put one of them "
                       "between (it turns text into integer ids)", "dtype")
                break
    for i, clause in enumerate(ctx.spec.penalties if strings else ()):
        if sources.get(clause.layer, (None, ""))[0] == "string":
            yield (("penalties", i, "layer"), f"penalty {quote(clause.name)} is on "
                   f"{sources[clause.layer][1]}, which holds strings; penalties measure float "
                   "tensors", "dtype")


def check_weight_clause_dtypes(ctx: Context) -> Iterator[Problem]:
    """One weight clause sums its layers' regularizer values into one term: Keras cannot add
    a bfloat16 value to a float32 one, so every weight it hits must have one dtype."""
    import fnmatch

    layers = ctx.spec.layers
    if not ctx.spec.weight_penalties or len({l.dtype for l in layers}) < 2:
        return                                   # one dtype policy: nothing can clash
    for i, clause in enumerate(ctx.spec.weight_penalties):
        seen: dict[str, str] = {}
        for layer in layers:
            if not any(fnmatch.fnmatchcase(layer.name, p) for p in clause.patterns):
                continue
            if not set(clause.weight_kinds) & layer.weight_kinds():
                continue
            seen.setdefault(VARIABLE_DTYPE.get(layer.dtype, "float32"), layer.name)
        if len(seen) > 1:
            shown = ", ".join(f"{quote(n)} ({d})" for d, n in seen.items())
            path = ("weight_penalties", i, "layers")
            yield (path, f"weight clause {quote(clause.name)} adds up weights of different "
                   f"dtypes: {shown}; give each dtype its own clause", "dtype")


def check_float_reads(ctx: Context) -> Iterator[Problem]:
    """Layers with weights compute in floats: an integer or boolean tensor reaching one (other
    than an Embedding) fails at the first batch; so does a penalty on such a tensor."""
    not_float = (*INTEGER_DTYPES, "bool")
    if not ctx.graph_ok or all(i.dtype not in (*not_float, "string")
                               for i in ctx.spec.inputs.values()):
        return                # float inputs: every tensor is a float (layers make floats)
    sources = dtype_sources(ctx)
    for i, layer in enumerate(ctx.spec.layers):
        if layer.type == "Embedding" or not has_weights(layer):
            continue
        for ref in ctx.reads.get(layer.name, ()):
            dtype, origin = sources.get(ref, (None, ""))
            if dtype in not_float:
                yield (("layers", i), f"{described(layer)} computes in floats, but it reads "
                       f"{dtype} values from {origin}; declare a float dtype for it, or read "
                       "integer ids with an Embedding", "dtype")
                break
    for i, clause in enumerate(ctx.spec.penalties):
        dtype, origin = sources.get(clause.layer, (None, ""))
        if dtype in not_float:
            yield (("penalties", i, "layer"), f"penalty {quote(clause.name)} is on {origin}, "
                   f"which holds {dtype} values; penalties measure float tensors", "dtype")


def check_bfloat16_orthogonal(ctx: Context) -> Iterator[Problem]:
    """The orthogonal initializer takes a QR decomposition, which TensorFlow has no bfloat16
    kernel for: a bfloat16 layer (recurrent layers by default) fails when it is built."""
    for i, layer in enumerate(ctx.spec.layers):
        if layer.dtype != "bfloat16":
            continue
        nested = getattr(layer, "layer", None) if layer.type == "Bidirectional" else None
        for args in (layer, nested):
            for key, value in (args.__dict__.items() if args is not None else ()):
                kind = value.get("type") if isinstance(value, dict) else \
                    getattr(value, "type", value)
                if key.endswith("_initializer") and kind in ("orthogonal", "Orthogonal"):
                    yield (("layers", i), f"{described(layer)}: its {key} is orthogonal, which "
                           "cannot run in bfloat16 (no QR decomposition in that dtype); use "
                           "`dtype: mixed_bfloat16` (float32 weights) or another initializer",
                           "dtype")
                    break


TOP_K_METRICS: Final = ("top_k_categorical_accuracy", "sparse_top_k_categorical_accuracy")


def check_top_k_dtype(ctx: Context) -> Iterator[Problem]:
    """TensorFlow's top-k test (InTopK) takes float32 predictions only: a top-k metric on an
    output computed in another dtype fails at the first batch."""
    metrics = ctx.spec.metrics
    keyed = isinstance(metrics, dict)
    layers = ctx.layers
    for out in ctx.spec.outputs:
        names = metrics.get(out, []) if keyed else metrics
        policy = getattr(layers.get(out), "dtype", None)
        if policy in (None, "float32"):
            continue
        for k, metric in enumerate(names):
            if metric in TOP_K_METRICS:
                yield (("metrics", out, k) if keyed else ("metrics", k),
                       f"metric {quote(metric)} needs float32 predictions, but output "
                       f"{quote(out)} is computed in {policy.removeprefix('mixed_')}; give "
                       "that layer `dtype: float32`, or use another metric", "metric")


INT32_MAX: Final = 2**31 - 1


INT32_ARGUMENTS: Final = frozenset((
    "strides", "dilation_rate", "kernel_size", "pool_size", "size", "cropping", "padding",
    "axis", "n", "groups", "num_heads", "key_dim", "value_dim"))


def check_int32_arguments(ctx: Context) -> Iterator[Problem]:
    """Keras passes sizes, strides, rates and axes to kernels as 32-bit integers: a larger one
    validates and builds, then fails at the first step (`Attr strides has value 2147483652
    out of range for an int32`). Sizes of weights (units, input_dim) are counted by the
    budget instead; these are the arguments that reach a kernel as an int32 attribute."""
    for i, layer in enumerate(ctx.spec.layers):
        nested = getattr(layer, "layer", None)
        todo = [((), layer), *((("layer",), nested) for _ in [0] if hasattr(nested, "__dict__"))]
        for prefix, args in todo:
            for key, value in args.__dict__.items():
                if key not in INT32_ARGUMENTS:
                    continue
                items = value if isinstance(value, (list, tuple)) else (value,)
                bad = next((v for v in items if type(v) is int and abs(v) > INT32_MAX), None)
                if bad is not None:
                    field = type(args).model_fields.get(key)
                    shown = (field.alias if field is not None and field.alias else key)
                    yield (("layers", i, *prefix, shown), f"{described(layer)}: {shown} "
                           f"{bad} is out of Keras's 32-bit integer range (at most "
                           f"{INT32_MAX:,} in absolute value)", "bad-value")
