"""specc's feeds on Keras: the batches of arrays (in memory and memory-mapped) are the rows
`epoch_rows` names, epoch after epoch, from any first epoch; a class folder's files read as
Keras's own image_dataset_from_directory and text_dataset_from_directory read them."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import specc
from specc import feed
from specc.feed_rows import epoch_rows

pytestmark = pytest.mark.keras

IMAGES = """\
specc: 1
name: img
seed: 1
inputs:
  image: {shape: [8, 8, 3]}
layers:
  - {name: flat, type: Flatten}
  - {name: probs, type: Dense, units: UNITS, activation: ACT}
outputs: [probs]
loss: LOSS
"""


def _take(dataset: object, count: int) -> list[tuple[object, dict]]:
    it = iter(dataset)
    return [next(it) for _ in range(count)]


@pytest.mark.parametrize("mapped", [False, True])
def test_array_batches_are_the_rows_of_each_epoch(tmp_path: Path, mapped: bool) -> None:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((23, 2, 3)).astype("float32")
    y = rng.integers(0, 4, 23)
    if mapped:
        np.save(tmp_path / "x.npy", x)
        x = np.load(tmp_path / "x.npy", mmap_mode="r")
    rows = np.arange(2, 23)                  # 21 rows: 6 batches of 4 a epoch, the last of 1
    for first in (0, 2):                    # a resumed run starts at its epoch's first batch
        stream, steps = feed.array_feed({"x": x}, {"out": y}, rows, 4, shuffle=True, seed=3,
                                        first_epoch=first)
        assert steps == 6
        got = _take(stream, 2 * steps)
        for k, (bx, by) in enumerate(got):
            epoch, i = first + k // steps, k % steps
            take = epoch_rows(rows, epoch, 4, shuffle=True, seed=3)[i * 4:(i + 1) * 4]
            # rows copied, no arithmetic: exact
            assert np.array_equal(np.asarray(bx), np.asarray(x)[take])
            assert np.array_equal(np.asarray(by["out"]), y[take])
    once, steps = feed.array_feed({"x": x}, {"out": y}, rows, 4, shuffle=False, seed=3)
    assert np.array_equal(np.concatenate([np.asarray(b) for b, _ in once]), np.asarray(x)[2:])


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from PIL import Image

    d = tmp_path_factory.mktemp("img")
    rng = np.random.default_rng(1)
    for c in ("a", "b"):
        (d / c).mkdir()
        for i in range(5):              # 11x13: resized to 8x8, as Keras would
            Image.fromarray((rng.random((11, 13, 3)) * 255).astype("uint8")).save(
                d / c / f"{i}.png")
    return d


@pytest.mark.parametrize("loss, units, act, mode", [
    ("categorical_crossentropy", 2, "softmax", "categorical"),
    ("sparse_categorical_crossentropy", 2, "softmax", "int"),
    ("binary_crossentropy", 1, "sigmoid", "binary")])
def test_images_read_as_keras_reads_them(images: Path, loss: str, units: int, act: str,
                                         mode: str) -> None:
    import keras

    text = IMAGES.replace("UNITS", str(units)).replace("ACT", act).replace("LOSS", loss)
    graph = specc.lower(specc.loads(text, "img.yaml"))
    data = feed.open_data(str(images), graph, allow_nonfinite=False, max_bytes=1, spill=None)
    ours, steps = feed.data_feed(data, graph, np.arange(data.n), 4, shuffle=False, seed=0)
    theirs = keras.utils.image_dataset_from_directory(
        images, label_mode=mode, image_size=(8, 8), batch_size=4, shuffle=False, verbose=False)
    assert steps == 3 and theirs.file_paths == data.paths
    pairs = list(zip(ours, theirs))
    assert len(pairs) == 3
    for (x1, y1), (x2, y2) in pairs:
        # the same decoding and bilinear resize in both: equal within float32 rounding
        np.testing.assert_allclose(x1.numpy(), x2.numpy(), rtol=0, atol=1e-4)
        assert np.array_equal(y1["probs"].numpy(), y2.numpy())     # labels: 0/1, ids


def test_texts_read_as_keras_reads_them(tmp_path: Path) -> None:
    """The text pipeline itself (a spec with a string input needs a layer that reads strings:
    tests/test_fit_sources.py trains one end to end)."""
    import keras

    from specc.feed_tf import folder_tf_feed

    paths, labels = [], []
    for k, (c, words) in enumerate((("neg", ["bad", "awful plot"]),
                                    ("pos", ["good", "a fine, long film\n"]))):
        (tmp_path / c).mkdir()
        for i, w in enumerate(words):
            (tmp_path / c / f"{i}.txt").write_text(w)
            paths.append(str(tmp_path / c / f"{i}.txt"))
            labels.append(k)
    rows = np.arange(4)
    ours = folder_tf_feed(paths, labels, 2, lambda e: rows, 3, None, 2, image=None,
                          text_axis=True, label_mode="int", output="probs")
    theirs = keras.utils.text_dataset_from_directory(tmp_path, batch_size=3, shuffle=False,
                                                     verbose=False)
    pairs = list(zip(ours, theirs))             # Keras's order: by class, then by name
    assert len(pairs) == 2
    for (x1, y1), (x2, y2) in pairs:
        assert x1.shape == (len(x2), 1)                     # a string input of shape (1,)
        assert x1.numpy()[:, 0].tolist() == x2.numpy().tolist()
        assert y1["probs"].numpy().tolist() == y2.numpy().tolist()
