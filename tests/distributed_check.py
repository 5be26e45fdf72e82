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


def rel(a: float, b: float) -> float:
    return abs(a - b) / max(abs(a), 1e-12)


def main() -> None:
    rng = np.random.RandomState(0)
    x = rng.randn(8, 6).astype("float32")
    y = rng.randn(8, 2).astype("float32")
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    rows = []
    for kind, params in KINDS.items():
        for via in specc.VIAS:
            s = specc.loads(spec(kind, params, via))
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
    main()
