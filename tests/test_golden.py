"""Golden files for every spec in specs/, the strategy matrix, cross-process stability, and
the `specc golden` command that checks them (the project's files are exactly what it checks).

`pytest --update-golden` rewrites tests/golden/<spec>.summary.txt and <spec>.losses.json.
"""
from __future__ import annotations

import dataclasses
import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any, Callable

import pytest

import specc
from specc import golden
from specc.budget import Limits
from specc.cli import main
from specc.data import int_bound

pytest.importorskip("keras")

ROOT = Path(__file__).resolve().parents[1]
#: The two keras.applications architectures are checked against keras.applications itself,
#: layer by layer, in test_format2_models.py; their golden files would cost minutes per run.
LARGE = ("resnet50", "mobilenet_v2")
SPECS = sorted(p for p in (ROOT / "specs").glob("*.yaml") if p.stem not in LARGE)
GOLDEN = ROOT / "tests" / "golden"
#: Built in two fresh interpreters each: a split activation + add_loss, and an output tap.
CROSS_PROCESS = ("mnist_cnn", "two_outputs")
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}

ProbeFn = Callable[..., golden.Probe]


@pytest.fixture(scope="module")
def probe() -> ProbeFn:
    """golden.probe, each (spec, strategy) built and evaluated once per module."""
    cache: dict[tuple[Path, str], golden.Probe] = {}
    build = golden.probe

    def get(spec: str | os.PathLike, strategy: str = "default") -> golden.Probe:
        key = (Path(spec).resolve(), strategy)
        if key not in cache:
            cache[key] = build(spec, strategy)
        return dataclasses.replace(cache[key], spec=str(spec))
    return get


def _ids(path: Path) -> str:
    return path.stem


# -- the project's golden files ---------------------------------------------------------------
@pytest.mark.parametrize("spec", SPECS, ids=_ids)
def test_golden_files(spec: Path, probe: ProbeFn, update_golden: bool) -> None:
    result = probe(spec)
    summary_path, losses_path = golden.golden_paths(spec, GOLDEN)
    if update_golden:
        golden.write(result, summary_path, losses_path)     # rewrites only what moved
        return
    assert summary_path.is_file() and losses_path.is_file(), (
        f"{spec.name}: no golden files in {GOLDEN}; run `pytest --update-golden`")
    expected = golden.read_losses(losses_path)
    assert expected["probe"] == result.settings, "probe settings changed; --update-golden"
    assert expected["strategy"] == "default"
    outcome = golden.compare(result, summary_path.read_text(encoding="utf-8"), expected,
                             summary_path, losses_path)
    assert outcome.ok, outcome.report()


# -- every strategy gives the golden values ---------------------------------------------------
@pytest.mark.parametrize("strategy", golden.STRATEGIES)
@pytest.mark.parametrize("spec", SPECS, ids=_ids)
def test_strategy_matches_golden(spec: Path, strategy: str, probe: ProbeFn) -> None:
    expected = golden.read_losses(golden.golden_paths(spec, GOLDEN)[1])
    result = probe(spec, strategy)
    moved = (golden.compare_params(expected["params"], result.params)
             + golden.compare_values(expected["values"], result.values,
                                     expected["rtol"], expected["atol"]))
    assert not moved, "\n".join(
        f"{spec.stem} via {strategy}: {m.key}: golden {m.expected!r}, got {m.got!r}"
        for m in moved)


@pytest.mark.parametrize("spec", SPECS, ids=_ids)
def test_loss_is_task_plus_terms(spec: Path, probe: ProbeFn) -> None:
    """The contract's sum, and the weighted outputs, hold in the probe's numbers."""
    loaded = specc.load(spec)
    v = probe(spec).values
    clauses = [p.name for p in (*loaded.penalties, *loaded.pair_penalties,
                                *loaded.weight_penalties)]
    assert set(v) == {"loss", "task_loss", *clauses,
                      *(f"{o}_loss" for o in loaded.outputs if len(loaded.outputs) > 1)}
    assert math.isclose(v["loss"], v["task_loss"] + sum(v[c] for c in clauses), rel_tol=1e-5)
    if len(loaded.outputs) > 1:
        weights = loaded.loss_weights or {}
        task = sum(float(weights.get(o, 1.0)) * v[f"{o}_loss"] for o in loaded.outputs)
        assert math.isclose(v["task_loss"], task, rel_tol=1e-5)


# -- two fresh interpreters agree, bit for bit ------------------------------------------------
_CHILD = """
import json, sys
from specc import golden
out = {}
for path in sys.argv[1:]:
    r = golden.probe(path)
    out[path] = {"summary": r.summary, "values": r.values, "params": r.params}
print(json.dumps(out))
"""


