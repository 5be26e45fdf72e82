"""Regularization layers: Dropout, SpatialDropout, GaussianDropout, GaussianNoise
(keras/src/layers/regularization).
"""
# No `from __future__ import annotations`: Pydantic would eval every annotation string
# at import, which `specc validate` pays on each run.

from typing import Annotated, Any, ClassVar, Final, Literal, Optional

from pydantic import Field

from specc.catalog.args import DataFormatArg, Layer, NonNegFloat, Rate, Seed
from specc.catalog.definition import (
    LayerDef, Shape, need_rank, no_weights, same_shape, spatial_rank,
)
from specc.spec.base import PositiveInt


class Dropout(Layer):
    type: Literal["Dropout"]
    rate: Rate
    noise_shape: Optional[Annotated[list[Optional[PositiveInt]], Field(min_length=1)]] = Field(
        None, description="Shape of the drop mask incl. the batch axis; null entries follow "
                          "the input.")
    seed: Seed = None


class SpatialDropout1D(Layer):
    """Drops whole channels. Keras gives it no `trainable` argument."""

    type: Literal["SpatialDropout1D"]
    rate: Rate
    seed: Seed = None

    regularizes_own_output: ClassVar[bool] = False   # Keras refuses activity_regularizer


class SpatialDropout2D(Layer):
    type: Literal["SpatialDropout2D"]
    rate: Rate
    data_format: DataFormatArg = None
    seed: Seed = None

    regularizes_own_output: ClassVar[bool] = False   # Keras refuses activity_regularizer


class SpatialDropout3D(Layer):
    type: Literal["SpatialDropout3D"]
    rate: Rate
    data_format: DataFormatArg = None
    seed: Seed = None

    regularizes_own_output: ClassVar[bool] = False   # Keras refuses activity_regularizer


class GaussianDropout(Layer):
    type: Literal["GaussianDropout"]
    rate: Rate
    seed: Seed = None


class GaussianNoise(Layer):
    type: Literal["GaussianNoise"]
    stddev: NonNegFloat = Field(description="Standard deviation of the added noise.")
    seed: Seed = None


def _spatial_dropout(layer: Any, shapes: list[Shape]) -> Optional[Shape]:
    k = spatial_rank(layer)
    need_rank(layer, shapes[0], k + 1, "spatial axes..., channels")
    return shapes[0]


LAYERS: Final = (
    LayerDef("Dropout", Dropout, same_shape, no_weights),
    LayerDef("SpatialDropout1D", SpatialDropout1D, _spatial_dropout, no_weights),
    LayerDef("SpatialDropout2D", SpatialDropout2D, _spatial_dropout, no_weights),
    LayerDef("SpatialDropout3D", SpatialDropout3D, _spatial_dropout, no_weights),
    LayerDef("GaussianDropout", GaussianDropout, same_shape, no_weights),
    LayerDef("GaussianNoise", GaussianNoise, same_shape, no_weights),
)
