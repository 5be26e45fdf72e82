"""`specc import` takes every functional model: several inputs and outputs, outputs taken
from inner layers, inputs that some branches (or no layer) read, dict inputs and outputs,
Sequential, nested models called once or twice; a subclassed model is one line.

The reference is the hand-written Keras model itself: the spec's build, given the source's
weights, computes the same outputs on the same batch within RTOL of the largest output.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Final

import pytest

keras = pytest.importorskip("keras")
np = pytest.importorskip("numpy")

import specc  # noqa: E402
from specc import importer  # noqa: E402
from helpers import checked_difference  # noqa: E402
from specc.cli import main  # noqa: E402

#: max |a - b| <= RTOL * max |a| (same layers, same weights, same order of operations).
RTOL: Final = 1e-6
L = keras.layers


def two_inputs() -> Any:
    """The issue's reproduction: two inputs, a Dense on each, Add, Dense."""
    a, b = keras.Input((4,), name="a"), keras.Input((4,), name="b")
    s = L.Add(name="s")([L.Dense(4, name="da")(a), L.Dense(4, name="db")(b)])
    return keras.Model([a, b], L.Dense(3, name="y")(s), name="two")


def inner_outputs() -> Any:
    """Outputs taken from an inner layer and from a layer read by a later one."""
    a = keras.Input((4,), name="a")
    h = L.Dense(5, activation="relu", name="h")(a)
    y = L.Dense(2, name="y")(L.Dense(3, name="mid")(h))
    return keras.Model(a, [y, h], name="inner")


def branches() -> Any:
    """Three inputs: one read by one branch only, one by no layer at all."""
    a, b = keras.Input((4,), name="a"), keras.Input((6,), name="b")
    unused = keras.Input((2,), name="unused")
    ya = L.Dense(2, name="ya")(L.Dense(3, name="ha")(a))
    yb = L.Dense(2, name="yb")(L.Concatenate(name="cat")([a, L.Dense(3, name="hb")(b)]))
    return keras.Model([a, b, unused], [ya, yb], name="branches")


def sequential() -> Any:
    return keras.Sequential([keras.Input((5,)), L.Dense(4, activation="tanh", name="d1"),
                             L.Dropout(0.1, name="drop"), L.Dense(2, name="d2")], name="seq")


def nested_twice() -> Any:
    """A nested Sequential called on two inputs (shared weights) and a nested functional
    model called once."""
    tower = keras.Sequential([keras.Input((4,)), L.Dense(3, activation="relu", name="t1"),
                              L.Dense(2, name="t2")], name="tower")
    x = keras.Input((2,), name="x")
    head = keras.Model(x, L.Dense(1, name="h1")(x), name="head")
    a, b = keras.Input((4,), name="left"), keras.Input((4,), name="right")
    diff = L.Subtract(name="diff")([tower(a), tower(b)])
    return keras.Model([a, b], head(diff), name="siamese")


def dict_io() -> Any:
    a, b = keras.Input((4,), name="a"), keras.Input((3,), name="b")
    y = L.Dense(2, name="y")(L.Concatenate(name="c")([a, b]))
    z = L.Dense(1, name="z")(b)
    return keras.Model({"a": a, "b": b}, {"out_y": y, "out_z": z}, name="dicts")


def input_as_output() -> Any:
    a = keras.Input((4,), name="a")
    return keras.Model(a, [L.Dense(2, name="y")(a), a], name="passthrough")


def port_output() -> Any:
    a = keras.Input((5, 3), name="a")
    seq, h, c = L.LSTM(4, return_sequences=True, return_state=True, name="enc")(a)
    return keras.Model(a, [L.Dense(2, name="y")(seq), h], name="ports")


MODELS: Final[dict[str, Callable[[], Any]]] = {
    f.__name__: f for f in (two_inputs, inner_outputs, branches, sequential, nested_twice,
                            dict_io, input_as_output, port_output)}


def _round_trip(model: Any, tmp_path: Path) -> tuple[Any, importer.Imported]:
    imported = importer.convert(model)
    spec = tmp_path / "imported.yaml"
    importer.write(imported, spec, with_weights=True)
    return specc.build(spec), imported


