"""The scale-out checks' cases (tests/distributed_check.py, tests/jax_parallel_check.py):
every penalty kind as two clauses (pre- and post-activation) plus a weight penalty."""
from __future__ import annotations

KINDS = {"l1": "rate: 0.01", "l2": "rate: 0.01, reduction: sum", "l1_l2": "l1: 0.01, l2: 0.02",
         "mean_abs": "rate: 0.1", "kl_sparsity": "rate: 0.1, target: 0.2",
         "decorrelation": "rate: 0.5"}


def spec(kind: str, params: str, via: str) -> str:
    return f"""specc: 1
name: dist
seed: 3
inputs: {{x: {{shape: [6]}}}}
layers:
  - {{name: h, type: Dense, units: 5, activation: sigmoid}}
  - {{name: out, type: Dense, units: 2}}
outputs: [out]
loss: mse
penalties:
  - {{name: p, layer: h, kind: {kind}, {params}, via: {via}}}
  - {{name: q, layer: h, at: pre_activation, kind: {kind}, {params}, via: {via}}}
weight_penalties:
  - {{name: w, layers: "*", kind: l2, rate: 0.01}}
optimizer: {{type: sgd, learning_rate: 0.1}}
"""
