"""Schedules of the training step: a rate that changes while the model trains.

A rate (an activation clause's `rate`, `l1`, `l2`; a weight clause's) may be a mapping with a
`schedule:` key instead of a number. t is the optimizer's iteration count, read inside the
training step (`optimizer.iterations`: the number of updates already applied, so 0 during the
first step); clip(x, 0, 1) = min(max(x, 0), 1):

| schedule | keys | r(t) |
|---|---|---|
| `constant` | `value` | value |
| `linear` | `from`, `to`, `steps`, `start` (0) | from + (to − from) · clip((t − start) / steps, 0, 1) |
| `cosine` | `from`, `to`, `steps`, `start` (0) | to + (from − to) · (1 + cos(π · clip((t − start) / steps, 0, 1))) / 2 |
| `piecewise` | `boundaries` b_1 < … < b_n, `values` v_0 … v_n | v_k for b_k ≤ t < b_(k+1) (v_0 before b_1, v_n from b_n on) |
| `cyclical` | `low`, `high`, `period`, `start` (0) | low + (high − low) · (1 − \\|2 · frac(max(t − start, 0) / period) − 1\\|) |

`cyclical` is a triangle: `low` at the start of each period, `high` at its middle. This module
is plain data and arithmetic: `value(schedule, t, xp)` evaluates with numpy (`xp=numpy`, the
reference) or keras.ops (`xp=keras.ops`, inside the step), the same expression either way.
"""
from __future__ import annotations

import math
from typing import Annotated, Any, Final, Literal, Union

from pydantic import ConfigDict, Discriminator, Field, Tag, ValidationInfo, field_validator
from pydantic.json_schema import SkipJsonSchema
from pydantic_core import PydanticCustomError

from specc.spec.base import Strict

KINDS: Final = ("constant", "linear", "cosine", "piecewise", "cyclical")

_Value = Annotated[float, Field(ge=0.0, allow_inf_nan=False)]
_Steps = Annotated[int, Field(ge=1, lt=2**31, description="Length in optimizer steps.")]
_Start = Annotated[int, Field(ge=0, lt=2**31, description="Step at which it begins.")]


class _Schedule(Strict):
    model_config = ConfigDict(**Strict.model_config, serialize_by_alias=True)


class Constant(_Schedule):
    """r(t) = value."""

    schedule: Literal["constant"]
    value: _Value


class _Ramp(_Schedule):
    """From one value to another over `steps` steps after `start` (linear or cosine)."""

    from_: _Value = Field(alias="from", description="The value up to `start`.")
    to: _Value = Field(description="The value from `start + steps` on.")
    steps: _Steps
    start: _Start = 0


class Linear(_Ramp):
    """r(t) = from + (to − from) · clip((t − start) / steps, 0, 1): warm-up or linear decay."""

    schedule: Literal["linear"]


class Cosine(_Ramp):
    """r(t) = to + (from − to) · (1 + cos(π · clip((t − start) / steps, 0, 1))) / 2."""

    schedule: Literal["cosine"]


def _strictly_increasing(cls: type, bounds: list[int]) -> list[int]:
    """A piecewise schedule's `boundaries` (penalty rates' and Keras's learning rates')."""
    if any(b >= c for b, c in zip(bounds, bounds[1:])):
        raise PydanticCustomError("schedule_boundaries", "must increase")
    return bounds


def _one_value_more(cls: type, values: list[float], info: ValidationInfo) -> list[float]:
    """A piecewise schedule's `values`: one more than its boundaries."""
    bounds = info.data.get("boundaries")
    if bounds is not None and len(values) != len(bounds) + 1:
        raise PydanticCustomError(
            "schedule_values", "give one value more than boundaries ({n} boundaries, "
            "{m} values)", {"n": len(bounds), "m": len(values)})
    return values


class Piecewise(_Schedule):
    """r(t) = values[k] for boundaries[k-1] <= t < boundaries[k]."""

    schedule: Literal["piecewise"]
    boundaries: Annotated[list[Annotated[int, Field(ge=1, lt=2**31)]],
                          Field(min_length=1, max_length=1000)]
    values: Annotated[list[_Value], Field(min_length=2, max_length=1001)]

    _increasing = field_validator("boundaries")(_strictly_increasing)
    _one_more = field_validator("values")(_one_value_more)


