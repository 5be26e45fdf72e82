"""Static rules: what Keras would build and then fail on (or silently get wrong) at the first
fit, found at validation where the rule is knowable -- dtypes, ranks, axes, loss/metric fit,
the size budget -- and warnings for valid but suspicious specs.

Errors are check functions like those of specc.checks (`(ctx) -> Iterator[Problem]`), listed
in RULES and run after the checks there. Warnings never stop a spec: `spec_warnings(spec)`
lists them for a spec that validated (`specc validate` prints them; `--strict` fails on them).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Final, Iterator, Optional

from specc import catalog
from specc.budget import check_budget, has_weights, of_context
from specc.context import Context, Problem
from specc.errors import Diagnostic, Span, quote
from specc.spec.model import LossSpec

if TYPE_CHECKING:
    from specc.spec.model import Spec


def _where(layer: Any) -> str:
    return f"layer {quote(layer.name)} ({layer.type})"


def _fmt(shape: tuple) -> str:
    return "(" + ", ".join(["batch", *("None" if d is None else str(d) for d in shape)]) + ")"


def _shapes_read(ctx: Context, layer: Any) -> list[Optional[tuple]]:
    """The static shapes of what `layer` reads (None where unknown)."""
    known = of_context(ctx).shapes
    return [known.get(r) for r in ctx.reads.get(layer.name, ())]


def _layers(ctx: Context) -> dict[str, Any]:
    """Layer name -> layer, once per checks run."""
    return ctx.layers


# ------------------------------------------------------------------------------ dtypes

INTEGER_DTYPES: Final = ("int32", "int64")
#: The dtype of a layer's weights under each dtype policy (mixed policies keep float32).
VARIABLE_DTYPE: Final = {None: "float32", "float32": "float32", "mixed_float16": "float32",
                         "mixed_bfloat16": "float32", "float16": "float16",
                         "bfloat16": "bfloat16", "float64": "float64"}


def _dtype_sources(ctx: Context) -> dict[str, tuple[str, str]]:
    """Tensor name -> (dtype, where it comes from) where certain: inputs' declared dtypes,
    carried through the layers whose dtype rule `keeps` them; those whose rule is `float`
    (layers with weights, Rescaling) give floats (specc.catalog)."""
    spec = ctx.spec
    out = {name: (inp.dtype, f"input {quote(name)}") for name, inp in spec.inputs.items()}
    for size in of_context(ctx).layers:               # graph order
        layer = spec.layers[size.path[1]]
        reads = ctx.reads.get(layer.name, ())
        rule = getattr(catalog.get(layer.type), "dtype", None)
        if rule == "keeps" and reads and reads[0] in out:
            out[layer.name] = out[reads[0]]
        elif rule == "float":
            out[layer.name] = ("float32" if layer.dtype is None else
                               layer.dtype.removeprefix("mixed_"), _where(layer))
    return out


def check_input_dtypes(ctx: Context) -> Iterator[Problem]:
    """A `string` input cannot feed a numeric model: refuse it where it is declared."""
    for name, inp in ctx.spec.inputs.items():
        if inp.dtype == "string":
            yield (("inputs", name, "dtype"),
                   f"input {quote(name)} has dtype 'string': specc builds numeric models; "
                   "turn text into integer ids before the model (dtype: int32) and read them "
                   "with an Embedding", "dtype")


def warn_embedding_ids(ctx: Context) -> Iterator[Problem]:
    """An Embedding reads integer ids. Keras casts anything else to int32 (keras.io's
    Functional API guide feeds one float32 ids), so a float or bool tensor reaching it is a
    warning: what the cast does, and how to declare integer ids."""
    embeddings = [i for i, layer in enumerate(ctx.spec.layers) if layer.type == "Embedding"]
    if not ctx.graph_ok or not embeddings:
        return
    sources = _dtype_sources(ctx)
    for i in embeddings:
        layer = ctx.spec.layers[i]
        reads = ctx.reads.get(layer.name, ())
        if not reads or reads[0] not in sources:
            continue
        dtype, origin = sources[reads[0]]
        if dtype in INTEGER_DTYPES:
            continue
        cast = ("false and true become ids 0 and 1" if dtype == "bool" else
                "any fraction is dropped")
        fix = (f"declare {origin} with `dtype: int32`" if origin.startswith("input")
               else "an Embedding should read integer ids, such as an int32 input")
        yield (("layers", i),
               f"{_where(layer)} looks up integer ids, but it reads {dtype} values from "
               f"{origin}: Keras casts them to int32 ({cast}); {fix}", "dtype")


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


# ----------------------------------------------------------------------- ranks and axes

def check_attention_rank(ctx: Context) -> Iterator[Problem]:
    """MultiHeadAttention attends over axes between the batch and the features: its inputs
    need at least (batch, steps, features); Keras builds rank 2 and fails at the first call."""
    if not ctx.graph_ok:
        return
    for i, layer in enumerate(ctx.spec.layers):
        if layer.type != "MultiHeadAttention":
            continue
        for shape in _shapes_read(ctx, layer):
            if shape is not None and len(shape) < 2:
                yield (("layers", i),
                       f"{_where(layer)} needs inputs of shape (batch, steps, features), got "
                       f"{_fmt(shape)}; add a steps axis first (Reshape with target_shape "
                       f"[1, {shape[0] if shape else 1}])", "rank")
                break


def _axis_problem(axis: int, shape: tuple, batch_ok: bool, sized: bool) -> Optional[str]:
    rank = len(shape) + 1                       # with the batch axis
    a = axis + rank if axis < 0 else axis
    if not 0 <= a < rank:
        return (f"axis {axis} is out of range for inputs of rank {rank} {_fmt(shape)} "
                f"(axes are {-rank}..{rank - 1}, or -1 for the last)")
    if a == 0 and not batch_ok:
        return f"axis {axis} is the batch axis; normalize over a feature axis (-1: the last)"
    if sized and shape[a - 1] is None:
        return f"axis {axis} has no fixed size in {_fmt(shape)}, but its weights need one"
    return None


def check_axes(ctx: Context) -> Iterator[Problem]:
    """`axis` arguments in range for the input's rank (the types whose definition has an
    `axis` rule: Softmax, the normalizations), and GroupNormalization's groups dividing its
    channels."""
    if not ctx.graph_ok:
        return
    for i, layer in enumerate(ctx.spec.layers):
        rule = getattr(catalog.get(layer.type), "axis", None)
        if rule is None:
            continue
        shapes = _shapes_read(ctx, layer)
        if not shapes or shapes[0] is None:
            continue
        shape = shapes[0]
        axes = layer.axis if isinstance(layer.axis, list) else [layer.axis]
        problem = next((p for a in axes if (p := _axis_problem(a, shape, *rule))), None)
        if problem:
            yield ("layers", i, "axis"), f"{_where(layer)}: {problem}", "axis"
        elif layer.type == "GroupNormalization":
            a = layer.axis + len(shape) + 1 if layer.axis < 0 else layer.axis
            channels = shape[a - 1]
            if channels is not None and channels % layer.groups:
                yield (("layers", i, "groups"),
                       f"{_where(layer)}: groups {layer.groups} does not divide the "
                       f"{channels} channels of axis {layer.axis}", "axis")


def _clause_shape(ctx: Context, clause: Any) -> Optional[tuple]:
    """The static per-sample shape of the tensor a clause measures (None: unknown)."""
    return of_context(ctx).shapes.get(clause.layer)


def _feature_axes(clause: Any) -> list[int]:
    axis = getattr(clause, "axis", None)
    return [] if axis is None else axis if isinstance(axis, list) else [axis]


def check_penalty_axes(ctx: Context) -> Iterator[Problem]:
    """A batch statistic's `axis` must name feature axes of the tensor it measures (not the
    batch, each once); `ar`/`tar` need a (batch, time, features...) tensor."""
    from specc import penalties as catalog

    if not ctx.graph_ok:
        return
    for i, clause in enumerate(ctx.spec.penalties):
        entry = catalog.CATALOG.get(clause.kind)
        axes = _feature_axes(clause)
        if entry is None or not (axes or entry.needs_time):
            continue
        shape = _clause_shape(ctx, clause)
        if shape is None:
            continue
        rank = len(shape) + 1
        where = f"penalty {quote(clause.name)} on {quote(clause.layer)} {_fmt(shape)}"
        if entry.needs_time and rank < 3:
            yield (("penalties", i, "kind"),
                   f"{where}: {clause.kind} measures a sequence (batch, time, features), but "
                   f"this tensor has no time axis; put it on a recurrent layer with "
                   "`return_sequences: true` (or another layer that keeps the time axis)",
                   "time-axis")
            continue
        seen: set[int] = set()
        for k, axis in enumerate(axes):
            a = axis + rank if axis < 0 else axis
            path = ("penalties", i, "axis", k) if isinstance(clause.axis, list) else \
                ("penalties", i, "axis")
            if not 0 <= a < rank:
                yield (path, f"{where}: axis {axis} is out of range (axes are {-rank}.."
                       f"{rank - 1}, the batch is 0; -1 for the last)", "axis")
            elif a == 0:
                yield (path, f"{where}: axis {axis} is the batch axis, over which the "
                       "statistic is taken; name feature axes (-1: the last)", "axis")
            elif a in seen:
                yield path, f"{where}: axis {axis} is named twice", "axis"
            seen.add(a)


def check_rescaling(ctx: Context) -> Iterator[Problem]:
    """A list `scale` or `offset` is one value per channel: its length must be 1 or the size
    of the input's last axis (Keras would broadcast it somewhere else, or fail)."""
    if not ctx.graph_ok:
        return
    for i, layer in enumerate(ctx.spec.layers):
        if layer.type != "Rescaling":
            continue
        shapes = _shapes_read(ctx, layer)
        if not shapes or shapes[0] is None:
            continue
        shape = shapes[0]
        channels = shape[-1] if shape else None
        for arg in ("scale", "offset"):
            value = getattr(layer, arg)
            if not isinstance(value, list) or len(value) == 1:
                continue
            if not shape:
                yield (("layers", i, arg),
                       f"{_where(layer)}: {arg} lists {len(value)} values, one per channel, "
                       f"but its input {_fmt(shape)} has no channel axis", "rescaling")
            elif channels is not None and len(value) != channels:
                yield (("layers", i, arg),
                       f"{_where(layer)}: {arg} lists {len(value)} values, one per channel, "
                       f"but its input {_fmt(shape)} has {channels} channels (give one value, "
                       f"or {channels})", "rescaling")


