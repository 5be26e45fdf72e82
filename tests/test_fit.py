"""`specc fit` and `specc explain`: the records a training run leaves, on small data."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from specc.cli import main

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("fit")
    assert main(["fit", str(ROOT / "specs/two_outputs.yaml"), "--epochs", "2",
                 "--samples", "160", "--batch-size", "32", "--out", str(out)]) == 0
    return out


def test_fit_writes_every_record(run_dir: Path) -> None:
    names = sorted(p.name for p in run_dir.iterdir())
    assert names == ["history.csv", "history.json", "losses.png", "model.keras", "tensorboard"]
    history = json.loads((run_dir / "history.json").read_text())
    for key in ("loss", "task_loss", "shared_l1", "shared_l1l2", "kind_loss", "value_loss"):
        assert len(history[key]) == 2 and len(history[f"val_{key}"]) == 2
    rows = list(csv.DictReader((run_dir / "history.csv").open()))
    assert [float(r["task_loss"]) for r in rows] == pytest.approx(history["task_loss"])
    assert (run_dir / "losses.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert any((run_dir / "tensorboard").rglob("events.out.tfevents.*"))


def test_fit_reports_energy_of_penalized_tensors(run_dir: Path, capsys) -> None:
    out = ROOT / "specs/question_mlp.yaml"
    assert main(["fit", str(out), "--epochs", "1", "--samples", "64",
                 "--out", str(run_dir / "q"), "--drop-penalties"]) == 0
    text = capsys.readouterr().out
    assert "h4_sq_sum=0," in text                     # the rate is 0: the term vanishes
    assert "energy of h4 [output] (mean_i Σ_j a_ij², validation): " in text


def test_fit_on_npz(tmp_path: Path) -> None:
    rng = np.random.RandomState(0)
    data = tmp_path / "d.npz"
    np.savez(data, pixels=rng.rand(40, 784).astype("float32"),
             logits=rng.randint(0, 10, 40))
    assert main(["fit", str(ROOT / "specs/question_mlp.yaml"), "--data", str(data),
                 "--epochs", "1", "--out", str(tmp_path / "o")]) == 0
    np.savez(data, image=rng.rand(4, 8))
    assert main(["fit", str(ROOT / "specs/question_mlp.yaml"), "--data", str(data),
                 "--out", str(tmp_path / "o2")]) == 2
    assert main(["fit", str(ROOT / "specs/question_mlp.yaml"), "--data",
                 str(tmp_path / "none.npz")]) == 2
    np.savez(data, pixels=rng.rand(40, 100).astype("float32"), logits=rng.randint(0, 10, 40))
    assert main(["fit", str(ROOT / "specs/question_mlp.yaml"), "--data", str(data),
                 "--epochs", "1", "--out", str(tmp_path / "o3")]) == 2
    assert not (tmp_path / "o3").exists()      # a failed run leaves nothing behind


def test_explain(capsys) -> None:
    assert main(["explain", str(ROOT / "specs/cnn_weight_decay.yaml")]) == 0
    text = capsys.readouterr().out
    assert "loss = task_loss + decay + bias_l1" in text
    assert "  decay = weight l2(rate=0.0005) on conv1.kernel, conv2.kernel, dense.kernel, " \
           "probs.kernel: r · Σw²" in text
    assert "    dense (Dense): bias" in text


def test_plot_names_what_is_missing(monkeypatch, tmp_path: Path, capsys) -> None:
    import shutil

    monkeypatch.setattr(shutil, "which", lambda name: None)
    assert main(["plot", str(ROOT / "specs/mnist_cnn.yaml"), "-o", str(tmp_path / "m.png")]) == 1
    assert "apt-get install graphviz" in capsys.readouterr().err
    assert not (tmp_path / "m.png").exists()


def test_plot_marks_penalties(tmp_path: Path) -> None:
    from specc.plot import missing_tools

    if missing_tools():
        pytest.skip(missing_tools())
    out = tmp_path / "m.svg"
    assert main(["plot", str(ROOT / "specs/two_outputs.yaml"), "-o", str(out)]) == 0
    svg = out.read_text()
    assert "penalty shared_l1: l1 via output" in svg
    assert "penalty shared_l1l2: l1_l2 via activity_regularizer" in svg
    assert "#f4a261" in svg.lower()
