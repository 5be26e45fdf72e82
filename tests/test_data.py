"""`specc fit --data`: every malformed or hostile .npz is one clean line and exit 2, found from
the archive's headers before any array is read. No Keras here."""
from __future__ import annotations

import io
import sys
import zipfile
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import specc
from specc.cli import main
from specc.data import load_npz, parse_size
from specc.errors import UsageError

from helpers import IDS_AND_FEATURES_SPEC

SPEC = IDS_AND_FEATURES_SPEC


@pytest.fixture(scope="module")
def graph() -> Any:
    return specc.lower(specc.loads(SPEC, "d.yaml"))


def good() -> dict[str, np.ndarray]:
    rng = np.random.RandomState(0)
    return {"tokens": rng.randint(0, 10, (8, 4)).astype("int32"),
            "feats": rng.rand(8, 3).astype("float32"), "out": rng.randint(0, 3, 8)}


def npz(path: Path, **arrays: Any) -> Path:
    np.savez(path, **arrays)
    return path


def with_header(path: Path, name: str, header: dict, data: bytes = b"") -> Path:
    """An archive of the good arrays where `name` has a hand-written .npy header."""
    with zipfile.ZipFile(path, "w") as z:
        for key, value in good().items():
            buf = io.BytesIO()
            if key == name:
                np.lib.format.write_array_header_1_0(buf, header)
                buf.write(data)
            else:
                np.save(buf, value)
            z.writestr(f"{key}.npy", buf.getvalue())
    return path


def corrupt_crc(path: Path) -> Path:
    npz(path, **good())
    raw = bytearray(path.read_bytes())
    raw[raw.find(b"NUMPY") + 200] ^= 0xFF          # inside the first member's data
    path.write_bytes(bytes(raw))
    return path


def truncate(path: Path) -> Path:
    npz(path, **good())
    path.write_bytes(path.read_bytes()[:300])
    return path


def single_npy(path: Path) -> Path:
    buf = io.BytesIO()
    np.save(buf, good()["feats"])
    path.write_bytes(buf.getvalue())
    return path


def replaced(**changes: Any) -> Callable[[Path], Path]:
    return lambda path: npz(path, **{**good(), **changes})


def edited(name: str, index: tuple, value: Any, dtype: str | None = None
           ) -> Callable[[Path], Path]:
    def make(path: Path) -> Path:
        arrays = good()
        arrays[name] = arrays[name].astype(dtype or arrays[name].dtype)
        arrays[name][index] = value
        return npz(path, **arrays)
    return make


