"""One device vs two MirroredStrategy replicas over the same global batch (run by
tests/test_distribute.py in a fresh interpreter: logical devices must be set before TF starts).

For every penalty kind x strategy: evaluate logs, one SGD step's logs, and the weights after
that step. Prints one JSON line with the worst relative loss difference and the worst weight
difference.
"""
from __future__ import annotations

import json
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import tensorflow as tf  # noqa: E402

cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)

import numpy as np  # noqa: E402

import specc  # noqa: E402
from dist_specs import KINDS, spec  # noqa: E402


#: A masked sequence carrying every kind that reads masks or time (`sequence` mode), with a
#: scheduled loss weight.
SEQUENCE_CLAUSES = ("kind: l2, rate: 0.1", "kind: mean_abs, rate: 0.5",
                    "kind: kl_sparsity, target: 0.2, rate: 0.1, axis: -1",
                    "kind: kl_sparsity, target: 0.2, rate: 0.1",
                    "kind: decorrelation, rate: 0.5, axis: -1",
                    "kind: decorrelation, rate: 0.5", "kind: ar, rate: 1.0",
                    "kind: tar, rate: 2.0")


def sequence_spec(via: str) -> str:
    clauses = "".join(f"  - {{name: s{k}, layer: h, {c}, via: {via}}}\n"
                      for k, c in enumerate(SEQUENCE_CLAUSES))
    return f"""specc: 2
name: dist_seq
seed: 3
inputs: {{x: {{shape: [5, 3]}}}}
layers:
  - {{name: m, type: Masking}}
  - {{name: h, type: Dense, units: 4, activation: sigmoid}}
  - {{name: pool, type: GlobalAveragePooling1D}}
  - {{name: out, type: Dense, units: 2}}
outputs: [out]
loss: mse
loss_weights: {{schedule: linear, from: 0.5, to: 2.0, steps: 4}}
penalties:
{clauses}optimizer: {{type: sgd, learning_rate: 0.1}}
"""


def sequence_batch() -> tuple[np.ndarray, np.ndarray]:
    """8 sequences; the first replica's half is mostly padding, the second's is not, so a
    mean of the replicas' means would differ from the global mean."""
    rng = np.random.RandomState(1)
    x = rng.randn(8, 5, 3).astype("float32")
    x[0, 1:] = x[1, 2:] = x[2, :3] = x[3, 4] = 0.0
    return x, rng.randn(8, 2).astype("float32")


def rel(a: float, b: float) -> float:
    return abs(a - b) / max(abs(a), 1e-12)


def main(sequence: bool = False) -> None:
    rng = np.random.RandomState(0)
    x = rng.randn(8, 6).astype("float32")
    y = rng.randn(8, 2).astype("float32")
    cases = [(kind, via, spec(kind, params, via)) for kind, params in KINDS.items()
             for via in specc.VIAS]
    if sequence:
        x, y = sequence_batch()
        cases = [("sequence", via, sequence_spec(via)) for via in specc.VIAS]
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    rows = []
    for kind, via, text in cases:
        s = specc.loads(text)
        one = specc.build(s)
        with strategy.scope():
            two = specc.build(s)
        initial = one.get_weights()
        two.set_weights(initial)
        e1 = one.evaluate(x, y, batch_size=8, verbose=0, return_dict=True)
        e2 = two.evaluate(x, y, batch_size=8, verbose=0, return_dict=True)
        h1 = one.fit(x, y, batch_size=8, epochs=1, verbose=0, shuffle=False).history
        h2 = two.fit(x, y, batch_size=8, epochs=1, verbose=0, shuffle=False).history
        rows.append({
            "kind": kind, "via": via, "keys": sorted(e1),
            "loss_rel": max([rel(e1[k], e2[k]) for k in e1] +
                            [rel(h1[k][0], h2[k][0]) for k in h1]),
            "weight_abs": max(float(np.max(np.abs(a - b)))
                              for a, b in zip(one.get_weights(), two.get_weights())),
            "moved": max(float(np.max(np.abs(a - b)))
                         for a, b in zip(one.get_weights(), initial)),
        })
    print(json.dumps(rows))


if __name__ == "__main__":
    import sys

    main(sequence=sys.argv[1:] == ["sequence"])
