"""The checks of penalties between two tensors (`pair_penalties:`): what each clause reads,
how its term can reach the loss, and whether its two tensors can be compared.

Checks like those of specc.checks (`(ctx) -> Iterator[Problem]`); the formulas are in
specc.penalties.PAIR_CATALOG. No Keras here.
"""
from __future__ import annotations

from typing import Any, Iterator, Optional

from specc import penalties as catalog
from specc.context import Context, Problem
from specc.errors import did_you_mean, quote
from specc.rules.common import INTEGER_DTYPES, dtype_sources
from specc.topology import port_problem, split_port


def _fmt(shape: tuple) -> str:
    return "(" + ", ".join(["batch", *("None" if d is None else str(d) for d in shape)]) + ")"


def check_pair_targets(ctx: Context) -> Iterator[Problem]:
    """Each of the two names is a layer, a layer's port or an input; not one tensor twice; a
    strategy that can carry two tensors."""
    spec = ctx.spec
    layers = spec.layer_map()
    known = [*spec.inputs, *layers]
    for i, clause in enumerate(spec.pair_penalties):
        for k, ref in enumerate(clause.layers):
            base, port = split_port(ref, layers)
            if port is None and base not in layers and base not in spec.inputs:
                why = (port_problem(ref, layers)        # a port the layer does not have
                       or f"{quote(ref)} names no layer or input{did_you_mean(ref, known)}")
                yield (("pair_penalties", i, "layers", k),
                       f"pair penalty {quote(clause.name)}: {why}", "unknown-ref")
        if clause.layers[0] == clause.layers[1]:
            yield (("pair_penalties", i, "layers", 1),
                   f"pair penalty {quote(clause.name)} compares {quote(clause.layers[0])} with "
                   "itself: its term would be a constant; name two different layers",
                   "pair-same")
        if clause.via == "activity_regularizer":
            yield (("pair_penalties", i, "via"),
                   f"pair penalty {quote(clause.name)} cannot go `via: activity_regularizer`: "
                   "a layer's activity regularizer is called with that layer's output alone, "
                   f"and this term reads two tensors; use {' or '.join(catalog.PAIR_VIAS)} "
                   "(the same loss and gradient)", "pair-via")


def _static(ctx: Context, ref: str) -> Optional[tuple]:
    from specc.budget import of_context

    return of_context(ctx).shapes.get(ref)


def _differs(a: tuple, b: tuple) -> bool:
    return len(a) != len(b) or any(p is not None and q is not None and p != q
                                   for p, q in zip(a, b))


def check_pair_shapes(ctx: Context) -> Iterator[Problem]:
    """The two tensors have one shape (an axis of unknown size matches any); distillation
    needs a class axis to take its softmax over; both hold floats."""
    if not ctx.graph_ok or not ctx.spec.pair_penalties:
        return
    sources = None
    if any(inp.dtype in (*INTEGER_DTYPES, "bool") for inp in ctx.spec.inputs.values()):
        sources = dtype_sources(ctx)
    for i, clause in enumerate(ctx.spec.pair_penalties):
        s_ref, t_ref = clause.layers
        for k, ref in enumerate(clause.layers):
            dtype, origin = (sources or {}).get(ref, (None, ""))
            if dtype is not None and dtype not in ("float16", "bfloat16", "float32", "float64"):
                yield (("pair_penalties", i, "layers", k),
                       f"pair penalty {quote(clause.name)} reads {origin}, which holds "
                       f"{dtype} values; penalties measure float tensors", "dtype")
        s, t = _static(ctx, s_ref), _static(ctx, t_ref)
        if s is None or t is None:
            continue                                # unknown here: left to Keras at build
        if _differs(s, t):
            yield (("pair_penalties", i, "layers"),
                   f"pair penalty {quote(clause.name)}: {quote(s_ref)} {_fmt(s)} and "
                   f"{quote(t_ref)} {_fmt(t)} differ in shape; {clause.kind} compares them "
                   "element by element (put a Dense or a Reshape on one side to match the "
                   "other)", "pair-shape")
            continue
        if clause.kind == "distillation":
            classes = s[-1] if s else None
            if classes is None and t:
                classes = t[-1]
            if not s or classes == 1:
                what = "no axis after the batch" if not s else "a last axis of size 1"
                yield (("pair_penalties", i, "layers"),
                       f"pair penalty {quote(clause.name)}: distillation takes a softmax over "
                       f"the last axis (the classes), but {quote(s_ref)} {_fmt(s)} has {what}, "
                       "so both distributions are the same and the term is always 0",
                       "pair-shape")


def pair_layers(spec: Any) -> list[str]:
    """Every name a pair clause reads (reachability counts them as read)."""
    return [ref for clause in spec.pair_penalties for ref in clause.layers]
