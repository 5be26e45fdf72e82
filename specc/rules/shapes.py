"""Rank and axis rules: axes in range for the tensors they name, ranks a layer or a penalty
needs, per-channel arguments of the right length."""
from __future__ import annotations

from typing import Any, Iterator, Optional

from specc import catalog
from specc.context import Context, Problem
from specc.errors import quote
from specc.rules.common import clause_shape, described, fmt, shapes_read


def check_attention_rank(ctx: Context) -> Iterator[Problem]:
    """MultiHeadAttention attends over axes between the batch and the features: its inputs
    need at least (batch, steps, features); Keras builds rank 2 and fails at the first call."""
    if not ctx.graph_ok:
        return
    for i, layer in enumerate(ctx.spec.layers):
        if layer.type != "MultiHeadAttention":
            continue
        for shape in shapes_read(ctx, layer):
            if shape is not None and len(shape) < 2:
                yield (("layers", i),
                       f"{described(layer)} needs inputs of shape (batch, steps, features), got "
                       f"{fmt(shape)}; add a steps axis first (Reshape with target_shape "
                       f"[1, {shape[0] if shape else 1}])", "rank")
                break


def _axis_problem(axis: int, shape: tuple, batch_ok: bool, sized: bool) -> Optional[str]:
    rank = len(shape) + 1                       # with the batch axis
    a = axis + rank if axis < 0 else axis
    if not 0 <= a < rank:
        return (f"axis {axis} is out of range for inputs of rank {rank} {fmt(shape)} "
                f"(axes are {-rank}..{rank - 1}, or -1 for the last)")
    if a == 0 and not batch_ok:
        return f"axis {axis} is the batch axis; normalize over a feature axis (-1: the last)"
    if sized and shape[a - 1] is None:
        return f"axis {axis} has no fixed size in {fmt(shape)}, but its weights need one"
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
        shapes = shapes_read(ctx, layer)
        if not shapes or shapes[0] is None:
            continue
        shape = shapes[0]
        axes = layer.axis if isinstance(layer.axis, list) else [layer.axis]
        problem = next((p for a in axes if (p := _axis_problem(a, shape, *rule))), None)
        if problem:
            yield ("layers", i, "axis"), f"{described(layer)}: {problem}", "axis"
        elif layer.type == "GroupNormalization":
            a = layer.axis + len(shape) + 1 if layer.axis < 0 else layer.axis
            channels = shape[a - 1]
            if channels is not None and channels % layer.groups:
                yield (("layers", i, "groups"),
                       f"{described(layer)}: groups {layer.groups} does not divide the "
                       f"{channels} channels of axis {layer.axis}", "axis")


def _feature_axes(clause: Any) -> list[int]:
    axis = getattr(clause, "axis", None)
    return [] if axis is None else axis if isinstance(axis, list) else [axis]


def check_penalty_axes(ctx: Context) -> Iterator[Problem]:
    """A batch statistic's `axis` must name feature axes of the tensor it measures (not the
    batch, each once); `ar`/`tar` need a (batch, time, features...) tensor."""
    from specc import penalties

    if not ctx.graph_ok:
        return
    for i, clause in enumerate(ctx.spec.penalties):
        entry = penalties.CATALOG.get(clause.kind)
        axes = _feature_axes(clause)
        if entry is None or not (axes or entry.needs_time):
            continue
        shape = clause_shape(ctx, clause)
        if shape is None:
            continue
        rank = len(shape) + 1
        where = f"penalty {quote(clause.name)} on {quote(clause.layer)} {fmt(shape)}"
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
        shapes = shapes_read(ctx, layer)
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
                       f"{described(layer)}: {arg} lists {len(value)} values, one per channel, "
                       f"but its input {fmt(shape)} has no channel axis", "rescaling")
            elif channels is not None and len(value) != channels:
                yield (("layers", i, arg),
                       f"{described(layer)}: {arg} lists {len(value)} values, one per channel, "
                       f"but its input {fmt(shape)} has {channels} channels (give one value, "
                       f"or {channels})", "rescaling")
