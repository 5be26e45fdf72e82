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
    least one) in every array, the inputs' shapes, and the size each member holds. Arrays
    within `max_bytes` all together are read into memory; larger ones are memory-mapped from
    the archive (an uncompressed member, as numpy.savez writes it, is the .npy bytes at an
    offset in the file) and read batch by batch; a compressed member over the budget is
    refused. Then the values, in chunks: finite (unless `allow_nonfinite`), integer ids within
    the Embedding's range (or the input dtype's), and each mapped member's CRC-32. Every
    problem is one UsageError line; class-id targets are checked once the model is built
    (check_targets).
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
                             "the arrays with numpy.savez(path, name=array, ...), or give a "
                             "folder of NAME.npy files")
        with zipfile.ZipFile(path) as archive:
            return _load_checked(archive, shown, graph, allow_nonfinite, max_bytes, Path(path))
    except UsageError:
        raise
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, ValueError,
            NotImplementedError, RuntimeError, MemoryError, OverflowError, struct.error,
            zlib.error) as exc:
        # RuntimeError: an encrypted member; NotImplementedError: an unknown compression
        reason = " ".join(str(exc).split())[:200] or type(exc).__name__
        raise UsageError(f"{shown}: cannot read it as .npz ({reason})") from None


def _member_data_offset(file: Path, info: Any) -> int:
    """Where a stored (uncompressed) zip member's bytes start in the file: after its local
    header (30 bytes, the name, the extra field)."""
    with open(file, "rb") as f:
        f.seek(info.header_offset)
        local = f.read(30)
    if len(local) != 30 or local[:4] != b"PK\x03\x04":
        raise ValueError(f"member {info.filename}: bad local header")
    name_len, extra_len = struct.unpack("<HH", local[26:30])
    return info.header_offset + 30 + name_len + extra_len


def _mapped(file: Path, offset: int, header: Header) -> Any:
    import numpy as np

    return np.memmap(file, dtype=header.dtype, mode="r", offset=offset, shape=header.shape,
                     order="F" if header.fortran_order else "C")


def _check_crc(file: Path, start: int, size: int, expected: int, path: str, name: str) -> None:
    """A mapped member's CRC-32, read in chunks (zipfile checks it for members it reads)."""
    from specc.errors import UsageError

    crc, left = 0, size
    with open(file, "rb") as f:
        f.seek(start)
        while left:
            chunk = f.read(min(left, CHUNK_BYTES))
            if not chunk:
                break
            crc = zlib.crc32(chunk, crc)
            left -= len(chunk)
    if left or crc != expected:
        raise UsageError(f"{path}: cannot read it as .npz (Bad CRC-32 for file "
                         f"{quote(name + '.npy')})")


def _load_checked(archive: Any, path: str, graph: Graph, allow_nonfinite: bool,
                  max_bytes: int, file: Path | None = None) -> tuple[Arrays, Arrays]:
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
    offsets: dict[str, int] = {}
    for name in names:
        info = members[name]
        with archive.open(info) as fp:
            header = headers[name] = _read_header(fp, name, path)
            offsets[name] = fp.tell()
        total = sum(h.nbytes for h in headers.values())
        if total > max_bytes and info.compress_type != zipfile.ZIP_STORED:
            raise UsageError(f"{path}: the arrays need {_size(total)} in memory (array "
                             f"{quote(name)}: shape {_shape_text(header.shape)} of "
                             f"{header.dtype.str}), over the budget of {_size(max_bytes)}, and "
                             "its member is compressed, so it cannot be memory-mapped; save "
                             "with numpy.savez (not savez_compressed) or raise it with "
                             "--max-data")
        if info.file_size != offsets[name] + header.nbytes:
            raise UsageError(
                f"{path}: array {quote(name)}: its header says shape "
                f"{_shape_text(header.shape)} of {header.dtype.str} ({_size(header.nbytes)}) "
                f"but the member holds {_size(max(info.file_size - offsets[name], 0))} of data")
    _check_shapes(headers, graph, path)
    stream = sum(h.nbytes for h in headers.values()) > max_bytes
    arrays: Arrays = {}
    for name in names:
        info = members[name]
        if stream and file is not None:
            start = _member_data_offset(file, info)
            _check_crc(file, start, info.compress_size, info.CRC, path, name)
            arrays[name] = _mapped(file, start + offsets[name], headers[name])
            continue
        with archive.open(info) as fp:
            arrays[name] = npy.read_array(fp, allow_pickle=False)
            fp.read()        # reach the member's end, where zipfile checks its CRC
    _check_values(arrays, headers, graph, path, allow_nonfinite)
    return ({n: arrays[n] for n in input_names}, {o: arrays[o] for o in graph.outputs})