class Cyclical(_Schedule):
    """A triangle: `low` at the start of each `period`, `high` at its middle."""

    schedule: Literal["cyclical"]
    low: _Value
    high: _Value
    period: Annotated[int, Field(ge=2, lt=2**31, description="Steps of one full cycle.")]
    start: _Start = 0


class _Unknown(_Schedule):
    """Any other `schedule:` word: refused by the Literal, with did-you-mean."""

    model_config = ConfigDict(**{**Strict.model_config, "extra": "allow"})
    schedule: Literal["constant", "linear", "cosine", "piecewise", "cyclical"]


def _tag(value: Any) -> str | None:
    kind = value.get("schedule") if isinstance(value, dict) else getattr(value, "schedule", None)
    if kind is None:
        return None
    return kind if isinstance(kind, str) and kind in KINDS else "unknown"


Schedule = Annotated[
    Union[Annotated[Constant, Tag("constant")], Annotated[Linear, Tag("linear")],
          Annotated[Cosine, Tag("cosine")], Annotated[Piecewise, Tag("piecewise")],
          Annotated[Cyclical, Tag("cyclical")], Annotated[SkipJsonSchema[_Unknown], Tag("unknown")]],
    Discriminator(_tag, custom_error_type="missing_schedule",
                  custom_error_message="a schedule needs `schedule: " + "|".join(KINDS) + "`"),
]


#: Each schedule's model, by its `schedule:` word (did-you-mean on its keys).
MODELS: Final = {"constant": Constant, "linear": Linear, "cosine": Cosine,
                 "piecewise": Piecewise, "cyclical": Cyclical}


def is_schedule(value: Any) -> bool:
    return isinstance(value, dict) and "schedule" in value


def value(s: dict, t: Any, xp: Any) -> Any:
    """r(t) of schedule `s` (its plain data, as saved); `t` a float step (array or tensor),
    `xp` numpy or keras.ops."""
    kind = s["schedule"]
    if kind == "constant":
        return s["value"] + 0.0 * t
    if kind in ("linear", "cosine"):
        a, b = s["from"], s["to"]
        f = xp.clip((t - float(s.get("start", 0))) / float(s["steps"]), 0.0, 1.0)
        if kind == "linear":
            return a + (b - a) * f
        return b + (a - b) * 0.5 * (1.0 + xp.cos(math.pi * f))
    if kind == "piecewise":
        out = s["values"][0] + 0.0 * t
        for b, v in zip(s["boundaries"], s["values"][1:]):
            out = xp.where(t >= float(b), v, out)       # exact values, no sums of steps
        return out
    if kind == "cyclical":
        period = float(s["period"])
        u = xp.maximum(t - float(s.get("start", 0)), 0.0)
        phase = (u - period * xp.floor(u / period)) / period
        return s["low"] + (s["high"] - s["low"]) * (1.0 - xp.abs(2.0 * phase - 1.0))
    raise ValueError(f"unknown schedule {kind!r}")


def _n(x: Any) -> str:
    return f"{x:g}" if isinstance(x, float) else str(x)


def formula(s: dict) -> str:
    """The schedule as a formula of the optimizer step t (`specc explain`)."""
    kind = s["schedule"]
    if kind == "constant":
        return _n(s["value"])
    if kind in ("linear", "cosine"):
        a, b, n, t0 = _n(s["from"]), _n(s["to"]), s["steps"], s.get("start", 0)
        f = f"clip({'t' if not t0 else f'(t − {t0})'} / {n}, 0, 1)"
        if kind == "linear":
            return f"linear {a} → {b} over steps {t0}..{t0 + n}: {a} + ({b} − {a}) · {f}"
        return (f"cosine {a} → {b} over steps {t0}..{t0 + n}: "
                f"{b} + ({a} − {b}) · (1 + cos(π · {f})) / 2")
    if kind == "piecewise":
        vals, bounds = s["values"], s["boundaries"]
        parts = [f"{_n(vals[0])} for t < {bounds[0]}"]
        parts += [f"{_n(v)} for {lo} ≤ t < {hi}" for v, lo, hi in
                  zip(vals[1:], bounds, bounds[1:])]
        parts.append(f"{_n(vals[-1])} for t ≥ {bounds[-1]}")
        return "piecewise: " + "; ".join(parts)
    if kind == "cyclical":
        lo, hi, p, t0 = _n(s["low"]), _n(s["high"]), s["period"], s.get("start", 0)
        u = "max(t, 0)" if not t0 else f"max(t − {t0}, 0)"
        return (f"cyclical {lo} ↔ {hi}, period {p}: "
                f"{lo} + ({hi} − {lo}) · (1 − |2 · frac({u} / {p}) − 1|)")
    return str(s)


