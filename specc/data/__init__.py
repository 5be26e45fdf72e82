"""Data for `specc fit`: a user's .npz file, or a seeded synthetic set shaped like the spec.

The synthetic set needs no download and is learnable: every sample belongs to one of K
classes (K from the first classification output), inputs are the class's prototype plus
noise, and each output's target follows from the class (one-hot, class id, parity) or, for a
regression output, from a fixed random teacher of the first input.
"""
from __future__ import annotations

from typing import Any, Final

from specc.data.checks import (
    MAX_DATA_BYTES, Header, check_targets, parse_size,
)
from specc.data.npz import load_npy_folder, load_npz
from specc.data.tables import TABLE_ROWS, load_table, table_columns
from specc.data.targets import (
    Arrays, TargetKind, embedding_bound, int_bound, loss_name, synthetic, target_kind,
)

# NumPy is imported inside the functions: specc.golden uses the helpers and stays light.
# One job per module: targets (kinds per loss, the synthetic set), checks (shapes, values,
# targets, sizes), npz (.npz and .npy folders), tables (.csv, .parquet); here, the chunked
# reading they share.

__all__ = [
    "CHUNK_BYTES", "MAX_DATA_BYTES", "TABLE_ROWS", "Arrays", "Header", "TargetKind",
    "check_targets", "chunks", "embedding_bound", "int_bound", "load_npy_folder", "load_npz",
    "load_table", "loss_name", "parse_size", "release", "synthetic", "table_columns",
    "target_kind",
]


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
