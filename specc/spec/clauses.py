"""Penalty clauses: on what a layer computes (`penalties:`) and on its weights (`weight_penalties:`)."""
# No `from __future__ import annotations`: Pydantic would eval every annotation string
# at import, which `specc validate` pays on each run.

from typing import Annotated, Any, Literal, Optional, Union, get_args

from pydantic import BaseModel, Discriminator, Field, Tag, field_validator, model_validator
from pydantic.json_schema import SkipJsonSchema
from pydantic_core import PydanticCustomError

from specc import penalties as catalog
from specc.penalties import Via
from specc.schedules import Schedule
from specc.spec.base import LayerRef, Strict, WeightKind

Rate = Annotated[float, Field(ge=0.0, allow_inf_nan=False)]
#: A rate, or a schedule of the optimizer step (specc.schedules).
Scheduled = Annotated[
    Union[Annotated[Rate, Tag("number")], Annotated[Schedule, Tag("scheduled")]],
    Discriminator(lambda v: "scheduled" if isinstance(v, dict) or hasattr(v, "schedule")
                  else "number")]
Reduction = Literal["mean", "sum"]


class Clause(Strict):
    """Fields of every activation clause."""

    name: LayerRef = Field(description="Unique; names this term in the training logs.")
    layer: LayerRef = Field(description="The spec layer whose computation is penalized "
                                        "(format 2: a path, or a layer's port).")
    at: Literal["output", "pre_activation"] = Field(
        default="output",
        description="`output`: after the layer's activation; `pre_activation`: before it.")
    via: Optional[Via] = Field(
        default=None,
        description="How the term reaches the loss; absent: the kind's documented default.")
    mask: Optional[bool] = Field(
        default=None,
        description="Leave the steps a Keras mask hides out of the term. Absent: true in "
                    "format 2; false in format 1, whose formulas read every step.")

    @property
    def params(self) -> dict[str, Any]:
        """The kind's own parameters (rate, target, ...); `axis` only where it is given."""
        out = self.model_dump(exclude={"name", "layer", "at", "via", "kind", "mask"})
        if "axis" in out and out["axis"] is None:
            del out["axis"]
        return out


class L1Clause(Clause):
    kind: Literal["l1"]
    rate: Scheduled
    reduction: Reduction = Field(default="mean", description="`sum`: Σ_i instead of mean_i.")


class L2Clause(Clause):
    kind: Literal["l2"]
    rate: Scheduled
    reduction: Reduction = Field(default="mean", description="`sum`: Σ_i instead of mean_i.")


class L1L2Clause(Clause):
    kind: Literal["l1_l2"]
    l1: Scheduled = 0.0
    l2: Scheduled = 0.0
    reduction: Reduction = Field(default="mean", description="`sum`: Σ_i instead of mean_i.")


class MeanAbsClause(Clause):
    kind: Literal["mean_abs"]
    rate: Scheduled


Axis = Annotated[int, Field(ge=-64, le=64)]
#: The feature axes of a batch statistic (specc.penalties.AXIS_NOTE).
FeatureAxes = Optional[Union[Axis, Annotated[list[Axis], Field(min_length=1, max_length=8)]]]
_AXIS_DOC = ("The feature axes (the batch axis is 0; -1 the last): statistics per feature over "
             "the batch and every other axis. Absent: the samples, all other axes flattened.")


class KLSparsityClause(Clause):
    kind: Literal["kl_sparsity"]
    rate: Scheduled
    target: Annotated[float, Field(gt=0.0, lt=1.0, description="Target mean activation ρ.")]
    axis: FeatureAxes = Field(default=None, description=_AXIS_DOC)


class DecorrelationClause(Clause):
    kind: Literal["decorrelation"]
    rate: Scheduled
    axis: FeatureAxes = Field(default=None, description=_AXIS_DOC)


class ARClause(Clause):
    """Activation regularization of a sequence (fastai's AR): r · mean of a²."""

    kind: Literal["ar"]
    rate: Scheduled


class TARClause(Clause):
    """Temporal activation regularization (fastai's TAR): r · mean of (a_t − a_(t−1))²."""

    kind: Literal["tar"]
    rate: Scheduled


class PluginClause(Clause):
    """A kind registered from Python (specc.register_penalty); its parameters are the plugin's."""

    model_config = {**Clause.model_config, "extra": "allow"}
    kind: str

    @model_validator(mode="after")
    def _known_kind(self) -> "PluginClause":
        entry = catalog.lookup(self.kind)
        if entry is None:
            raise PydanticCustomError(
                "unknown_kind", "unknown penalty kind {kind} (known: {known})",
                {"kind": repr(self.kind)[:40], "known": ", ".join(catalog.known_kinds())})
        extra = dict(self.__pydantic_extra__ or {})
        if entry.params is not None:
            validated = entry.params.model_validate(extra, strict=True)
            self.__pydantic_extra__ = validated.model_dump()
        elif extra:
            raise PydanticCustomError("extra_forbidden", "unknown parameter {key}",
                                      {"key": repr(next(iter(extra)))})
        return self


def _kind_tag(value: Any) -> str | None:
    kind = value.get("kind") if isinstance(value, dict) else getattr(value, "kind", None)
    if kind is None:
        return None
    # Anything else (a typo, a plugin's kind, a list) goes to PluginClause, which explains.
    return kind if isinstance(kind, str) and kind in catalog.BUILTIN_KINDS else "plugin"