# ------------------------------------------------------------------- losses and metrics

#: What a target (y) looks like. "ids": a class id per sample, shape (batch,) or (batch, 1);
#: "like": the prediction's own shape (one-hot rows, 0/1 labels, real values).
SPARSE: Final = "ids"
DENSE: Final = "like"
#: Losses that take class ids; every other loss takes targets shaped like the prediction.
LOSS_TARGETS: Final[dict[str, str]] = {"sparse_categorical_crossentropy": SPARSE}
#: Metrics that take class ids; `accuracy` adapts to the targets (Keras picks binary,
#: categorical or sparse_categorical accuracy); every other metric takes targets shaped
#: like the prediction.
METRIC_TARGETS: Final[dict[str, Optional[str]]] = {
    "sparse_categorical_accuracy": SPARSE, "sparse_top_k_categorical_accuracy": SPARSE,
    "sparse_categorical_crossentropy": SPARSE, "accuracy": None,
}
_WORDS: Final = {SPARSE: "class ids", DENSE: "targets shaped like the prediction (one-hot "
                 "rows, 0/1 labels or values)"}


def check_float_reads(ctx: Context) -> Iterator[Problem]:
    """Layers with weights compute in floats: an integer or boolean tensor reaching one (other
    than an Embedding) fails at the first batch; so does a penalty on such a tensor."""
    not_float = (*INTEGER_DTYPES, "bool")
    if not ctx.graph_ok or all(i.dtype not in not_float for i in ctx.spec.inputs.values()):
        return                # float inputs: every tensor is a float (layers make floats)
    sources = _dtype_sources(ctx)
    for i, layer in enumerate(ctx.spec.layers):
        if layer.type == "Embedding" or not has_weights(layer):
            continue
        for ref in ctx.reads.get(layer.name, ()):
            dtype, origin = sources.get(ref, (None, ""))
            if dtype in not_float:
                yield (("layers", i), f"{_where(layer)} computes in floats, but it reads "
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
                    yield (("layers", i), f"{_where(layer)}: its {key} is orthogonal, which "
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
    layers = _layers(ctx)
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


def check_class_counts(ctx: Context) -> Iterator[Problem]:
    """A sparse (class-id) loss reads the output's last axis as the classes: it needs two."""
    if not ctx.graph_ok:
        return
    shapes = {size.name: size.shape for size in of_context(ctx).sizes}
    for out in ctx.spec.outputs:
        loss = _loss_name(ctx.spec.loss_for(out))
        shape = shapes.get(out)
        if LOSS_TARGETS.get(loss) == SPARSE and shape and shape[-1] is not None \
                and shape[-1] < 2:
            path = ("loss", out) if isinstance(ctx.spec.loss, dict) else ("loss",)
            yield (path, f"loss {quote(loss)} reads the last axis of output {quote(out)} as "
                   f"the classes, but it has {shape[-1]}: give the output one unit per class "
                   "(at least 2), or use binary_crossentropy for one yes/no output", "loss")


def _loss_name(loss: Any) -> Optional[str]:
    if loss is None:
        return None
    return loss if isinstance(loss, str) else str(loss.type)


def check_loss_metrics(ctx: Context) -> Iterator[Problem]:
    """Each metric must read the targets its output's loss reads (LOSS_TARGETS,
    METRIC_TARGETS): a sparse loss with a one-hot metric fails or measures nothing."""
    spec = ctx.spec
    metrics = spec.metrics
    keyed = isinstance(metrics, dict)
    per_output = metrics if keyed else {o: metrics for o in spec.outputs}
    reported: set[tuple] = set()
    for out, names in per_output.items():
        loss = _loss_name(spec.loss_for(out))
        if loss is None or not isinstance(spec.loss_for(out), (str, LossSpec)):
            continue                        # a plugin's loss: the targets it reads are its own
        wants = LOSS_TARGETS.get(loss, DENSE)
        for k, metric in enumerate(names):
            if not isinstance(metric, str):
                continue                    # a plugin's metric, likewise
            takes = METRIC_TARGETS.get(metric, DENSE)
            path = ("metrics", out, k) if keyed else ("metrics", k)
            if takes is None or takes == wants or path in reported:
                continue
            reported.add(path)
            alt = ("sparse_categorical_accuracy" if wants == SPARSE else
                   "categorical_accuracy" if metric.startswith("sparse_categorical") else
                   "accuracy")
            yield (path, f"metric {quote(metric)} reads {_WORDS[takes]}, but the loss "
                   f"{quote(loss)} of output {quote(out)} reads {_WORDS[wants]}; use a metric "
                   f"that reads the same targets (e.g. {alt!r})", "metric")


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
                    yield (("layers", i, *prefix, shown), f"{_where(layer)}: {shown} "
                           f"{bad} is out of Keras's 32-bit integer range (at most "
                           f"{INT32_MAX:,} in absolute value)", "bad-value")


RULES: Final[tuple[Callable[[Context], Iterator[Problem]], ...]] = (
    check_int32_arguments,
    check_input_dtypes,
    check_weight_clause_dtypes,
    check_attention_rank,
    check_axes,
    check_penalty_axes,
    check_rescaling,
    check_loss_metrics,
    check_float_reads,
    check_bfloat16_orthogonal,
    check_top_k_dtype,
    check_class_counts,
    check_budget,
)


# ------------------------------------------------------------------------------ warnings

BOUNDED_ACTIVATIONS: Final = frozenset({"sigmoid", "softmax", "hard_sigmoid", "sparsemax",
                                        "sparse_sigmoid"})
#: Layers whose output stays within the range of what they read.
RANGE_PRESERVING: Final = frozenset({
    "Flatten", "Reshape", "Permute", "RepeatVector", "Identity",
    *(f"{p}Pooling{k}D" for p in ("Max", "Average", "GlobalMax", "GlobalAverage")
      for k in (1, 2, 3)),
    *(f"Cropping{k}D" for k in (1, 2, 3)),
    "Concatenate", "Maximum", "Minimum", "Average",
})
NOISE_LAYERS: Final = frozenset({"Dropout", "SpatialDropout1D", "SpatialDropout2D",
                                 "SpatialDropout3D", "GaussianDropout", "GaussianNoise"})
PROBABILITY_LOSSES: Final = frozenset({
    "categorical_crossentropy", "sparse_categorical_crossentropy", "binary_crossentropy",
    "binary_focal_crossentropy", "categorical_focal_crossentropy"})


def _final_activation(layer: Any) -> Optional[str]:
    """The activation a layer's output ends with ('linear' if none); None if it has no such
    notion (pooling, merges, recurrent layers, ...)."""
    if layer.type == "Softmax":
        return "softmax"
    if layer.type == "Activation" or (hasattr(layer, "activation") and layer.splittable_activation):
        return layer.activation or "linear"
    return None


def _bounded(ctx: Context, name: str, seen: frozenset = frozenset()) -> bool:
    """Whether the tensor `name` certainly lies in [0, 1]."""
    layer = _layers(ctx).get(name)
    if layer is None or name in seen:
        return False
    if _final_activation(layer) in BOUNDED_ACTIVATIONS:
        return True
    reads = ctx.reads.get(name, ())
    return (layer.type in RANGE_PRESERVING and bool(reads)
            and all(_bounded(ctx, r, seen | {name}) for r in reads))


def warn_kl_sparsity(ctx: Context) -> Iterator[Problem]:
    for i, clause in enumerate(ctx.spec.penalties):
        layer = _layers(ctx).get(clause.layer)
        if clause.kind != "kl_sparsity" or layer is None:
            continue
        if clause.at == "output" and _bounded(ctx, clause.layer):
            continue
        act = _final_activation(layer)
        what = ("the values before its activation" if clause.at == "pre_activation" else
                f"its output (activation {act})" if act else "its output")
        yield (("penalties", i, "layer"),
               f"penalty {quote(clause.name)}: kl_sparsity compares mean activations with a "
               f"target in (0, 1), but {_where(layer)} gives {what}, which is not bounded to "
               "(0, 1): the means are clipped and the term stops teaching; penalize a "
               "sigmoid output", "kl-range")


def warn_flattened_statistic(ctx: Context) -> Iterator[Problem]:
    """A batch statistic on a sequence (or image) without `axis` takes each element of the
    flattened sample as a feature: ρ̂ per (step, unit), not per unit."""
    for i, clause in enumerate(ctx.spec.penalties):
        if clause.kind not in ("kl_sparsity", "decorrelation") or clause.axis is not None:
            continue
        shape = _clause_shape(ctx, clause) if ctx.graph_ok else None
        if shape is None or len(shape) < 2:
            continue
        what = ("each (step, unit) pair gets its own mean ρ̂" if clause.kind == "kl_sparsity"
                else "each sample is one flattened vector")
        yield (("penalties", i, "kind"),
               f"penalty {quote(clause.name)}: {clause.kind} on {quote(clause.layer)} "
               f"{_fmt(shape)} without `axis` flattens every axis after the batch, so {what}; "
               "write `axis: -1` for statistics per unit over the batch and the other axes",
               "flattened")


def warn_sum_reduction(ctx: Context) -> Iterator[Problem]:
    for i, clause in enumerate(ctx.spec.penalties):
        if getattr(clause, "reduction", "mean") == "sum":
            yield (("penalties", i, "reduction"),
                   f"penalty {quote(clause.name)}: `reduction: sum` adds the term of every "
                   "sample, so it grows with the batch size and the same rate is a different "
                   "strength at another batch size; `mean` (the default) does not",
                   "sum-reduction")


def warn_after_noise(ctx: Context) -> Iterator[Problem]:
    layers = _layers(ctx)
    for i, clause in enumerate(ctx.spec.penalties):
        layer = layers.get(clause.layer)
        if layer is None:
            continue
        noisy = [layer] if layer.type in NOISE_LAYERS else [
            layers[r] for r in ctx.reads.get(layer.name, ())
            if r in layers and layers[r].type in NOISE_LAYERS]
        if noisy:
            where = ("is" if noisy[0] is layer else "reads") + f" {_where(noisy[0])}"
            yield (("penalties", i, "layer"),
                   f"penalty {quote(clause.name)}: {quote(layer.name)} {where}, which "
                   "acts only in training: the term sees noisy values in fit and clean ones "
                   "in evaluate, so its train and val_ values differ; penalize the layer "
                   "before the noise", "after-dropout")


def warn_linear_pre_activation(ctx: Context) -> Iterator[Problem]:
    layers = _layers(ctx)
    for i, clause in enumerate(ctx.spec.penalties):
        layer = layers.get(clause.layer)
        if clause.at == "pre_activation" and layer is not None and \
                layer.splittable_activation and layer.activation_name() is None:
            yield (("penalties", i, "at"),
                   f"penalty {quote(clause.name)}: {_where(layer)} has no activation, so "
                   "`at: pre_activation` is its output", "pre-activation")


def _rates(clause: Any) -> list[float]:
    fields = clause.__dict__                     # a model's fields (plugin kinds: none here)
    return [fields[k] for k in ("rate", "l1", "l2") if isinstance(fields.get(k), float)]


def warn_zero_rate(ctx: Context) -> Iterator[Problem]:
    for section in ("penalties", "weight_penalties"):
        for i, clause in enumerate(getattr(ctx.spec, section)):
            rates = _rates(clause)
            if rates and not any(rates):
                yield ((section, i, "name"),
                       f"clause {quote(clause.name)} has every rate 0: its term is always 0",
                       "zero-rate")


def warn_frozen_weights(ctx: Context) -> Iterator[Problem]:
    import fnmatch

    stiff = [l for l in ctx.spec.layers if l.__dict__.get("trainable", True) is False]
    for i, clause in enumerate(ctx.spec.weight_penalties if stiff else ()):
        frozen = [l.name for l in stiff
                  if set(clause.weight_kinds) & l.weight_kinds()
                  and any(fnmatch.fnmatchcase(l.name, p) for p in clause.patterns)]
        if frozen:
            yield (("weight_penalties", i, "layers"),
                   f"weight clause {quote(clause.name)} hits frozen layers "
                   f"({', '.join(map(quote, frozen[:5]))}): their weights do not train, so "
                   "their part of the term is a constant", "frozen")


def warn_logits(ctx: Context) -> Iterator[Problem]:
    """A crossentropy that expects probabilities on an output without softmax/sigmoid, or
    `from_logits: true` on one that has it (the activation applied twice)."""
    spec = ctx.spec
    layers = _layers(ctx)
    for out in spec.outputs:
        loss = spec.loss_for(out)
        name = _loss_name(loss)
        layer = layers.get(out)
        if name not in PROBABILITY_LOSSES or layer is None:
            continue
        act = _final_activation(layer)
        if act is None:
            continue
        logits = bool(getattr(loss, "from_logits", None))
        path = ("loss", out) if isinstance(spec.loss, dict) else ("loss",)
        if not logits and act not in BOUNDED_ACTIVATIONS:
            yield (path, f"loss {quote(name)} expects probabilities, but output {quote(out)} "
                   f"ends with activation {act!r}: add a softmax (or sigmoid) activation, or "
                   f"write {{type: {name}, from_logits: true}}", "from-logits")
        elif logits and act in BOUNDED_ACTIVATIONS:
            yield (path, f"loss {quote(name)} has from_logits: true, but output {quote(out)} "
                   f"already ends with {act}: the activation is applied twice", "from-logits")


def warn_unread_states(ctx: Context) -> Iterator[Problem]:
    """Format 1 has no way to read a recurrent layer's states (no `layer.port` references,
    no `call:`): `return_state: true` computes them and the model drops them."""
    if ctx.spec.specc != 1:
        return
    for i, layer in enumerate(ctx.spec.layers):
        inner = layer.layer if layer.type == "Bidirectional" else layer
        if not getattr(inner, "return_state", False):
            continue
        where = ("layers", i) + (("layer",) if inner is not layer else ()) + ("return_state",)
        ports = ", ".join(f"`{layer.name}.{p}`" for p in layer.ports()) or "its states"
        yield (where, f"`return_state: true` on {_where(layer)} has no effect in format 1: "
               f"nothing can read the states, and the layers after it read its output alone; "
               f"remove it, or write `specc: 2` to read them as {ports}", "return-state")


def warn_plugin_unchecked(ctx: Context) -> Iterator[Problem]:
    """A plugin's layer type without a shape rule or a parameter count: say, at its first
    use, what validation then cannot check."""
    seen: set[str] = set()
    for i, layer in enumerate(ctx.spec.layers):
        cls = type(layer)
        definition = catalog.get(layer.type)
        if not definition or not definition.plugin or layer.type in seen or \
                layer._shares is not None:
            continue
        seen.add(layer.type)
        missing = []
        if definition.shape is None:
            missing.append("no shape rule, so its output shape is unknown at validation: the "
                           "shapes of the layers after it are left to Keras at build, and "
                           "the size budget cannot count them")
        if definition.params is None:
            missing.append("no parameter count, so the size budget leaves its weights out")
        if missing:
            yield (("layers", i, "type"),
                   f"layer type {quote(layer.type)} (plugin {cls.plugin}) has "
                   + "; and ".join(missing), "plugin-unchecked")


WARNINGS: Final[tuple[Callable[[Context], Iterator[Problem]], ...]] = (
    warn_embedding_ids,
    warn_kl_sparsity,
    warn_flattened_statistic,
    warn_sum_reduction,
    warn_after_noise,
    warn_linear_pre_activation,
    warn_zero_rate,
    warn_frozen_weights,
    warn_logits,
    warn_unread_states,
    warn_plugin_unchecked,
)


def spec_warnings(spec: Spec) -> list[Diagnostic]:
    """The warnings of a validated spec, located in its document (severity "warning")."""
    from specc.topology import resolve_reads

    ctx = Context(spec)
    ctx.reads = resolve_reads(spec)
    from specc.expand import diagnostic

    doc = getattr(spec, "_document", None)
    out = []
    for rule in WARNINGS:
        for path, message, code in rule(ctx):
            if doc is None:
                out.append(Diagnostic(Span("<spec>"), message, code, "warning"))
            else:            # located like errors: in a block instance, at the use with notes
                key = len(path) == 2 and path[0] in ("loss", "metrics")
                out.append(diagnostic(doc, path, message, code, key, "warning"))
    return sorted(out, key=lambda d: (d.span, d.code))