# case -> (how to make the file, what the one-line message must say)
CASES: dict[str, tuple[Callable[[Path], Path], str]] = {
    "empty file": (lambda p: (p.write_bytes(b""), p)[1], "the file is empty"),
    "not a zip": (lambda p: (p.write_bytes(b"hello, world\n" * 10), p)[1],
                  "cannot read it as .npz (File is not a zip file)"),
    "truncated zip": (truncate, "cannot read it as .npz"),
    "bad CRC": (corrupt_crc, "Bad CRC-32"),
    "single .npy named .npz": (single_npy, "a single .npy array, not an .npz archive"),
    "header claims (1e12, 10)": (
        lambda p: with_header(p, "feats", {"descr": "<f4", "fortran_order": False,
                                            "shape": (10**12, 10)}, b"\0" * 64),
        "its header says shape (1000000000000, 10) of <f4 (36.4 TiB) but the member holds "
        "64 bytes"),
    "header longer than its data": (
        lambda p: with_header(p, "feats", {"descr": "<f4", "fortran_order": False,
                                            "shape": (8, 3)}, b"\0" * 40),
        "its header says shape (8, 3) of <f4 (96 bytes) but the member holds 40 bytes"),
    "0-d array": (replaced(tokens=np.int32(3)), "'tokens' is a single value (0-d)"),
    "0 samples": (lambda p: npz(p, **{k: v[:0] for k, v in good().items()}), "0 samples"),
    "different sample counts": (replaced(feats=np.zeros((7, 3), "float32")),
                                "different numbers of samples ('tokens': 8, 'feats': 7"),
    "wrong input shape": (replaced(feats=np.zeros((8, 5), "float32")),
                          "'feats' has shape (8, 5); input 'feats' takes (N, 3)"),
    "Embedding id too large": (edited("tokens", (2, 1), 10),
                               "holds 10; its values are ids of an Embedding with input_dim "
                               "10, in [0, 9]"),
    "negative Embedding id": (edited("tokens", (5, 0), -1), "holds -1; its values are ids"),
    "float ids": (replaced(tokens=good()["tokens"].astype("float64")),
                  "'tokens' holds floats (<f8); input 'tokens' is int32"),
    "complex": (replaced(feats=good()["feats"].astype("complex64")), "holds complex numbers"),
    "object array (a pickle)": (
        replaced(feats=np.array([[1, "a", None]] * 8, dtype=object)),
        "holds Python objects (a pickle)"),
    "strings": (replaced(feats=np.array([["a", "b", "c"]] * 8)), "holds dtype <U1"),
    "structured": (replaced(feats=np.zeros((8, 3), dtype=[("a", "f4")])), "holds dtype"),
    "NaN": (edited("feats", (3, 2), np.nan),
            "'feats' holds 1 NaN or infinite value(s), the first at index (3, 2)"),
    "inf": (edited("feats", (1, 0), -np.inf), "the first at index (1, 0)"),
    "NaN target": (edited("out", (4,), np.nan, "float32"),
                   "'out' holds 1 NaN or infinite value(s)"),
    "missing array": (lambda p: npz(p, tokens=good()["tokens"]),
                      "no array named feats, out (it has: 'tokens')"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_hostile_files_are_one_clean_line(case: str, graph: Any, tmp_path: Path) -> None:
    make, expected = CASES[case]
    path = make(tmp_path / "data.npz")
    with pytest.raises(UsageError) as info:
        load_npz(path, graph)
    message = str(info.value)
    assert message.startswith(f"{path}: ") and expected in message
    assert "\n" not in message and len(message) < 300


def test_good_file_loads_exactly(graph: Any, tmp_path: Path) -> None:
    arrays = good()
    x, y = load_npz(npz(tmp_path / "d.npz", **arrays), graph)
    assert set(x) == {"tokens", "feats"} and set(y) == {"out"}
    for name in x:
        np.testing.assert_array_equal(x[name], arrays[name])
    np.testing.assert_array_equal(y["out"], arrays["out"])


def test_nonfinite_passes_when_allowed(graph: Any, tmp_path: Path) -> None:
    path = CASES["NaN"][0](tmp_path / "d.npz")
    x, _ = load_npz(path, graph, allow_nonfinite=True)
    assert np.isnan(x["feats"][3, 2]) and np.isfinite(np.delete(x["feats"].ravel(), 11)).all()


def test_budget_is_checked_from_the_headers(graph: Any, tmp_path: Path, monkeypatch) -> None:
    """8·4·4 + 8·3·4 + 8·8 = 288 bytes of arrays: within 288 they are read; over it (287) they
    are memory-mapped from the archive's stored members instead, and never read whole."""
    path = npz(tmp_path / "d.npz", **good())
    assert good()["tokens"].nbytes + good()["feats"].nbytes + good()["out"].nbytes == 288
    x, _ = load_npz(path, graph, max_bytes=288)
    assert not isinstance(x["feats"], np.memmap)
    reads = []
    monkeypatch.setattr(np.lib.format, "read_array",
                        lambda *a, **k: reads.append(1) or pytest.fail("array read"))
    x, y = load_npz(path, graph, max_bytes=287)
    assert not reads and isinstance(x["feats"], np.memmap)
    np.testing.assert_array_equal(x["feats"], good()["feats"])


def test_a_zip_bomb_is_refused_by_its_declared_size(graph: Any, tmp_path: Path) -> None:
    """64 MiB of zeros compress to about 64 KiB; refused from the header, never inflated."""
    path = tmp_path / "bomb.npz"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for key, value in good().items():
            if key == "feats":
                continue
            buf = io.BytesIO()
            np.save(buf, value)
            z.writestr(f"{key}.npy", buf.getvalue())
        with z.open("feats.npy", "w") as member:
            np.lib.format.write_array_header_1_0(
                member, {"descr": "<f4", "fortran_order": False, "shape": (2**22, 4)})
            for _ in range(64):
                member.write(b"\0" * 2**20)
    assert path.stat().st_size < 2**20
    with pytest.raises(UsageError, match=r"the arrays need 64\.0 MiB in memory .* budget of "
                                          r"32\.0 MiB, and its member is compressed"):
        load_npz(path, graph, max_bytes=32 * 2**20)


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_corrupted_archives_load_or_say_why(graph: Any, data: Any,
                                            tmp_path_factory: Any) -> None:
    buf = io.BytesIO()
    np.savez(buf, **good())
    raw = bytearray(buf.getvalue())
    for _ in range(data.draw(st.integers(1, 4))):
        at = data.draw(st.integers(0, len(raw) - 1))
        raw[at] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(raw)))
    path = tmp_path_factory.mktemp("fuzz") / "d.npz"
    path.write_bytes(bytes(raw[:cut]))
    try:
        load_npz(path, graph)
    except UsageError as exc:
        assert "\n" not in str(exc)


