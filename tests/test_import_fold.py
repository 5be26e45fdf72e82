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
    assert "check: structure same" in out and "max |a - b| / max |a| = 0" in out, out
    assert "blocks" in yaml.safe_load(folded.read_text())
    assert main(["import", str(path), "-o", str(flat), "--flat"]) == 0
    data = yaml.safe_load(flat.read_text())
    assert data["specc"] == 1 and "blocks" not in data
