"""`specc import` folds repeated sub-graphs into format 2 blocks (`--flat` keeps every layer).

The reference is the hand-written Keras model: the folded spec, built with the weights file
written beside it, computes the same outputs (within RTOL of the largest) and holds the same
parameters; its layers are the model's, renamed `<instance>_<local>` -> `<instance>.<local>`.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Final

import pytest

keras = pytest.importorskip("keras")
np = pytest.importorskip("numpy")
yaml = pytest.importorskip("yaml")

import specc  # noqa: E402
from helpers import checked_difference  # noqa: E402
from specc import importer  # noqa: E402
from specc.cli import main  # noqa: E402

RTOL: Final = 1e-6
L = keras.layers


def residual(leak: bool = False) -> Any:
    """Two stages of residual blocks named as keras.applications names them; the first block
    of stage 3 has a projection shortcut. `leak`: a later layer reads an inner layer of
    stage2_block1 (so that instance cannot be a block)."""
    keras.utils.set_random_seed(5)
    x = keras.Input((8, 8, 3), name="image")
    h = L.Conv2D(8, 3, padding="same", name="stem_conv")(x)
    inner = None
    for stage, (filters, blocks) in ((2, (8, 2)), (3, (16, 3))):
        for b in range(1, blocks + 1):
            p = f"stage{stage}_block{b}"
            shortcut = h
            if h.shape[-1] != filters:
                shortcut = L.Conv2D(filters, 1, name=f"{p}_proj")(h)
            y = L.Conv2D(filters, 3, padding="same", activation="relu", name=f"{p}_conv1")(h)
            inner = inner if inner is not None else y
            y = L.Conv2D(filters, 3, padding="same", name=f"{p}_conv2")(y)
            h = L.Add(name=f"{p}_add")([shortcut, y])
    pooled = L.GlobalAveragePooling2D(name="pool")(h)
    if leak:
        pooled = L.Concatenate(name="cat")([pooled, L.GlobalAveragePooling2D(name="p2")(inner)])
    return keras.Model(x, L.Dense(3, name="head")(pooled), name="residual")


def _code_lines(path: Path) -> int:
    return sum(1 for line in path.read_text().splitlines()
               if line.strip() and not line.lstrip().startswith("#"))


def test_repeated_blocks_fold_and_give_the_same_outputs(tmp_path: Path) -> None:
    model = residual()
    imported = importer.convert(model, fold=True)
    data = imported.data
    assert data["specc"] == 2 and list(data["blocks"]) == ["stage_block"]
    uses = [e for e in data["layers"] if "use" in e]
    assert [(e["name"], e["repeat"]) for e in uses] == [("stage2_block", 2), ("stage3_block", 3)]
    block = data["blocks"]["stage_block"]
    proj = next(e for e in block["layers"] if e["name"] == "proj")
    assert "if" in proj                               # only stage3_block1 has it
    spec = tmp_path / "residual.yaml"
    importer.write(imported, spec, with_weights=True)
    built = specc.build(spec)
    assert built.get_layer("stage3_block1.proj").count_params() == 8 * 16 + 16
    want, got = importer.same_batch_outputs(model, built, seed=2, batch=3)
    assert np.max(np.abs(want[0] - got[0])) <= RTOL * np.max(np.abs(want[0]))
    assert built.count_params() == model.count_params()
    flat = tmp_path / "flat.yaml"
    importer.write(importer.convert(model), flat)
    assert _code_lines(spec) < _code_lines(flat)


def test_an_instance_read_from_inside_stays_flat(tmp_path: Path) -> None:
    model = residual(leak=True)
    data = importer.convert(model, fold=True).data
    names = [e["name"] for e in data["layers"]]
    assert "stage2_block1_conv1" in names             # not folded: `p2` reads it
    spec = tmp_path / "leak.yaml"
    imported = importer.convert(model, fold=True)
    importer.write(imported, spec, with_weights=True)
    built = specc.build(spec)
    want, got = importer.same_batch_outputs(model, built, seed=2, batch=3)
    assert np.max(np.abs(want[0] - got[0])) <= RTOL * np.max(np.abs(want[0]))


def test_cli_folds_unless_flat(tmp_path: Path, capsys) -> None:
    path = tmp_path / "res.keras"
    residual().save(path)
    folded, flat = tmp_path / "folded.yaml", tmp_path / "flat.yaml"
    assert main(["import", str(path), "-o", str(folded), "--weights", "--check"]) == 0
    out = capsys.readouterr().out
    assert "check: structure same" in out and checked_difference(out) <= 1e-6, out
    assert "blocks" in yaml.safe_load(folded.read_text())
    assert main(["import", str(path), "-o", str(flat), "--flat"]) == 0
    data = yaml.safe_load(flat.read_text())
    assert data["specc"] == 1 and "blocks" not in data


def keras_io_unet(img_size: tuple[int, int] = (64, 64), num_classes: int = 3) -> Any:
    """keras.io's "Image segmentation with a U-Net-like architecture" model, as published
    (keras.io/examples/vision/oxford_pets_image_segmentation: automatic layer names, loops over
    the filters, residual projections), on a small image."""
    inputs = keras.Input(shape=img_size + (3,))
    x = L.Conv2D(32, 3, strides=2, padding="same")(inputs)
    x = L.BatchNormalization()(x)
    x = L.Activation("relu")(x)
    previous_block_activation = x  # Set aside residual
    for filters in [64, 128, 256]:
        x = L.Activation("relu")(x)
        x = L.SeparableConv2D(filters, 3, padding="same")(x)
        x = L.BatchNormalization()(x)
        x = L.Activation("relu")(x)
        x = L.SeparableConv2D(filters, 3, padding="same")(x)
        x = L.BatchNormalization()(x)
        x = L.MaxPooling2D(3, strides=2, padding="same")(x)
        residual = L.Conv2D(filters, 1, strides=2, padding="same")(previous_block_activation)
        x = L.add([x, residual])  # Add back residual
        previous_block_activation = x  # Set aside next residual
    for filters in [256, 128, 64, 32]:
        x = L.Activation("relu")(x)
        x = L.Conv2DTranspose(filters, 3, padding="same")(x)
        x = L.BatchNormalization()(x)
        x = L.Activation("relu")(x)
        x = L.Conv2DTranspose(filters, 3, padding="same")(x)
        x = L.BatchNormalization()(x)
        x = L.UpSampling2D(2)(x)
        residual = L.UpSampling2D(2)(previous_block_activation)
        residual = L.Conv2D(filters, 1, padding="same")(residual)
        x = L.add([x, residual])  # Add back residual
        previous_block_activation = x  # Set aside next residual
    outputs = L.Conv2D(num_classes, 3, activation="softmax", padding="same")(x)
    return keras.Model(inputs, outputs)


def _randomized(model: Any) -> Any:
    """Non-trivial BatchNormalization statistics, so that a misplaced array shows."""
    rng = np.random.default_rng(3)
    for layer in model.layers:
        if isinstance(layer, L.BatchNormalization):
            gamma, beta, mean, var = layer.get_weights()
            layer.set_weights([rng.uniform(0.5, 1.5, gamma.shape), rng.normal(0, 0.1, beta.shape),
                               rng.normal(0, 0.1, mean.shape), rng.uniform(0.5, 1.5, var.shape)])
    return model


def test_auto_named_unet_folds_by_structure(tmp_path: Path) -> None:
    keras.backend.clear_session()          # Keras's automatic names count per session
    keras.utils.set_random_seed(7)
    model = _randomized(keras_io_unet())
    imported = importer.convert(model, fold=True)
    spec = tmp_path / "unet.yaml"
    importer.write(imported, spec, with_weights=True)
    assert _code_lines(spec) <= 45, spec.read_text()
    data = imported.data
    uses = [(e["use"], e["repeat"]) for e in data["layers"] if "use" in e]
    assert uses == [("separable_conv2d_block", 3), ("conv2d_transpose_block", 4)]
    down, up = data["layers"][3:5]
    assert down["with"] == {"filters": "${64 * 2 ** i}"}       # 64, 128, 256
    assert up["with"] == {"filters": "${256 // 2 ** i}"}       # 256, 128, 64, 32
    # a layer Keras named is found under its instance and its type, as a person reads it
    assert imported.renamed["separable_conv2d_2"] == "separable_conv2d_block2.separable_conv2d"
    assert imported.renamed["conv2d_7"] == "conv2d_transpose_block4.conv2d"
    built = specc.build(spec)
    assert built.count_params() == model.count_params()
    want = model.get_layer("conv2d_7").get_weights()
    got = built.get_layer("conv2d_transpose_block4.conv2d").get_weights()
    assert all(np.array_equal(a, b) for a, b in zip(want, got))    # stored bytes, no arithmetic
    x = np.random.default_rng(4).normal(size=(2, 64, 64, 3)).astype("float32")
    a, b = model.predict(x, verbose=0), built.predict(x, verbose=0)
    assert np.max(np.abs(a - b)) <= RTOL * np.max(np.abs(a))
    flat = tmp_path / "flat.yaml"
    importer.write(importer.convert(model), flat)
    assert (_code_lines(flat), _code_lines(spec)) == (78, 40)    # as the README says


def test_structural_names_are_stable_and_keep_given_names() -> None:
    """The same model imports to the same text; names a person gave stay the local names."""
    def tower() -> Any:
        keras.backend.clear_session()
        x = keras.Input((6,), name="features")
        h = x
        for j, units in enumerate((8, 8, 8)):
            h = L.Dense(units, activation="relu", name=f"{'abc'[j]}_wide")(h)
            h = L.Dense(units, name=f"{'abc'[j]}x")(h)
            h = L.Dropout(0.1, name=f"drop_{'abc'[j]}")(h)
        return keras.Model(x, L.Dense(2, name="head")(h))

    first = importer.to_yaml(importer.convert(tower(), fold=True).data)
    assert first == importer.to_yaml(importer.convert(tower(), fold=True).data)
    data = yaml.safe_load(first)
    (block,) = data["blocks"].values()
    # `x` is the block's input, so the common part of ax, bx, cx is written x_
    assert [e["name"] for e in block["layers"]] == ["wide", "x_", "drop"]


def test_cells_reading_two_earlier_cells_fold_with_two_inputs(tmp_path: Path) -> None:
    """NASNet's shape: each cell reads the last two cells' outputs (`x` and `y` of a block)."""
    keras.backend.clear_session()
    keras.utils.set_random_seed(11)
    x = keras.Input((8,))
    prev, h = x, L.Dense(8)(x)
    for _ in range(4):
        a = L.Dense(8, activation="relu")(h)
        a = L.Dense(8)(a)
        b = L.Dense(8)(prev)
        prev, h = h, L.Activation("tanh")(L.Add()([a, b]))
    model = keras.Model(x, L.Dense(2)(h))
    imported = importer.convert(model, fold=True)
    (block,) = imported.data["blocks"].values()
    assert block["inputs"] == ["x", "y"]
    uses = [e for e in imported.data["layers"] if "use" in e]
    assert len(uses) == 4 and all(len(e["from"]) == 2 for e in uses)
    spec = tmp_path / "cells.yaml"
    importer.write(imported, spec, with_weights=True)
    built = specc.build(spec)
    assert built.count_params() == model.count_params()
    want, got = importer.same_batch_outputs(model, built, seed=2, batch=3)
    assert np.max(np.abs(want[0] - got[0])) <= RTOL * np.max(np.abs(want[0]))
