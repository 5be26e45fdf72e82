"""The penalty catalog, implemented once with keras.ops (formulas: specc/penalties.py).

Every activation term is computed in one canonical form, whichever strategy carries it:

    term = divide_no_nan(value(a), B)          B = batch size of `a` (first axis)

because that is exactly what Keras does with an activity regularizer's value (Keras >= 3.14).
The add_loss tap and the output strategy compute the same expression with the same ops, so the
three strategies give bit-identical terms. For a mean over the batch, value = r · Σ_i Σ_j f(a_ij);
for `reduction: sum` and batch statistics, value = term · B.
"""
from __future__ import annotations

import contextlib
import threading
from typing import Any, Callable, Final, Iterator

import keras
from keras import ops

from specc import penalties as catalog
from specc import schedules

EPS: Final = 1e-7

# -- scheduled rates ------------------------------------------------------------------------

_step = threading.local()


@contextlib.contextmanager
def at_step(step: Callable[[], Any] | None) -> Iterator[None]:
    """Within this block (one model call, one loss computation), scheduled rates are taken at
    `step()`: SpecModel passes a reader of its optimizer's iteration count. Per thread, so per
    replica under tf.distribute; read lazily, so a spec without schedules never reads it."""
    previous = getattr(_step, "reader", None)
    _step.reader = step
    try:
        yield
    finally:
        _step.reader = previous


def current_step() -> Any:
    """The optimizer step t (float32) of the running call; 0 outside SpecModel's calls."""
    reader = getattr(_step, "reader", None)
    value = reader() if reader is not None else None
    return ops.convert_to_tensor(0.0, "float32") if value is None else value


def rates(params: dict, dtype: Any = None) -> dict:
    """`params` with each schedule replaced by its value at the current step (a tensor of
    `dtype`); the same dict when nothing is scheduled."""
    scheduled = [k for k, v in params.items() if schedules.is_schedule(v)]
    if not scheduled:
        return params
    t = current_step()
    out = dict(params)
    for k in scheduled:
        out[k] = ops.cast(schedules.value(params[k], t, ops), dtype or keras.backend.floatx())
    return out


def batch_size(a: Any) -> Any:
    return ops.cast(ops.shape(a)[0], a.dtype)


def global_sum(x: Any) -> Any:
    """Σ over the replicas of a tf.distribute strategy (x itself on one device).

    Batch statistics are built from such sums so that under MirroredStrategy they are taken
    over the global batch. The value is the all-reduced sum; the gradient flows only through
    this replica's own part, scaled by the replica count: Keras divides each replica's loss by
    that count and sums the replicas' weight gradients, so the step equals the one-device step
    on the same global batch (and no collective runs in the backward pass).

    Only tf.distribute runs one program per replica. JAX's keras.distribution compiles one
    program over the global batch (its sums are global already, the collectives are XLA's)
    and Keras has no data parallelism for torch: there, x is the global sum.
    """
    if keras.backend.backend() != "tensorflow":
        return x
    import tensorflow as tf

    ctx = tf.distribute.get_replica_context()
    if ctx is None or ctx.num_replicas_in_sync == 1:
        return x
    local = tf.stop_gradient(x)
    total = ctx.all_reduce(tf.distribute.ReduceOp.SUM, local)
    return total + ctx.num_replicas_in_sync * (x - local)


def replica_count() -> int:
    """tf.distribute's replicas in sync (each computes its own loss); 1 elsewhere (see
    global_sum)."""
    if keras.backend.backend() != "tensorflow":
        return 1
    import tensorflow as tf

    return tf.distribute.get_strategy().num_replicas_in_sync


def _reduced(v: Any, a: Any, p: dict) -> Any:
    """Per-sample kinds: v = r · Σ_i Σ_j f(a_ij) is the batch mean once divided by B.
    `reduction: sum` wants Σ over the *global* batch: each replica's term is divided by the
    replica count and the replicas' gradients are summed, so v is scaled by B · replicas."""
    if p.get("reduction") != "sum":
        return v
    return v * batch_size(a) * replica_count()


def _as_float(a: Any) -> Any:
    return a if keras.backend.is_float_dtype(a.dtype) else ops.cast(a, keras.backend.floatx())


def _flat(a: Any) -> Any:
    return ops.reshape(a, (ops.shape(a)[0], -1))


# -- masks and feature axes (formulas: specc.penalties.MASK_NOTE, AXIS_NOTE) -----------------

