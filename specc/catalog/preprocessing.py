"""Preprocessing layers: Rescaling, Normalization (keras/src/layers/preprocessing).

Normalization takes its mean and variance from the spec (specc has no `adapt()` step): Keras
then holds them as constants, not weights, and the output has the input's shape.
"""
# No `from __future__ import annotations`: Pydantic would eval every annotation string
# at import, which `specc validate` pays on each run.

from typing import Annotated, Any, Final, Literal, Optional, Union

from pydantic import Field

from specc.catalog.args import Axes, Float, Layer, NonNegFloat
from specc.catalog.definition import LayerDef, no_weights, same_shape


class Rescaling(Layer):
    type: Literal["Rescaling"]
    scale: Union[Float, Annotated[list[Float], Field(min_length=1)]] = Field(
        description="Factor the input is multiplied by (one per channel if a list).")
    offset: Union[Float, Annotated[list[Float], Field(min_length=1)]] = Field(
        0.0, description="Value added after scaling (one per channel if a list).")


class Normalization(Layer):
    """Standardizes the input with a given mean and variance: (x - mean) / sqrt(variance)."""

    type: Literal["Normalization"]
    axis: Optional[Axes] = Field(-1, description="The axis (or axes) that keep their own mean "
                                 "and variance; null: one scalar mean and variance.")
    mean: Union[Float, Annotated[list[Float], Field(min_length=1, max_length=65536)]] = Field(
        description="The mean: a number or one per element of `axis`.")
    variance: Union[NonNegFloat, Annotated[list[NonNegFloat], Field(
        min_length=1, max_length=65536)]] = Field(
        description="The variance: a number or one per element of `axis`.")
    invert: bool = Field(False, description="Apply the inverse: x * sqrt(variance) + mean.")


def _adapted_statistics(writer: Any, name: str, args: dict[str, Any],
                        layer: Any) -> list[str]:
    """specc import of an adapted Normalization (no mean given): its mean and variance are
    written into the spec (so its weights are not loaded from the weights file)."""
    if args.get("mean") is None:
        args.update(writer.statistics(layer))
        writer.result.in_spec.add(name)
    return []


LAYERS: Final = (
    LayerDef("Rescaling", Rescaling, same_shape, no_weights, "float"),
    LayerDef("Normalization", Normalization, same_shape, no_weights,
             importer=_adapted_statistics),
)
