"""Preprocessing that learns from data (specc.fit_adapt): `specc fit` adapts Normalization
without statistics and TextVectorization / StringLookup without a vocabulary on the training
data before the first step, and the `.keras` file keeps what they learned.

The references are independent: NumPy's mean and variance of the training arrays, and
keras.io's text classification model written by hand in Keras, its TextVectorization adapted
on the same files as keras.io does it. Small data, one epoch."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from helpers import SPECS
from specc.cli import main

pytestmark = pytest.mark.keras

TEXT_SPEC = SPECS / "text_classification" / "text_classification.yaml"
GOOD = "good great fine superb lovely nice happy moving".split()
BAD = "bad awful poor terrible sad ugly boring dull".split()
COMMON = "the a movie film was is and very plot actors story, it! This".split()


def texts(folder: Path, per_class: int, seed: int) -> list[str]:
    """A folder of class folders (neg, pos) of short .txt reviews; the texts, in no order."""
    rng = np.random.default_rng(seed)
    made = []
    for label, words in (("neg", BAD), ("pos", GOOD)):
        (folder / label).mkdir(parents=True)
        for i in range(per_class):
            tokens = list(rng.choice(words, 3)) + list(rng.choice(COMMON, 8))
            rng.shuffle(tokens)
            text = " ".join(tokens).capitalize() + "."
            (folder / label / f"{i}.txt").write_text(text)
            made.append(text)
    return made


@pytest.fixture(scope="module")
def text_run(tmp_path_factory: Any) -> tuple[Path, Path, list[str]]:
    d = tmp_path_factory.mktemp("text")
    texts(d / "train", 24, 0)
    held = texts(d / "val", 8, 1)
    assert main(["fit", str(TEXT_SPEC), "--data", str(d / "train"), "--validation",
                 str(d / "val"), "--epochs", "1", "--batch-size", "16", "--out",
                 str(d / "o")]) == 0
    return d / "o" / "model.keras", d / "train", held


def keras_io_model(keras: Any, train: Path) -> tuple[Any, Any]:
    """keras.io's text_classification_from_scratch, written as its source writes it (at this
    spec's sizes, with Keras's standardization): the vectorizer adapted on the training texts,
    then the end-to-end model on raw strings."""
    from keras import layers

    raw_train_ds = keras.utils.text_dataset_from_directory(train, batch_size=16, verbose=False)
    vectorize_layer = layers.TextVectorization(max_tokens=2000, output_mode="int",
                                               output_sequence_length=100)
    text_ds = raw_train_ds.map(lambda x, y: x)
    vectorize_layer.adapt(text_ds)

    inputs = keras.Input(shape=(1,), dtype="string")
    x = vectorize_layer(inputs)
    x = layers.Embedding(2000, 128, name="embedding")(x)
    x = layers.Dropout(0.5)(x)
    x = layers.Conv1D(128, 7, padding="valid", activation="relu", strides=3, name="conv1")(x)
    x = layers.Conv1D(128, 7, padding="valid", activation="relu", strides=3, name="conv2")(x)
    x = layers.GlobalMaxPooling1D()(x)
    x = layers.Dense(128, activation="relu", name="dense")(x)
    x = layers.Dropout(0.5)(x)
    predictions = layers.Dense(1, activation="sigmoid", name="predictions")(x)
    return keras.Model(inputs, predictions), vectorize_layer


def test_text_model_equals_the_keras_io_model(text_run: Any, keras: Any) -> None:
    """The vocabulary specc adapted, saved and loaded back in safe mode, is the one keras.io's
    code adapts on the same files (token lists: equal exactly); with the trained weights copied
    over, both models give the same probabilities (two graphs: |Δ| <= 1e-5)."""
    import tensorflow as tf

    path, train, held = text_run
    loaded = keras.saving.load_model(path, safe_mode=True)
    reference, vectorizer = keras_io_model(keras, train)
    vocabulary = loaded.get_layer("vectorize").get_vocabulary()
    assert vocabulary == vectorizer.get_vocabulary()
    assert len(vocabulary) == 2 + len(set(" ".join(GOOD + BAD + COMMON).lower()
                                          .replace(",", "").replace("!", "").split()))
    for name in ("embedding", "conv1", "conv2", "dense", "predictions"):
        reference.get_layer(name).set_weights(loaded.get_layer(name).get_weights())
    batch = tf.constant(np.array(held, dtype=object).reshape(-1, 1))
    ours = loaded.predict(batch, verbose=0)
    theirs = reference.predict(batch, verbose=0)
    assert ours.shape == (len(held), 1)
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-5)
    # the token ids (integers: equal exactly), which the adapted vocabulary knows (no
    # out-of-vocabulary id 1 on these held-out texts of the same words)
    ids = keras.ops.convert_to_numpy(loaded.get_layer("vectorize")(batch))
    np.testing.assert_array_equal(ids, keras.ops.convert_to_numpy(vectorizer(batch)))
    words = ids[ids > 0]
    assert len(words) >= 10 * len(held) and (words >= 2).all()


NORM_SPEC = """\
specc: 1
name: norm
seed: 3
inputs:
  x: {shape: [3]}
