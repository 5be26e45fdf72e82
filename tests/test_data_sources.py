"""The data sources of `specc fit` other than an in-memory .npz: memory-mapped arrays, .npy
folders, CSV tables, class folders, module:function; each checked before Keras starts, every
problem one line. No Keras here."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

import specc
from specc.data import load_npy_folder, load_npz, load_table
from specc.errors import UsageError
from specc.feed import check_classes, open_data, split

from helpers import IDS_AND_FEATURES_SPEC

SPEC = IDS_AND_FEATURES_SPEC

IMAGES = """\
specc: 1
name: img
inputs:
  image: {shape: [8, 8, 3]}
layers:
  - {name: flat, type: Flatten}
  - {name: probs, type: Dense, units: 2, activation: softmax}
outputs: [probs]
loss: sparse_categorical_crossentropy
"""


@pytest.fixture(scope="module")
def graph() -> Any:
    return specc.lower(specc.loads(SPEC, "d.yaml"))


def arrays(n: int = 50, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.RandomState(seed)
    return {"tokens": rng.randint(0, 10, (n, 4)).astype("int32"),
            "feats": rng.rand(n, 3).astype("float32"), "out": rng.randint(0, 3, n)}


def write_csv(path: Path, a: dict[str, np.ndarray], header: list[str] | None = None) -> Path:
    cols = header or ([f"tokens_{i}" for i in range(4)] + [f"feats_{i}" for i in range(3)]
                      + ["out"])
    with open(path, "w") as f:
        f.write(",".join(cols) + "\n")
        for i in range(len(a["out"])):
            values = [*a["tokens"][i], *(repr(float(v)) for v in a["feats"][i]), a["out"][i]]
            f.write(",".join(str(v) for v in values) + "\n")
    return path


def test_npz_over_the_budget_is_memory_mapped_and_equal(graph: Any, tmp_path: Path) -> None:
    a = arrays()
    np.savez(tmp_path / "d.npz", **a)
    x, y = load_npz(tmp_path / "d.npz", graph, max_bytes=100)
    assert isinstance(x["feats"], np.memmap) and isinstance(y["out"], np.memmap)
    # exact on purpose: the stored bytes mapped back, no arithmetic on any CPU
    np.testing.assert_array_equal(x["feats"], a["feats"])
    np.testing.assert_array_equal(x["tokens"], a["tokens"])
    np.testing.assert_array_equal(y["out"], a["out"])
    x, _ = load_npz(tmp_path / "d.npz", graph)            # within the budget: in memory
    assert not isinstance(x["feats"], np.memmap)


def test_a_mapped_member_is_crc_checked(graph: Any, tmp_path: Path) -> None:
    np.savez(tmp_path / "d.npz", **arrays())
    raw = bytearray((tmp_path / "d.npz").read_bytes())
    raw[raw.find(b"NUMPY") + 200] ^= 0xFF
    (tmp_path / "d.npz").write_bytes(bytes(raw))
    with pytest.raises(UsageError, match="Bad CRC-32"):
        load_npz(tmp_path / "d.npz", graph, max_bytes=100)


def test_a_compressed_npz_over_the_budget_is_refused(graph: Any, tmp_path: Path) -> None:
    np.savez_compressed(tmp_path / "d.npz", **arrays())
    with pytest.raises(UsageError) as info:
        load_npz(tmp_path / "d.npz", graph, max_bytes=100)
    assert "compressed, so it cannot be memory-mapped" in str(info.value)
    assert "\n" not in str(info.value)
    load_npz(tmp_path / "d.npz", graph)                    # within the budget: read


def test_mapped_values_are_checked_in_chunks(graph: Any, tmp_path: Path, monkeypatch) -> None:
    """NaN and out-of-range ids are found in a mapped array read piece by piece, with the
    index of the first one counted from the start of the array."""
    import specc.data

    monkeypatch.setattr(specc.data, "CHUNK_BYTES", 40)       # a few rows at a time
    a = arrays()
    a["feats"][37, 1] = np.nan
    a["feats"][41, 2] = np.inf
    np.savez(tmp_path / "d.npz", **a)
    with pytest.raises(UsageError, match=r"'feats' holds 2 NaN or infinite value\(s\), the "
                                         r"first at index \(37, 1\)"):
        load_npz(tmp_path / "d.npz", graph, max_bytes=100)
    a = arrays()
    a["tokens"][44, 3] = 12
    np.savez(tmp_path / "d.npz", **a)
    with pytest.raises(UsageError, match="holds 12; its values are ids of an Embedding"):
        load_npz(tmp_path / "d.npz", graph, max_bytes=100)


def test_npy_folder(graph: Any, tmp_path: Path) -> None:
    a = arrays()
    for k, v in a.items():
        np.save(tmp_path / f"{k}.npy", v)
    x, y = load_npy_folder(tmp_path, graph, max_bytes=100)
    assert isinstance(x["feats"], np.memmap)
    np.testing.assert_array_equal(x["feats"], a["feats"])   # the stored bytes: exact
    (tmp_path / "out.npy").unlink()
    with pytest.raises(UsageError, match=r"no file out\.npy \(it has: 'feats\.npy', "):
        load_npy_folder(tmp_path, graph)
    np.save(tmp_path / "out.npy", a["out"][:7])
    with pytest.raises(UsageError, match="different numbers of samples"):
        load_npy_folder(tmp_path, graph)





@pytest.mark.parametrize("edit, expected", [
    (lambda t: t.replace("feats_2,", "feats_x,", 1), "no column 'feats_2' (it has: "),
    (lambda t: t.replace("\n3,", "\nthree,", 1), "is not a number"),
    (lambda t: t + "1,2\n", "has 2 field(s); the header has 8"),
    (lambda t: t.split("\n")[0] + "\n", "the table holds 0 rows"),
    (lambda t: "", "the file is empty"),
])
def test_bad_tables_are_one_line(graph: Any, tmp_path: Path, edit: Any, expected: str) -> None:
    a = arrays(n=5)
    a["tokens"][0, 0] = 3
    path = write_csv(tmp_path / "t.csv", a)
    path.write_text(edit(path.read_text()))
    with pytest.raises(UsageError) as info:
        load_table(path, graph)
    assert expected in str(info.value) and "\n" not in str(info.value)


def test_class_ids_in_a_table_are_whole(graph: Any, tmp_path: Path) -> None:
    a = arrays(n=5)
    path = write_csv(tmp_path / "t.csv", a)
    lines = path.read_text().splitlines()
    lines[3] = lines[3].rsplit(",", 1)[0] + ",1.5"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(UsageError, match="row 4: column.* of 'out' hold a value that is not a "
                                         "whole number; 'out' takes class ids"):
        load_table(path, graph)


def write_parquet(path: Path, a: dict[str, np.ndarray], rows_per_group: int = 3000,
                  extra: bool = True) -> Path:
    """The table of `write_csv` as Parquet: columns in another order than the spec's, typed
    (int32 ids, float32 features, int64 classes), in row groups, and an unused text column."""
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    cols = {"out": a["out"].astype("int64"),
            **{f"feats_{i}": a["feats"][:, i] for i in (2, 0, 1)},
            **{f"tokens_{i}": a["tokens"][:, i] for i in range(4)}}
    if extra:
        cols["note"] = np.array([f"row {i}" for i in range(len(a["out"]))])
    pq.write_table(pa.table(cols), path, row_group_size=rows_per_group)
    return path


@pytest.mark.parametrize("budget", [10**9, 100])
@pytest.mark.parametrize("write", [write_csv, write_parquet], ids=["csv", "parquet"])
def test_table_reads_exactly(graph: Any, tmp_path: Path, budget: int, write: Any) -> None:
    """In memory, or spilled to mapped .npy files over the budget: the values stored, read
    back exactly (CSV: float32 written with repr; Parquet: its columns found by name whatever
    their order, the unused text column left alone; ints exact)."""
    import specc.data

    a = arrays(n=20000)                  # more rows than one block of TABLE_ROWS
    assert len(a["out"]) > specc.data.TABLE_ROWS
    path = write(tmp_path / f"t.{'csv' if write is write_csv else 'parquet'}", a)
    spill = tmp_path / "spill"
    spill.mkdir()
    x, y = load_table(path, graph, max_bytes=budget, spill=spill)
    assert isinstance(x["feats"], np.memmap) == (budget == 100)
    np.testing.assert_array_equal(x["tokens"], a["tokens"])     # stored values, no arithmetic
    np.testing.assert_array_equal(x["feats"], a["feats"])
    np.testing.assert_array_equal(y["out"], a["out"])
    assert x["tokens"].dtype == np.int32 and y["out"].dtype == np.int32


def test_parquet_is_streamed_in_bounded_memory(graph: Any, tmp_path: Path) -> None:
    """A 16 MiB table (2.6 million values, written one row group of 16,384 rows at a time)
    read over a budget of 1 MiB: pyarrow's memory pool never held more than an eighth of it
    (its own peak counter: the pool is pyarrow's, not Python's). pyarrow's default pre-buffering
    read the whole file into memory first (51 MiB for a 41 MiB table, measured)."""
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    n, group = 20 * 16384, 16384
    path = tmp_path / "big.parquet"
    writer, whole = None, 0
    for start in range(0, n, group):
        part = arrays(group, seed=start)
        cols = {"out": part["out"], **{f"feats_{i}": part["feats"][:, i] for i in range(3)},
                **{f"tokens_{i}": part["tokens"][:, i].astype("int64") for i in range(4)}}
        t = pa.table(cols)
        whole += t.nbytes
        writer = writer or pq.ParquetWriter(path, t.schema)
        writer.write_table(t)
    writer.close()
    pool = pa.default_memory_pool()
    before = pool.max_memory()
    spill = tmp_path / "spill"
    spill.mkdir()
    x, y = load_table(path, graph, max_bytes=2**20, spill=spill)
    assert isinstance(x["feats"], np.memmap) and len(y["out"]) == n
    peak = pool.max_memory()
    print(f"pyarrow's peak {peak / 2**20:.1f} MiB for a table of {whole / 2**20:.1f} MiB")
    assert whole >= 16 * 2**20
    assert before < whole // 8 and peak < whole // 8, (before, peak, whole)


def test_bad_parquet_tables_are_one_line(graph: Any, tmp_path: Path) -> None:
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    a = arrays(n=6)
    path = write_parquet(tmp_path / "t.parquet", a)
    cases = []
    table = pq.read_table(path)
    pq.write_table(table.drop_columns(["feats_1"]), tmp_path / "m.parquet")
    cases.append(("m.parquet", "no column 'feats_1' (it has: 'out', 'feats_2', 'feats_0', "))
    pq.write_table(table.set_column(table.schema.get_field_index("feats_2"), "feats_2",
                                    pa.array([str(v) for v in a["feats"][:, 2]])),
                   tmp_path / "s.parquet")
    cases.append(("s.parquet", "column 'feats_2' holds string values; a table feeds numbers"))
    pq.write_table(table.set_column(0, "out", pa.array([0, 1, None, 2, 0, 1],
                                                      type=pa.int64())), tmp_path / "n.parquet")
    cases.append(("n.parquet", "row 3: column(s) of 'out' hold a value that is not a whole "
                               "number; 'out' takes class ids"))
    pq.write_table(table.set_column(table.schema.get_field_index("feats_0"), "feats_0",
                                    pa.array([0.5, None, 1, 2, 3, 4], type=pa.float32())),
                   tmp_path / "f.parquet")
    cases.append(("f.parquet", "NaN"))
    (tmp_path / "x.parquet").write_bytes(b"PAR1 not really")
    cases.append(("x.parquet", "cannot read it as Parquet ("))
    for name, expected in cases:
        with pytest.raises(UsageError) as info:
            load_table(tmp_path / name, graph)
        assert expected in str(info.value) and "\n" not in str(info.value), name


def test_parquet_without_pyarrow_is_one_line(graph: Any, tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """pyarrow absent (simulated: a None entry in sys.modules makes its import fail)."""
    import sys

    for name in ("pyarrow", "pyarrow.parquet"):
        monkeypatch.setitem(sys.modules, name, None)
    path = tmp_path / "t.parquet"
    path.write_bytes(b"PAR1")
    with pytest.raises(UsageError) as info:
        load_table(path, graph)
    assert str(info.value) == (f"{path}: reading Parquet needs pyarrow, which this install "
                               "lacks: pip install pyarrow (or save the table as CSV)")


def test_module_function_only_from_the_command_line(graph: Any) -> None:
    with pytest.raises(UsageError, match="taken from the command line only"):
        open_data("mymod:make", graph, allow_nonfinite=False, max_bytes=1, spill=None,
                  from_spec=True)
    data = open_data("mymod:make", graph, allow_nonfinite=False, max_bytes=1, spill=None)
    assert data.kind == "callable"                        # imported only once Keras runs


def test_class_folders(tmp_path: Path) -> None:
    g = specc.lower(specc.loads(IMAGES, "img.yaml"))
    kw: dict[str, Any] = dict(allow_nonfinite=False, max_bytes=1, spill=None)
    for c in ("cat", "dog"):
        (tmp_path / c).mkdir()
        (tmp_path / c / "a.png").write_bytes(b"")
    data = open_data(str(tmp_path), g, **kw)
    assert data.kind == "images" and data.classes == ["cat", "dog"] and data.files == 2
    (tmp_path / "eel").mkdir()
    with pytest.raises(UsageError, match="class folder 'eel' holds no image"):
        open_data(str(tmp_path), g, **kw)
    (tmp_path / "eel" / "b.txt").write_text("not an image")
    with pytest.raises(UsageError, match="class folder 'eel' holds no image"):
        open_data(str(tmp_path), g, **kw)
    (tmp_path / "eel" / "b.jpg").write_bytes(b"")
    with pytest.raises(UsageError, match=r"3 class folders \(cat, dog, eel\); output 'probs' "
                                         r"has 2 unit\(s\), one per class"):
        check_classes(open_data(str(tmp_path), g, **kw), g, {"probs": (2,)})


def test_seeded_split_is_a_partition() -> None:
    train, val = split(103, 0.2, seed=4)
    assert len(val) == 20 and len(train) == 83
    assert sorted([*train, *val]) == list(range(103))
    again = split(103, 0.2, seed=4)      # sample indices (integers): exact
    assert np.array_equal(again[1], val) and not np.array_equal(split(103, 0.2, seed=5)[1], val)


def test_a_spec_never_names_code_as_its_data(tmp_path: Path, capsys) -> None:
    """`training.data: module:function` in a spec is refused before anything is imported."""
    from specc.cli import main

    spec = tmp_path / "s.yaml"
    spec.write_text(SPEC + "training: {data: 'os:getcwd', epochs: 1}\n")
    assert main(["fit", str(spec), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert ("data 'os:getcwd': a module:function runs code, so it is taken from the command "
            "line only (--data), never from a spec") in err
    assert not (tmp_path / "o").exists()


def test_a_spec_names_its_data_relative_to_itself(tmp_path: Path, capsys) -> None:
    """The spec's training section is read (a missing file is reported at its full path)."""
    from specc.cli import main

    (tmp_path / "specs").mkdir()
    spec = tmp_path / "specs" / "s.yaml"
    spec.write_text(SPEC + "training: {data: ../d.npz, epochs: 1}\n")
    assert main(["fit", str(spec), "--out", str(tmp_path / "o")]) == 2
    assert f"{tmp_path / 'specs' / '..' / 'd.npz'}: no such file or folder" in \
        capsys.readouterr().err
