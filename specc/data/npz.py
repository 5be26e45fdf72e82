"""Arrays from an .npz archive or a folder of .npy files: headers checked before any array is
read, arrays over the budget memory-mapped, never a pickle."""
from __future__ import annotations

import struct
import zipfile
import zlib
from pathlib import Path
from typing import Any

from specc.data.checks import (
    MAX_DATA_BYTES, _NUMERIC_KINDS, Header, _check_shapes, _check_values, _shape_text, _size,
)
from specc.data.targets import Arrays
from specc.errors import quote
from specc.graph import Graph

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
    from specc.data import CHUNK_BYTES
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