def test_cross_process_identical() -> None:
    paths = [str(ROOT / "specs" / f"{name}.yaml") for name in CROSS_PROCESS]
    children = [subprocess.Popen([sys.executable, "-c", _CHILD, *paths], cwd=ROOT, env=ENV,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                for _ in range(2)]
    runs = []
    for child in children:
        out, err = child.communicate(timeout=300)
        assert child.returncode == 0, err[-2000:]
        runs.append(json.loads(out.strip().splitlines()[-1]))
    first, second = runs
    for path in paths:
        assert first[path]["summary"] == second[path]["summary"], path
        assert first[path]["values"] == second[path]["values"], path     # exact floats
        assert first[path]["params"] == second[path]["params"], path
        summary_path, losses_path = golden.golden_paths(path, GOLDEN)
        assert first[path]["summary"] + "\n" == summary_path.read_text(encoding="utf-8")
        expected = golden.read_losses(losses_path)
        assert not golden.compare_values(expected["values"], first[path]["values"],
                                         expected["rtol"], expected["atol"])


# -- the command line -------------------------------------------------------------------------
@pytest.fixture
def cached_probe(probe: ProbeFn, monkeypatch: pytest.MonkeyPatch) -> None:
    """golden.probe (as the command calls it) answered from this module's cache."""
    def cached(spec: str, strategy: str = "default", *, batch_size: int = golden.BATCH_SIZE,
               data_seed: int = golden.DATA_SEED, overrides: tuple = (),
               limits: Any = None) -> golden.Probe:
        # the cache holds the spec as written, with the default budget
        assert (batch_size, data_seed, tuple(overrides)) == (golden.BATCH_SIZE,
                                                             golden.DATA_SEED, ())
        assert limits is None or limits == Limits()
        return probe(spec, strategy)

    monkeypatch.setattr(golden, "probe", cached)


def test_cli_checks_the_project_golden_files(cached_probe: None,
                                             monkeypatch: pytest.MonkeyPatch,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    """Dogfood: `specc golden specs/*.yaml --dir tests/golden` passes on our own files.

    The command runs in full; only its probes come from this module's cache (the same
    golden.probe calls with the default batch settings, already made above).
    """
    monkeypatch.chdir(ROOT)
    code = main(["golden", *(f"specs/{p.name}" for p in SPECS), "--dir", "tests/golden"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert out.count("ok ") == len(SPECS)


def test_cli_update_then_check_a_changed_model(tmp_path: Path, cached_probe: None,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    spec = tmp_path / "decorrelation.yaml"
    shutil.copy(ROOT / "specs" / "decorrelation.yaml", spec)
    summary_path, losses_path = golden.golden_paths(spec)        # next to the spec

    assert main(["golden", str(spec)]) == 1                       # missing files: an error
    assert "golden files missing" in capsys.readouterr().out
    assert main(["golden", str(spec), "--update"]) == 0
    assert "wrote" in capsys.readouterr().out
    # --update writes the project's summary, and values within the project's tolerance
    assert summary_path.read_bytes() == (GOLDEN / "decorrelation.summary.txt").read_bytes()
    written, project = (golden.read_losses(p) for p in (losses_path,
                                                         GOLDEN / "decorrelation.losses.json"))
    assert written["params"] == project["params"] and written["probe"] == project["probe"]
    assert not golden.compare_values(project["values"], written["values"],
                                     project["rtol"], project["atol"])
    assert written["versions"] == golden.running_versions()

    doc = json.loads(losses_path.read_text())
    doc["values"]["diversity"] *= 1.5
    losses_path.write_text(json.dumps(doc))
    summary_path.write_text(summary_path.read_text().replace("(Dense)", "(Dense2)", 1))
    assert main(["golden", str(spec)]) == 1
    out = capsys.readouterr().out
    assert f"--- {summary_path} (golden)" in out and f"+++ {spec} (built now)" in out
    assert "-│ h1 (Dense2)" in out and "+│ h1 (Dense) " in out
    row = next(line for line in out.splitlines() if line.startswith("diversity "))
    # the row reads: term, expected, got, relative change
    assert row.split()[1:] == [f"{doc['values']['diversity']:.9g}",
                               f"{doc['values']['diversity'] / 1.5:.9g}", "-3.333e-01"]
    assert "loss " not in out.split("relative change", 1)[1]       # unmoved terms stay out


def _copy_project_goldens(tmp_path: Path, name: str) -> tuple[Path, Path, Path]:
    spec = tmp_path / f"{name}.yaml"
    shutil.copy(ROOT / "specs" / spec.name, spec)
    summary_path, losses_path = golden.golden_paths(spec)
    for path in (summary_path, losses_path):
        shutil.copy(GOLDEN / path.name, path)
    return spec, summary_path, losses_path


def test_update_rewrites_only_what_moved(tmp_path: Path, cached_probe: None,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    """Regenerating changes no byte when nothing moved beyond the tolerance; a value that
    moved is rewritten, its neighbours keep their bytes, and a changed summary is rewritten."""
    spec, summary_path, losses_path = _copy_project_goldens(tmp_path, "two_outputs")
    project_summary, project_losses = summary_path.read_bytes(), losses_path.read_bytes()
    assert main(["golden", str(spec), "--update"]) == 0
    assert capsys.readouterr().out.startswith(f"unchanged {spec}")
    assert (summary_path.read_bytes(), losses_path.read_bytes()) == (
        project_summary, project_losses)

    doc = golden.read_losses(losses_path)
    rtol, values = doc["rtol"], doc["values"]
    inside = values["task_loss"] * (1 + rtol / 2)            # within the tolerance: kept
    outside = values["shared_l1"] * 1.5                       # beyond it: rewritten
    doc["values"] = {**values, "task_loss": inside, "shared_l1": outside}
    doc["versions"] = {"specc": "0.0.1", "keras": "3.0.0", "tensorflow": "2.0.0"}
    edited = json.dumps(doc, indent=2) + "\n"
    losses_path.write_text(edited)
    summary_path.write_text(summary_path.read_text().replace("(Dense)", "(Dense2)", 1))

    assert main(["golden", str(spec), "--update"]) == 0
    assert capsys.readouterr().out.startswith("wrote ")
    assert summary_path.read_bytes() == project_summary
    got = golden.read_losses(losses_path)
    assert got["values"]["task_loss"] == inside
    # the probe again (the spec built a second time): the written value, to float32 rounding
    probed = float(f"{golden.probe(str(spec)).values['shared_l1']:.9g}")
    assert got["values"]["shared_l1"] == pytest.approx(probed, rel=1e-6, abs=0)
    assert not golden.compare_values(values, got["values"], rtol, doc["atol"])
    assert got["versions"] == golden.running_versions()        # the file was remade here
    before, after = edited.splitlines(), losses_path.read_text().splitlines()
    changed = [(b, a) for b, a in zip(before, after) if b != a]
    assert len(before) == len(after)
    assert [b.split(":")[0].strip() for b, _ in changed] == [
        '"specc"', '"keras"', '"tensorflow"', '"shared_l1"']


def test_other_versions_are_one_note_and_values_still_judged(
        tmp_path: Path, cached_probe: None, capsys: pytest.CaptureFixture[str]) -> None:
    spec, _, losses_path = _copy_project_goldens(tmp_path, "mnist_cnn")
    doc = golden.read_losses(losses_path)
    doc["versions"] = {**doc["versions"], "keras": "3.0.0"}
    losses_path.write_text(json.dumps(doc, indent=2) + "\n")
    assert main(["golden", str(spec)]) == 0
    out = capsys.readouterr().out.splitlines()

    def show(versions: dict) -> str:
        return ", ".join(f"{name} {version}" for name, version in versions.items())

    assert out == [
        f"ok        {spec}",
        f"note: {losses_path} was made with {show(doc['versions'])}; this is "
        f"{show(golden.running_versions())} (values are judged by the tolerance)",
    ]
    assert "keras 3.0.0; " not in out[1] and ", keras 3.0.0, " in out[1]
    doc["values"]["loss"] *= 1.01
    losses_path.write_text(json.dumps(doc, indent=2) + "\n")
    assert main(["golden", str(spec)]) == 1
    out = capsys.readouterr().out
    assert out.count("note: ") == 1 and "\nloss " in out


def test_cli_bad_spec_and_clashing_names(tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("specc: 1\nname: x\ninputs: {a: {shape: [3]}}\nlayers: []\noutputs: [y]\n"
                   "loss: mse\n")
    assert main(["golden", str(bad), "--dir", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert out.startswith(f"{bad}:") and "error:" in out
    (tmp_path / "sub").mkdir()
    twin = tmp_path / "sub" / "bad.yaml"
    twin.write_text(bad.read_text())
    assert main(["golden", str(bad), str(twin), "--dir", str(tmp_path)]) == 2
    assert "would share the golden files" in capsys.readouterr().err


# -- the pieces, without Keras ----------------------------------------------------------------
def test_compare_values_tolerance_and_missing_keys() -> None:
    moved = golden.compare_values({"a": 1.0, "b": 2.0, "c": 0.0},
                                  {"a": 1.0 + 5e-6, "b": 2.001, "d": 1.0}, rtol=1e-5, atol=1e-8)
    assert [(m.key, m.expected, m.got) for m in moved] == [
        ("b", 2.0, 2.001), ("c", 0.0, None), ("d", None, 1.0)]
    table = golden.moved_table(moved).splitlines()
    assert table[0].split() == ["term", "expected", "got", "relative", "change"]
    assert table[1].split() == ["b", "2", "2.001", "+5.000e-04"]
    assert table[2].split() == ["c", "0", "(missing)", "n/a"]


def test_integer_inputs_stay_inside_the_embedding() -> None:
    graph = specc.lower(ROOT / "specs" / "lstm_sequence.yaml")
    assert int_bound(graph, "tokens", golden.SMALL_INT) == 50