# ------------------------------------------------------------------ learning-rate schedules
# `optimizer.learning_rate` may be one of Keras's keras.optimizers.schedules by class name,
# with its arguments: {schedule: ExponentialDecay, initial_learning_rate: 0.01, ...}. The
# names are Keras's (CamelCase), so they never clash with the rate schedules above.

_LR = Annotated[float, Field(gt=0.0, allow_inf_nan=False)]
_LR0 = Annotated[float, Field(ge=0.0, allow_inf_nan=False)]


class _LRSchedule(Strict):
    def keras_args(self) -> dict[str, Any]:
        return self.model_dump(exclude={"schedule"}, exclude_unset=True)


class ExponentialDecay(_LRSchedule):
    """initial_learning_rate · decay_rate ^ (t / decay_steps) (⌊t / decay_steps⌋ if staircase)."""

    schedule: Literal["ExponentialDecay"]
    initial_learning_rate: _LR
    decay_steps: _Steps
    decay_rate: _LR
    staircase: bool = False


class InverseTimeDecay(_LRSchedule):
    """initial_learning_rate / (1 + decay_rate · t / decay_steps)."""

    schedule: Literal["InverseTimeDecay"]
    initial_learning_rate: _LR
    decay_steps: _Steps
    decay_rate: _LR0
    staircase: bool = False


class PolynomialDecay(_LRSchedule):
    """From initial_learning_rate to end_learning_rate over decay_steps, as (1 − t/steps)^power."""

    schedule: Literal["PolynomialDecay"]
    initial_learning_rate: _LR
    decay_steps: _Steps
    end_learning_rate: _LR0 = 0.0001
    power: _LR = 1.0
    cycle: bool = False


class PiecewiseConstantDecay(_LRSchedule):
    """values[k] for boundaries[k-1] < t <= boundaries[k] (one more value than boundaries)."""

    schedule: Literal["PiecewiseConstantDecay"]
    boundaries: Annotated[list[Annotated[int, Field(ge=0, lt=2**31)]],
                          Field(min_length=1, max_length=1000)]
    values: Annotated[list[_LR], Field(min_length=2, max_length=1001)]

    _increasing = field_validator("boundaries")(_strictly_increasing)
    _one_more = field_validator("values")(_one_value_more)


class CosineDecay(_LRSchedule):
    """Cosine decay from initial_learning_rate to alpha · it over decay_steps, after an
    optional linear warm-up to warmup_target over warmup_steps."""

    schedule: Literal["CosineDecay"]
    initial_learning_rate: _LR0
    decay_steps: _Steps
    alpha: Annotated[float, Field(ge=0.0, le=1.0)] = 0.0
    warmup_target: _LR | None = None
    warmup_steps: Annotated[int, Field(ge=0, lt=2**31)] = 0


class CosineDecayRestarts(_LRSchedule):
    """Cosine decay with warm restarts (SGDR): periods growing by t_mul, peaks by m_mul."""

    schedule: Literal["CosineDecayRestarts"]
    initial_learning_rate: _LR
    first_decay_steps: _Steps
    t_mul: _LR = 2.0
    m_mul: _LR = 1.0
    alpha: Annotated[float, Field(ge=0.0, le=1.0)] = 0.0


LR_SCHEDULES: Final = (ExponentialDecay, InverseTimeDecay, PolynomialDecay,
                       PiecewiseConstantDecay, CosineDecay, CosineDecayRestarts)

LearningRateSchedule = Annotated[
    Union[tuple(Annotated[c, Tag(c.__name__)] for c in LR_SCHEDULES)],  # type: ignore[valid-type]
    Discriminator(lambda v: (v.get("schedule") if isinstance(v, dict)
                             else getattr(v, "schedule", None)),
                  custom_error_type="lr_schedule",
                  custom_error_message="a number, or {schedule: NAME, ...} with "
                  "NAME one of " + ", ".join(c.__name__ for c in LR_SCHEDULES))]


def keras_learning_rate(value: Any) -> Any:
    """A spec's learning rate as Keras takes it: a number, or the named schedule object."""
    if isinstance(value, _LRSchedule):
        import keras

        return getattr(keras.optimizers.schedules, value.schedule)(**value.keras_args())
    return value
