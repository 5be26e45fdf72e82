"""`specc fit` on the data a user has: a table streamed in batches, a folder of images by
class, a module:function, a validation set of its own; per-epoch measures, the best
checkpoint, early stopping and a learning-rate schedule. Tiny models, 1-3 epochs."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from specc.cli import main

pytestmark = pytest.mark.keras

SPEC = """\
specc: 1
name: t
seed: 2
inputs:
  x: {shape: [3]}
layers:
  - {name: h, type: Dense, units: 8, activation: tanh}
  - {name: probs, type: Dense, units: 3, activation: softmax}
outputs: [probs]
loss: sparse_categorical_crossentropy
penalties:
  - {name: e, layer: h, kind: l2, rate: 0.01}
optimizer: {type: adam, learning_rate: {schedule: ExponentialDecay, initial_learning_rate: 0.05,
                                        decay_steps: 10, decay_rate: 0.5}}
metrics: [accuracy]
"""


def table(path: Path, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 3)).astype("float32")
    y = (x[:, 0] > 0).astype(int) + (x[:, 1] > 1).astype(int)
    with open(path, "w") as f:
        f.write("x_0,x_1,x_2,probs\n")
        for row, label in zip(x, y):
            f.write(",".join(repr(float(v)) for v in row) + f",{label}\n")
    return x, y


@pytest.fixture(scope="module")
def table_run(tmp_path_factory) -> tuple[Path, np.ndarray, np.ndarray]:
    d = tmp_path_factory.mktemp("table")
    (d / "t.yaml").write_text(SPEC)
    table(d / "train.csv", 200, 0)
    vx, vy = table(d / "val.csv", 60, 1)
    # 200 rows of 4 values: 3.2 KB, over a budget of 1K: spilled to mapped files, streamed
    assert main(["fit", str(d / "t.yaml"), "--data", str(d / "train.csv"), "--validation",
                 str(d / "val.csv"), "--max-data", "1K", "--epochs", "3", "--batch-size", "16",
                 "--checkpoint", "--early-stopping", "5", "--out", str(d / "o")]) == 0
    return d / "o", vx, vy


def test_a_streamed_table_trains_with_its_validation_set(table_run) -> None:
    out, _, _ = table_run
    history = json.loads((out / "history.json").read_text())
    assert len(history["loss"]) == 3 and len(history["val_loss"]) == 3
    assert sorted(p.name for p in out.iterdir()) == [
        "best.keras", "history.csv", "history.json", "losses.png", "model.keras", "tensorboard"]


def test_the_measure_each_epoch_is_the_term_without_its_rate(table_run) -> None:
    """Keras logs the term r · mean_i Σ_j a_ij² (val_e); specc's measure, summed batch by
    batch, is the same without r = 0.01."""
    out, _, _ = table_run
    h = json.loads((out / "history.json").read_text())
    np.testing.assert_allclose(np.array(h["val_e_measure"]) * 0.01, h["val_e"], rtol=1e-5)
    assert len(h["e_measure"]) == 3 and all(v > 0 for v in h["e_measure"])


def test_a_parquet_table_trains_as_its_csv(tmp_path: Path) -> None:
    """The same table as CSV and as Parquet (pyarrow): the same rows, batches and seeds, so
    the same history (two runs of one graph: within 1e-6)."""
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    (tmp_path / "t.yaml").write_text(SPEC)
    x, y = table(tmp_path / "d.csv", 64, 3)
    pq.write_table(pa.table({"probs": y, **{f"x_{i}": x[:, i] for i in range(3)}}),
                   tmp_path / "d.parquet", row_group_size=20)
    for name in ("d.csv", "d.parquet"):
        assert main(["fit", str(tmp_path / "t.yaml"), "--data", str(tmp_path / name),
                     "--epochs", "2", "--batch-size", "8",
                     "--out", str(tmp_path / f"o_{name}")]) == 0
    csv, parquet = (json.loads((tmp_path / f"o_{n}" / "history.json").read_text())
                    for n in ("d.csv", "d.parquet"))
    assert set(csv) == set(parquet) and len(parquet["val_loss"]) == 2
    for key in csv:
        np.testing.assert_allclose(parquet[key], csv[key], rtol=1e-6, atol=1e-7, err_msg=key)


def test_best_checkpoint_is_the_best_epoch(table_run) -> None:
    """best.keras evaluated on the validation table by hand gives the least val_loss."""
    import keras

    out, vx, vy = table_run
    h = json.loads((out / "history.json").read_text())
    best = keras.saving.load_model(out / "best.keras", safe_mode=True)
    logs = best.evaluate(vx, vy, verbose=0, return_dict=True, batch_size=16)
    assert logs["loss"] == pytest.approx(min(h["val_loss"]), rel=1e-5)


def test_the_learning_rate_follows_its_schedule(table_run) -> None:
    """ExponentialDecay 0.05 · 0.5^(t/10) at t = 3 epochs · 13 steps (200 rows, batches of
    16), numpy's value against the saved optimizer's."""
    import keras

    out, _, _ = table_run
    model = keras.saving.load_model(out / "model.keras", safe_mode=True)
    t = int(model.optimizer.iterations.numpy())
    assert t == 3 * 13
    lr = float(keras.ops.convert_to_numpy(model.optimizer.learning_rate))
    assert lr == pytest.approx(0.05 * 0.5 ** (t / 10), rel=1e-6)


def test_early_stopping_stops(tmp_path: Path) -> None:
    """Patience 0 on a monitor that cannot improve after the first epoch (the loss of a model
    whose learning rate is 0 never falls, so epoch 2 is no gain): 2 epochs of 10 ran."""
    spec = tmp_path / "t.yaml"
    spec.write_text(SPEC.split("optimizer:")[0] + "optimizer: {type: sgd, learning_rate: "
                    "1.0e-30}\ntraining: {data: d.csv, epochs: 10, early_stopping: "
                    "{patience: 0, monitor: val_loss}}\n")       # the spec's own training
    table(tmp_path / "d.csv", 40, 0)
    assert main(["fit", str(spec), "--out", str(tmp_path / "o")]) == 0
    assert len(json.loads((tmp_path / "o" / "history.json").read_text())["loss"]) == 2


IMAGES = """\
specc: 1
name: img
seed: 1
inputs:
  image: {shape: [8, 8, 3]}
