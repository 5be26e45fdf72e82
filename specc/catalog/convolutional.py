"""Convolutions: Conv, ConvTranspose, SeparableConv, DepthwiseConv (keras/src/layers/convolutional).

Shapes and weight counts assume channels_last (specc.shapes leaves channels_first unknown).
"""
# No `from __future__ import annotations`: Pydantic would eval every annotation string
# at import, which `specc validate` pays on each run.

import math
from typing import Any, ClassVar, Final, Literal, Mapping, Optional

from pydantic import Field

from specc.catalog.args import (
    KERNEL_BIAS, ActivationArg, BiasConstraint, BiasInit, DataFormatArg, KernelConstraint,
    KernelInit, LayerInitializer, Offset1, Offset2, Offset3, PaddingArg, Size1, Size2, Size3,
    UseBias, WeightedLayer,
)
from specc.catalog.definition import (
    SPATIAL_NAMES, LayerDef, Shape, channels, need_rank, per_axis, spatial, spatial_rank,
)
from specc.spec.base import Constraint, PaddingCausal, PositiveInt


class _Conv(WeightedLayer):
    """Arguments of every convolution; its activation can be split off."""

    padding: PaddingArg = "valid"
    data_format: DataFormatArg = None
    activation: ActivationArg = None
    use_bias: UseBias = True
    bias_initializer: BiasInit = "zeros"
    bias_constraint: BiasConstraint = None

    splittable_activation: ClassVar[bool] = True


class _KernelConv(_Conv):
    filters: PositiveInt = Field(description="Number of output channels.")
    kernel_initializer: KernelInit = "glorot_uniform"
    kernel_constraint: KernelConstraint = None

    weight_args: ClassVar[Mapping[str, tuple[str, ...]]] = KERNEL_BIAS


class _SeparableConv(_Conv):
    filters: PositiveInt = Field(description="Number of output channels.")
    depth_multiplier: PositiveInt = Field(
        1, description="Depthwise output channels per input channel.")
    depthwise_initializer: LayerInitializer = Field(
        "glorot_uniform", description="Initializer of the depthwise kernel.")
    pointwise_initializer: LayerInitializer = Field(
        "glorot_uniform", description="Initializer of the pointwise kernel.")
    depthwise_constraint: Optional[Constraint] = Field(
        None, description="Constraint applied to the depthwise kernel.")
    pointwise_constraint: Optional[Constraint] = Field(
        None, description="Constraint applied to the pointwise kernel.")

    weight_args: ClassVar[Mapping[str, tuple[str, ...]]] = {
        "kernel": ("depthwise_regularizer", "pointwise_regularizer"),
        "bias": ("bias_regularizer",)}


class _DepthwiseConv(_Conv):
    depth_multiplier: PositiveInt = Field(
        1, description="Output channels per input channel.")
    depthwise_initializer: LayerInitializer = Field(
        "glorot_uniform", description="Initializer of the depthwise kernel.")
    depthwise_constraint: Optional[Constraint] = Field(
        None, description="Constraint applied to the depthwise kernel.")

    weight_args: ClassVar[Mapping[str, tuple[str, ...]]] = {
        "kernel": ("depthwise_regularizer",), "bias": ("bias_regularizer",)}


_KERNEL = "Size of the convolution window: one int for every axis, or one per axis."
_STRIDES = "Step of the window: one int for every axis, or one per axis."
_DILATION = "Dilation of the window: one int for every axis, or one per axis."
_GROUPS = "Number of channel groups convolved separately; divides filters and input channels."
_OUT_PAD = "Extra size added to one side of the output; null infers it."


class Conv1D(_KernelConv):
    type: Literal["Conv1D"]
    kernel_size: Size1 = Field(description=_KERNEL)
    strides: Size1 = Field(1, description=_STRIDES)
    padding: PaddingCausal = Field(
        "valid", description="'valid', 'same', or 'causal' (output t sees inputs <= t).")
    dilation_rate: Size1 = Field(1, description=_DILATION)
    groups: PositiveInt = Field(1, description=_GROUPS)


class Conv2D(_KernelConv):
    type: Literal["Conv2D"]
    kernel_size: Size2 = Field(description=_KERNEL)
    strides: Size2 = Field([1, 1], description=_STRIDES)
    dilation_rate: Size2 = Field([1, 1], description=_DILATION)
    groups: PositiveInt = Field(1, description=_GROUPS)


class Conv3D(_KernelConv):
    type: Literal["Conv3D"]
    kernel_size: Size3 = Field(description=_KERNEL)
    strides: Size3 = Field([1, 1, 1], description=_STRIDES)
    dilation_rate: Size3 = Field([1, 1, 1], description=_DILATION)
    groups: PositiveInt = Field(1, description=_GROUPS)


class Conv1DTranspose(_KernelConv):
    type: Literal["Conv1DTranspose"]
    kernel_size: Size1 = Field(description=_KERNEL)
    strides: Size1 = Field(1, description=_STRIDES)
    output_padding: Optional[Offset1] = Field(None, description=_OUT_PAD)
    dilation_rate: Size1 = Field(1, description=_DILATION)


class Conv2DTranspose(_KernelConv):
    type: Literal["Conv2DTranspose"]
    kernel_size: Size2 = Field(description=_KERNEL)
    strides: Size2 = Field([1, 1], description=_STRIDES)
    output_padding: Optional[Offset2] = Field(None, description=_OUT_PAD)
    dilation_rate: Size2 = Field([1, 1], description=_DILATION)


