"""The layer catalog: one strict model per Keras layer class, typed like its constructor.

No Keras import here. `tests/test_layers_catalog.py` checks every field name, default and
regularizer argument against the installed Keras signatures, so the catalog stays honest.
Regularizer arguments are not fields: penalties reach them through `weight_args`.
"""
# No `from __future__ import annotations`: Pydantic would eval every annotation string
# at import, which `specc validate` pays on each run.

from typing import Annotated, Any, ClassVar, Final, Literal, Mapping, Optional, Union, get_args

from pydantic import AfterValidator, Field

from specc.spec.base import Activation as ActivationName
from specc.spec.base import (
    Constraint, DataFormat, Fraction, Initializer, InitializerObject, LayerSpec, NonNegInt,
    Padding, name_or_object,
    PaddingCausal, PositiveInt, Strict,
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


def _check_target_shape(shape: list[int]) -> list[int]:
    if any(d == 0 or d < -1 for d in shape) or shape.count(-1) > 1:
        raise ValueError("target_shape takes positive sizes and at most one -1")
    return shape


def _check_permutation(dims: list[int]) -> list[int]:
    if sorted(dims) != list(range(1, len(dims) + 1)):
        raise ValueError(f"dims must order 1..{len(dims)} (axis 0, the batch, stays first)")
    return dims


# --- bases ---------------------------------------------------------------------------------

class Layer(LayerSpec):
    """Arguments every Keras layer accepts."""

    dtype: Optional[LayerDType] = Field(
        None, description="Dtype policy of the layer; null means the global policy.")


class WeightedLayer(Layer):
    """A layer with weights, which can be frozen."""

    trainable: bool = Field(True, description="false freezes the layer's weights.")


# --- core ----------------------------------------------------------------------------------

class Dense(WeightedLayer):
    type: Literal["Dense"]
    units: PositiveInt = Field(description="Size of the output's last axis.")
    activation: ActivationArg = None
    use_bias: UseBias = True
    kernel_initializer: KernelInit = "glorot_uniform"
    bias_initializer: BiasInit = "zeros"
    kernel_constraint: KernelConstraint = None
    bias_constraint: BiasConstraint = None

    splittable_activation: ClassVar[bool] = True
    weight_args: ClassVar[Mapping[str, tuple[str, ...]]] = KERNEL_BIAS


class Embedding(WeightedLayer):
    """Maps integer ids (the input's dtype must be an integer type) to dense vectors."""

    type: Literal["Embedding"]
    input_dim: PositiveInt = Field(description="Vocabulary size: ids are in [0, input_dim).")
    output_dim: PositiveInt = Field(description="Size of each embedding vector.")
    embeddings_initializer: LayerInitializer = Field(
        "uniform", description="Initializer of the embedding matrix.")
    embeddings_constraint: Optional[Constraint] = Field(
        None, description="Constraint applied to the embedding matrix after each update.")
    mask_zero: bool = Field(False, description="Treat id 0 as padding and mask it out.")

    weight_args: ClassVar[Mapping[str, tuple[str, ...]]] = {
        "kernel": ("embeddings_regularizer",)}


class Activation(Layer):
    type: Literal["Activation"]
    activation: ActivationName = Field(description="The activation function to apply.")


class Identity(Layer):
    type: Literal["Identity"]

    # Keras's Identity has no get_config of its own: an activity_regularizer would make it
    # unsaveable; the clause goes on an identity Activation after it instead.
    regularizes_own_output: ClassVar[bool] = False


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


# --- convolutions --------------------------------------------------------------------------

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


# --- pooling -------------------------------------------------------------------------------

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


# --- reshaping -----------------------------------------------------------------------------

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


# --- regularization ------------------------------------------------------------------------

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


class Masking(Layer):
    """Masks the steps whose features all equal `mask_value` for the layers after it (and
    the penalties on them: specc.penalties.MASK_NOTE)."""

    type: Literal["Masking"]
    mask_value: float = Field(0.0, allow_inf_nan=False,
                              description="A step whose features all equal it is masked.")


# --- normalization -------------------------------------------------------------------------

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


# --- activation layers ---------------------------------------------------------------------

class ReLU(Layer):
    type: Literal["ReLU"]
    max_value: Optional[NonNegFloat] = Field(None, description="Upper bound; null: none.")
    negative_slope: NonNegFloat = Field(0.0, description="Slope below the threshold.")
    threshold: Float = Field(0.0, description="Inputs below this are damped.")


class LeakyReLU(Layer):
    type: Literal["LeakyReLU"]
    negative_slope: NonNegFloat = Field(0.3, description="Slope for negative inputs.")


class Softmax(Layer):
    type: Literal["Softmax"]
    axis: Axes = Field(-1, description="The axis or axes to normalize over.")


# --- recurrent -----------------------------------------------------------------------------

class RecurrentArgs(Strict):
    """Constructor arguments of a recurrent layer: a `Bidirectional`'s nested `layer`.

    No `name` or `from`: the wrapper supplies both. The top-level recurrent layers
    (`LSTM`, ...) add them by also deriving from `LayerSpec`.
    """

    units: PositiveInt = Field(description="Size of the hidden state.")
    activation: ActivationArg = "tanh"
    use_bias: UseBias = True
    kernel_initializer: KernelInit = "glorot_uniform"
    recurrent_initializer: LayerInitializer = Field(
        "orthogonal", description="Initializer of the recurrent kernel.")
    bias_initializer: BiasInit = "zeros"
    kernel_constraint: KernelConstraint = None
    recurrent_constraint: Optional[Constraint] = Field(
        None, description="Constraint applied to the recurrent kernel.")
    bias_constraint: BiasConstraint = None
    dropout: Fraction = Field(0.0, description="Dropout rate on the inputs.")
    recurrent_dropout: Fraction = Field(0.0, description="Dropout rate on the state.")
    seed: Seed = None
    return_sequences: bool = Field(False, description="Return every step, not just the last.")
    return_state: bool = Field(False, description="Also return the final state(s): format 2 "
                               "reads them as `<layer>.state_h`/`.state_c` (LSTM) or `.state`.")
    go_backwards: bool = Field(False, description="Read the sequence backwards.")
    unroll: bool = Field(False, description="Unroll the loop (short sequences only).")

    weight_args: ClassVar[Mapping[str, tuple[str, ...]]] = RECURRENT_WEIGHTS

    def keras_kwargs(self) -> dict[str, Any]:
        """The constructor arguments the user wrote (name and from exist only top-level)."""
        return self.model_dump(exclude_unset=True, exclude={"name", "type", "from_", "call"})


class _GatedArgs(RecurrentArgs):
    recurrent_activation: ActivationArg = "sigmoid"
    use_cudnn: Union[Literal["auto"], bool] = Field(
        "auto", description="Use the cuDNN kernel: true, false, or 'auto' (when possible).")


class SimpleRNNArgs(RecurrentArgs):
    type: Literal["SimpleRNN"]
    state_ports: ClassVar[tuple[str, ...]] = ("state",)


class LSTMArgs(_GatedArgs):
    type: Literal["LSTM"]
    unit_forget_bias: bool = Field(True, description="Start the forget gate's bias at 1.")
    state_ports: ClassVar[tuple[str, ...]] = ("state_h", "state_c")


class GRUArgs(_GatedArgs):
    type: Literal["GRU"]
    reset_after: bool = Field(True, description="Apply the reset gate after the matmul "
                                                "(the cuDNN-compatible variant).")
    state_ports: ClassVar[tuple[str, ...]] = ("state",)


RecurrentLayer = Annotated[Union[SimpleRNNArgs, LSTMArgs, GRUArgs], Field(discriminator="type")]


# The arguments first in the bases: their weight_args win over LayerSpec's empty default.
class SimpleRNN(SimpleRNNArgs, WeightedLayer):
    """The recurrent layer at top level: its arguments plus name, from, dtype, trainable."""

    regularizes_own_output: ClassVar[bool] = False   # Keras drops its activity_regularizer


class LSTM(LSTMArgs, WeightedLayer):
    """The recurrent layer at top level: its arguments plus name, from, dtype, trainable."""


class GRU(GRUArgs, WeightedLayer):
    """The recurrent layer at top level: its arguments plus name, from, dtype, trainable."""


class Bidirectional(WeightedLayer):
    """Runs `layer` forwards and backwards and merges the two outputs.

    Its weights live in the nested layer: weight regularizers (`weight_args`, the same names
    for every recurrent type) go to the nested constructor, which Keras copies backwards.
    """

    type: Literal["Bidirectional"]
    layer: RecurrentLayer = Field(description="The recurrent layer to run both ways "
                                              "(no name or from: the wrapper names it).")
    merge_mode: Optional[Literal["concat", "sum", "mul", "ave"]] = Field(
        "concat", description="How the two outputs combine; null returns both.")

    weight_args: ClassVar[Mapping[str, tuple[str, ...]]] = RECURRENT_WEIGHTS

    def keras_kwargs(self) -> dict[str, Any]:
        """The wrapper's own arguments; build `layer` from `self.layer.keras_kwargs()`."""
        return self.model_dump(exclude_unset=True,
                               exclude={"name", "type", "from_", "layer", "call"})

    def ports(self) -> tuple[str, ...]:
        """With the nested layer's `return_state`: each direction's final state(s)."""
        return tuple(f"{side}_{p.replace('state_', '') if p != 'state' else 'state'}"
                     for side in ("forward", "backward")
                     for p in (self.layer.state_ports if self.layer.return_state else ()))

    def weight_kinds(self) -> frozenset[str]:
        if self._shares is not None:
            return frozenset()
        kinds = set(self.weight_args)
        if self.layer.use_bias is False:
            kinds.discard("bias")
        return frozenset(kinds)


# --- attention -----------------------------------------------------------------------------

class MultiHeadAttention(WeightedLayer):
    """Reads [query, value] or [query, value, key]; one input means self-attention."""

    type: Literal["MultiHeadAttention"]
    num_heads: PositiveInt = Field(description="Number of attention heads.")
    key_dim: PositiveInt = Field(description="Size of each head for query and key.")
    value_dim: Optional[PositiveInt] = Field(
        None, description="Size of each head for value; null means key_dim.")
    dropout: Fraction = Field(0.0, description="Dropout rate on the attention scores.")
    use_bias: UseBias = True
    output_shape: Optional[Union[PositiveInt, Annotated[list[PositiveInt],
                                                        Field(min_length=1)]]] = Field(
        None, description="Output shape without batch and sequence axes; null: the query's.")
    attention_axes: Optional[Axes] = Field(
        None, description="Axes attention runs over; null means all but batch, heads, features.")
    kernel_initializer: KernelInit = "glorot_uniform"
    bias_initializer: BiasInit = "zeros"
    kernel_constraint: KernelConstraint = None
    bias_constraint: BiasConstraint = None
    use_gate: bool = Field(False, description="Gate the attention output with a sigmoid.")
    seed: Seed = None

    weight_args: ClassVar[Mapping[str, tuple[str, ...]]] = KERNEL_BIAS
    max_inputs: ClassVar[int] = 3
    regularizes_own_output: ClassVar[bool] = False   # Keras passes it to the projections


# --- merging -------------------------------------------------------------------------------

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


# --- the catalog ---------------------------------------------------------------------------

AnyLayer = Annotated[Union[
    Dense, Embedding, Activation, Identity, Flatten, Reshape, Permute, RepeatVector, Rescaling,
    Normalization,
    Conv1D, Conv2D, Conv3D, Conv1DTranspose, Conv2DTranspose, Conv3DTranspose,
    SeparableConv1D, SeparableConv2D, DepthwiseConv1D, DepthwiseConv2D,
    MaxPooling1D, MaxPooling2D, MaxPooling3D, AveragePooling1D, AveragePooling2D,
    AveragePooling3D, GlobalMaxPooling1D, GlobalMaxPooling2D, GlobalMaxPooling3D,
    GlobalAveragePooling1D, GlobalAveragePooling2D, GlobalAveragePooling3D,
    ZeroPadding1D, ZeroPadding2D, ZeroPadding3D, Cropping1D, Cropping2D, Cropping3D,
    UpSampling1D, UpSampling2D, UpSampling3D,
    Dropout, SpatialDropout1D, SpatialDropout2D, SpatialDropout3D, GaussianDropout,
    GaussianNoise, Masking,
    BatchNormalization, LayerNormalization, GroupNormalization, UnitNormalization,
    ReLU, LeakyReLU, Softmax,
    SimpleRNN, LSTM, GRU, Bidirectional, MultiHeadAttention,
    Add, Subtract, Multiply, Average, Maximum, Minimum, Concatenate, Dot,
], Field(discriminator="type")]

#: Keras class name -> its spec model, for every layer the catalog knows.
LAYER_TYPES: Final[dict[str, type[LayerSpec]]] = {
    get_args(cls.model_fields["type"].annotation)[0]: cls
    for cls in get_args(get_args(AnyLayer)[0])
}