def load_npy_folder(folder: str | Path, graph: Graph, allow_nonfinite: bool = False,
                    max_bytes: int = MAX_DATA_BYTES) -> tuple[Arrays, Arrays]:
    """A folder of `NAME.npy` files, one per input and output: checked from their headers
    as an .npz's members are, then read into memory within `max_bytes`, memory-mapped
    (`numpy.load(mmap_mode="r")`) above it."""
    import numpy as np

    from specc.errors import UsageError

    shown = str(folder)
    input_names = [n for n, _, _ in graph.inputs]
    names = input_names + list(graph.outputs)
    files = {n: Path(folder) / f"{n}.npy" for n in names}
    missing = [n for n, f in files.items() if not f.is_file()]
    if missing:
        have = ", ".join(quote(p.name) for p in sorted(Path(folder).glob("*.npy"))[:20]) or "none"
        raise UsageError(f"{shown}: no file {', '.join(n + '.npy' for n in missing)} "
                         f"(it has: {have})")
    headers: dict[str, Header] = {}
    try:
        for name, f in files.items():
            with open(f, "rb") as fp:
                headers[name] = _read_header(fp, name, f"{shown}/{name}.npy")
                offset = fp.tell()
            size = f.stat().st_size
            if size != offset + headers[name].nbytes:
                raise UsageError(
                    f"{shown}/{name}.npy: its header says shape "
                    f"{_shape_text(headers[name].shape)} of {headers[name].dtype.str} "
                    f"({_size(headers[name].nbytes)}) but the file holds "
                    f"{_size(max(size - offset, 0))} of data")
        _check_shapes(headers, graph, shown)
        stream = sum(h.nbytes for h in headers.values()) > max_bytes
        arrays: Arrays = {n: np.load(f, mmap_mode="r" if stream else None, allow_pickle=False)
                          for n, f in files.items()}
    except (OSError, ValueError, EOFError) as exc:
        reason = " ".join(str(exc).split())[:200] or type(exc).__name__
        raise UsageError(f"{shown}: cannot read its .npy files ({reason})") from None
    _check_values(arrays, headers, graph, shown, allow_nonfinite)
    return ({n: arrays[n] for n in input_names}, {o: arrays[o] for o in graph.outputs})


#: Bytes of one array looked at, at once, when values are checked or a member's CRC is read.
CHUNK_BYTES: Final = 16 * 1024**2


