"""Shared building blocks of the spec language: strict models, names, closed vocabularies."""
# No `from __future__ import annotations`: Pydantic would eval every annotation string
# at import, which `specc validate` pays on each run.

from typing import Annotated, Any, ClassVar, Final, Literal, Mapping, Optional, Union

from pydantic import (AfterValidator, BaseModel, ConfigDict, Discriminator, Field,
                      StringConstraints, Tag, ValidationInfo)
from pydantic_core import PydanticCustomError

#: Names of inputs, layers, outputs and clauses: they become Keras names and log keys.
NAME_PATTERN: Final = r"^[A-Za-z_][A-Za-z0-9_]{0,63}$"
Name = Annotated[str, StringConstraints(pattern=NAME_PATTERN)]

#: Format 2 names of layers and clauses are paths, `conv3.block2.conv1`; a reference may end in
#: a layer's output port, `encoder.state_h`.
PATH_PATTERN: Final = r"^[A-Za-z_][A-Za-z0-9_]{0,63}(\.[A-Za-z_][A-Za-z0-9_]{0,63}){0,15}$"


def format_of(info: ValidationInfo) -> int:
    """The format version of the spec being validated: Pydantic's validation context carries
    it (`model_validate(data, context={"format": 2})`); format 1 when none is given."""
    context = info.context
    return context.get("format", 1) if isinstance(context, dict) else 1


def _plain_in_format1(value: str, info: ValidationInfo) -> str:
    if "." in value and format_of(info) < 2:
        raise PydanticCustomError("string_pattern_mismatch",
                                  "String should match pattern '{pattern}'",
                                  {"pattern": NAME_PATTERN})
    return value


#: A layer or clause name, or a reference to one: a plain name in format 1, a path in format 2.
LayerRef = Annotated[str, StringConstraints(pattern=PATH_PATTERN), AfterValidator(_plain_in_format1)]
PositiveInt = Annotated[int, Field(gt=0)]
NonNegInt = Annotated[int, Field(ge=0)]
Fraction = Annotated[float, Field(ge=0.0, lt=1.0)]
# A size given once for every axis, or once per axis.
IntOrList = Union[PositiveInt, Annotated[list[PositiveInt], Field(min_length=1, max_length=3)]]

#: Keras's activations by name that map a tensor to one of the same shape. Left out: `glu`
#: (halves the last axis) and `threshold` (needs its own arguments).
Activation = Literal[
    "linear", "relu", "relu6", "leaky_relu", "elu", "selu", "celu", "gelu", "silu", "swish",
    "mish", "sigmoid", "hard_sigmoid", "hard_silu", "hard_swish", "log_sigmoid",
    "sparse_sigmoid", "tanh", "hard_tanh", "tanh_shrink", "hard_shrink", "soft_shrink",
    "softmax", "log_softmax", "sparsemax", "softplus", "sparse_plus", "squareplus", "softsign",
    "exponential",
]
Initializer = Literal[
    "zeros", "ones", "glorot_uniform", "glorot_normal", "he_uniform", "he_normal",
    "lecun_uniform", "lecun_normal", "random_normal", "random_uniform", "truncated_normal",
    "orthogonal", "identity",
]
ConstraintName = Literal["max_norm", "non_neg", "unit_norm", "min_max_norm"]


class Strict(BaseModel):
    """Every spec model: unknown keys are errors, no type coercion ('64' is not 64)."""

    model_config = ConfigDict(extra="forbid", strict=True, populate_by_name=True,
                              validate_default=False, defer_build=True)


_Seed = Annotated[Optional[Annotated[int, Field(ge=0, lt=2**32)]],
                  Field(description="Seed of the draws; null: unseeded.")]
_Real = Annotated[float, Field(allow_inf_nan=False)]
_Pos = Annotated[float, Field(gt=0.0, allow_inf_nan=False)]


class _Object(Strict):
    """Format 2: a Keras object with arguments, `{type: ClassName, ...arguments}`."""


class _Seeded(_Object):
    seed: _Seed = None


class VarianceScalingInit(_Seeded):
    type: Literal["VarianceScaling"]
    scale: _Pos = Field(1.0, description="Scaling factor (positive).")
    mode: Literal["fan_in", "fan_out", "fan_avg"] = Field("fan_in", description="Which fan.")
    distribution: Literal["truncated_normal", "untruncated_normal", "uniform"] = Field(
        "truncated_normal", description="The distribution to draw from.")


class RandomNormalInit(_Seeded):
    type: Literal["RandomNormal", "TruncatedNormal"]
    mean: _Real = Field(0.0, description="Mean of the draws.")
    stddev: _Pos = Field(0.05, description="Standard deviation of the draws.")


class RandomUniformInit(_Seeded):
    type: Literal["RandomUniform"]
    minval: _Real = Field(-0.05, description="Lower bound.")
    maxval: _Real = Field(0.05, description="Upper bound.")


class SeededInit(_Seeded):
    type: Literal["GlorotUniform", "GlorotNormal", "HeUniform", "HeNormal", "LecunUniform",
                  "LecunNormal"]


class OrthogonalInit(_Seeded):
    type: Literal["Orthogonal"]
    gain: _Real = Field(1.0, description="Multiplicative factor.")


class ConstantInit(_Object):
    type: Literal["Constant"]
    value: _Real = Field(0.0, description="The value of every element.")


class PlainInit(_Object):
    type: Literal["Zeros", "Ones"]


class IdentityInit(_Object):
    type: Literal["Identity"]
    gain: _Real = Field(1.0, description="Multiplicative factor.")


InitializerObject = Union[VarianceScalingInit, RandomNormalInit, RandomUniformInit, SeededInit,
                          OrthogonalInit, ConstantInit, PlainInit, IdentityInit]