ActivationClause = Annotated[
    Union[
        Annotated[L1Clause, Tag("l1")],
        Annotated[L2Clause, Tag("l2")],
        Annotated[L1L2Clause, Tag("l1_l2")],
        Annotated[MeanAbsClause, Tag("mean_abs")],
        Annotated[KLSparsityClause, Tag("kl_sparsity")],
        Annotated[DecorrelationClause, Tag("decorrelation")],
        Annotated[ARClause, Tag("ar")],
        Annotated[TARClause, Tag("tar")],
        Annotated[SkipJsonSchema[PluginClause], Tag("plugin")],
    ],
    Discriminator(_kind_tag, custom_error_type="missing_kind",
                  custom_error_message="a penalty needs a `kind`"),
]


class WeightClause(Strict):
    """Fields of every weight clause: Keras weight regularizers, no batch averaging."""

    name: LayerRef = Field(description="Unique; names this term in the training logs.")
    layers: Union[Annotated[str, Field(min_length=1, max_length=200)],
                  Annotated[list[Annotated[str, Field(min_length=1, max_length=200)]],
                            Field(min_length=1)]] = Field(
        description="Layer names or shell-style globs (`conv*`).")
    weights: Union[WeightKind, Annotated[list[WeightKind], Field(min_length=1)]] = Field(
        default="kernel", description="`kernel`, `bias`, or both as a list.")

    @property
    def patterns(self) -> list[str]:
        return [self.layers] if isinstance(self.layers, str) else list(self.layers)

    @property
    def weight_kinds(self) -> list[str]:
        return [self.weights] if isinstance(self.weights, str) else list(dict.fromkeys(self.weights))

    @property
    def params(self) -> dict[str, Any]:
        return self.model_dump(exclude={"name", "layers", "weights", "kind"})


class WeightL1(WeightClause):
    kind: Literal["l1"]
    rate: Scheduled


class WeightL2(WeightClause):
    kind: Literal["l2"]
    rate: Scheduled


class WeightL1L2(WeightClause):
    kind: Literal["l1_l2"]
    l1: Scheduled = 0.0
    l2: Scheduled = 0.0


class WeightOrthogonal(WeightClause):
    """r · ‖WᵀW − I‖²_F per weight variable (specc.penalties.ORTHOGONAL_NOTE)."""

    kind: Literal["orthogonal"]
    rate: Scheduled

    @field_validator("weights")
    @classmethod
    def _kernels_only(cls, value: Any) -> Any:
        if "bias" in ([value] if isinstance(value, str) else value):
            raise PydanticCustomError(
                "bad_value", "`orthogonal` constrains kernels (matrices); a bias is a "
                "vector: write `weights: kernel`, and a separate clause for the biases")
        return value


AnyWeightClause = Annotated[Union[WeightL1, WeightL2, WeightL1L2, WeightOrthogonal],
                            Field(discriminator="kind")]


# -- penalties between two tensors (`pair_penalties:`; formulas: specc.penalties.PAIR_CATALOG)

class PairClause(Strict):
    """Fields of every pair clause: a term computed from two layers' outputs."""

    name: LayerRef = Field(description="Unique; names this term in the training logs.")
    layers: Annotated[list[LayerRef], Field(min_length=2, max_length=2)] = Field(
        description="[s, t]: the layer whose output is penalized and the layer (or input) "
                    "whose output is its target, of the same shape.")
    via: Optional[Via] = Field(
        default=None,
        description="`add_loss` (the default) or `output`; an activity regularizer sees one "
                    "tensor and cannot carry a pair clause.")
    stop_gradient: bool = Field(
        default=True,
        description="true: t is a constant target, the gradient reaches s's side only; "
                    "false: both.")

    @property
    def params(self) -> dict[str, Any]:
        """The kind's own parameters (rate, temperature) and stop_gradient."""
        return self.model_dump(exclude={"name", "layers", "via", "kind"})


class PairMSE(PairClause):
    """Feature matching: r · mean over all elements of (s − t)²."""

    kind: Literal["mse"]
    rate: Scheduled


class PairDistillation(PairClause):
    """Distillation: r · T² · KL(softmax(t/T) ‖ softmax(s/T)) over the last axis."""

    kind: Literal["distillation"]
    rate: Scheduled
    temperature: Annotated[float, Field(gt=0.0, le=1e4, allow_inf_nan=False)] = Field(
        default=1.0, description="T: both sides' logits are divided by it before the softmax.")


class PairCosine(PairClause):
    """r · mean over samples of the cosine distance 1 − cos(s_i, t_i)."""

    kind: Literal["cosine"]
    rate: Scheduled


AnyPairClause = Annotated[Union[PairMSE, PairDistillation, PairCosine],
                          Field(discriminator="kind")]


def models_by_kind(union: Any) -> dict[str, type]:
    """kind -> clause model, read from a discriminated union of clause models (each says its
    `kind: Literal[...]`): what `ActivationClause`, `AnyWeightClause`, `AnyPairClause` hold."""
    found: dict[str, type] = {}
    stack = [union]
    while stack:
        t = stack.pop()
        if isinstance(t, type) and issubclass(t, BaseModel):
            kind = t.model_fields.get("kind")
            found.update((k, t) for k in (get_args(kind.annotation) if kind else ())
                         if isinstance(k, str))
        else:
            stack.extend(get_args(t))
    return found
