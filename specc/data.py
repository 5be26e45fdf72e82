"""Data for `specc fit`: a user's .npz file, or a seeded synthetic set shaped like the spec.

The synthetic set needs no download and is learnable: every sample belongs to one of K
classes (K from the first classification output), inputs are the class's prototype plus
noise, and each output's target follows from the class (one-hot, class id, parity) or, for a
regression output, from a fixed random teacher of the first input.
"""
from __future__ import annotations

import struct
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Literal, Sequence

from specc.errors import quote

from specc.graph import Graph

# NumPy is imported inside the functions: specc.golden uses the helpers below and stays light.

#: What a target looks like for each loss: one-hot rows, class ids, 0/1, positive values;
#: any other loss is a regression ("real").
TargetKind = Literal["one_hot", "class_ids", "binary", "positive", "real"]
_TARGET_KINDS: Final[dict[str, TargetKind]] = {
    **dict.fromkeys(("categorical_crossentropy", "categorical_focal_crossentropy",
                     "categorical_hinge", "kl_divergence"), "one_hot"),
    "sparse_categorical_crossentropy": "class_ids",
    **dict.fromkeys(("binary_crossentropy", "binary_focal_crossentropy", "hinge",
                     "squared_hinge"), "binary"),
    **dict.fromkeys(("poisson", "mean_squared_logarithmic_error", "msle",
                     "mean_absolute_percentage_error", "mape"), "positive"),
}

Arrays = dict[str, Any]


def loss_name(loss: Any) -> str:
    """A spec loss (a name or a LossSpec; None for an output without one) as its name."""
    if loss is None:
        return ""
    return loss if isinstance(loss, str) else str(loss.type)


def target_kind(graph: Graph, output: str) -> TargetKind:
    return _TARGET_KINDS.get(loss_name(graph.spec.loss_for(output)), "real")


def int_bound(graph: Graph, input_name: str, default: int) -> int:
    """Exclusive upper bound for an integer input: the smallest Embedding it reaches."""
    reached, dims = {input_name}, []
    for node in graph.nodes:                       # nodes are in topological order
        if reached.intersection(node.reads):
            reached.add(node.name)
            if node.op == "Embedding":
                dims.append(int(node.kwargs["input_dim"]))
    return min(dims) if dims else default


