"""Reshaping layers: Flatten, Reshape, Permute, RepeatVector, ZeroPadding, Cropping, UpSampling
(keras/src/layers/reshaping).
"""
# No `from __future__ import annotations`: Pydantic would eval every annotation string
# at import, which `specc validate` pays on each run.

import math
from typing import Annotated, Any, Final, Literal, Optional

from pydantic import AfterValidator, Field

from specc.catalog.args import DataFormatArg, Layer, Margins1, Margins2, Margins3, Size2, Size3
from specc.catalog.definition import (
    LayerDef, Shape, ShapeProblem, fmt, need_rank, no_weights, per_axis, spatial_rank,
)
from specc.spec.base import PositiveInt


def _check_target_shape(shape: list[int]) -> list[int]:
    if any(d == 0 or d < -1 for d in shape) or shape.count(-1) > 1:
        raise ValueError("target_shape takes positive sizes and at most one -1")
    return shape


def _check_permutation(dims: list[int]) -> list[int]:
    if sorted(dims) != list(range(1, len(dims) + 1)):
        raise ValueError(f"dims must order 1..{len(dims)} (axis 0, the batch, stays first)")
    return dims


class Flatten(Layer):
    type: Literal["Flatten"]
    data_format: DataFormatArg = None


class Reshape(Layer):
    type: Literal["Reshape"]
    target_shape: Annotated[list[int], Field(min_length=1),
                            AfterValidator(_check_target_shape)] = Field(
        description="Output shape without the batch axis; one entry may be -1 (inferred).")


class Permute(Layer):
    type: Literal["Permute"]
    dims: Annotated[list[PositiveInt], Field(min_length=1),
                    AfterValidator(_check_permutation)] = Field(
        description="New order of the non-batch axes, numbered from 1.")


class RepeatVector(Layer):
    type: Literal["RepeatVector"]
    n: PositiveInt = Field(description="How many times to repeat the input vector.")


_ZPAD = "Zeros added: one int for all sides, one per axis, or [before, after] per axis."
_CROP = "Units cropped: one int for all sides, one per axis, or [before, after] per axis."
_UP = "Upsampling factor: one int for every axis, or one per axis."


class ZeroPadding1D(Layer):
    type: Literal["ZeroPadding1D"]
    padding: Margins1 = Field(1, description=_ZPAD)
    data_format: DataFormatArg = None


class ZeroPadding2D(Layer):
    type: Literal["ZeroPadding2D"]
    padding: Margins2 = Field([1, 1], description=_ZPAD)
    data_format: DataFormatArg = None


class ZeroPadding3D(Layer):
    type: Literal["ZeroPadding3D"]
    padding: Margins3 = Field([[1, 1], [1, 1], [1, 1]], description=_ZPAD)
    data_format: DataFormatArg = None


class Cropping1D(Layer):
    type: Literal["Cropping1D"]
    cropping: Margins1 = Field([1, 1], description=_CROP)


class Cropping2D(Layer):
    type: Literal["Cropping2D"]
    cropping: Margins2 = Field([[0, 0], [0, 0]], description=_CROP)
    data_format: DataFormatArg = None


class Cropping3D(Layer):
    type: Literal["Cropping3D"]
    cropping: Margins3 = Field([[1, 1], [1, 1], [1, 1]], description=_CROP)
    data_format: DataFormatArg = None


class UpSampling1D(Layer):
    type: Literal["UpSampling1D"]
    size: PositiveInt = Field(2, description="Upsampling factor.")


class UpSampling2D(Layer):
    type: Literal["UpSampling2D"]
    size: Size2 = Field([2, 2], description=_UP)
    data_format: DataFormatArg = None
    interpolation: Literal["nearest", "bilinear", "bicubic", "lanczos3", "lanczos5"] = Field(
        "nearest", description="How new values are interpolated.")


class UpSampling3D(Layer):
    type: Literal["UpSampling3D"]
    size: Size3 = Field([2, 2, 2], description=_UP)
    data_format: DataFormatArg = None


def _flatten(layer: Any, shapes: list[Shape]) -> Optional[Shape]:
    shape = shapes[0]
    return (None,) if any(d is None for d in shape) else (math.prod(shape),)


