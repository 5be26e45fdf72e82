"""Paths the tests share (imported by name: pyproject's pytest `pythonpath` holds tests/)."""
from __future__ import annotations

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
