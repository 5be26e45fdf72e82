"""The penalty catalog, implemented once with keras.ops (formulas: specc/penalties.py).

Every activation term is computed in one canonical form, whichever strategy carries it:

    term = divide_no_nan(value(a), B)          B = batch size of `a` (first axis)

because that is exactly what Keras does with an activity regularizer's value (Keras >= 3.14).
The add_loss tap and the output strategy compute the same expression with the same ops, so the
three strategies give bit-identical terms. For a mean over the batch, value = r · Σ_i Σ_j f(a_ij);
for `reduction: sum` and batch statistics, value = term · B.
"""
from __future__ import annotations

from typing import Any, Callable, Final

import keras
from keras import ops

from specc import penalties as catalog

EPS: Final = 1e-7


def batch_size(a: Any) -> Any:
    return ops.cast(ops.shape(a)[0], a.dtype)


def global_batch(a: Any) -> Any:
    """Under tf.distribute, the activation of the whole global batch (for batch statistics)."""
    if keras.backend.backend() != "tensorflow":
        return a
    import tensorflow as tf

    ctx = tf.distribute.get_replica_context()
    if ctx is None or ctx.num_replicas_in_sync == 1:
        return a
    return ctx.all_gather(a, axis=0)


def _as_float(a: Any) -> Any:
    return a if keras.backend.is_float_dtype(a.dtype) else ops.cast(a, keras.backend.floatx())


def _flat(a: Any) -> Any:
    return ops.reshape(a, (ops.shape(a)[0], -1))


def _per_sample(f: Callable[[Any], Any]) -> Callable[[Any, dict], Any]:
    def value(a: Any, p: dict) -> Any:
        v = p["rate"] * ops.sum(f(a))
        return v * batch_size(a) if p.get("reduction") == "sum" else v
    return value


def _l1_l2(a: Any, p: dict) -> Any:
    v = p["l1"] * ops.sum(ops.abs(a)) + p["l2"] * ops.sum(ops.square(a))
    return v * batch_size(a) if p.get("reduction") == "sum" else v


def _mean_abs(a: Any, p: dict) -> Any:
    return p["rate"] * ops.mean(ops.abs(a)) * batch_size(a)


def _kl_sparsity(a: Any, p: dict) -> Any:
    local_b = batch_size(a)
    a = global_batch(a)
    rho = p["target"]
    rho_hat = ops.clip(ops.mean(_flat(a), axis=0), EPS, 1.0 - EPS)
    kl = rho * ops.log(rho / rho_hat) + (1.0 - rho) * ops.log((1.0 - rho) / (1.0 - rho_hat))
    return p["rate"] * ops.sum(kl) * local_b


def _decorrelation(a: Any, p: dict) -> Any:
    local_b = batch_size(a)
    a = _flat(global_batch(a))
    b = batch_size(a)
    norms = ops.sqrt(ops.sum(ops.square(a), axis=1)) + EPS
    unit = a / ops.expand_dims(norms, 1)
    cos = ops.matmul(unit, ops.transpose(unit))
    off_diagonal = ops.sum(cos) - ops.sum(ops.diagonal(cos))
    mean_cos = ops.divide_no_nan(off_diagonal, b * (b - 1.0))
    return p["rate"] * mean_cos * local_b


VALUES: Final[dict[str, Callable[[Any, dict], Any]]] = {
    "l1": _per_sample(ops.abs),
    "l2": _per_sample(ops.square),
    "l1_l2": _l1_l2,
    "mean_abs": _mean_abs,
    "kl_sparsity": _kl_sparsity,
    "decorrelation": _decorrelation,
}
assert set(VALUES) == catalog.BUILTIN_KINDS


def activity_value(clause: dict, a: Any) -> Any:
    """The pre-division value of one clause (see the module docstring)."""
    a = _as_float(a)
    kind = clause["kind"]
    if kind in VALUES:
        return VALUES[kind](a, clause["params"])
    entry = catalog.lookup(kind)
    if entry is None or entry.term is None:
        raise ValueError(f"penalty kind {kind!r} is not registered; import its plugin first")
    params = entry.params.model_validate(clause["params"]) if entry.params else None
    view = _ClauseView(clause, params)
    return ops.cast(entry.term(a, view), a.dtype) * batch_size(a)


def activity_term(clause: dict, a: Any) -> Any:
    return ops.divide_no_nan(activity_value(clause, a), batch_size(_as_float(a)))


class _ClauseView:
    """What a plugin's term function sees: the clause's name, kind and parameters."""

    def __init__(self, clause: dict, params: Any) -> None:
        self.name = clause["name"]
        self.kind = clause["kind"]
        self._params = params
        self._raw = clause["params"]

    def __getattr__(self, item: str) -> Any:
        if self._params is not None and hasattr(self._params, item):
            return getattr(self._params, item)
        try:
            return self._raw[item]
        except KeyError:
            raise AttributeError(item) from None


def weight_value(clause: dict, w: Any) -> Any:
    """Keras's weight regularizers: l1 = r·Σ|w|, l2 = r·Σw², l1_l2 both; no batch averaging."""
    p, kind = clause["params"], clause["kind"]
    if kind == "l1":
        return p["rate"] * ops.sum(ops.abs(w))
    if kind == "l2":
        return p["rate"] * ops.sum(ops.square(w))
    if kind == "l1_l2":
        return p["l1"] * ops.sum(ops.abs(w)) + p["l2"] * ops.sum(ops.square(w))
    raise ValueError(f"unknown weight penalty kind {kind!r}")