class Conv3DTranspose(_KernelConv):
    type: Literal["Conv3DTranspose"]
    kernel_size: Size3 = Field(description=_KERNEL)
    strides: Size3 = Field([1, 1, 1], description=_STRIDES)
    output_padding: Optional[Offset3] = Field(None, description=_OUT_PAD)
    dilation_rate: Size3 = Field([1, 1, 1], description=_DILATION)


class SeparableConv1D(_SeparableConv):
    type: Literal["SeparableConv1D"]
    kernel_size: Size1 = Field(description=_KERNEL)
    strides: Size1 = Field(1, description=_STRIDES)
    dilation_rate: Size1 = Field(1, description=_DILATION)


class SeparableConv2D(_SeparableConv):
    type: Literal["SeparableConv2D"]
    kernel_size: Size2 = Field(description=_KERNEL)
    strides: Size2 = Field([1, 1], description=_STRIDES)
    dilation_rate: Size2 = Field([1, 1], description=_DILATION)


class DepthwiseConv1D(_DepthwiseConv):
    type: Literal["DepthwiseConv1D"]
    kernel_size: Size1 = Field(description=_KERNEL)
    strides: Size1 = Field(1, description=_STRIDES)
    dilation_rate: Size1 = Field(1, description=_DILATION)


class DepthwiseConv2D(_DepthwiseConv):
    type: Literal["DepthwiseConv2D"]
    kernel_size: Size2 = Field(description=_KERNEL)
    strides: Size2 = Field([1, 1], description=_STRIDES)
    dilation_rate: Size2 = Field([1, 1], description=_DILATION)


def _conv_shape(layer: Any, shapes: list[Shape]) -> Optional[Shape]:
    k = spatial_rank(layer)
    shape = shapes[0]
    out = spatial(layer, shape, k, layer.kernel_size, layer.strides,
                  getattr(layer, "dilation_rate", 1), "kernel")
    n = shape[-1]
    if layer.type.startswith("DepthwiseConv"):
        return (*out, None if n is None else n * layer.depth_multiplier)
    return (*out, layer.filters)


def _deconv_length(n: Optional[int], size: int, stride: int, dilation: int, padding: str,
                   extra: Optional[int]) -> Optional[int]:
    """Keras's transposed-convolution output length (backend_utils, TF padding rules)."""
    if n is None:
        return None
    span = dilation * (size - 1) + 1
    if padding == "valid":
        return (n - 1) * stride + span + (max(span, stride) - span if extra is None else extra)
    return n * stride if extra is None else (n - 1) * stride + span % 2 + extra


def _transpose_rank(layer: Any) -> int:
    return int(layer.type[4])                     # Conv2DTranspose -> 2


def _conv_transpose_shape(layer: Any, shapes: list[Shape]) -> Optional[Shape]:
    k = _transpose_rank(layer)
    shape = shapes[0]
    need_rank(layer, shape, k + 1, SPATIAL_NAMES[k])
    extra = ([None] * k if layer.output_padding is None else per_axis(layer.output_padding, k))
    out = [_deconv_length(n, s, st, d, layer.padding, e) for n, s, st, d, e in zip(
        shape[:k], per_axis(layer.kernel_size, k), per_axis(layer.strides, k),
        per_axis(layer.dilation_rate, k), extra)]
    return (*out, layer.filters)


def _conv_params(layer: Any, shapes: list[Shape]) -> Optional[int]:
    n = channels(shapes[0])
    if n is None or layer.data_format == "channels_first":
        return None
    k = _transpose_rank(layer) if "Transpose" in layer.type else spatial_rank(layer)
    size = layer.kernel_size
    kernel = size ** k if isinstance(size, int) else math.prod(size)
    bias = layer.use_bias
    if layer.type.startswith("Separable"):
        m = layer.depth_multiplier
        return kernel * n * m + n * m * layer.filters + layer.filters * bias
    if layer.type.startswith("Depthwise"):
        m = layer.depth_multiplier
        return kernel * n * m + n * m * bias
    groups = layer.__dict__.get("groups", 1)
    return kernel * (n // groups) * layer.filters + layer.filters * bias


LAYERS: Final = (
    LayerDef("Conv1D", Conv1D, _conv_shape, _conv_params, "float"),
    LayerDef("Conv2D", Conv2D, _conv_shape, _conv_params, "float"),
    LayerDef("Conv3D", Conv3D, _conv_shape, _conv_params, "float"),
    LayerDef("Conv1DTranspose", Conv1DTranspose, _conv_transpose_shape, _conv_params, "float"),
    LayerDef("Conv2DTranspose", Conv2DTranspose, _conv_transpose_shape, _conv_params, "float"),
    LayerDef("Conv3DTranspose", Conv3DTranspose, _conv_transpose_shape, _conv_params, "float"),
    LayerDef("SeparableConv1D", SeparableConv1D, _conv_shape, _conv_params, "float"),
    LayerDef("SeparableConv2D", SeparableConv2D, _conv_shape, _conv_params, "float"),
    LayerDef("DepthwiseConv1D", DepthwiseConv1D, _conv_shape, _conv_params, "float"),
    LayerDef("DepthwiseConv2D", DepthwiseConv2D, _conv_shape, _conv_params, "float"),
)
