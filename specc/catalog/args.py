"""Argument types and bases shared by the layer families of the catalog (no Keras)."""
# No `from __future__ import annotations`: Pydantic would eval every annotation string
# at import, which `specc validate` pays on each run.

from typing import Annotated, Final, Literal, Mapping, Optional, Union

from pydantic import Field

from specc.spec.base import Activation as ActivationName
from specc.spec.base import (
    Constraint, DataFormat, Fraction, Initializer, InitializerObject, LayerSpec, NonNegInt,
    Padding, PositiveInt, name_or_object,
)

# --- argument types shared by many layers -------------------------------------------------

#: Keras also knows "uniform" (Embedding's default); base.Initializer lacks it.
LayerInitializer = name_or_object(Literal[Initializer, "uniform"], InitializerObject)
#: Dtype policies a layer accepts (`mixed_*` computes in half precision, keeps float32 weights).
LayerDType = Literal["float16", "bfloat16", "float32", "float64", "mixed_float16",
                     "mixed_bfloat16"]
Float = Annotated[float, Field(allow_inf_nan=False)]
NonNegFloat = Annotated[float, Field(ge=0.0, allow_inf_nan=False)]
PositiveFloat = Annotated[float, Field(gt=0.0, allow_inf_nan=False)]
UnitFloat = Annotated[float, Field(ge=0.0, le=1.0)]
Axes = Union[int, Annotated[list[int], Field(min_length=1)]]
# A size given once for every axis, or once per axis (exactly as many as the layer has).
Size1 = Union[PositiveInt, Annotated[list[PositiveInt], Field(min_length=1, max_length=1)]]
Size2 = Union[PositiveInt, Annotated[list[PositiveInt], Field(min_length=2, max_length=2)]]
Size3 = Union[PositiveInt, Annotated[list[PositiveInt], Field(min_length=3, max_length=3)]]
Offset1 = Union[NonNegInt, Annotated[list[NonNegInt], Field(min_length=1, max_length=1)]]
Offset2 = Union[NonNegInt, Annotated[list[NonNegInt], Field(min_length=2, max_length=2)]]
Offset3 = Union[NonNegInt, Annotated[list[NonNegInt], Field(min_length=3, max_length=3)]]
# Padding or cropping: one int for all sides, one per axis, or a [before, after] pair per axis.
Pair = Annotated[list[NonNegInt], Field(min_length=2, max_length=2)]
Margins1 = Union[NonNegInt, Pair]
Margins2 = Union[NonNegInt, Annotated[list[Union[NonNegInt, Pair]],
                                      Field(min_length=2, max_length=2)]]
Margins3 = Union[NonNegInt, Annotated[list[Union[NonNegInt, Pair]],
                                      Field(min_length=3, max_length=3)]]

ActivationArg = Annotated[Optional[ActivationName], Field(
    description="Activation applied to the output; null or 'linear' means none.")]
UseBias = Annotated[bool, Field(description="Whether the layer adds a bias vector.")]
KernelInit = Annotated[LayerInitializer, Field(description="Initializer of the kernel.")]
BiasInit = Annotated[LayerInitializer, Field(description="Initializer of the bias vector.")]
KernelConstraint = Annotated[Optional[Constraint], Field(
    description="Constraint applied to the kernel after each update.")]
BiasConstraint = Annotated[Optional[Constraint], Field(
    description="Constraint applied to the bias after each update.")]
DataFormatArg = Annotated[Optional[DataFormat], Field(
    description="Axis order of the input; null means Keras's setting (channels_last).")]
PaddingArg = Annotated[Padding, Field(
    description="'valid' (no padding) or 'same' (pad so that stride 1 keeps the size).")]
Seed = Annotated[Optional[NonNegInt], Field(
    description="Seed of the layer's random draws; null means unseeded.")]
Rate = Annotated[Fraction, Field(description="Fraction of the input units to drop, in [0, 1).")]

#: Merges read at least two tensors; this bounds the list only to catch mistakes.
MAX_MERGE_INPUTS: Final = 64
KERNEL_BIAS: Final[Mapping[str, tuple[str, ...]]] = {
    "kernel": ("kernel_regularizer",), "bias": ("bias_regularizer",)}
RECURRENT_WEIGHTS: Final[Mapping[str, tuple[str, ...]]] = {
    "kernel": ("kernel_regularizer", "recurrent_regularizer"), "bias": ("bias_regularizer",)}
GAMMA_BETA: Final[Mapping[str, tuple[str, ...]]] = {
    "kernel": ("gamma_regularizer",), "bias": ("beta_regularizer",)}


# --- bases ---------------------------------------------------------------------------------

class Layer(LayerSpec):
    """Arguments every Keras layer accepts."""

    dtype: Optional[LayerDType] = Field(
        None, description="Dtype policy of the layer; null means the global policy.")


class WeightedLayer(Layer):
    """A layer with weights, which can be frozen."""

    trainable: bool = Field(True, description="false freezes the layer's weights.")

