"""Merging layers: Add, Subtract, Multiply, Average, Maximum, Minimum, Concatenate, Dot
(keras/src/layers/merging).
"""
# No `from __future__ import annotations`: Pydantic would eval every annotation string
# at import, which `specc validate` pays on each run.

from typing import Annotated, Any, ClassVar, Final, Literal, Optional, Union

from pydantic import Field

from specc.catalog.args import MAX_MERGE_INPUTS, Layer
from specc.catalog.definition import LayerDef, Shape, ShapeProblem, fmt, no_weights


class _Merge(Layer):
    min_inputs: ClassVar[int] = 2
    max_inputs: ClassVar[int] = MAX_MERGE_INPUTS


class Add(_Merge):
    type: Literal["Add"]


class Multiply(_Merge):
    type: Literal["Multiply"]


class Average(_Merge):
    type: Literal["Average"]


class Maximum(_Merge):
    type: Literal["Maximum"]


class Minimum(_Merge):
    type: Literal["Minimum"]


class Concatenate(_Merge):
    type: Literal["Concatenate"]
    axis: int = Field(-1, description="The axis to concatenate along.")


class Subtract(_Merge):
    """First input minus the second."""

    type: Literal["Subtract"]
    max_inputs: ClassVar[int] = 2


class Dot(_Merge):
    type: Literal["Dot"]
    axes: Union[int, Annotated[list[int], Field(min_length=2, max_length=2)]] = Field(
        description="The axis of each input to contract, or one for both.")
    normalize: bool = Field(False, description="L2-normalize first (cosine similarity).")
    max_inputs: ClassVar[int] = 2


def _elementwise(layer: Any, shapes: list[Shape]) -> Optional[Shape]:
    first = shapes[0]
    if any(len(s) != len(first) for s in shapes):
        return None            # Keras broadcasts ranks in its own way: leave it to Keras
    out = []
    for dims in zip(*shapes):
        known = {d for d in dims if d is not None and d != 1}
        if len(known) > 1:
            raise ShapeProblem(f"{layer.type} needs inputs of one shape, got "
                               + ", ".join(fmt(s) for s in shapes))
        out.append(known.pop() if known else (1 if all(d == 1 for d in dims) else None))
    return tuple(out)


def _concatenate(layer: Any, shapes: list[Shape]) -> Optional[Shape]:
    rank = len(shapes[0])
    if any(len(s) != rank for s in shapes):
        raise ShapeProblem("Concatenate needs inputs of one rank, got "
                           + ", ".join(fmt(s) for s in shapes))
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
                               f"{layer.axis}, got " + ", ".join(fmt(s) for s in shapes))
        out.append(known.pop() if known else None)
    return tuple(out)


def _dot(layer: Any, shapes: list[Shape]) -> Optional[Shape]:
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
        raise ShapeProblem(f"axes {axes} contract {da} values of {fmt(a)} with {db} of "
                           f"{fmt(b)}; they must be equal")
    out = [d for i, d in enumerate(a, 1) if i != ax[0]] + \
        [d for i, d in enumerate(b, 1) if i != ax[1]]
    return tuple(out) or (1,)


LAYERS: Final = (
    LayerDef("Add", Add, _elementwise, no_weights),
    LayerDef("Subtract", Subtract, _elementwise, no_weights),
    LayerDef("Multiply", Multiply, _elementwise, no_weights),
    LayerDef("Average", Average, _elementwise, no_weights),
    LayerDef("Maximum", Maximum, _elementwise, no_weights),
    LayerDef("Minimum", Minimum, _elementwise, no_weights),
    LayerDef("Concatenate", Concatenate, _concatenate, no_weights),
    LayerDef("Dot", Dot, _dot, no_weights),
)
