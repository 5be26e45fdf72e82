"""`specc fit --set A=x,y --jobs 2`: sweep points in parallel processes, each into its own
folder; `--resume` runs only the points not finished. sweep.csv compares validation values
and measures."""
from __future__ import annotations

import csv
import os
from pathlib import Path

import pytest

from specc.cli import main

pytestmark = [pytest.mark.keras, pytest.mark.slow]

ROOT = Path(__file__).resolve().parent.parent
SPEC = str(ROOT / "specs" / "question_mlp.yaml")


def test_parallel_sweep_and_its_resume(tmp_path: Path, capsys, monkeypatch) -> None:
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    out = tmp_path / "sweep"
    args = ["fit", SPEC, "--set", "h4_sq_sum.rate=0,1e-3", "--epochs", "1", "--samples", "64",
            "--batch-size", "16", "--out", str(out), "--jobs", "2"]
    assert main(args) == 0
    points = sorted(p.name for p in out.iterdir() if p.is_dir())
    assert points == ["h4_sq_sum.rate=0", "h4_sq_sum.rate=1e-3"]
    rows = list(csv.DictReader((out / "sweep.csv").open()))
    assert [r["h4_sq_sum.rate"] for r in rows] == ["0", "1e-3"]
    assert {"val_task_loss", "val_h4_sq_sum", "val_h4_sq_sum_measure"} <= set(rows[0])
    assert float(rows[0]["val_h4_sq_sum"]) == 0.0 and float(rows[0]["val_h4_sq_sum_measure"]) > 0
    capsys.readouterr()

    kept = out / points[0] / "history.json"
    stamp = kept.stat().st_mtime_ns
    for f in (out / points[1]).rglob("*"):              # as if killed before it finished
        if f.is_file():
            f.unlink()
    assert main([*args, "--resume"]) == 0
    text = capsys.readouterr().out
    assert f"== run {points[0]}: finished before, read back" in text
    assert f"== run {points[1]}: started" in text
    assert kept.stat().st_mtime_ns == stamp
    assert (out / points[1] / "model.keras").is_file()
    assert len(list(csv.DictReader((out / "sweep.csv").open()))) == 2