def synthetic(graph: Graph, output_shapes: dict[str, tuple[int, ...]], n: int = 2048,
              seed: int = 0) -> tuple[Arrays, Arrays]:
    """(inputs, targets) keyed by the spec's input and output names."""
    import numpy as np

    rng = np.random.RandomState(seed)
    k = 2
    for out in graph.outputs:
        if target_kind(graph, out) in ("one_hot", "class_ids"):
            k = int(output_shapes[out][-1])
            break
    labels = rng.randint(0, k, n)
    x: Arrays = {}
    for name, shape, dtype in graph.inputs:
        shape = tuple(s or 8 for s in shape)
        # float or bool ids reaching an Embedding (Keras casts them): whole numbers it reads
        ids_bound = None if dtype.startswith("int") else embedding_bound(graph, name)
        if dtype.startswith("int") or ids_bound:
            vocab = (int_bound(graph, name, default=10) if ids_bound is None else
                     min(ids_bound, _EXACT_IDS.get(dtype, ids_bound)))
            offsets = rng.randint(0, max(1, vocab // 4), (n, *shape))
            x[name] = ((labels.reshape((n,) + (1,) * len(shape)) * 7 + offsets) % vocab).astype(dtype)
        else:
            prototypes = rng.randn(k, *shape).astype("float32")
            x[name] = (0.2 * prototypes[labels] + rng.randn(n, *shape)).astype(dtype)
    first = next(iter(x.values())).reshape(n, -1).astype("float32")
    y: Arrays = {}
    for out in graph.outputs:
        shape = tuple(output_shapes[out])
        kind = target_kind(graph, out)
        # a class per sample, the same at every position of a sequence output
        ids = np.broadcast_to((labels % shape[-1]).reshape((n,) + (1,) * (len(shape) - 1)),
                              (n, *shape[:-1]))
        if kind == "class_ids":
            y[out] = ids.astype("int32")
        elif kind == "one_hot":
            y[out] = np.eye(shape[-1], dtype="float32")[ids]
        elif kind == "binary":
            y[out] = np.broadcast_to((labels % 2).reshape((n,) + (1,) * len(shape)),
                                     (n, *shape)).astype("float32")
        else:
            teacher = rng.randn(first.shape[1], int(np.prod(shape))).astype("float32")
            y[out] = np.tanh(first @ teacher / np.sqrt(first.shape[1])).reshape((n, *shape))
    return x, y


#: Ids a float or bool input holds exactly: past these, float16/bfloat16 round (maybe up to
#: the Embedding's input_dim); bool holds 0 and 1.
_EXACT_IDS: Final = {"bool": 2, "float16": 2048, "bfloat16": 256}

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


def embedding_bound(graph: Graph, input_name: str) -> int | None:
    """The exclusive bound on an integer input's ids, if it reaches an Embedding."""
    bound = int_bound(graph, input_name, default=0)
    return bound or None


def _read_header(fp: Any, name: str, path: str) -> Header:
    import numpy as np
    from numpy.lib import format as npy

    from specc.errors import UsageError

    version = npy.read_magic(fp)
    if version == (1, 0):
        shape, fortran, dtype = npy.read_array_header_1_0(fp)
    elif version == (2, 0):
        shape, fortran, dtype = npy.read_array_header_2_0(fp)
    else:
        raise UsageError(f"{path}: array {quote(name)}: .npy format version "
                         f"{version[0]}.{version[1]} is not supported (save it with numpy.savez)")
    if dtype.hasobject:
        raise UsageError(f"{path}: array {quote(name)} holds Python objects (a pickle); specc "
                         "reads only plain numeric arrays and never unpickles data")
    if dtype.fields is not None or dtype.subdtype is not None or \
            dtype.kind not in _NUMERIC_KINDS:
        what = "complex numbers" if dtype.kind == "c" else f"dtype {dtype.str}"
        raise UsageError(f"{path}: array {quote(name)} holds {what}; specc takes bool, integer "
                         "or real floating-point arrays")
    nbytes = int(np.prod(shape, dtype=object)) * dtype.itemsize if shape else dtype.itemsize
    return Header(name, tuple(int(d) for d in shape), dtype, bool(fortran), nbytes)


def _members(archive: Any) -> dict[str, Any]:
    """Array name -> zip member (np.savez writes `name.npy`)."""
    out: dict[str, Any] = {}
    for info in archive.infolist():
        if info.is_dir():
            continue
        out[info.filename.removesuffix(".npy")] = info
    return out


def load_npz(path: str | Path, graph: Graph, allow_nonfinite: bool = False,
             max_bytes: int = MAX_DATA_BYTES) -> tuple[Arrays, Arrays]:
    """Arrays named after the spec's inputs and outputs, checked before and after reading.

    Before any array is read, the .npy header of every array the spec names is checked: a
    plain numeric dtype (never a pickle), at least one axis, the same number of samples (at
    least one) in every array, the inputs' shapes, a size within `max_bytes` all together and
    equal to what the zip member holds. Then the values: finite (unless `allow_nonfinite`),
    integer ids within the Embedding's range (or the input dtype's). Every problem is one
    UsageError line; class-id targets are checked once the model is built (check_targets).
    """
    from specc.errors import UsageError

    shown = str(path)
    try:
        with open(path, "rb") as f:
            start = f.read(6)
        if not start:
            raise UsageError(f"{shown}: the file is empty (give an .npz made by numpy.savez)")
        if start == b"\x93NUMPY":
            raise UsageError(f"{shown}: this is a single .npy array, not an .npz archive; save "
                             "the arrays with numpy.savez(path, name=array, ...)")
        with zipfile.ZipFile(path) as archive:
            return _load_checked(archive, shown, graph, allow_nonfinite, max_bytes)
    except UsageError:
        raise
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, ValueError,
            NotImplementedError, RuntimeError, MemoryError, OverflowError, struct.error,
            zlib.error) as exc:
        # RuntimeError: an encrypted member; NotImplementedError: an unknown compression
        reason = " ".join(str(exc).split())[:200] or type(exc).__name__
        raise UsageError(f"{shown}: cannot read it as .npz ({reason})") from None


def _load_checked(archive: Any, path: str, graph: Graph, allow_nonfinite: bool,
                  max_bytes: int) -> tuple[Arrays, Arrays]:
    import numpy as np
    from numpy.lib import format as npy

    from specc.errors import UsageError

    members = _members(archive)
    input_names = [n for n, _, _ in graph.inputs]
    names = input_names + list(graph.outputs)
    missing = [n for n in names if n not in members]
    if missing:
        have = ", ".join(quote(k) for k in sorted(members)[:20]) or "none"
        raise UsageError(f"{path}: no array named {', '.join(missing)} (it has: {have})")
    headers: dict[str, Header] = {}
    for name in names:
        info = members[name]
        with archive.open(info) as fp:
            header = headers[name] = _read_header(fp, name, path)
            offset = fp.tell()
        total = sum(h.nbytes for h in headers.values())
        if total > max_bytes:
            raise UsageError(f"{path}: the arrays need {_size(total)} in memory (array "
                             f"{quote(name)}: shape {_shape_text(header.shape)} of "
                             f"{header.dtype.str}), over the budget of {_size(max_bytes)}; "
                             "raise it with --max-data")
        if info.file_size != offset + header.nbytes:
            raise UsageError(
                f"{path}: array {quote(name)}: its header says shape "
                f"{_shape_text(header.shape)} of {header.dtype.str} ({_size(header.nbytes)}) "
                f"but the member holds {_size(max(info.file_size - offset, 0))} of data")
    _check_shapes(headers, graph, path)
    arrays: Arrays = {}
    for name in names:
        with archive.open(members[name]) as fp:
            arrays[name] = npy.read_array(fp, allow_pickle=False)
            fp.read()        # reach the member's end, where zipfile checks its CRC
    _check_values(arrays, headers, graph, path, allow_nonfinite)
    return ({n: arrays[n] for n in input_names}, {o: arrays[o] for o in graph.outputs})


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
    import numpy as np

    from specc.errors import UsageError

    if not allow_nonfinite:
        for name, a in arrays.items():
            if a.dtype.kind == "f":
                bad = ~np.isfinite(a)
                if bad.any():
                    first = tuple(int(i) for i in np.argwhere(bad)[0])
                    raise UsageError(
                        f"{path}: array {quote(name)} holds {int(bad.sum()):,} NaN or infinite "
                        f"value(s), the first at index {first}; fix the data, or pass "
                        "--allow-nonfinite to train on it anyway")
    for name, _, dtype in graph.inputs:
        if not dtype.startswith(("int", "uint")) or arrays[name].size == 0:
            continue
        a = arrays[name]
        info = np.iinfo(dtype)
        bound = embedding_bound(graph, name)
        low, high = (0, bound - 1) if bound else (int(info.min), int(info.max))
        lo, hi = int(a.min()), int(a.max())
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

    from specc.errors import UsageError

    for out, a in y.items():
        if target_kind(graph, out) != "class_ids":
            continue
        _check_class_id_shape(a, out, graph, tuple(output_shapes[out]), path)
        if a.size == 0:
            continue
        k = int(output_shapes[out][-1])
        finite = a[np.isfinite(a)] if a.dtype.kind == "f" else a
        if finite.size == 0:
            continue
        lo, hi = finite.min(), finite.max()
        whole = a.dtype.kind != "f" or bool(np.all(finite == np.round(finite)))
        if lo < 0 or hi > k - 1 or not whole:
            value = lo if lo < 0 else hi if hi > k - 1 else \
                finite[finite != np.round(finite)][0]
            raise UsageError(f"{path}: array {quote(out)} holds {value}; output {quote(out)} "
                             f"({loss_name(graph.spec.loss_for(out))}) takes class ids, whole "
                             f"numbers in [0, {k - 1}]")


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