def mask_of(x: Any) -> Any:
    """The Keras mask a tensor carries (None without one)."""
    try:
        from keras.src.backend import get_keras_mask
    except ImportError:                     # pragma: no cover - older layouts
        return getattr(x, "_keras_mask", None)
    return get_keras_mask(x)


def weights(a: Any, mask: Any) -> Any:
    """w: 1 where an element of `a` lies at an unmasked step, 0 at a masked one, in a's shape
    and dtype; None without a mask, or with one that does not fit a's leading axes (a layer
    that moved the axes and passed the mask on unchanged)."""
    if mask is None or len(mask.shape) > len(a.shape) or any(
            m is not None and d is not None and m != d for m, d in zip(mask.shape, a.shape)):
        return None
    w = ops.cast(mask, a.dtype)
    for _ in range(len(a.shape) - len(w.shape)):
        w = ops.expand_dims(w, -1)
    return ops.broadcast_to(w, ops.shape(a))


def _rows(x: Any, axis: Any) -> Any:
    """x laid out as (rows, features): without `axis` the samples × everything else; with it,
    the batch and the axes not named × the named feature axes."""
    if axis is None:
        return _flat(x)
    rank = len(x.shape)
    named = sorted({int(k) % rank for k in (axis if isinstance(axis, list) else [axis])})
    rest = [d for d in range(rank) if d not in named]
    shape = ops.shape(x)
    features = 1
    for d in named:
        features = features * (x.shape[d] if x.shape[d] is not None else shape[d])
    return ops.reshape(ops.transpose(x, rest + named), (-1, features))


def _global_mean(v: Any, w: Any) -> Any:
    """Σ w·v / Σ w over the global batch, as this replica's share of the term (Keras divides
    each replica's term by the replica count and sums them); 0 when Σ w = 0."""
    count = global_sum(ops.sum(w))
    return ops.divide_no_nan(ops.sum(w * v), count) * replica_count()


def _per_sample(f: Callable[[Any], Any]) -> Callable[[Any, dict, Any], Any]:
    def value(a: Any, p: dict, w: Any) -> Any:
        v = f(a) if w is None else w * f(a)
        return _reduced(p["rate"] * ops.sum(v), a, p)
    return value


def _l1_l2(a: Any, p: dict, w: Any) -> Any:
    l1, l2 = ops.abs(a), ops.square(a)
    if w is not None:
        l1, l2 = w * l1, w * l2
    return _reduced(p["l1"] * ops.sum(l1) + p["l2"] * ops.sum(l2), a, p)


def _mean_of(f: Callable[[Any], Any]) -> Callable[[Any, dict, Any], Any]:
    """r · mean of f(a) over every element (the unmasked ones with a mask)."""
    def value(a: Any, p: dict, w: Any) -> Any:
        mean = ops.mean(f(a)) if w is None else _global_mean(f(a), w)
        return p["rate"] * mean * batch_size(a)
    return value


def _tar(a: Any, p: dict, w: Any) -> Any:
    """r · mean over 1 <= t < T of (a_t − a_(t−1))², pairs of unmasked steps with a mask."""
    diff = ops.square(a[:, 1:] - a[:, :-1])
    if w is None:
        mean = ops.divide_no_nan(ops.sum(diff), ops.cast(ops.size(diff), a.dtype))
    else:
        mean = _global_mean(diff, w[:, 1:] * w[:, :-1])
    return p["rate"] * mean * batch_size(a)


def _kl_sparsity(a: Any, p: dict, w: Any) -> Any:
    local_b = batch_size(a)
    rho = p["target"]
    rows = _rows(a, p.get("axis"))
    if w is None:
        count = global_sum(ops.cast(ops.shape(rows)[0], a.dtype))
        rho_hat = ops.clip(global_sum(ops.sum(rows, axis=0)) / count, EPS, 1.0 - EPS)
    else:
        w = _rows(w, p.get("axis"))
        count = global_sum(ops.sum(w, axis=0))           # per feature
        rho_hat = ops.clip(ops.divide_no_nan(global_sum(ops.sum(w * rows, axis=0)), count),
                           EPS, 1.0 - EPS)
    kl = rho * ops.log(rho / rho_hat) + (1.0 - rho) * ops.log((1.0 - rho) / (1.0 - rho_hat))
    if w is not None:
        kl = ops.where(count > 0, kl, ops.zeros_like(kl))
    return p["rate"] * ops.sum(kl) * local_b