@pytest.mark.parametrize("name", sorted(MODELS))
def test_functional_models_round_trip(name: str, tmp_path: Path) -> None:
    keras.utils.set_random_seed(7)
    model = MODELS[name]()
    built, imported = _round_trip(model, tmp_path)
    want, got = importer.same_batch_outputs(model, built, seed=1, batch=3)
    assert len(want) == len(got) == len(model.outputs)
    for a, b in zip(want, got):
        assert a.shape == b.shape
        assert np.max(np.abs(a - b)) <= RTOL * np.max(np.abs(a)), np.max(np.abs(a - b))
    assert built.count_params() == model.count_params()


def test_each_input_is_read_where_the_source_reads_it(tmp_path: Path) -> None:
    data = importer.convert(two_inputs()).data
    layers = {e["name"]: e for e in data["layers"]}
    assert layers["da"]["from"] == "a" and layers["db"]["from"] == "b"
    data = importer.convert(branches()).data
    assert list(data["inputs"]) == ["a", "b"]                 # `unused` is left out
    assert data["outputs"] == ["ya", "yb"]


def test_a_nested_model_called_twice_shares_its_layers() -> None:
    imported = importer.convert(nested_twice())
    layers = {e["name"]: e for e in imported.data["layers"]}
    assert imported.data["specc"] == 2
    assert layers["t1_call2"] == {"name": "t1_call2", "share": "t1", "from": "right"}
    assert layers["t2_call2"]["share"] == "t2"
    assert sorted(imported.weight_arrays()) == ["h1", "t1", "t2"]


def test_cli_imports_two_inputs(tmp_path: Path, capsys) -> None:
    path = tmp_path / "two.keras"
    two_inputs().save(path)
    out = tmp_path / "two.yaml"
    assert main(["import", str(path), "-o", str(out), "--weights", "--check"]) == 0
    printed = capsys.readouterr().out
    assert "check: structure same" in printed and checked_difference(printed) <= RTOL


@keras.saving.register_keras_serializable(package="test_import_graphs")
class Subclassed(keras.Model):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.dense = L.Dense(2)

    def call(self, x: Any) -> Any:
        return self.dense(x)


def test_a_subclassed_model_is_one_line(tmp_path: Path, capsys) -> None:
    model = Subclassed(name="sub")
    model(np.zeros((1, 3), "float32"))
    with pytest.raises(importer.ImportRefused) as err:
        importer.convert(model)
    assert len(err.value.lines) == 1 and "subclassed" in err.value.lines[0]
    path = tmp_path / "sub.keras"
    model.save(path)
    assert main(["import", str(path), "-o", str(tmp_path / "sub.yaml")]) == 1
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 2 and "subclassed model has no graph" in lines[1], lines
    assert not (tmp_path / "sub.yaml").exists()


def test_imagenet_weights_come_from_the_local_cache_only(tmp_path: Path, monkeypatch,
                                                          capsys) -> None:
    """Absent: one line naming where it looked, nothing written. Present (a file written
    here in the legacy .h5 form keras.applications reads): the spec's build holds exactly the
    arrays of the model that wrote it (its outputs are NaN on random weights at 224x224)."""
    import re

    import h5py
    from keras.src.backend import config
    from keras.src.legacy.saving import legacy_h5_format

    home = tmp_path / "home"
    monkeypatch.setattr(config, "_KERAS_DIR", str(home))
    out = tmp_path / "m.yaml"
    argv = ["import", "--application", "MobileNetV3Small", "-o", str(out), "--weights",
            "imagenet", "--flat"]
    assert main(argv) == 2
    lines = [x for x in capsys.readouterr().err.splitlines() if "--weights imagenet" in x]
    assert len(lines) == 1 and str(home / "models") in lines[0], lines
    assert not out.exists()
    keras.utils.set_random_seed(4)
    source = keras.applications.MobileNetV3Small(weights=None)
    fname = re.search(r"imagenet: (\S+) is not", lines[0]).group(1)
    (home / "models").mkdir(parents=True)
    with h5py.File(home / "models" / fname, "w") as f:
        legacy_h5_format.save_weights_to_hdf5_group(f, source)
    assert main(argv) == 0
    built = specc.build(out)
    compared = 0
    for layer in (x for x in source.layers if x.weights):   # copied arrays: exact
        for a, b in zip(layer.weights, built.get_layer(layer.name).weights):
            assert np.array_equal(np.asarray(a), np.asarray(b)), layer.name
            compared += 1
    assert compared == len(source.weights)