layers:
  - {name: direct, type: Normalization, from: x}
  - {name: scaled, type: Rescaling, scale: 2.0, offset: 1.0, from: x}
  - {name: deeper, type: Normalization, from: scaled}
  - {name: whole, type: Normalization, axis: null, from: x}
  - {name: both, type: Concatenate, from: [direct, deeper, whole]}
  - {name: out, type: Dense, units: 1}
outputs: [out]
loss: mse
"""


def test_normalization_learns_numpys_mean_and_variance(tmp_path: Path, keras: Any,
                                                       capsys: Any) -> None:
    """Adapted on the training set only (the validation set is given apart), in batches of 32
    with a partial last one: mean and variance equal NumPy's of the training rows (float64),
    to rtol 1e-5 (Keras combines float32 batch statistics). `deeper` reads 2x + 1, computed
    by the model up to it."""
    rng = np.random.default_rng(0)
    x = (rng.standard_normal((300, 3)) * [3.0, 0.5, 10.0] + [5.0, -2.0, 0.1]).astype("float32")
    np.savez(tmp_path / "train.npz", x=x, out=x[:, :1] - x[:, 2:])
    vx = rng.standard_normal((40, 3)).astype("float32") * 100
    np.savez(tmp_path / "val.npz", x=vx, out=vx[:, :1])
    (tmp_path / "n.yaml").write_text(NORM_SPEC)
    assert main(["fit", str(tmp_path / "n.yaml"), "--data", str(tmp_path / "train.npz"),
                 "--validation", str(tmp_path / "val.npz"), "--epochs", "1", "--batch-size",
                 "32", "--out", str(tmp_path / "o")]) == 0
    printed = capsys.readouterr().out
    assert "adapted layer 'deeper' (Normalization) on 300 training samples" in printed
    model = keras.saving.load_model(tmp_path / "o" / "model.keras", safe_mode=True)
    x64 = x.astype("float64")

    def stats(name: str) -> tuple[np.ndarray, np.ndarray]:
        layer = model.get_layer(name)
        return (np.ravel(keras.ops.convert_to_numpy(layer.mean)),
                np.ravel(keras.ops.convert_to_numpy(layer.variance)))

    for name, data, axis in (("direct", x64, 0), ("deeper", 2 * x64 + 1, 0),
                             ("whole", x64, None)):
        mean, variance = stats(name)
        np.testing.assert_allclose(mean, np.ravel(data.mean(axis=axis)), rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(variance, np.ravel(data.var(axis=axis)), rtol=1e-5)
    # what the model computes from them: the normalized training rows
    direct = keras.Model(model.inputs, model.get_layer("direct").output)
    got = direct.predict(x[:8], verbose=0)
    want = (x64[:8] - x64.mean(0)) / np.sqrt(x64.var(0))
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-4)


def test_build_warns_of_layers_not_adapted_yet(capsys: Any) -> None:
    assert main(["build", str(TEXT_SPEC)]) == 0
    err = capsys.readouterr().err
    assert (f"{TEXT_SPEC}:18:5: warning: layer 'vectorize' (TextVectorization) has no "
            "vocabulary: `specc fit` adapts it on the training data; the model built here "
            "needs layer.adapt before use  [unadapted]") in err


def test_build_does_not_write_a_lookup_keras_could_not_load(tmp_path: Path, capsys: Any) -> None:
    # Keras saves an unadapted TextVectorization, then fails to load it (an empty lookup
    # table: checked below, so the refusal stays needed); -o writes nothing and says why
    out = tmp_path / "model.keras"
    assert main(["build", str(TEXT_SPEC), "-o", str(out)]) == 1
    assert not out.exists() and list(tmp_path.iterdir()) == []
    assert (f"specc: error: {out} not written: Keras cannot load a model whose lookup has no "
            "vocabulary ('vectorize'); give `vocabulary:` in the spec, or `specc fit` it") \
        in capsys.readouterr().err
    import keras

    layer = keras.layers.TextVectorization(max_tokens=20, output_sequence_length=4)
    raw = keras.Sequential([keras.Input((1,), dtype="string"), layer])
    raw.save(tmp_path / "raw.keras")
    with pytest.raises(Exception, match="could not be loaded"):
        keras.saving.load_model(tmp_path / "raw.keras", safe_mode=True)


def test_a_shared_layer_to_adapt_is_refused_where_it_is_declared(tmp_path: Path,
                                                                  capsys: Any) -> None:
    """Format 2 `share:` calls one Normalization on two tensors: which would it learn from?"""
    (tmp_path / "s.yaml").write_text("""\
