"""Pooling: MaxPooling, AveragePooling, GlobalMaxPooling, GlobalAveragePooling
(keras/src/layers/pooling).
"""
# No `from __future__ import annotations`: Pydantic would eval every annotation string
# at import, which `specc validate` pays on each run.

from typing import Any, Final, Literal, Optional

from pydantic import Field

from specc.catalog.args import DataFormatArg, Layer, PaddingArg, Size1, Size2, Size3
from specc.catalog.definition import (
    LayerDef, Shape, need_rank, no_weights, spatial, spatial_rank,
)


_POOL = "Size of the pooling window: one int for every axis, or one per axis."
_POOL_STRIDES = "Step of the window; null means the pool size."


class _Pooling(Layer):
    padding: PaddingArg = "valid"
    data_format: DataFormatArg = None


class MaxPooling1D(_Pooling):
    type: Literal["MaxPooling1D"]
    pool_size: Size1 = Field(2, description=_POOL)
    strides: Optional[Size1] = Field(None, description=_POOL_STRIDES)


class MaxPooling2D(_Pooling):
    type: Literal["MaxPooling2D"]
    pool_size: Size2 = Field([2, 2], description=_POOL)
    strides: Optional[Size2] = Field(None, description=_POOL_STRIDES)


class MaxPooling3D(_Pooling):
    type: Literal["MaxPooling3D"]
    pool_size: Size3 = Field([2, 2, 2], description=_POOL)
    strides: Optional[Size3] = Field(None, description=_POOL_STRIDES)


class AveragePooling1D(_Pooling):
    type: Literal["AveragePooling1D"]
    pool_size: Size1 = Field(description=_POOL)
    strides: Optional[Size1] = Field(None, description=_POOL_STRIDES)


class AveragePooling2D(_Pooling):
    type: Literal["AveragePooling2D"]
    pool_size: Size2 = Field(description=_POOL)
    strides: Optional[Size2] = Field(None, description=_POOL_STRIDES)


class AveragePooling3D(_Pooling):
    type: Literal["AveragePooling3D"]
    pool_size: Size3 = Field(description=_POOL)
    strides: Optional[Size3] = Field(None, description=_POOL_STRIDES)


class _GlobalPooling(Layer):
    data_format: DataFormatArg = None
    keepdims: bool = Field(False, description="Keep the pooled axes with size 1.")


class GlobalMaxPooling1D(_GlobalPooling):
    type: Literal["GlobalMaxPooling1D"]


class GlobalMaxPooling2D(_GlobalPooling):
    type: Literal["GlobalMaxPooling2D"]


class GlobalMaxPooling3D(_GlobalPooling):
    type: Literal["GlobalMaxPooling3D"]


class GlobalAveragePooling1D(_GlobalPooling):
    type: Literal["GlobalAveragePooling1D"]


class GlobalAveragePooling2D(_GlobalPooling):
    type: Literal["GlobalAveragePooling2D"]


class GlobalAveragePooling3D(_GlobalPooling):
    type: Literal["GlobalAveragePooling3D"]


def _pool(layer: Any, shapes: list[Shape]) -> Optional[Shape]:
    k = spatial_rank(layer)
    strides = layer.strides if layer.strides is not None else layer.pool_size
    out = spatial(layer, shapes[0], k, layer.pool_size, strides, 1, "pool window")
    return (*out, shapes[0][-1])


def _global_pool(layer: Any, shapes: list[Shape]) -> Optional[Shape]:
    k = spatial_rank(layer)
    need_rank(layer, shapes[0], k + 1, "spatial axes..., channels")
    if getattr(layer, "keepdims", False):
        return (*([1] * k), shapes[0][-1])
    return (shapes[0][-1],)


LAYERS: Final = (
    LayerDef("MaxPooling1D", MaxPooling1D, _pool, no_weights),
    LayerDef("MaxPooling2D", MaxPooling2D, _pool, no_weights),
    LayerDef("MaxPooling3D", MaxPooling3D, _pool, no_weights),
    LayerDef("AveragePooling1D", AveragePooling1D, _pool, no_weights),
    LayerDef("AveragePooling2D", AveragePooling2D, _pool, no_weights),
    LayerDef("AveragePooling3D", AveragePooling3D, _pool, no_weights),
    LayerDef("GlobalMaxPooling1D", GlobalMaxPooling1D, _global_pool, no_weights,
             call_args=("mask",)),
    LayerDef("GlobalMaxPooling2D", GlobalMaxPooling2D, _global_pool, no_weights),
    LayerDef("GlobalMaxPooling3D", GlobalMaxPooling3D, _global_pool, no_weights),
    LayerDef("GlobalAveragePooling1D", GlobalAveragePooling1D, _global_pool, no_weights,
             call_args=("mask",)),
    LayerDef("GlobalAveragePooling2D", GlobalAveragePooling2D, _global_pool, no_weights),
    LayerDef("GlobalAveragePooling3D", GlobalAveragePooling3D, _global_pool, no_weights),
)
