"""Arrays from a table (.csv, or .parquet with pyarrow): columns named after the inputs and
outputs, read in blocks of TABLE_ROWS rows, spilled to mapped .npy files over the budget."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Final, Sequence

from specc.data.checks import MAX_DATA_BYTES, Header, _check_shapes, _check_values, _size
from specc.data.targets import Arrays, target_kind
from specc.errors import quote
from specc.graph import Graph

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

    from specc.data import release
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
                    row += 1 if parquet else 2     # a Parquet row from 1; a CSV's line
                    raise UsageError(f"{shown}: row {row:,}: column(s) of {quote(name)} "
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
    """As `_csv_rows`, for a Parquet file (pyarrow): the wanted columns read a record batch of
    TABLE_ROWS rows at a time (memory: one row group of those columns, as pyarrow decodes
    them); a column of another type than numbers or booleans is refused."""
    from specc.errors import UsageError

    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise UsageError(f"{path}: reading Parquet needs pyarrow, which this install lacks: "
                         "pip install pyarrow (or save the table as CSV)") from None
    import numpy as np
    import pyarrow as pa

    try:
        # pre_buffer (pyarrow's default) would read the whole file in before the first batch
        table = pq.ParquetFile(str(path), pre_buffer=False)
        header = list(table.schema_arrow.names)
    except (OSError, ValueError, pa.ArrowException) as exc:
        reason = " ".join(str(exc).split())[:200]
        raise UsageError(f"{path}: cannot read it as Parquet ({reason})") from None
    if columns is None:
        return header, table.metadata.num_rows
    names = [header[c] for c in columns]
    for name in names:
        kind = table.schema_arrow.field(name).type
        if not (pa.types.is_integer(kind) or pa.types.is_floating(kind)
                or pa.types.is_boolean(kind)):
            raise UsageError(f"{path}: column {quote(name)} holds {kind} values; a table feeds "
                             "numbers (one column per value: NAME_0 ... NAME_k-1)")

    def blocks() -> Any:
        start = 0
        for batch in table.iter_batches(batch_size=TABLE_ROWS, columns=names):
            # by name: a record batch keeps the file's column order, not the one asked for;
            # a missing value (null) reads as NaN, which the value checks refuse
            block = np.stack([batch.column(name).to_numpy(zero_copy_only=False)
                              .astype("float64") for name in names], axis=1)
            yield start, block
            start += len(block)
    return blocks()
