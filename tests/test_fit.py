"""`specc fit` and `specc explain`: the records a training run leaves, on small data."""
from __future__ import annotations

import csv
import json
import re
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


def test_fit_reports_each_clause_measure(run_dir: Path, capsys) -> None:
    out = ROOT / "specs/question_mlp.yaml"
    assert main(["fit", str(out), "--epochs", "1", "--samples", "64",
                 "--out", str(run_dir / "q"), "--drop-penalties"]) == 0
    text = capsys.readouterr().out
    assert "h4_sq_sum=0," in text                     # the rate is 0: the term vanishes
    line = next(ln for ln in text.splitlines() if ln.startswith("h4_sq_sum "))
    assert line.startswith("h4_sq_sum (l2) on h4 [output], without the rate: mean_i Σ_j a_ij² = ")
    assert line.endswith(" (validation data)")
    assert 0 < float(line.split(" = ")[1].split()[0]) < 32     # 32 tanh units: Σ_j a² < 32


SOFTMAX = """\
specc: 1
name: soft
seed: 3
inputs:
  x: {shape: [4]}
layers:
  - {name: h, type: Dense, units: 6, activation: relu}
  - {name: probs, type: Dense, units: 5, activation: softmax}
outputs: [probs]
loss: sparse_categorical_crossentropy
penalties:
  - {name: m, layer: probs, kind: mean_abs, rate: 0.5}
  - {name: s, layer: probs, kind: l1, rate: 0.5, reduction: sum}
  - {name: b, layer: probs, kind: l1_l2, l1: 0.1, l2: 0.2}
"""


def test_measures_are_each_kinds_own_formula(tmp_path: Path, capsys) -> None:
    """On a softmax output of 5 classes every row sums to 1: mean |a| = 1/5 and
    mean_i Σ_j |a_ij| = 1 exactly, whatever the weights; Σ_j a² is in [1/5, 1]."""
    from specc.fit import MEASURED
    from specc.penalties import BUILTIN_KINDS

    assert set(MEASURED) | {"l1_l2"} == BUILTIN_KINDS
    spec = tmp_path / "soft.yaml"
    spec.write_text(SOFTMAX)
    assert main(["fit", str(spec), "--epochs", "1", "--samples", "40", "--batch-size", "8",
                 "--out", str(tmp_path / "o")]) == 0
    lines = [ln for ln in capsys.readouterr().out.splitlines() if "without the rate" in ln]
    values = {ln.split(", without the rate: ")[1].split(" = ")[0] + " " + ln.split()[0]:
              float(ln.split(" = ")[1].split()[0]) for ln in lines}
    assert values.keys() == {"mean over all i, j of |a_ij| m", "mean_i Σ_j |a_ij| s",
                             "mean_i Σ_j |a_ij| b", "mean_i Σ_j a_ij² b"}
    assert values["mean over all i, j of |a_ij| m"] == pytest.approx(0.2, rel=1e-5)
    assert values["mean_i Σ_j |a_ij| s"] == pytest.approx(1.0, rel=1e-5)
    assert values["mean_i Σ_j |a_ij| b"] == pytest.approx(1.0, rel=1e-5)
    assert 0.2 <= values["mean_i Σ_j a_ij² b"] <= 1.0


def test_a_loss_that_becomes_nan_stops_and_publishes_nothing(tmp_path: Path, capsys) -> None:
    spec = tmp_path / "soft.yaml"
    spec.write_text(SOFTMAX)
    rng = np.random.RandomState(0)
    x = rng.rand(32, 4).astype("float32")
    x[:, 0] = np.nan                                   # every sample: the first batch is NaN
    np.savez(tmp_path / "d.npz", x=x, probs=rng.randint(0, 5, 32))
    out = tmp_path / "o"
    args = ["fit", str(spec), "--data", str(tmp_path / "d.npz"), "--out", str(out),
            "--epochs", "3", "--batch-size", "8"]
    assert main(args) == 2                             # refused: NaN in the data
    assert "--allow-nonfinite" in capsys.readouterr().err
    assert main(args + ["--allow-nonfinite"]) == 1
    err = capsys.readouterr().err
    # How NaN propagates through the kernels is the CPU's business: on one CPU the loss turns
    # NaN in the first batch, on another (AMD EPYC) the loss stays finite and the weights turn
    # NaN. Both of specc's messages are right; either way nothing may be published.
    loss = (r"the loss became (nan|-?inf) at epoch [1-3], batch [1-4] \(batches of 8\); "
            r"training stopped and nothing was written")
    weights = (r"after training, [1-9]\d* weight variable\(s\) hold NaN or infinite values "
               r"\([^)]+\); nothing was written")
    assert re.fullmatch(rf"specc: error: ({loss}|{weights})\n", err), err
    assert not out.exists()


@pytest.mark.parametrize("option", ["--epochs", "--samples", "--batch-size"])
def test_zero_epochs_samples_or_batch_is_a_usage_error(option: str, tmp_path: Path,
                                                       capsys) -> None:
    assert main(["fit", str(ROOT / "specs/question_mlp.yaml"), option, "0",
                 "--out", str(tmp_path / "o")]) == 2
    assert capsys.readouterr().err == (f"specc: error: {option} 0: give a whole number of at "
                                       "least 1\n")
    assert not (tmp_path / "o").exists()


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


def test_fit_on_sequences_of_any_length(tmp_path: Path) -> None:
    """Variable axes (`null` in a shape) and per-step targets: the synthetic data takes 8 steps,
    one-hot and class-id targets at every step; the format 2 seq2seq example trains."""
    spec = tmp_path / "seq.yaml"
    spec.write_text("""\
specc: 1
name: seq
inputs:
  tokens: {shape: [null, 5]}
layers:
  - {name: rnn, type: GRU, units: 4, return_sequences: true}
  - {name: probs, type: Dense, units: 3, activation: softmax}
outputs: [probs]
loss: sparse_categorical_crossentropy
penalties:
  - {name: energy, layer: rnn, kind: l2, rate: 1.0e-3}
""")
    assert main(["fit", str(spec), "--epochs", "1", "--samples", "32", "--out",
                 str(tmp_path / "a")]) == 0
    assert main(["fit", str(ROOT / "specs/seq2seq.yaml"), "--epochs", "1", "--samples", "16",
                 "--batch-size", "8", "--out", str(tmp_path / "b")]) == 0
    history = json.loads((tmp_path / "b" / "history.json").read_text())
    assert {"encoder.state_energy", "decoder.sequence_energy", "task_loss"} <= set(history)