@pytest.mark.parametrize("text, expected", [("1024", 1024), ("2G", 2 * 1024**3),
                                            ("1.5k", 1536), ("512MiB", 512 * 1024**2)])
def test_parse_size(text: str, expected: int) -> None:
    assert parse_size(text) == expected


@pytest.mark.parametrize("text", ["", "G", "-1M", "nan", "inf", "12X"])
def test_parse_size_refuses(text: str) -> None:
    with pytest.raises(ValueError):
        parse_size(text)


def test_cli_exit_2_one_line_nothing_written(tmp_path: Path, capsys) -> None:
    spec = tmp_path / "s.yaml"
    spec.write_text(SPEC)
    for case in ("bad CRC", "object array (a pickle)", "0 samples"):
        path = CASES[case][0](tmp_path / "data.npz")
        out = tmp_path / "out"
        assert main(["fit", str(spec), "--data", str(path), "--out", str(out)]) == 2
        captured = capsys.readouterr()
        assert captured.err.startswith("specc: error: ") and captured.err.count("\n") == 1
        assert "Traceback" not in captured.err + captured.out
        assert not out.exists()
    # the data is refused before Keras is even imported, when it was not already
    if "keras" not in sys.modules:
        assert "tensorflow" not in sys.modules


def test_cli_max_data(tmp_path: Path, capsys) -> None:
    spec = tmp_path / "s.yaml"
    spec.write_text(SPEC)
    path = tmp_path / "d.npz"
    np.savez_compressed(path, **good())
    assert main(["fit", str(spec), "--data", str(path), "--max-data", "100",
                 "--out", str(tmp_path / "o")]) == 2
    assert ("over the budget of 100 bytes, and its member is compressed, so it cannot be "
            "memory-mapped") in capsys.readouterr().err
    with pytest.raises(SystemExit) as info:
        main(["fit", str(spec), "--max-data", "lots"])
    assert info.value.code == 2


@pytest.mark.parametrize("labels, bad", [([0, 1, 2, 3], "holds 3"), ([0, -1, 2, 1], "holds -1"),
                                         ([0.0, 1.5, 2.0, 1.0], "holds 1.5")])
def test_class_ids_must_be_whole_and_within_the_classes(graph: Any, labels: list,
                                                        bad: str) -> None:
    from specc.data import check_targets

    y = {"out": np.array(labels)}
    with pytest.raises(UsageError) as info:
        check_targets(y, graph, {"out": (3,)}, "d.npz")
    assert str(info.value) == (f"d.npz: array 'out' {bad}; output 'out' "
                               "(sparse_categorical_crossentropy) takes class ids, whole numbers "
                               "in [0, 2]")
    check_targets({"out": np.array([0, 1, 2, 2])}, graph, {"out": (3,)}, "d.npz")


