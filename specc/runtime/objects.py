"""The Keras objects specc emits: penalty regularizers, tap layers and the model class.

All are registered under the `specc` package with a `get_config`, so a saved `.keras` file
loads with `keras.saving.load_model(path, safe_mode=True)` once `specc` is imported.
"""
from __future__ import annotations

from typing import Any

import keras
from keras import ops

from specc import schedules
from specc.runtime import records, terms
from specc.runtime.pairs import output_term

_register = keras.saving.register_keras_serializable(package="specc")


def _stack(values: list[Any]) -> Any:
    """One clause: its scalar; several: a vector that Keras sums (one entry per clause)."""
    return values[0] if len(values) == 1 else ops.stack(values)


@_register
class ActivityPenalty(keras.regularizers.Regularizer):
    """The activity regularizer of a layer carrying one or more activation clauses.

    Keras divides the returned value by the batch size (>= 3.14), which gives each clause's
    term in the canonical form of specc.runtime.terms. Keras calls the regularizer before it
    attaches the output's mask, so the tensor is recorded with the values: SpecModel uses the
    values, or, when the tensor turns out to carry a mask, computes the terms again with it
    in compute_loss (the value returned here, which Keras keeps in `model.losses`, sees no
    mask).
    """

    def __init__(self, clauses: list[dict]) -> None:
        self.clauses = [dict(c) for c in clauses]

    def __call__(self, x: Any) -> Any:
        values = [terms.activity_value(c, x, terms.mask_of(x)) for c in self.clauses]
        records.record(self, [x, values])
        return _stack(values)

    def get_config(self) -> dict:
        return {"clauses": self.clauses}


@_register
class WeightPenalty(keras.regularizers.Regularizer):
    """A weight regularizer carrying the weight clauses that hit one variable."""

    def __init__(self, clauses: list[dict]) -> None:
        self.clauses = [dict(c) for c in clauses]

    def __call__(self, w: Any) -> Any:
        return _stack([terms.weight_value(c, w) for c in self.clauses])

    def get_config(self) -> dict:
        return {"clauses": self.clauses}