class MaxNormConstraint(_Object):
    type: Literal["MaxNorm"]
    max_value: _Pos = Field(2.0, description="Largest norm allowed.")
    axis: Union[int, list[int]] = Field(0, description="Axis (or axes) of the norm.")


class MinMaxNormConstraint(_Object):
    type: Literal["MinMaxNorm"]
    min_value: Annotated[float, Field(ge=0.0, allow_inf_nan=False)] = Field(
        0.0, description="Smallest norm allowed.")
    max_value: _Pos = Field(1.0, description="Largest norm allowed.")
    rate: Annotated[float, Field(ge=0.0, le=1.0)] = Field(1.0, description="Enforcement rate.")
    axis: Union[int, list[int]] = Field(0, description="Axis (or axes) of the norm.")


class UnitNormConstraint(_Object):
    type: Literal["UnitNorm"]
    axis: Union[int, list[int]] = Field(0, description="Axis (or axes) of the norm.")


class NonNegConstraint(_Object):
    type: Literal["NonNeg"]


def name_or_object(names: Any, objects: Any) -> Any:
    """A Keras object by name (`he_normal`) or, in format 2, with arguments (`{type: ...}`):
    a string is checked against the names only, a mapping against the objects only, so each
    gets its own clear error."""
    return Annotated[
        Union[Annotated[names, Tag("name")],
              Annotated[Annotated[objects, Field(discriminator="type")], Tag("object")]],
        # (a mapping when validating, the object model itself when serializing)
        Discriminator(lambda v: "object" if isinstance(v, (dict, BaseModel)) else "name")]


ConstraintObject = Union[MaxNormConstraint, MinMaxNormConstraint, UnitNormConstraint,
                         NonNegConstraint]
#: A constraint by name (format 1 and 2) or with arguments (format 2).
Constraint = name_or_object(ConstraintName, ConstraintObject)
#: Keras object classes that `{type: ...}` may name, by argument kind (for emission).
OBJECT_TYPES: Final = {
    "initializer": {t for c in InitializerObject.__args__
                    for t in c.model_fields["type"].annotation.__args__},
    "constraint": {t for c in ConstraintObject.__args__
                   for t in c.model_fields["type"].annotation.__args__},
}

Padding = Literal["valid", "same"]
PaddingCausal = Literal["valid", "same", "causal"]
DataFormat = Literal["channels_last", "channels_first"]
DType = Literal["float16", "bfloat16", "float32", "float64", "int32", "int64", "bool", "string"]
WeightKind = Literal["kernel", "bias"]


CallArg = Literal["initial_state", "mask", "attention_mask", "query_mask", "value_mask",
                  "key_mask", "use_causal_mask"]
CallArgs = dict[CallArg, Union[LayerRef, Annotated[list[LayerRef], Field(min_length=1,
                                                                         max_length=8)], bool]]


class LayerSpec(Strict):
    """Fields every layer has; subclasses add the Keras constructor arguments they accept.

    Class metadata tells the later stages what the layer can do without importing Keras.
    """

    name: LayerRef = Field(description="The Keras layer's name; unique in the spec.")
    from_: Optional[Union[LayerRef, Annotated[list[LayerRef], Field(min_length=1)]]] = Field(
        default=None, alias="from",
        description="Input(s) of this layer: an input or layer name, or a list of them. "
                    "Default: the previous layer (the first input for the first layer).")
    call: Optional[CallArgs] = Field(
        default=None, description="Format 2: tensors passed as call arguments, by name "
        "(`initial_state: [enc.state_h, enc.state_c]`, `attention_mask: m`, `mask: m`).")

    #: Format 2: the layer whose weights this entry calls again (set by `share:`).
    #: A class attribute, set on an instance with object.__setattr__ by the checks: a pydantic
    #: private attribute would cost every layer of every spec its __getattr__ and init paths.
    _shares: ClassVar[Optional[str]] = None

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
        return self.model_dump(exclude_unset=True, exclude={"name", "type", "from_", "call"},
                               by_alias=False)

    def weight_kinds(self) -> frozenset[str]:
        """The weight kinds this configured layer has (no bias when use_bias is false)."""
        if self._shares is not None:
            return frozenset()          # a shared call: the weights are the other layer's
        kinds = set(self.weight_args)
        if getattr(self, "use_bias", True) is False or getattr(self, "center", True) is False:
            kinds.discard("bias")
        if getattr(self, "scale", True) is False:
            kinds.discard("kernel")
        return frozenset(kinds)

    #: Output ports beyond the first (format 2 `layer.port` references), when `return_state`.
    state_ports: ClassVar[tuple[str, ...]] = ()

    def ports(self) -> tuple[str, ...]:
        """Names of this configured layer's extra outputs (empty: one output)."""
        if not self.state_ports:         # most layers: no getattr miss (pydantic's slow path)
            return ()
        return self.state_ports if self.__dict__.get("return_state", False) else ()

    def activation_name(self) -> str | None:
        """The activation that `pre_activation` splits off (None when linear or absent)."""
        act = getattr(self, "activation", None)
        return None if act in (None, "linear") else act


class SharedCall(LayerSpec):
    """Format 2: `{name, share, from}` calls another layer again, with the same weights.

    The checks replace it by a copy of the shared layer's entry (`_shares` set), so later
    stages see a full layer; until then it answers like a layer without arguments."""

    share: LayerRef = Field(description="The layer (or block instance) whose weights it uses.")

    type: ClassVar[str] = "(shared call)"
    max_inputs: ClassVar[int] = 64

    def keras_kwargs(self) -> dict[str, Any]:
        return {}