specc: 2
name: s
inputs: {a: {shape: [2]}, b: {shape: [2]}}
layers:
  - {name: norm, type: Normalization, from: a}
  - {name: norm_b, share: norm, from: b}
  - {name: both, type: Concatenate, from: [norm, norm_b]}
  - {name: out, type: Dense, units: 1}
outputs: [out]
loss: mse
""")
    np.savez(tmp_path / "d.npz", a=np.ones((8, 2), "float32"), b=np.ones((8, 2), "float32"),
             out=np.ones((8, 1), "float32"))
    assert main(["fit", str(tmp_path / "s.yaml"), "--data", str(tmp_path / "d.npz"),
                 "--epochs", "1", "--out", str(tmp_path / "o")]) == 1
    assert capsys.readouterr().out.strip().splitlines()[-1] == (
        f"{tmp_path / 's.yaml'}:5:5: error: layer 'norm' (Normalization) is called more than "
        "once (share): adapt would learn from one of its inputs only; give its statistics or "
        "vocabulary  [build]")
    assert not (tmp_path / "o").exists()


def test_no_synthetic_text() -> None:
    """Without --data, specc fit makes synthetic data: none for a string input (one line)."""
    import specc
    from specc.data import synthetic
    from specc.errors import UsageError

    graph = specc.lower(specc.load(str(TEXT_SPEC)))
    with pytest.raises(UsageError, match="input 'text' is a string input, and specc makes no "
                       "synthetic text: give --data"):
        synthetic(graph, {"predictions": (1,)}, n=8)


LOOKUP_SPEC = """\
specc: 1
name: lookup
seed: 1
inputs:
  color: {shape: [1], dtype: string}
  size: {shape: [1]}
layers:
  - {name: lookup, type: StringLookup, from: color}
  - {name: emb, type: Embedding, input_dim: 8, output_dim: 2}
  - {name: flat, type: Flatten}
  - {name: norm, type: Normalization, from: flat}
  - {name: cat, type: Concatenate, from: [norm, size]}
  - {name: out, type: Dense, units: 1}
outputs: [out]
loss: mse
"""


def test_string_lookup_from_a_users_dataset(tmp_path: Path, monkeypatch: Any,
                                            keras: Any) -> None:
    """A module:function's tf.data.Dataset (inputs by name): the StringLookup learns the
    vocabulary Keras's own adapt learns from the whole column at once (most frequent first:
    equal lists); the Normalization behind the lookup and the Embedding learns NumPy's
    statistics of the embedded ids (computed with the model's initial embedding table, as it
    stands before the first step: rtol 1e-5)."""
    (tmp_path / "l.yaml").write_text(LOOKUP_SPEC)
    (tmp_path / "colors.py").write_text(
        "import numpy as np, tensorflow as tf\n"
        "def column():\n"
        "    rng = np.random.default_rng(0)\n"
        "    return rng.choice(np.array(['red', 'green', 'blue', 'red', 'red', 'teal']), "
        "size=(100, 1))\n"
        "def train():\n"
        "    colors = column()\n"
        "    size = np.linspace(0, 1, 100, dtype='float32').reshape(100, 1)\n"
        "    y = size + (colors == 'red')\n"
        "    return tf.data.Dataset.from_tensor_slices(({'color': colors, 'size': size}, "
        "y.astype('float32'))).batch(16)\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    assert main(["fit", "l.yaml", "--data", "colors:train", "--epochs", "1", "--out",
                 "o"]) == 0
    import colors

    reference = keras.layers.StringLookup()
    reference.adapt(colors.column())
    model = keras.saving.load_model(tmp_path / "o" / "model.keras", safe_mode=True)
    assert model.get_layer("lookup").get_vocabulary() == reference.get_vocabulary()
    # the statistics were taken before training; the table then was the seeded initial one
    import specc
    from specc.runtime import emit

    initial = emit(specc.lower(specc.load(str(tmp_path / "l.yaml"))))
    table = keras.ops.convert_to_numpy(initial.get_layer("emb").embeddings).astype("float64")
    ids = keras.ops.convert_to_numpy(reference(colors.column()))[:, 0]
    embedded = table[ids]
    norm = model.get_layer("norm")
    np.testing.assert_allclose(np.ravel(keras.ops.convert_to_numpy(norm.mean)),
                               embedded.mean(0), rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(np.ravel(keras.ops.convert_to_numpy(norm.variance)),
                               embedded.var(0), rtol=1e-5, atol=1e-7)