def adapted_text_model() -> Any:
    """Written in Keras, not by specc: a tf_idf TextVectorization, a StringLookup with a mask
    and two OOV indices, and a Normalization, each adapted on data."""
    text = keras.Input((), dtype="string", name="text")
    words = keras.Input((3,), dtype="string", name="words")
    num = keras.Input((2,), name="num")
    vectorize = L.TextVectorization(max_tokens=20, output_mode="tf_idf", name="vectorize")
    vectorize.adapt(np.array(["the cat sat", "the dog ran fast", "a cat, a dog!", "the end"]))
    lookup = L.StringLookup(mask_token="[PAD]", num_oov_indices=2, name="lookup")
    lookup.adapt(np.array([["red", "blue", "red"], ["green", "red", "blue"],
                           ["[PAD]", "[PAD]", "red"]]))        # by count: red, blue, green
    norm = L.Normalization(name="norm")
    norm.adapt(np.array([[1.0, 10.0], [3.0, 30.0], [8.0, 20.0]], "float32"))
    ids = L.Flatten(name="flat")(L.Embedding(lookup.vocabulary_size(), 2, name="emb")(
        lookup(words)))
    joined = L.Concatenate(name="cat")([L.Dense(3, name="d")(vectorize(text)), ids, norm(num)])
    return keras.Model([text, words, num], L.Dense(1, name="y")(joined), name="adapted")


def test_a_keras_models_adapted_lookups_are_written_inline(tmp_path: Path, capsys) -> None:
    """The vocabularies (kept in the .keras file's assets) come back inline: the lookup's
    without its mask and OOV tokens, the tf_idf one with its OOV token first and the idf
    weights Keras's adapt learned (the OOV's from the data, not the mean); the Normalization's
    statistics stay weights. The spec's build gives the source's ids and outputs."""
    keras.utils.set_random_seed(3)
    source = adapted_text_model()
    saved, out = tmp_path / "adapted.keras", tmp_path / "adapted.yaml"
    source.save(saved)
    assert main(["import", str(saved), "-o", str(out), "--weights", "--check"]) == 0
    printed = capsys.readouterr().out
    assert "check: structure same" in printed and checked_difference(printed) <= RTOL
    layers = {e["name"]: e for e in importer.convert(importer.keras_file(saved)).data["layers"]}
    assert layers["lookup"]["vocabulary"] == ["red", "blue", "green"]
    assert layers["vectorize"]["vocabulary"] == source.get_layer("vectorize").get_vocabulary()
    want_idf = source.get_layer("vectorize")._lookup_layer.idf_weights.numpy()
    # stored values, no arithmetic: float32 -> the writer's shortest repr -> float32 is exact
    assert np.array_equal(np.float32(layers["vectorize"]["idf_weights"]), want_idf)
    assert want_idf[0] != np.float32(np.mean(want_idf[1:]))   # the OOV's is adapt's own
    assert {"mean", "variance"}.isdisjoint(layers["norm"])
    built = specc.build(out)
    texts = np.array(["the cat ran", "a bird", "", "fast fast dog"], dtype=object)
    words = np.array([["red", "[PAD]", "pink"], ["green", "blue", "red"], ["x", "y", "z"],
                      ["blue", "blue", "[PAD]"]], dtype=object)
    # the lookup's ids are integers (exact); the tf_idf values are one Keras layer's product
    # of counts and the same float32 idf weights (checked equal above) on the same input in
    # one process: the same operations on the same values, so exact too
    for name, x in (("lookup", words), ("vectorize", texts)):
        assert np.array_equal(built.get_layer(name)(x).numpy(),
                              source.get_layer(name)(x).numpy()), name
    num = np.array([[2.0, 15.0], [0.0, 0.0], [9.0, 40.0], [1.0, 10.0]], "float32")
    want = np.asarray(source([texts, words, num], training=False))
    imported = importer.convert(source)                     # weights given in memory
    in_memory = specc.build(specc.loads(importer.validated_text(imported), "adapted.yaml"))
    importer.assign(in_memory, imported)
    for model in (built, in_memory):                        # (the Normalization's too)
        got = np.asarray(model([texts, words, num], training=False))
        assert np.max(np.abs(want - got)) <= RTOL * np.max(np.abs(want))
