"""Shared building blocks of the spec language: strict models, names, closed vocabularies."""
# No `from __future__ import annotations`: Pydantic would eval every annotation string
# at import, which `specc validate` pays on each run.

from typing import Annotated, Any, ClassVar, Final, Literal, Mapping, Optional, Union

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

#: Names of inputs, layers, outputs and clauses: they become Keras names and log keys.
NAME_PATTERN: Final = r"^[A-Za-z_][A-Za-z0-9_]{0,63}$"
Name = Annotated[str, StringConstraints(pattern=NAME_PATTERN)]
PositiveInt = Annotated[int, Field(gt=0)]
NonNegInt = Annotated[int, Field(ge=0)]
Fraction = Annotated[float, Field(ge=0.0, lt=1.0)]
# A size given once for every axis, or once per axis.
IntOrList = Union[PositiveInt, Annotated[list[PositiveInt], Field(min_length=1, max_length=3)]]

Activation = Literal[
    "linear", "relu", "relu6", "leaky_relu", "elu", "selu", "gelu", "silu", "swish", "mish",
    "sigmoid", "hard_sigmoid", "hard_silu", "tanh", "softmax", "log_softmax", "softplus",
    "softsign", "exponential",
]
Initializer = Literal[
    "zeros", "ones", "glorot_uniform", "glorot_normal", "he_uniform", "he_normal",
    "lecun_uniform", "lecun_normal", "random_normal", "random_uniform", "truncated_normal",
    "orthogonal", "identity",
]
Constraint = Literal["max_norm", "non_neg", "unit_norm", "min_max_norm"]
Padding = Literal["valid", "same"]
PaddingCausal = Literal["valid", "same", "causal"]
DataFormat = Literal["channels_last", "channels_first"]
DType = Literal["float16", "bfloat16", "float32", "float64", "int32", "int64", "bool", "string"]
WeightKind = Literal["kernel", "bias"]


class Strict(BaseModel):
    """Every spec model: unknown keys are errors, no type coercion ('64' is not 64)."""

    model_config = ConfigDict(extra="forbid", strict=True, populate_by_name=True,
                              validate_default=False, defer_build=True)


class LayerSpec(Strict):
    """Fields every layer has; subclasses add the Keras constructor arguments they accept.

    Class metadata tells the later stages what the layer can do without importing Keras.
    """

    name: Name = Field(description="The Keras layer's name; unique in the spec.")
    from_: Optional[Union[Name, Annotated[list[Name], Field(min_length=1)]]] = Field(
        default=None, alias="from",
        description="Input(s) of this layer: an input or layer name, or a list of them. "
                    "Default: the previous layer (the first input for the first layer).")

    #: `at: pre_activation` is allowed: the `activation` argument can be split off.
    splittable_activation: ClassVar[bool] = False
    #: Weight kinds of a weight penalty -> the constructor arguments that take the regularizer.
    weight_args: ClassVar[Mapping[str, tuple[str, ...]]] = {}
    #: Keras applies the layer's `activity_regularizer` to its output. False where Keras
    #: hands it down to internal sublayers instead (MultiHeadAttention's projections).
    regularizes_own_output: ClassVar[bool] = True
    #: How many tensors the layer reads.
    min_inputs: ClassVar[int] = 1
    max_inputs: ClassVar[int] = 1

    def keras_kwargs(self) -> dict[str, Any]:
        """The constructor arguments the user wrote (Keras defaults fill the rest)."""
        return self.model_dump(exclude_unset=True, exclude={"name", "type", "from_"},
                               by_alias=False)

    def weight_kinds(self) -> frozenset[str]:
        """The weight kinds this configured layer has (no bias when use_bias is false)."""
        kinds = set(self.weight_args)
        if getattr(self, "use_bias", True) is False or getattr(self, "center", True) is False:
            kinds.discard("bias")
        if getattr(self, "scale", True) is False:
            kinds.discard("kernel")
        return frozenset(kinds)

    def activation_name(self) -> str | None:
        """The activation that `pre_activation` splits off (None when linear or absent)."""
        act = getattr(self, "activation", None)
        return None if act in (None, "linear") else act