def _reshape(layer: Any, shapes: list[Shape]) -> Optional[Shape]:
    target = list(layer.target_shape)
    shape = shapes[0]
    if any(d is None for d in shape):
        return tuple(None if d == -1 else d for d in target)
    total, known = math.prod(shape), math.prod(d for d in target if d != -1)
    if -1 in target:
        if known == 0 or total % known:
            raise ShapeProblem(f"cannot reshape {fmt(shape)} ({total} values) to {target}")
        return tuple(total // known if d == -1 else d for d in target)
    if known != total:
        raise ShapeProblem(f"cannot reshape {fmt(shape)} ({total} values) to "
                           f"{fmt(tuple(target))} ({known} values)")
    return tuple(target)


def _permute(layer: Any, shapes: list[Shape]) -> Optional[Shape]:
    shape = shapes[0]
    if len(layer.dims) != len(shape):
        raise ShapeProblem(f"dims {list(layer.dims)} permute {len(layer.dims)} axes but the "
                           f"input {fmt(shape)} has {len(shape)}")
    return tuple(shape[d - 1] for d in layer.dims)


def _repeat(layer: Any, shapes: list[Shape]) -> Optional[Shape]:
    need_rank(layer, shapes[0], 1, "features")
    return (layer.n, shapes[0][0])


def _margins(value: Any, k: int) -> list[tuple[int, int]]:
    """Padding or cropping as (before, after) per axis, from any of its spellings."""
    if isinstance(value, int):
        return [(value, value)] * k
    if k == 1:                                    # a 1D layer's list is its [before, after]
        return [(value[0], value[1])]
    return [(v, v) if isinstance(v, int) else (v[0], v[1]) for v in value]


def _zero_padding(layer: Any, shapes: list[Shape]) -> Optional[Shape]:
    k = spatial_rank(layer)
    need_rank(layer, shapes[0], k + 1, "spatial axes..., channels")
    out = [None if n is None else n + a + b
           for n, (a, b) in zip(shapes[0][:k], _margins(layer.padding, k))]
    return (*out, shapes[0][-1])


def _cropping(layer: Any, shapes: list[Shape]) -> Optional[Shape]:
    k = spatial_rank(layer)
    need_rank(layer, shapes[0], k + 1, "spatial axes..., channels")
    out = []
    for n, (a, b) in zip(shapes[0][:k], _margins(layer.cropping, k)):
        if n is not None and a + b >= n:
            raise ShapeProblem(f"cropping {a} + {b} leaves nothing of an axis of size {n}")
        out.append(None if n is None else n - a - b)
    return (*out, shapes[0][-1])


def _upsampling(layer: Any, shapes: list[Shape]) -> Optional[Shape]:
    k = spatial_rank(layer)
    need_rank(layer, shapes[0], k + 1, "spatial axes..., channels")
    out = [None if n is None else n * f
           for n, f in zip(shapes[0][:k], per_axis(layer.size, k))]
    return (*out, shapes[0][-1])


LAYERS: Final = (
    LayerDef("Flatten", Flatten, _flatten, no_weights, "keeps"),
    LayerDef("Reshape", Reshape, _reshape, no_weights, "keeps"),
    LayerDef("Permute", Permute, _permute, no_weights, "keeps"),
    LayerDef("RepeatVector", RepeatVector, _repeat, no_weights, "keeps"),
    LayerDef("ZeroPadding1D", ZeroPadding1D, _zero_padding, no_weights, "keeps"),
    LayerDef("ZeroPadding2D", ZeroPadding2D, _zero_padding, no_weights, "keeps"),
    LayerDef("ZeroPadding3D", ZeroPadding3D, _zero_padding, no_weights, "keeps"),
    LayerDef("Cropping1D", Cropping1D, _cropping, no_weights, "keeps"),
    LayerDef("Cropping2D", Cropping2D, _cropping, no_weights, "keeps"),
    LayerDef("Cropping3D", Cropping3D, _cropping, no_weights, "keeps"),
    LayerDef("UpSampling1D", UpSampling1D, _upsampling, no_weights),
    LayerDef("UpSampling2D", UpSampling2D, _upsampling, no_weights),
    LayerDef("UpSampling3D", UpSampling3D, _upsampling, no_weights),
)
