"""The checks every data set of `specc fit` passes: shapes and dtypes against the spec's
inputs (from the arrays' headers, before they are read), values in chunks (finite, ids within
the Embedding's range), targets against the model's outputs; and sizes, as the budget and the
messages give them."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final, Sequence

from specc.data.targets import Arrays, embedding_bound, loss_name, target_kind
from specc.errors import quote
from specc.graph import Graph

#: Default budget for the arrays of one `--data` file, all together (`--max-data` changes it).
MAX_DATA_BYTES: Final = 2 * 1024**3
#: The dtype kinds an array may have: bool, signed and unsigned integers, floats.
_NUMERIC_KINDS: Final = "biuf"


@dataclass(frozen=True)
class Header:
    """What a .npy member of the archive says about its array, read before the array."""

    name: str
    shape: tuple[int, ...]
    dtype: Any
    fortran_order: bool
    nbytes: int


def parse_size(text: str) -> int:
    """`--max-data`: bytes, or a number with K, M, G or T (powers of 1024)."""
    units = {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4}
    t = text.strip().upper().removesuffix("B").removesuffix("I")
    unit = t[-1:] if t[-1:] in units else ""
    try:
        value = float(t[: len(t) - len(unit)])
    except ValueError:
        value = -1.0
    if not (value >= 0 and value == value and value != float("inf")):
        raise ValueError(f"not a size: {text!r} (bytes, or a number with K, M, G or T)")
    return int(value * units[unit])


def _size(n: int) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:,} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    raise AssertionError


def _shape_text(shape: Sequence[Any]) -> str:
    return "(" + ", ".join("N" if d is None else str(d) for d in shape) + \
        ("," if len(shape) == 1 else "") + ")"


def _check_shapes(headers: dict[str, Header], graph: Graph, path: str) -> None:
    from specc.errors import UsageError

    for name, h in headers.items():
        if not h.shape:
            raise UsageError(f"{path}: array {quote(name)} is a single value (0-d); give one "
                             "row per sample")
    counts = {name: h.shape[0] for name, h in headers.items()}
    if len(set(counts.values())) != 1:
        listed = ", ".join(f"{quote(n)}: {c:,}" for n, c in counts.items())
        raise UsageError(f"{path}: the arrays have different numbers of samples ({listed})")
    if not next(iter(counts.values())):
        raise UsageError(f"{path}: the arrays hold 0 samples")
    for name, shape, dtype in graph.inputs:
        got = headers[name].shape[1:]
        if len(got) != len(shape) or any(w is not None and w != g for w, g in zip(shape, got)):
            raise UsageError(f"{path}: array {quote(name)} has shape "
                             f"{_shape_text(headers[name].shape)}; input {quote(name)} takes "
                             f"{_shape_text((None, *shape))}")
        if dtype.startswith(("int", "uint")) and headers[name].dtype.kind == "f":
            raise UsageError(f"{path}: array {quote(name)} holds floats "
                             f"({headers[name].dtype.str}); input {quote(name)} is {dtype}: "
                             "give integer values")


def _check_values(arrays: Arrays, headers: dict[str, Header], graph: Graph, path: str,
                  allow_nonfinite: bool) -> None:
    """Finite values and ids within range, looked at chunk by chunk (bounded memory)."""
    import numpy as np

    from specc.data import chunks    # here: its CHUNK_BYTES may be set
    from specc.errors import UsageError

    if not allow_nonfinite:
        for name, a in arrays.items():
            if a.dtype.kind != "f":
                continue
            count, first = 0, None
            for start, piece in chunks(a):
                bad = ~np.isfinite(piece)
                if bad.any():
                    count += int(bad.sum())
                    if first is None:
                        at = np.argwhere(bad)[0]
                        first = (start + int(at[0]), *(int(i) for i in at[1:]))
            if count:
                raise UsageError(
                    f"{path}: array {quote(name)} holds {count:,} NaN or infinite "
                    f"value(s), the first at index {first}; fix the data, or pass "
                    "--allow-nonfinite to train on it anyway")
    for name, _, dtype in graph.inputs:
        if not dtype.startswith(("int", "uint")) or arrays[name].size == 0:
            continue
        a = arrays[name]
        info = np.iinfo(dtype)
        bound = embedding_bound(graph, name)
        low, high = (0, bound - 1) if bound else (int(info.min), int(info.max))
        pieces = [(int(p.min()), int(p.max())) for _, p in chunks(a) if p.size]
        lo, hi = min(p[0] for p in pieces), max(p[1] for p in pieces)
        if lo < low or hi > high:
            what = f"ids of an Embedding with input_dim {bound}" if bound else f"{dtype} values"
            value = lo if lo < low else hi
            raise UsageError(f"{path}: array {quote(name)} holds {value:,}; its values are "
                             f"{what}, in [{low:,}, {high:,}]")


def check_targets(y: Arrays, graph: Graph, output_shapes: dict[str, tuple[int, ...]],
                  path: str) -> None:
    """Class ids for a sparse categorical loss: one per prediction row (not one-hot rows),
    whole numbers in [0, classes)."""
    import numpy as np

    from specc.data import chunks    # here: its CHUNK_BYTES may be set
    from specc.errors import UsageError

    for out, a in y.items():
        if target_kind(graph, out) != "class_ids":
            continue
        _check_class_id_shape(a, out, graph, tuple(output_shapes[out]), path)
        if a.size == 0:
            continue
        k = int(output_shapes[out][-1])
        for _, piece in chunks(a):
            finite = piece[np.isfinite(piece)] if piece.dtype.kind == "f" else piece
            if finite.size == 0:
                continue
            lo, hi = finite.min(), finite.max()
            whole = piece.dtype.kind != "f" or bool(np.all(finite == np.round(finite)))
            if lo < 0 or hi > k - 1 or not whole:
                value = lo if lo < 0 else hi if hi > k - 1 else \
                    finite[finite != np.round(finite)][0]
                raise UsageError(f"{path}: array {quote(out)} holds {value}; output "
                                 f"{quote(out)} ({loss_name(graph.spec.loss_for(out))}) takes "
                                 f"class ids, whole numbers in [0, {k - 1}]")


def _check_class_id_shape(a: Any, out: str, graph: Graph, shape: tuple[int, ...],
                          path: str) -> None:
    """Keras takes class ids shaped like the prediction without its class axis (a trailing
    axis of 1 is squeezed); one-hot rows end in Keras's `Argument output must have rank
    (ndim) target.ndim - 1`."""
    from specc.errors import UsageError

    got, ids = tuple(a.shape[1:]), shape[:-1]
    if got in (ids, ids + (1,)) or not shape:
        return
    loss = loss_name(graph.spec.loss_for(out))
    want = f"one class id per sample, shape {_shape_text((a.shape[0], *ids))}"
    if got == shape:
        raise UsageError(
            f"{path}: array {quote(out)} has shape {_shape_text(a.shape)}, one-hot rows (or "
            f"probabilities) of {shape[-1]} classes; output {quote(out)} ({loss}) takes {want}: "
            f"use loss {loss.removeprefix('sparse_')} for one-hot targets, or save the class "
            f"ids instead (`numpy.argmax(rows, axis=-1)`)")
    raise UsageError(f"{path}: array {quote(out)} has shape {_shape_text(a.shape)}; output "
                     f"{quote(out)} ({loss}) takes {want}")
