"""Penalties between two tensors (formulas: specc.penalties.PAIR_CATALOG) and the layers that
carry them: PairTap (`via: add_loss`) and PairOutputTap (`via: output`).

Both strategies compute the term with the same function on the same two tensors, so they
give the same loss and gradient. No batch-size scaling is involved: Keras divides neither an
`add_loss` value nor SpecModel's own terms by the batch size (only activity regularizers).
"""
from __future__ import annotations

from typing import Any, Final

import keras
from keras import ops

from specc.runtime import records, terms

EPS: Final = 1e-7
_register = keras.saving.register_keras_serializable(package="specc")


def _mse(s: Any, t: Any, p: dict) -> Any:
    return p["rate"] * ops.mean(ops.square(s - t))


def _distillation(s: Any, t: Any, p: dict) -> Any:
    """r · T² · mean over rows of KL(softmax(t/T) ‖ softmax(s/T)), the last axis the classes."""
    temperature = p.get("temperature", 1.0)
    log_q = ops.log_softmax(s / temperature, axis=-1)
    log_p = ops.log_softmax(t / temperature, axis=-1)
    kl = ops.sum(ops.exp(log_p) * (log_p - log_q), axis=-1)
    return p["rate"] * temperature ** 2 * ops.mean(kl)


def _cosine(s: Any, t: Any, p: dict) -> Any:
    s = ops.reshape(s, (ops.shape(s)[0], -1))
    t = ops.reshape(t, (ops.shape(t)[0], -1))
    norms = ((ops.sqrt(ops.sum(ops.square(s), axis=1)) + EPS)
             * (ops.sqrt(ops.sum(ops.square(t), axis=1)) + EPS))
    return p["rate"] * ops.mean(1.0 - ops.sum(s * t, axis=1) / norms)


TERMS: Final = {"mse": _mse, "distillation": _distillation, "cosine": _cosine}


def pair_term(clause: dict, s: Any, t: Any) -> Any:
    """The term of one pair clause (its config: name, kind, params) on tensors s and t."""
    s = terms._as_float(s)
    t = ops.cast(t, s.dtype)
    p = terms.rates(clause["params"], s.dtype)
    if p.get("stop_gradient", True):
        t = ops.stop_gradient(t)
    return TERMS[clause["kind"]](s, t, p)


class _PairLayer(keras.layers.Layer):
    def __init__(self, clauses: list[dict] | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.clauses = [dict(c) for c in clauses or ()]
        self.supports_masking = True

    def get_config(self) -> dict:
        return {**super().get_config(), "clauses": self.clauses}


@_register
class PairTap(_PairLayer):
    """Reads (x, s, t), adds each clause's term of (s, t) with `add_loss`, and returns x (the
    model's first output, so that the layer lies on the way to it)."""

    def call(self, inputs: list[Any]) -> Any:
        x, s, t = inputs
        values = [pair_term(clause, s, t) for clause in self.clauses]
        records.record(self, values)
        for value in values:
            self.add_loss(value)
        return x

    def compute_output_shape(self, input_shape: Any) -> Any:
        return input_shape[0]

    def compute_mask(self, inputs: Any, mask: Any = None) -> Any:
        return None if mask is None else mask[0]


@_register
class PairOutputTap(_PairLayer):
    """Reads (s, t) and returns them stacked on axis 1, (B, 2, ...): an extra model output
    from which SpecModel.compute_loss computes the term (`predict` leaves it out)."""

    def call(self, inputs: list[Any]) -> Any:
        s, t = inputs
        return ops.stack([s, ops.cast(t, s.dtype)], axis=1)

    def compute_output_shape(self, input_shape: Any) -> Any:
        s = tuple(input_shape[0])
        return (s[0], 2, *s[1:])

    def compute_mask(self, inputs: Any, mask: Any = None) -> Any:
        return None


def output_term(clause: dict, stacked: Any) -> Any:
    """The term from a PairOutputTap's output."""
    return pair_term(clause, stacked[:, 0], stacked[:, 1])
