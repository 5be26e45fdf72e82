"""Preprocessing layers: Rescaling, Normalization (keras/src/layers/preprocessing).

Normalization takes its mean and variance from the spec (Keras then holds them as constants,
not weights), or, without them, holds them as non-trainable weights (mean, variance and a
count, as keras.applications' EfficientNet does) that a weights file fills; the output has
the input's shape either way.
"""
# No `from __future__ import annotations`: Pydantic would eval every annotation string
# at import, which `specc validate` pays on each run.

import math
from typing import Annotated, Any, Final, Literal, Optional, Union

from pydantic import Field, model_validator
from pydantic_core import PydanticCustomError

from specc.catalog.args import Axes, Float, Layer, NonNegFloat
from specc.catalog.definition import LayerDef, Shape, axis_index, no_weights, same_shape


class Rescaling(Layer):
    type: Literal["Rescaling"]
    scale: Union[Float, Annotated[list[Float], Field(min_length=1)]] = Field(
        description="Factor the input is multiplied by (one per channel if a list).")
    offset: Union[Float, Annotated[list[Float], Field(min_length=1)]] = Field(
        0.0, description="Value added after scaling (one per channel if a list).")


class Normalization(Layer):
    """Standardizes the input: (x - mean) / sqrt(variance), with the mean and variance
    given here or (both left out) held as weights that a weights file fills."""

    type: Literal["Normalization"]
    axis: Optional[Axes] = Field(-1, description="The axis (or axes) that keep their own mean "
                                 "and variance; null: one scalar mean and variance.")
    mean: Optional[Union[Float, Annotated[list[Float], Field(min_length=1,
                                                             max_length=65536)]]] = Field(
        None, description="The mean: a number or one per element of `axis`; left out (with "
        "`variance`): non-trainable weights, zeros until a weights file gives them.")
    variance: Optional[Union[NonNegFloat, Annotated[list[NonNegFloat], Field(
        min_length=1, max_length=65536)]]] = Field(
        None, description="The variance: a number or one per element of `axis`; left out "
        "(with `mean`): non-trainable weights, ones until a weights file gives them.")
    invert: bool = Field(False, description="Apply the inverse: x * sqrt(variance) + mean.")

    @model_validator(mode="after")
    def _both_or_neither(self) -> "Normalization":
        if (self.mean is None) != (self.variance is None):
            given, missing = ("mean", "variance") if self.variance is None else \
                ("variance", "mean")
            raise PydanticCustomError(
                "statistics", "{given} without {missing}: give both, or neither (the "
                "statistics are then weights, from a weights file)",
                {"given": given, "missing": missing})
        return self


def _params(layer: Any, shapes: list[Shape]) -> Optional[int]:
    """Without statistics: Keras's non-trainable mean and variance (one per element of the
    kept axes) and its count; with them: none (constants)."""
    if layer.mean is not None:
        return 0
    shape = shapes[0]
    axes = [] if layer.axis is None else layer.axis if isinstance(layer.axis, list) else \
        [layer.axis]
    index = [axis_index(a, shape) for a in axes]
    if any(i is None or shape[i] is None for i in index):
        return None
    return 2 * math.prod(shape[i] for i in dict.fromkeys(index)) + 1


LAYERS: Final = (
    LayerDef("Rescaling", Rescaling, same_shape, no_weights, "float"),
    LayerDef("Normalization", Normalization, same_shape, _params),
)
