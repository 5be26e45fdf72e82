"""`specc fit --resume` after a real SIGKILL: the run continues from its last whole epoch and
ends with the weights of a run that was never interrupted (the same batches in the same
order, the same dropout masks); the folder never holds a half-written file. On synthetic
arrays, a folder of images by class and a folder of text files by class."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest

pytestmark = [pytest.mark.keras, pytest.mark.slow]

ROOT = Path(__file__).resolve().parent.parent

SPEC = """\
specc: 1
name: r
seed: 5
inputs:
  x: {shape: [8]}
layers:
  - {name: h, type: Dense, units: 16, activation: relu}
  - {name: drop, type: Dropout, rate: 0.3}
  - {name: probs, type: Dense, units: 3, activation: softmax}
outputs: [probs]
loss: categorical_crossentropy
penalties:
  - {name: e, layer: h, kind: l2, rate: 1.0e-3}
optimizer: {type: adam, learning_rate: {schedule: ExponentialDecay, initial_learning_rate: 0.01,
                                        decay_steps: 20, decay_rate: 0.9}}
"""
IMAGES = """\
specc: 1
name: ri
seed: 5
inputs:
  image: {shape: [8, 8, 3]}
layers:
  - {name: scale, type: Rescaling, scale: 0.00392156862745098}
  - {name: flat, type: Flatten}
  - {name: h, type: Dense, units: 16, activation: relu}
  - {name: drop, type: Dropout, rate: 0.3}
  - {name: probs, type: Dense, units: 2, activation: softmax}
outputs: [probs]
loss: categorical_crossentropy
penalties:
  - {name: e, layer: h, kind: l2, rate: 1.0e-3}
optimizer: {type: adam, learning_rate: 0.01}
"""

#: keras.io's text model in small: TextVectorization adapted by specc fit, then an Embedding.
TEXTS = """\
specc: 1
name: rt
seed: 5
inputs:
  text: {shape: [1], dtype: string}
layers:
  - {name: vectorize, type: TextVectorization, max_tokens: 40, output_mode: int, output_sequence_length: 6}
  - {name: embedding, type: Embedding, input_dim: 40, output_dim: 8}
  - {name: drop, type: Dropout, rate: 0.3}
  - {name: pool, type: GlobalAveragePooling1D}
  - {name: probs, type: Dense, units: 2, activation: softmax}
outputs: [probs]
loss: sparse_categorical_crossentropy
penalties:
  - {name: e, layer: pool, kind: l2, rate: 1.0e-3}
optimizer: {type: adam, learning_rate: 0.01}
"""

WORDS = ("good great fine superb lovely nice", "bad awful poor terrible sad dull",
         "the a movie film was is and very plot")


def _source(kind: str, folder: Path) -> tuple[str, list[str]]:
    """(spec, the data's command-line options) of each kind of source."""
    if kind == "synthetic":
        return SPEC, ["--samples", "500"]
    rng = np.random.default_rng(0)
    for k, c in enumerate(("neg", "pos")):
        (folder / "data" / c).mkdir(parents=True)
        for i in range(200):
            if kind == "images":
                from PIL import Image

                pixels = (rng.random((8, 8, 3)) * 160 + 90 * k).astype("uint8")
                Image.fromarray(pixels).save(folder / "data" / c / f"{i}.png")
            else:
                words = list(rng.choice(WORDS[k].split(), 2)) + list(
                    rng.choice(WORDS[2].split(), 4))
                (folder / "data" / c / f"{i}.txt").write_text(" ".join(words))
    return IMAGES if kind == "images" else TEXTS, ["--data", str(folder / "data")]


#: Tolerance on the final weights of the resumed run against the uninterrupted one. The same
#: ops on the same batches in the same order: a difference would come from a reloaded float
#: only (the state stores float32 exactly), so the bound is tight.
ATOL = 1e-6


def _specc(*args: str) -> list[str]:
    return [sys.executable, "-m", "specc", "fit", *args]


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT), "CUDA_VISIBLE_DEVICES": "",
            "TF_CPP_MIN_LOG_LEVEL": "3"}


def _weights(path: Path) -> list[np.ndarray]:
    import keras

    import specc  # noqa: F401  (registers specc's layers)

    model = keras.saving.load_model(path, safe_mode=True)
    return [np.asarray(w) for w in model.get_weights()]


@pytest.mark.parametrize("kind", ["synthetic", "images", "texts"])
def test_resume_after_sigkill_equals_an_uninterrupted_run(tmp_path: Path, kind: str) -> None:
    if kind == "texts":
        import specc.catalog

        if specc.catalog.get("TextVectorization") is None:
            pytest.skip("TextVectorization is not in this catalog yet")
    text, data = _source(kind, tmp_path)
    spec = tmp_path / "r.yaml"
    spec.write_text(text)
    common = [str(spec), "--epochs", "4", "--batch-size", "8", *data]
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    done = subprocess.run(_specc(*common, "--out", str(whole)), env=_env(), cwd=tmp_path,
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-2000:]

    state = killed / ".specc-resume" / "state.json"
    proc = subprocess.Popen(_specc(*common, "--out", str(killed)), env=_env(), cwd=tmp_path,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    seen: list[str] = []
    try:
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline and proc.poll() is None:
            # nothing ever half-written: every file specc leaves is whole when looked at
            for f in killed.rglob("*"):
                if f.name.endswith(".keras") and ".specc-" not in f.name:
                    try:
                        assert zipfile.ZipFile(f).testzip() is None
                    except FileNotFoundError:      # replaced by the next epoch's meanwhile
                        pass
            if state.is_file() and json.loads(state.read_text())["epoch"] >= 2:
                break
            time.sleep(0.05)
        assert proc.poll() is None, "the run ended before it could be killed"
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=60)
    epoch = json.loads(state.read_text())["epoch"]
    assert 2 <= epoch < 4
    seen = sorted(p.name for p in killed.iterdir())
    assert "model.keras" not in seen                    # nothing published by the killed run

    again = subprocess.run(_specc(*common, "--out", str(killed), "--resume"), env=_env(),
                           cwd=tmp_path, capture_output=True, text=True, timeout=900)
    assert again.returncode == 0, again.stderr[-2000:]
    assert f"resuming from epoch {epoch} of 4" in again.stdout
    assert not (killed / ".specc-resume").exists()
    assert not [p for p in killed.iterdir() if p.name.startswith(".specc-fit-")]
    a, b = _weights(whole / "model.keras"), _weights(killed / "model.keras")
    diff = max(float(np.max(np.abs(x - y))) for x, y in zip(a, b))
    print(f"{kind}: resumed vs uninterrupted: max |Δw| = {diff:.3g} (tolerance {ATOL})")
    assert diff <= ATOL
    h1 = json.loads((whole / "history.json").read_text())
    h2 = json.loads((killed / "history.json").read_text())
    assert set(h1) == set(h2) and all(len(h2[k]) == 4 for k in h2)
    np.testing.assert_allclose(h2["loss"], h1["loss"], rtol=1e-5)
