"""JAX data parallelism against one device, on the same global batch (run by
tests/test_backends.py in fresh interpreters: JAX's devices and processes are fixed at start).

    python tests/jax_parallel_check.py WORK one                 # one device: the reference
    XLA_FLAGS=--xla_force_host_platform_device_count=2 \\
      python tests/jax_parallel_check.py WORK devices           # two host devices, one process
    python tests/jax_parallel_check.py WORK process PORT ID     # one of two processes

For every kind x strategy (tests/dist_specs.py): the evaluate logs, one SGD step's logs and the
weights after it, written to WORK/<mode>.json (by process 0 when there are two). `one` also
writes each case's initial weights (WORK/<case>.weights.h5), which the other runs load. The
parallel runs use `keras.distribution.DataParallel` (every variable replicated, the batch split
across devices); with two processes each feeds its half of every global batch, as
`specc fit --num-processes` does.
"""
from __future__ import annotations

import json
import os
import sys

os.environ["KERAS_BACKEND"] = "jax"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

from dist_specs import KINDS, spec  # noqa: E402

GLOBAL_BATCH = 8


def _numpy(value) -> np.ndarray:
    """A replicated array's value (with several processes it is not fully addressable)."""
    return np.asarray(value.addressable_shards[0].data)


def main(work: str, mode: str, port: str = "", pid: str = "0") -> None:
    import jax

    process, processes = int(pid), 1
    if mode == "process":
        processes = 2
        jax.config.update("jax_cpu_collectives_implementation", "gloo")
        jax.distributed.initialize(coordinator_address=f"127.0.0.1:{port}",
                                   num_processes=processes, process_id=process)
    import keras

    import specc

    if mode != "one":
        assert len(jax.devices()) == 2, jax.devices()
        keras.distribution.set_distribution(keras.distribution.DataParallel(
            devices=jax.devices(), auto_shard_dataset=False))
    rng = np.random.RandomState(0)
    x = rng.randn(GLOBAL_BATCH, 6).astype("float32")
    y = rng.randn(GLOBAL_BATCH, 2).astype("float32")
    local = slice(process * GLOBAL_BATCH // processes, (process + 1) * GLOBAL_BATCH // processes)
    x, y = x[local], y[local]
    rows = {}
    for kind, params in KINDS.items():
        for via in specc.VIAS:
            case = f"{kind}.{via}"
            model = specc.build(specc.loads(spec(kind, params, via)))
            weights = os.path.join(work, f"{case}.weights.h5")
            if mode == "one":
                model.save_weights(weights)
            else:
                model.load_weights(weights)
            before = [_numpy(v.value) for v in model.trainable_weights]
            evaluated = model.evaluate(x, y, batch_size=len(x), verbose=0, return_dict=True)
            step = model.train_on_batch(x, y, return_dict=True)
            after = [_numpy(v.value) for v in model.trainable_weights]
            rows[case] = {"evaluate": {k: float(v) for k, v in evaluated.items()},
                          "step": {k: float(v) for k, v in step.items()},
                          "weights": {v.path: a.tolist()
                                      for v, a in zip(model.trainable_weights, after)},
                          "moved": max(float(np.max(np.abs(a - b)))
                                       for a, b in zip(after, before))}
    if process == 0:
        with open(os.path.join(work, f"{mode}.json"), "w") as f:
            json.dump(rows, f)


if __name__ == "__main__":
    main(*sys.argv[1:])
