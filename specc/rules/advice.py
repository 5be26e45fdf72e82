"""Warnings: valid specs that are probably not what their author meant (a KL sparsity on an
unbounded tensor, a penalty after dropout, logits into a probability loss, ...). They never
stop a spec."""
from __future__ import annotations

from typing import Any, Final, Iterator, Optional

from specc import catalog
from specc.context import Context, Problem
from specc.errors import quote
from specc.rules.common import (INTEGER_DTYPES, clause_shape, described, dtype_sources, fmt,
                                loss_name)


def warn_embedding_ids(ctx: Context) -> Iterator[Problem]:
    """An Embedding reads integer ids. Keras casts anything else to int32 (keras.io's
    Functional API guide feeds one float32 ids), so a float or bool tensor reaching it is a
    warning: what the cast does, and how to declare integer ids."""
    embeddings = [i for i, layer in enumerate(ctx.spec.layers) if layer.type == "Embedding"]
    if not ctx.graph_ok or not embeddings:
        return
    sources = dtype_sources(ctx)
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
               f"{described(layer)} looks up integer ids, but it reads {dtype} values from "
               f"{origin}: Keras casts them to int32 ({cast}); {fix}", "dtype")


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
    layer = ctx.layers.get(name)
    if layer is None or name in seen:
        return False
    if _final_activation(layer) in BOUNDED_ACTIVATIONS:
        return True
    reads = ctx.reads.get(name, ())
    return (layer.type in RANGE_PRESERVING and bool(reads)
            and all(_bounded(ctx, r, seen | {name}) for r in reads))


def warn_kl_sparsity(ctx: Context) -> Iterator[Problem]:
    for i, clause in enumerate(ctx.spec.penalties):
        layer = ctx.layers.get(clause.layer)
        if clause.kind != "kl_sparsity" or layer is None:
            continue
        if clause.at == "output" and _bounded(ctx, clause.layer):
            continue
        act = _final_activation(layer)
        what = ("the values before its activation" if clause.at == "pre_activation" else
                f"its output (activation {act})" if act else "its output")
        yield (("penalties", i, "layer"),
               f"penalty {quote(clause.name)}: kl_sparsity compares mean activations with a "
               f"target in (0, 1), but {described(layer)} gives {what}, which is not bounded to "
               "(0, 1): the means are clipped and the term stops teaching; penalize a "
               "sigmoid output", "kl-range")


def warn_flattened_statistic(ctx: Context) -> Iterator[Problem]:
    """A batch statistic on a sequence (or image) without `axis` takes each element of the
    flattened sample as a feature: ρ̂ per (step, unit), not per unit."""
    for i, clause in enumerate(ctx.spec.penalties):
        if clause.kind not in ("kl_sparsity", "decorrelation") or clause.axis is not None:
            continue
        shape = clause_shape(ctx, clause) if ctx.graph_ok else None
        if shape is None or len(shape) < 2:
            continue
        what = ("each (step, unit) pair gets its own mean ρ̂" if clause.kind == "kl_sparsity"
                else "each sample is one flattened vector")
        yield (("penalties", i, "kind"),
               f"penalty {quote(clause.name)}: {clause.kind} on {quote(clause.layer)} "
               f"{fmt(shape)} without `axis` flattens every axis after the batch, so {what}; "
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
    layers = ctx.layers
    for i, clause in enumerate(ctx.spec.penalties):
        layer = layers.get(clause.layer)
        if layer is None:
            continue
        noisy = [layer] if layer.type in NOISE_LAYERS else [
            layers[r] for r in ctx.reads.get(layer.name, ())
            if r in layers and layers[r].type in NOISE_LAYERS]
        if noisy:
            relation = ("is" if noisy[0] is layer else "reads") + f" {described(noisy[0])}"
            yield (("penalties", i, "layer"),
                   f"penalty {quote(clause.name)}: {quote(layer.name)} {relation}, which "
                   "acts only in training: the term sees noisy values in fit and clean ones "
                   "in evaluate, so its train and val_ values differ; penalize the layer "
                   "before the noise", "after-dropout")


def warn_linear_pre_activation(ctx: Context) -> Iterator[Problem]:
    layers = ctx.layers
    for i, clause in enumerate(ctx.spec.penalties):
        layer = layers.get(clause.layer)
        if clause.at == "pre_activation" and layer is not None and \
                layer.splittable_activation and layer.activation_name() is None:
            yield (("penalties", i, "at"),
                   f"penalty {quote(clause.name)}: {described(layer)} has no activation, so "
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
    layers = ctx.layers
    for out in spec.outputs:
        loss = spec.loss_for(out)
        name = loss_name(loss)
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
        yield (where, f"`return_state: true` on {described(layer)} has no effect in format 1: "
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
