"""Normalization layers: BatchNormalization, LayerNormalization, GroupNormalization,
UnitNormalization (keras/src/layers/normalization).
"""
# No `from __future__ import annotations`: Pydantic would eval every annotation string
# at import, which `specc validate` pays on each run.

import math
from typing import Any, ClassVar, Final, Literal, Mapping, Optional

from pydantic import Field

from specc.catalog.args import (
    GAMMA_BETA, Axes, Layer, LayerInitializer, NonNegFloat, PositiveFloat, UnitFloat,
    WeightedLayer,
)
from specc.catalog.definition import LayerDef, Shape, axis_index, no_weights, same_shape
from specc.spec.base import Constraint, PositiveInt


class _Normalization(WeightedLayer):
    """Penalty weight kinds: `kernel` is gamma (the scale), `bias` is beta (the offset)."""

    epsilon: PositiveFloat = Field(1e-3, description="Added to the variance to avoid /0.")
    center: bool = Field(True, description="Learn an offset beta.")
    scale: bool = Field(True, description="Learn a scale gamma.")
    beta_initializer: LayerInitializer = Field("zeros", description="Initializer of beta.")
    gamma_initializer: LayerInitializer = Field("ones", description="Initializer of gamma.")
    beta_constraint: Optional[Constraint] = Field(None, description="Constraint on beta.")
    gamma_constraint: Optional[Constraint] = Field(None, description="Constraint on gamma.")

    weight_args: ClassVar[Mapping[str, tuple[str, ...]]] = GAMMA_BETA


class BatchNormalization(_Normalization):
    type: Literal["BatchNormalization"]
    axis: int = Field(-1, description="The features axis.")
    momentum: UnitFloat = Field(0.99, description="Momentum of the moving mean and variance.")
    moving_mean_initializer: LayerInitializer = Field(
        "zeros", description="Initializer of the moving mean.")
    moving_variance_initializer: LayerInitializer = Field(
        "ones", description="Initializer of the moving variance.")
    renorm: bool = Field(False, description="Use batch renormalization.")
    renorm_clipping: Optional[dict[Literal["rmax", "rmin", "dmax"], NonNegFloat]] = Field(
        None, description="With renorm: clip the correction r to [rmin, rmax] and d to "
                          "[-dmax, dmax]; a key left out does not bound; null: none.")
    renorm_momentum: UnitFloat = Field(0.99, description="Momentum of the renorm statistics.")
    synchronized: bool = Field(
        False, description="Compute the batch statistics over all replicas.")


class LayerNormalization(_Normalization):
    type: Literal["LayerNormalization"]
    axis: Axes = Field(-1, description="The axis or axes to normalize over.")


class GroupNormalization(_Normalization):
    type: Literal["GroupNormalization"]
    groups: PositiveInt = Field(32, description="Number of groups; divides the channels.")
    axis: int = Field(-1, description="The channels axis.")


class UnitNormalization(Layer):
    type: Literal["UnitNormalization"]
    axis: Axes = Field(-1, description="The axis or axes to give unit L2 norm.")


def _params(layer: Any, shapes: list[Shape]) -> Optional[int]:
    """gamma and beta (and BatchNormalization's moving mean and variance) along `axis`."""
    shape = shapes[0]
    axes = layer.axis if isinstance(layer.axis, list) else [layer.axis]
    index = [axis_index(a, shape) for a in axes]
    if any(i is None or shape[i] is None for i in index):
        return None
    size = math.prod(shape[i] for i in dict.fromkeys(index))
    own = size * (layer.scale + layer.center)
    return own + 2 * size if layer.type == "BatchNormalization" else own


#: (the batch axis allowed, the axis needs a known size for weights)
_WEIGHTS_ALONG_AXIS: Final = (False, True)

LAYERS: Final = (
    LayerDef("BatchNormalization", BatchNormalization, same_shape, _params, "float",
             axis=_WEIGHTS_ALONG_AXIS),
    LayerDef("LayerNormalization", LayerNormalization, same_shape, _params, "float",
             axis=_WEIGHTS_ALONG_AXIS),
    LayerDef("GroupNormalization", GroupNormalization, same_shape, _params, "float",
             axis=_WEIGHTS_ALONG_AXIS),
    LayerDef("UnitNormalization", UnitNormalization, same_shape, no_weights,
             axis=(True, False)),
)