layers:
  - {name: scale, type: Rescaling, scale: 0.00392156862745098}
  - {name: flat, type: Flatten}
  - {name: probs, type: Dense, units: 2, activation: softmax}
outputs: [probs]
loss: categorical_crossentropy
metrics: [accuracy]
"""


def test_a_folder_of_images_by_class(tmp_path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rng = np.random.default_rng(0)
    for k, c in enumerate(("dark", "light")):
        (tmp_path / "img" / c).mkdir(parents=True)
        for i in range(6):
            plt.imsave(tmp_path / "img" / c / f"{i}.png",
                       np.clip(rng.random((8, 8, 3)) * 0.5 + 0.5 * k, 0, 1))
    (tmp_path / "s.yaml").write_text(IMAGES)
    assert main(["fit", str(tmp_path / "s.yaml"), "--data", str(tmp_path / "img"),
                 "--validation-split", "0.25", "--epochs", "2", "--batch-size", "4",
                 "--out", str(tmp_path / "o")]) == 0
    h = json.loads((tmp_path / "o" / "history.json").read_text())
    assert len(h["loss"]) == 2 and len(h["val_accuracy"]) == 2
    (tmp_path / "s.yaml").write_text(IMAGES.replace("units: 2", "units: 3"))
    assert main(["fit", str(tmp_path / "s.yaml"), "--data", str(tmp_path / "img"),
                 "--out", str(tmp_path / "o3")]) == 2


def test_module_function_returns_a_dataset(tmp_path: Path, monkeypatch) -> None:
    (tmp_path / "t.yaml").write_text(SPEC)
    (tmp_path / "mydata.py").write_text(
        "import numpy as np, tensorflow as tf\n"
        "def train():\n"
        "    rng = np.random.default_rng(0)\n"
        "    x = rng.standard_normal((48, 3)).astype('float32')\n"
        "    return tf.data.Dataset.from_tensor_slices((x, (x[:, 0] > 0).astype('int32')))"
        ".batch(16)\n"
        "def named():\n"
        "    x = np.zeros((8, 3), 'float32')\n"
        "    return tf.data.Dataset.from_tensor_slices(({'z': x}, np.zeros(8, 'int32')))"
        ".batch(4)\n")
    monkeypatch.chdir(tmp_path)
    assert main(["fit", "t.yaml", "--data", "mydata:train", "--epochs", "1",
                 "--out", "o"]) == 0
    assert len(json.loads((tmp_path / "o" / "history.json").read_text())["loss"]) == 1
    assert main(["fit", "t.yaml", "--data", "mydata:named", "--epochs", "1",
                 "--out", "o2"]) == 2
