"""Layers beyond the example specs (recurrent wrappers, attention, reshapes, masking) compile,
carry penalties by every strategy, and survive a safe_mode save/load."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import specc

keras = pytest.importorskip("keras")

ZOO = """\
specc: 1
name: zoo
seed: 5
inputs:
  tokens: {shape: [6], dtype: int32}
  extra: {shape: [6, 3]}
layers:
  - {name: embed, type: Embedding, input_dim: 20, output_dim: 8, mask_zero: true, from: tokens}
  - {name: bi, type: Bidirectional, layer: {type: GRU, units: 4, return_sequences: true}}
  - {name: mix, type: Conv1D, filters: 8, kernel_size: 2, padding: same, activation: relu, from: extra}
  - {name: joined, type: Concatenate, from: [bi, mix]}
  - {name: attend, type: MultiHeadAttention, num_heads: 2, key_dim: 4, from: joined}
  - {name: norm, type: LayerNormalization}
  - {name: swap, type: Permute, dims: [2, 1]}
  - {name: back, type: Reshape, target_shape: [6, 16]}
  - {name: pool, type: GlobalAveragePooling1D}
  - {name: out, type: Dense, units: 1}
outputs: [out]
loss: mse
penalties:
  - {name: attn_l2, layer: attend, kind: l2, rate: 0.01}
  - {name: mix_pre, layer: mix, at: pre_activation, kind: mean_abs, rate: 0.1}
weight_penalties:
  - {name: rnn_decay, layers: bi, weights: [kernel, bias], kind: l2, rate: 0.001}
"""


@pytest.mark.parametrize("via", [None, *specc.VIAS])
def test_zoo_builds_trains_and_reloads(via: str | None, tmp_path: Path) -> None:
    model = specc.build(specc.loads(ZOO, "zoo.yaml"), via=via)
    rng = np.random.RandomState(0)
    x = {"tokens": rng.randint(0, 20, (8, 6)).astype("int32"),
         "extra": rng.rand(8, 6, 3).astype("float32")}
    y = rng.rand(8, 1).astype("float32")
    logs = model.evaluate(x, y, batch_size=8, verbose=0, return_dict=True)
    assert set(logs) == {"loss", "task_loss", "attn_l2", "mix_pre", "rnn_decay"}
    assert all(logs[k] > 0 for k in ("attn_l2", "mix_pre", "rnn_decay"))
    # attn_l2 penalizes the attention's output (not Keras's internal projections)
    attention = keras.Model(model.inputs, model.get_layer("attend").output)
    a = attention.predict(x, verbose=0).astype("float64").reshape(8, -1)
    assert logs["attn_l2"] == pytest.approx(0.01 * np.mean(np.sum(a ** 2, axis=1)), rel=1e-5)
    total = logs["task_loss"] + logs["attn_l2"] + logs["mix_pre"] + logs["rnn_decay"]
    assert logs["loss"] == pytest.approx(total, rel=1e-6)
    # the weight penalty reached the wrapped GRU's kernels, forward and backward
    regs = [v.path for v in model.trainable_weights if v.regularizer is not None]
    assert any("forward" in p for p in regs) and any("backward" in p for p in regs)
    model.fit(x, y, batch_size=4, epochs=1, verbose=0)
    path = tmp_path / "zoo.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    assert loaded.evaluate(x, y, batch_size=8, verbose=0, return_dict=True) == \
        model.evaluate(x, y, batch_size=8, verbose=0, return_dict=True)