def _decorrelation(a: Any, p: dict, w: Any) -> Any:
    """mean over pairs i != k of u_i·u_k, u_i = a_i / (|a_i| + eps), from two sums:
    Σ_{i != k} u_i·u_k = |Σ_i u_i|² - Σ_i |u_i|²  (O(B·N), and global under tf.distribute).
    Masked elements are zeroed; a row counts when some element of it is unmasked."""
    local_b = batch_size(a)
    flat = _rows(a, p.get("axis"))
    if w is None:
        n_local = ops.cast(ops.shape(flat)[0], a.dtype)
    else:
        w = _rows(w, p.get("axis"))
        flat = w * flat
        n_local = ops.sum(ops.max(w, axis=1))
    norms = ops.sqrt(ops.sum(ops.square(flat), axis=1)) + EPS
    unit = flat / ops.expand_dims(norms, 1)
    total = global_sum(ops.sum(unit, axis=0))
    squares = global_sum(ops.sum(ops.square(unit)))
    b = global_sum(n_local)
    mean_cos = ops.divide_no_nan(ops.sum(ops.square(total)) - squares, b * (b - 1.0))
    return p["rate"] * mean_cos * local_b


VALUES: Final[dict[str, Callable[[Any, dict, Any], Any]]] = {
    "l1": _per_sample(ops.abs),
    "l2": _per_sample(ops.square),
    "l1_l2": _l1_l2,
    "mean_abs": _mean_of(ops.abs),
    "kl_sparsity": _kl_sparsity,
    "decorrelation": _decorrelation,
    "ar": _mean_of(ops.square),
    "tar": _tar,
}
assert set(VALUES) == catalog.BUILTIN_KINDS


def activity_value(clause: dict, a: Any, mask: Any = None) -> Any:
    """The pre-division value of one clause (see the module docstring); `mask`: the Keras
    mask `a` carries, whose masked steps every kind leaves out unless the clause says
    `mask: false` (format 1's default)."""
    if clause.get("mask") is False:
        mask = None
    a = _as_float(a)
    kind = clause["kind"]
    if kind in VALUES:
        return VALUES[kind](a, rates(clause["params"], a.dtype), weights(a, mask))
    entry = catalog.lookup(kind)
    if entry is None or entry.term is None:
        raise ValueError(f"penalty kind {kind!r} is not registered; import its plugin first")
    params = entry.params.model_validate(clause["params"]) if entry.params else None
    view = _ClauseView(clause, params, mask)
    return ops.cast(entry.term(a, view), a.dtype) * batch_size(a)


def per_batch(value: Any, a: Any) -> Any:
    """What Keras does to an activity regularizer's value: divide by a's batch size."""
    return ops.divide_no_nan(value, ops.cast(ops.shape(a)[0], value.dtype))


def activity_term(clause: dict, a: Any, mask: Any = None) -> Any:
    return per_batch(activity_value(clause, a, mask), a)


class _ClauseView:
    """What a plugin's term function sees: the clause's name, kind and parameters, and
    `mask`, the Keras mask of the tensor (None without one)."""

    def __init__(self, clause: dict, params: Any, mask: Any = None) -> None:
        self.name = clause["name"]
        self.kind = clause["kind"]
        self.mask = mask
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
    p, kind = rates(clause["params"], w.dtype), clause["kind"]
    if kind == "l1":
        return p["rate"] * ops.sum(ops.abs(w))
    if kind == "l2":
        return p["rate"] * ops.sum(ops.square(w))
    if kind == "l1_l2":
        return p["l1"] * ops.sum(ops.abs(w)) + p["l2"] * ops.sum(ops.square(w))
    if kind == "orthogonal":
        return p["rate"] * orthogonality(w)
    raise ValueError(f"unknown weight penalty kind {kind!r}")


def orthogonality(w: Any) -> Any:
    """‖WᵀW − I‖²_F of a weight as a matrix: its last axis the columns, the other axes
    flattened into the rows; a 1-D weight is one column (specc.penalties.ORTHOGONAL_NOTE)."""
    m = w.shape[-1] if len(w.shape) > 1 else 1
    matrix = ops.reshape(w, (-1, m))
    gram = ops.matmul(ops.transpose(matrix), matrix)
    return ops.sum(ops.square(gram - ops.eye(m, dtype=gram.dtype)))