class _Identity(keras.layers.Layer):
    def __init__(self, clauses: list[dict] | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.clauses = [dict(c) for c in clauses or ()]
        self.supports_masking = True

    def compute_output_shape(self, input_shape: Any) -> Any:
        return input_shape

    def get_config(self) -> dict:
        return {**super().get_config(), "clauses": self.clauses}


@_register
class PenaltyTap(_Identity):
    """Identity layer whose `call` adds each clause's term with `add_loss` (strategy add_loss)."""

    def call(self, x: Any, mask: Any = None) -> Any:
        values = [terms.activity_term(clause, x, mask) for clause in self.clauses]
        records.record(self, values)
        for value in values:
            self.add_loss(value)
        return x


@_register
class OutputTap(_Identity):
    """Identity layer whose output is an extra model output (strategy `output`).

    SpecModel.compute_loss computes the clauses' terms from this output and the mask recorded
    here; `predict` leaves it out.
    """

    def call(self, x: Any, mask: Any = None) -> Any:
        records.record(self, [mask])
        return x


class _Current(keras.metrics.Metric):
    """The last value it was given (a scheduled rate, logged as `<clause>_rate`)."""

    def __init__(self, name: str, **kwargs: Any) -> None:
        super().__init__(name=name, **kwargs)
        self._current = self.add_variable(shape=(), initializer="zeros", name="current",
                                          aggregation="only_first_replica")

    def update_state(self, value: Any, sample_weight: Any = None) -> None:
        self._current.assign(ops.cast(value, self.dtype))

    def result(self) -> Any:
        # A new tensor, not the variable: epoch logs read later (after validation) keep it.
        return ops.multiply(self._current, 1.0)


class _StepHolder(keras.metrics.Metric):
    """The optimizer's step count, carried in the metrics state (JAX backend only).

    JAX's test step gets no optimizer state, and a variable read outside its state is baked
    into the traced function as a constant: a scheduled rate would stay at the step of the
    first trace. SpecModel copies the step here when evaluation starts; the test step reads
    it from its metrics state. Not logged (its result is empty) and not reset by Keras.
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(name="specc_step", **kwargs)
        self.step = self.add_variable(shape=(), initializer="zeros", name="step",
                                      aggregation="only_first_replica")

    def update_state(self, value: Any, sample_weight: Any = None) -> None:
        self.step.assign(ops.cast(value, self.dtype))

    def reset_state(self) -> None:
        pass

    def result(self) -> dict:
        return {}


@_register
class TaskLoss(keras.losses.Loss):
    """An output's loss whose weight is scheduled: Keras's own loss, unchanged (Keras still
    logs it unweighted as `<output>_loss`), which records its value for SpecModel to weight
    by r(t) inside the step; Keras itself weights it by 0."""

    def __init__(self, loss: Any, output: str, name: str | None = None,
                 reduction: str = "sum_over_batch_size", dtype: Any = None) -> None:
        inner = keras.losses.get(loss) if isinstance(loss, (str, dict)) else loss
        if isinstance(inner, keras.losses.Loss):
            reduction, name = inner.reduction, name or inner.name
        super().__init__(name=name or str(loss), reduction=reduction, dtype=dtype)
        self.inner = inner
        self.output = output

    def call(self, y_true: Any, y_pred: Any) -> Any:
        if isinstance(self.inner, keras.losses.Loss):
            return self.inner.call(y_true, y_pred)
        return self.inner(y_true, y_pred)

    def __call__(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> Any:
        value = super().__call__(y_true, y_pred, sample_weight)
        records.record(f"task:{self.output}", [value])
        return value

    def get_config(self) -> dict:
        return {"loss": keras.losses.serialize(self.inner), "output": self.output,
                "name": self.name, "reduction": self.reduction}

    @classmethod
    def from_config(cls, config: dict) -> TaskLoss:
        config = dict(config)
        return cls(keras.losses.deserialize(config.pop("loss")), **config)


@_register
class SpecModel(keras.Model):
    """A functional model compiled from a spec; reports the loss broken down by term.

    `specc` (plain data, saved in the config) names the declared outputs, the OutputTap
    outputs, and where each clause's term is found:

      activity: [[layer, [clause names]]]  -- recorded by that layer's ActivityPenalty
      taps:     [[layer, [clause names]]]  -- recorded by that PenaltyTap (one add_loss each)
      outputs:  [[output index, clause]]   -- computed here from the extra output
      weights:  [clause names]             -- collected from WeightPenalty regularizers
      order:    every clause name, in the order their terms are summed
      loss_weights: [[output, schedule]] -- scheduled output weights (absent when none)
    """

    # (*args, **kwargs): the signature Keras needs to revive the model as functional.
    def __init__(self, *args: Any, specc: dict | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._specc: dict = {}
        if specc is not None:
            self._specc_setup(specc)

    def _specc_setup(self, meta: dict) -> None:
        """Create the breakdown trackers (once: from_config builds without them first)."""
        built = self.built
        self._specc = meta
        names = ["task_loss", *meta.get("order", ())]
        self._specc_trackers = [keras.metrics.Mean(name=n) for n in names]
        self._specc_rates = self._scheduled_rates()
        self._specc_rate_trackers = [_Current(name=key) for key, _ in self._specc_rates]
        self._specc_step_override: Any = None
        if self._specc_rates and keras.backend.backend() == "jax":
            self._specc_step_holder = _StepHolder()
        # Keras keys per-output losses and metrics by `output_names`: the spec's output names
        # (the layers computing them may be a split activation or a tap), taps left out.
        self.output_names = list(meta["declared"])
        self.built = built   # tracking new metrics marks the model unbuilt

    def _scheduled_rates(self) -> list[tuple[str, dict]]:
        """(log key, schedule) of every scheduled rate: `<clause>_rate` (`_l1`, `_l2`)."""
        meta = self._specc
        clauses: dict[str, dict] = {}
        for kind, entries in (("activity", meta.get("activity", ())),
                              ("taps", meta.get("taps", ()))):
            for layer_name, _ in entries:
                layer = self.get_layer(layer_name)
                owner = layer.activity_regularizer if kind == "activity" else layer
                clauses.update((c["name"], c) for c in owner.clauses)
        clauses.update((c["name"], c) for _, c in meta.get("outputs", ()))
        for variable in self.weights:
            reg = getattr(variable, "regularizer", None)
            if isinstance(reg, WeightPenalty):
                clauses.update((c["name"], c) for c in reg.clauses)
        return [(f"{name}_{k}", clauses[name]["params"][k])
                for name in meta.get("order", ()) if name in clauses
                for k in ("rate", "l1", "l2")
                if schedules.is_schedule(clauses[name]["params"].get(k))] + [
            (f"{out}_loss_weight", schedule) for out, schedule in meta.get("loss_weights", ())]

    def _read_step(self) -> Any:
        """The optimizer's iteration count as float32 (None before compile). On JAX, the
        value taken from the step's state (see train_step / test_step)."""
        override = getattr(self, "_specc_step_override", None)
        if override is not None:
            return ops.cast(override, "float32")
        optimizer = getattr(self, "optimizer", None)
        return None if optimizer is None else ops.cast(optimizer.iterations, "float32")

    # -- structure -------------------------------------------------------------------------
    @property
    def declared_outputs(self) -> list[str]:
        return list(self._specc.get("declared", ()))

    def _split(self, y_pred: Any) -> tuple[Any, list[Any]]:
        n_taps = len(self._specc.get("tap_outputs", ()))
        if not n_taps:
            return y_pred, []
        flat = list(y_pred)
        k = len(self.declared_outputs)
        declared = flat[0] if k == 1 else flat[:k]
        return declared, flat[k:]

    def _align(self, y: Any) -> Any:
        """Targets or sample weights given as a dict keyed by output name -> model order."""
        if not isinstance(y, dict):
            return y
        names = self.declared_outputs
        missing = [n for n in names if n not in y]
        if missing:
            raise ValueError(f"targets for outputs {missing} are missing (given: {sorted(y)})")
        return y[names[0]] if len(names) == 1 else [y[n] for n in names]

    # -- the loss, broken down ------------------------------------------------------------
    def _term_values(self, taps: list[Any]) -> dict[str, Any]:
        meta = self._specc
        values: dict[str, Any] = {}
        # A symbolic pass (Keras builds metrics under tf.distribute by calling compute_loss on
        # KerasTensors) runs no layer code, so nothing is recorded: use zeros then.
        for kind, entries in (("activity", meta.get("activity", ())),
                              ("taps", meta.get("taps", ()))):
            for layer_name, names in entries:
                layer = self.get_layer(layer_name)
                owner = layer.activity_regularizer if kind == "activity" else layer
                recorded = records.recorded(owner)
                if recorded is not None and kind == "activity":    # [output, values]
                    x, raw = recorded
                    mask = terms.mask_of(x)     # attached after the regularizer ran
                    recorded = ([terms.activity_term(c, x, mask) for c in owner.clauses]
                                if mask is not None else [terms.per_batch(v, x) for v in raw])
                values.update(zip(names, recorded or [ops.zeros(())] * len(names)))
        tap_names = meta.get("tap_outputs", ())
        for index, clause in meta.get("outputs", ()):
            mask = records.recorded(self.get_layer(tap_names[index])) if tap_names else None
            if clause.get("pair"):          # a pair clause: s and t stacked on axis 1
                values[clause["name"]] = output_term(clause, taps[index])
                continue
            values[clause["name"]] = terms.activity_term(clause, taps[index],
                                                         mask[0] if mask else None)
        weight_names = meta.get("weights", ())
        if weight_names:
            sums: dict[str, Any] = {}
            for variable in self.trainable_weights:
                reg = variable.regularizer
                if isinstance(reg, WeightPenalty):
                    vector = reg(variable)
                    for k, clause in enumerate(reg.clauses):
                        part = vector if len(reg.clauses) == 1 else vector[k]
                        name = clause["name"]
                        sums[name] = part if name not in sums else sums[name] + part
            for name in weight_names:
                values[name] = sums.get(name, ops.zeros(()))
        return values

    def call(self, inputs: Any, training: Any = None, mask: Any = None, **kwargs: Any) -> Any:
        records.clear()
        with terms.at_step(self._read_step):
            return super().call(inputs, training=training, mask=mask, **kwargs)

    def compute_loss(self, x: Any = None, y: Any = None, y_pred: Any = None,
                     sample_weight: Any = None, training: bool = True) -> Any:
        with terms.at_step(self._read_step):
            return self._specc_loss(x, y, y_pred, sample_weight)

    def _specc_loss(self, x: Any, y: Any, y_pred: Any, sample_weight: Any) -> Any:
        declared, taps = self._split(y_pred)
        task = None
        if self._compile_loss is not None:
            task = self._compile_loss(self._align(y), declared, self._align(sample_weight))
            task = self._scheduled_task(task)
        values = self._term_values(taps)
        replicas = terms.replica_count()
        parts = [task if task is not None else ops.zeros(())]
        for name in self._specc.get("order", ()):
            value = ops.cast(values[name], parts[0].dtype)
            parts.append(value / replicas if replicas > 1 else value)
        # One reduction over a vector: graph rewrites cannot reorder it per strategy, so the
        # total is bit-identical whichever strategy carries each (bit-identical) term.
        total = ops.sum(ops.stack(parts)) if len(parts) > 1 else parts[0]
        first = next(t for t in keras.tree.flatten(x) if t is not None)
        batch = ops.shape(first)[0]
        tracked = [task * replicas if task is not None and replicas > 1 else task,
                   *(values[n] for n in self._specc.get("order", ()))]
        for tracker, value in zip(self._specc_trackers, tracked):
            if value is not None:
                tracker.update_state(value, sample_weight=batch)
        rates = getattr(self, "_specc_rates", ())
        if rates:
            step = terms.current_step()
            for tracker, (_, schedule) in zip(self._specc_rate_trackers, rates):
                tracker.update_state(schedules.value(schedule, step, ops))
        return total

    def _scheduled_task(self, task: Any) -> Any:
        """The task loss with each scheduled output weight: Keras's total (those outputs
        weighted 0) plus r(t) · each one's loss, recorded by its TaskLoss."""
        scheduled = self._specc.get("loss_weights", ())
        if not scheduled or task is None:
            return task
        t = terms.current_step()
        for out, schedule in scheduled:
            value = (records.recorded(f"task:{out}") or [None])[0]
            if value is not None:
                rate = ops.cast(schedules.value(schedule, t, ops), task.dtype)
                task = task + rate * ops.cast(value, task.dtype)
        return task

    def compute_metrics(self, x: Any, y: Any, y_pred: Any, sample_weight: Any = None) -> Any:
        declared, _ = self._split(y_pred)
        return super().compute_metrics(x, self._align(y), declared, self._align(sample_weight))

    # The JAX trainer calls the steps as step(state, data) and wants (result, state) back;
    # the other backends call step(data).
    def predict_step(self, *args: Any) -> Any:
        if keras.backend.backend() == "jax":
            outputs, non_trainable = super().predict_step(*args)
            return self._split(outputs)[0], non_trainable
        return self._split(super().predict_step(*args))[0]

    def train_step(self, *args: Any) -> Any:
        if getattr(self, "_specc_step_holder", None) is None:
            return super().train_step(*args)
        # JAX with scheduled rates: the step count is read from the optimizer's state.
        state, data = args
        self._specc_step_override = state[2][
            self._state_index(self.optimizer.variables, self.optimizer.iterations)]
        try:
            return super().train_step(state, data)
        finally:
            self._specc_step_override = None

    def test_step(self, *args: Any) -> Any:
        if getattr(self, "_specc_step_holder", None) is None:
            return super().test_step(*args)
        state, data = args          # JAX: the step count as copied into the metrics state
        self._specc_step_override = state[2][
            self._state_index(self.metrics_variables, self._specc_step_holder.step)]
        try:
            return super().test_step(state, data)
        finally:
            self._specc_step_override = None

    def _sync_step(self) -> None:
        holder = getattr(self, "_specc_step_holder", None)
        if holder is not None and getattr(self, "optimizer", None) is not None:
            holder.update_state(self.optimizer.iterations)

    def evaluate(self, *args: Any, **kwargs: Any) -> Any:
        self._sync_step()
        return super().evaluate(*args, **kwargs)

    def test_on_batch(self, *args: Any, **kwargs: Any) -> Any:
        self._sync_step()
        return super().test_on_batch(*args, **kwargs)

    @staticmethod
    def _state_index(variables: list[Any], variable: Any) -> int:
        return next(i for i, v in enumerate(variables) if v is variable)

    # -- saving ---------------------------------------------------------------------------
    def build_from_config(self, config: dict) -> None:
        """A functional model is built by construction; nothing to rebuild from shapes."""
        if self.built or not config or config.get("input_shape") is None:
            self.built = True
            return
        super().build_from_config(config)

    def get_config(self) -> dict:
        return {**super().get_config(), "specc": self._specc}

    @classmethod
    def from_config(cls, config: dict, custom_objects: Any = None) -> SpecModel:
        config = dict(config)
        meta = config.pop("specc", {})
        model = super().from_config(config, custom_objects=custom_objects)
        if meta:
            model._specc_setup(meta)
        return model