def chunks(a: Any) -> Any:
    """(start, rows) of `a` in pieces of about CHUNK_BYTES; a memory-mapped array's pages are
    released after each piece, so that a pass over it stays within that much memory."""
    n = len(a)
    row = max(1, a.nbytes // max(n, 1))
    step = max(1, CHUNK_BYTES // row)
    for start in range(0, n, step):
        yield start, a[start:start + step]
        release(a)


def release(a: Any) -> None:
    """Drop a memory-mapped array's resident pages from this process (the OS keeps them in
    its page cache): its memory stays bounded while it is read piece by piece."""
    import mmap

    m = getattr(a, "_mmap", None)
    if m is None and getattr(a, "base", None) is not None:
        m = getattr(a.base, "_mmap", None) or (a.base if isinstance(a.base, mmap.mmap) else None)
    if isinstance(m, mmap.mmap) and hasattr(m, "madvise"):
        try:
            m.madvise(mmap.MADV_DONTNEED)
        except (OSError, ValueError):
            pass


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


# ------------------------------------------------------------------------------ tables


def table_columns(graph: Graph, header: Sequence[str]
                  ) -> dict[str, tuple[list[str], tuple[int, ...], str]]:
    """name -> (its columns, the shape of one sample, dtype) for every input and output: a
    one-value input is the column of its name; one of shape (k,) or more is k columns
    `NAME_0` ... `NAME_{k-1}` (row-major), reshaped to its shape. An output is the column of
    its name (a class id, a 0/1 or a value) or, without one, the columns `NAME_0`, `NAME_1`,
    ... the header has (one-hot rows, a vector); they are checked against the model once it
    is built. Raises ValueError(input) for an input with a variable-length axis."""
    out: dict[str, tuple[list[str], tuple[int, ...], str]] = {}
    for name, shape, dtype in graph.inputs:
        if any(d is None for d in shape):
            raise ValueError(name)
        out[name] = (_column_names(name, tuple(shape)), tuple(shape), dtype)
    have = set(header)
    for o in graph.outputs:
        kind = target_kind(graph, o)
        dtype = "int32" if kind == "class_ids" else "float32"
        k = 0
        while f"{o}_{k}" in have and o not in have:
            k += 1
        out[o] = ([f"{o}_{i}" for i in range(k)], (k,), dtype) if k else ([o], (), dtype)
    return out


def _column_names(name: str, shape: tuple[int, ...]) -> list[str]:
    import math

    size = math.prod(shape) if shape else 1
    return [name] if size == 1 else [f"{name}_{i}" for i in range(size)]


def load_table(path: str | Path, graph: Graph, allow_nonfinite: bool = False, max_bytes: int = MAX_DATA_BYTES,
               spill: str | Path | None = None) -> tuple[Arrays, Arrays]:
    """A CSV (or, with pyarrow, Parquet) table whose columns are named after the inputs and
    outputs (see `table_columns`), read in chunks of rows into arrays: in memory within
    `max_bytes`, else into .npy files in the folder `spill`, memory-mapped. Checked as an
    .npz is (shapes, finite values, ids); every problem one UsageError line."""
    import math

    import numpy as np
    from numpy.lib import format as npy

    from specc.errors import UsageError

    shown = str(path)
    parquet = Path(path).suffix.lower() in (".parquet", ".pq")
    reader = _parquet_rows if parquet else _csv_rows
    header, n = reader(path, None)
    try:
        layout = table_columns(graph, header)
    except ValueError as exc:
        raise UsageError(f"{shown}: input {quote(str(exc))} has a variable-length axis; a "
                         "table holds fixed-size rows (use an .npz)") from None
    for name, (_, _, dtype) in layout.items():
        if dtype == "string":
            raise UsageError(f"{shown}: input {quote(name)} is a string input; a table feeds "
                             "numbers (use a folder of text files by class)")
    wanted = [c for cols, _, _ in layout.values() for c in cols]
    missing = [c for c in wanted if c not in header]
    if missing:
        have = ", ".join(quote(c) for c in header[:20]) or "none"
        listed = ", ".join(quote(c) for c in missing[:6]) + (", ..." if len(missing) > 6 else "")
        raise UsageError(f"{shown}: no column {listed} (it has: {have}); name the columns "
                         "after the inputs and outputs, NAME_0 ... NAME_k-1 for one of k values")
    if n == 0:
        raise UsageError(f"{shown}: the table holds 0 rows")
    total = sum(n * math.prod(shape or (1,)) * np.dtype(dtype).itemsize
                for _, shape, dtype in layout.values())
    arrays: Arrays = {}
    for name, (cols, shape, dtype) in layout.items():
        full = (n, *shape)
        if total > max_bytes:
            if spill is None:
                raise UsageError(f"{shown}: the table needs {_size(total)} in memory, over the "
                                 f"budget of {_size(max_bytes)}; raise it with --max-data")
            arrays[name] = npy.open_memmap(Path(spill) / f"{name}.npy", mode="w+",
                                           dtype=dtype, shape=full)
        else:
            arrays[name] = np.empty(full, dtype=dtype)
    index = {c: header.index(c) for c in wanted}
    for start, block in reader(path, [index[c] for c in wanted]):
        at = 0
        for name, (cols, shape, dtype) in layout.items():
            values = block[:, at:at + len(cols)]
            at += len(cols)
            target = arrays[name]
            if np.dtype(dtype).kind in "iu":
                bad = values[np.isfinite(values)]
                if bad.size and not np.all(bad == np.round(bad)) or np.isnan(values).any():
                    row = start + int(np.argwhere((values != np.round(values)) |
                                                  np.isnan(values))[0][0])
                    raise UsageError(f"{shown}: row {row + 2:,}: column(s) of {quote(name)} "
                                     f"hold a value that is not a whole number; {quote(name)} "
                                     f"takes {'class ids' if name in graph.outputs else dtype}")
            target[start:start + len(block)] = values.reshape((len(block), *shape)).astype(dtype)
        for a in arrays.values():
            if hasattr(a, "flush"):
                a.flush()
            release(a)
    headers = {name: Header(name, tuple(a.shape), a.dtype, False, a.nbytes)
               for name, a in arrays.items()}
    inputs_only = {n: headers[n] for n, _, _ in graph.inputs}
    _check_shapes(inputs_only, graph, shown)
    _check_values(arrays, headers, graph, shown, allow_nonfinite)
    return ({n: arrays[n] for n, _, _ in graph.inputs}, {o: arrays[o] for o in graph.outputs})


#: Rows of a table parsed at once.
TABLE_ROWS: Final = 8192


def _csv_rows(path: str | Path, columns: list[int] | None) -> Any:
    """columns None: (header, row count), one pass over the file. Else yields (first row,
    float64 block of those columns) per TABLE_ROWS rows."""
    import csv

    import numpy as np

    from specc.errors import UsageError

    shown = str(path)

    def rows() -> Any:
        try:
            with open(path, newline="", encoding="utf-8") as f:
                yield from enumerate(csv.reader(f))
        except (OSError, UnicodeDecodeError, csv.Error) as exc:
            reason = " ".join(str(exc).split())[:200]
            raise UsageError(f"{shown}: cannot read it as CSV ({reason})") from None

    it = rows()
    first = next(it, None)
    if first is None:
        raise UsageError(f"{shown}: the file is empty (give a CSV table with a header row)")
    header = [h.strip() for h in first[1]]
    if columns is None:
        width, n = len(header), 0
        for line, row in it:
            if not row:
                continue
            if len(row) != width:
                raise UsageError(f"{shown}: row {line + 1:,} has {len(row)} field(s); the "
                                 f"header has {width}")
            n += 1
        return header, n
    return _csv_blocks(it, columns, shown)


def _csv_blocks(it: Any, columns: list[int], shown: str) -> Any:
    import numpy as np

    from specc.errors import UsageError

    start, block, lines = 0, [], []
    for line, row in it:
        if not row:
            continue
        block.append([row[c] for c in columns])
        lines.append(line)
        if len(block) == TABLE_ROWS:
            yield start, _floats(block, lines, shown)
            start += len(block)
            block, lines = [], []
    if block:
        yield start, _floats(block, lines, shown)


def _floats(block: list[list[str]], lines: list[int], shown: str) -> Any:
    import numpy as np

    from specc.errors import UsageError

    try:
        return np.array(block, dtype=np.float64)
    except ValueError:
        for row, line in zip(block, lines):
            for cell in row:
                try:
                    float(cell)
                except ValueError:
                    raise UsageError(f"{shown}: row {line + 1:,}: {quote(cell)} is not a "
                                     "number") from None
        raise


def _parquet_rows(path: str | Path, columns: list[int] | None) -> Any:
    from specc.errors import UsageError

    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise UsageError(f"{path}: reading Parquet needs pyarrow, which this install lacks: "
                         "pip install pyarrow (or save the table as CSV)") from None
    import numpy as np

    try:
        table = pq.ParquetFile(str(path))
        header = list(table.schema_arrow.names)
    except (OSError, ValueError) as exc:
        raise UsageError(f"{path}: cannot read it as Parquet ({str(exc)[:200]})") from None
    if columns is None:
        return header, table.metadata.num_rows

    def blocks() -> Any:
        start = 0
        names = [header[c] for c in columns]
        for batch in table.iter_batches(batch_size=TABLE_ROWS, columns=names):
            block = np.stack([batch.column(i).to_numpy(zero_copy_only=False).astype("float64")
                              for i in range(len(names))], axis=1)
            yield start, block
            start += len(block)
    return blocks()
