"""Static shapes: what Keras would reject for its shapes, found at validation, without Keras.

Shapes here leave out the batch axis; None is an unknown size. Each layer type's rule (its
definition's `shape`, specc.catalog) computes its output shape from its input shapes or
raises a problem. Layers without a rule (and any channels_first layout) give an unknown
shape, and nothing downstream of them is judged: a rule only reports what Keras would
certainly refuse.
"""
from __future__ import annotations

from typing import Any, Final

from specc import catalog
from specc.catalog.definition import Shape, ShapeProblem

__all__ = ["Shape", "ShapeProblem", "output_shape"]

#: At most this many results in one memo.
_MEMO_SIZE: Final = 50_000


def output_shape(layer: Any, shapes: list[Shape],
                 memo: dict[tuple, tuple[Any, Shape | None]] | None = None) -> Shape | None:
    """The layer's output shape, None when unknown; raises ShapeProblem.

    `memo` (the checks' Context.shapes: the size budget walks the graph right after
    check_shapes and reuses its results) maps (id(layer), shapes) -> (layer, shape); the layer
    is kept and compared, so another object that gets the same id never hits."""
    key = (id(layer), *shapes)
    hit = memo.get(key) if memo is not None else None
    if hit is not None and hit[0] is layer:
        return hit[1]
    definition = catalog.get(layer.type)
    rule = definition.shape if definition is not None else None
    # (a model's fields are in its __dict__: reading one it lacks would raise and catch)
    if rule is None or layer.__dict__.get("data_format") == "channels_first":
        return None
    shape = rule(layer, shapes)
    if memo is not None and len(memo) < _MEMO_SIZE:
        memo[key] = (layer, shape)
    return shape
