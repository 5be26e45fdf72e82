"""Paths the tests share (imported by name: pyproject's pytest `pythonpath` holds tests/)."""
from __future__ import annotations

import re

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SPECS = ROOT / "specs"
TRANSFORMER = SPECS / "transformer"
PLUGINS = ROOT / "tests" / "plugins"

#: keras.applications' ConvNeXt layers, which specc knows without --plugin.
CONVNEXT_LAYERS = """\
specc: 1
name: m
inputs: {x: {shape: [4, 4, 8]}}
layers:
  - {name: s, type: LayerScale, init_values: 1.0e-6, projection_dim: 8}
  - {name: d, type: StochasticDepth, drop_path_rate: 0.1}
outputs: [d]
loss: mse
"""

#: Integer ids through an Embedding next to float features, one softmax output read with a
#: sparse loss: the data checks' spec (tests/test_data.py, tests/test_data_sources.py).
IDS_AND_FEATURES_SPEC = """\
specc: 1
name: d
inputs:
  tokens: {shape: [4], dtype: int32}
  feats: {shape: [3]}
layers:
  - {name: emb, type: Embedding, input_dim: 10, output_dim: 2, from: tokens}
  - {name: flat, type: Flatten}
  - {name: cat, type: Concatenate, from: [flat, feats]}
  - {name: out, type: Dense, units: 3, activation: softmax}
outputs: [out]
loss: sparse_categorical_crossentropy
"""


def checked_difference(printed: str) -> float:
    """The `max |a - b| / max |a|` that `specc import --check` printed: the source model and
    the spec's build are two graphs: compare it with a stated tolerance, not with 0."""
    found = re.search(r"max \|a - b\| / max \|a\| = (\S+)", printed)
    assert found, printed
    return float(found.group(1))