def test_one_hot_rows_for_a_sparse_loss_are_refused_before_keras(graph: Any) -> None:
    """Keras would end in `Argument output must have rank (ndim) target.ndim - 1`."""
    from specc.data import check_targets

    one_hot = np.eye(3)[[0, 2, 1, 2]]
    with pytest.raises(UsageError) as info:
        check_targets({"out": one_hot}, graph, {"out": (3,)}, "d.npz")
    assert str(info.value) == (
        "d.npz: array 'out' has shape (4, 3), one-hot rows (or probabilities) of 3 classes; "
        "output 'out' (sparse_categorical_crossentropy) takes one class id per sample, shape "
        "(4,): use loss categorical_crossentropy for one-hot targets, or save the class ids "
        "instead (`numpy.argmax(rows, axis=-1)`)")
    with pytest.raises(UsageError) as info:
        check_targets({"out": np.zeros((4, 2, 3))}, graph, {"out": (3,)}, "d.npz")
    assert str(info.value) == (
        "d.npz: array 'out' has shape (4, 2, 3); output 'out' (sparse_categorical_crossentropy) "
        "takes one class id per sample, shape (4,)")
    check_targets({"out": one_hot.argmax(axis=-1)}, graph, {"out": (3,)}, "d.npz")
    check_targets({"out": one_hot.argmax(axis=-1)[:, None]}, graph, {"out": (3,)}, "d.npz")
    sequence = np.zeros((4, 5), dtype="int64")           # class ids per step of a sequence
    check_targets({"out": sequence}, graph, {"out": (5, 3)}, "d.npz")


@pytest.mark.keras
@pytest.mark.filterwarnings("ignore")
def test_fit_refuses_one_hot_rows_for_a_sparse_loss(tmp_path: Path, capsys) -> None:
    spec = tmp_path / "s.yaml"
    spec.write_text(SPEC)
    rng = np.random.default_rng(0)
    path = npz(tmp_path / "d.npz", tokens=rng.integers(0, 10, (8, 4)).astype("int32"),
               feats=rng.standard_normal((8, 3)).astype("float32"),
               out=np.eye(3)[rng.integers(0, 3, 8)].astype("float32"))
    assert main(["fit", str(spec), "--data", str(path), "--epochs", "1",
                 "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "array 'out' has shape (8, 3), one-hot rows" in err and "Traceback" not in err
    assert not (tmp_path / "o").exists() or not any((tmp_path / "o").iterdir())


@pytest.mark.parametrize(("dtype", "bound"), [("float32", 10), ("float16", 10), ("bool", 2)])
def test_synthetic_float_or_bool_ids_are_ids_the_embedding_reads(dtype: str, bound: int) -> None:
    """An Embedding fed float or bool ids is valid (Keras casts them to int32): the synthetic
    data gives it whole numbers in [0, input_dim), as for an integer input."""
    from specc.data import synthetic

    graph = specc.lower(specc.loads(SPEC.replace("dtype: int32", f"dtype: {dtype}"), "d.yaml"))
    x, _ = synthetic(graph, {"out": (3,)}, n=64, seed=1)
    ids = x["tokens"]
    assert ids.dtype == np.dtype(dtype)
    as_int = ids.astype("int64")
    # Exact on purpose: no arithmetic, one array read back (ids < 2**11 are exact in float16
    # and float32), so "whole numbers" is equality of the values with their truncation.
    if dtype != "bool":
        assert np.array_equal(as_int, ids.astype("float64"))
    assert as_int.min() >= 0 and as_int.max() < bound and len(np.unique(as_int)) > 1
    # ... and the other float input is not rounded: some value differs from its rounding
    assert x["feats"].dtype == np.float32 and not np.array_equal(x["feats"], np.round(x["feats"]))
