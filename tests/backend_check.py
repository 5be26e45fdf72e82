"""One backend's half of the cross-backend test (tests/test_backends.py runs it in a fresh
interpreter with KERAS_BACKEND set: the backend is fixed per process).

    python tests/backend_check.py WORKDIR write [SPEC_ID ...]  # TensorFlow: weights, batches
    python tests/backend_check.py WORKDIR read [SPEC_ID ...]   # another backend: the same
    python tests/backend_check.py --report                     # every spec: TF vs JAX figures

For every spec of specs/ (format 1) and the kitchen-sink spec, under every strategy, with
plain SGD: `write` perturbs the zero weights and saves them (`<case>.weights.h5`) with the
batch (`<case>.batch.npz`); `read` loads them. Both then evaluate the batch, train one step on
it and record (WORKDIR/<backend>.json, <backend>.<case>.npz) the evaluate logs, the step's
logs, the weights after the step and what `predict` returns.
"""
from __future__ import annotations

import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

import reference as ref  # noqa: E402

B = 6
LR = 0.1


def main(work: str, mode: str, ids: list[str]) -> None:
    import keras

    import specc

    backend = keras.backend.backend()
    paths = ref.spec_paths(work)
    results = {}
    for sid, path in sorted(paths.items()):
        if ids and sid not in ids:
            continue
        spec = ref.sgd_variant(ref.read_spec(path), LR, dropout=0.0)
        variant = ref.write_spec(spec, os.path.join(work, f"{sid}.{backend}.yaml"))
        for via in ref.STRATEGIES:
            case = f"{sid}.{via or 'default'}"
            model = specc.build(variant, via=via)
            weights = os.path.join(work, f"{case}.weights.h5")
            batch = os.path.join(work, f"{case}.batch.npz")
            if mode == "write":
                ref.perturb_zero_weights(model)
                model.save_weights(weights)
                x, y = ref.make_batch(spec, ref.HandModel(spec), B, seed=len(sid))
                np.savez(batch, **{f"x.{k}": v for k, v in x.items()},
                         **{f"y.{k}": v for k, v in y.items()})
            else:
                model.load_weights(weights)
            with np.load(batch) as data:
                x = {k[2:]: data[k] for k in data.files if k.startswith("x.")}
                y = {k[2:]: data[k] for k in data.files if k.startswith("y.")}
            xs, ys = ref.as_model_input(spec, x), ref.as_model_target(spec, y)
            predicted = model.predict(xs, batch_size=B, verbose=0)
            predicted = predicted if isinstance(predicted, list) else [predicted]
            evaluated = model.evaluate(xs, ys, batch_size=B, return_dict=True, verbose=0)
            step = model.train_on_batch(xs, ys, return_dict=True)
            results[case] = {"evaluate": {k: float(v) for k, v in evaluated.items()},
                             "step": {k: float(v) for k, v in step.items()},
                             "predict": [list(p.shape) for p in predicted],
                             "declared": [list(o.shape[1:]) for o in
                                          model.outputs[:len(spec["outputs"])]],
                             "terms": ref.clause_names(spec)}
            np.savez(os.path.join(work, f"{backend}.{case}.npz"),
                     **{v.path: keras.ops.convert_to_numpy(v) for v in model.trainable_weights})
    with open(os.path.join(work, f"{backend}.json"), "w") as f:
        json.dump(results, f)


def compare(work: str, other: str) -> dict[str, float]:
    """Worst relative differences between the TensorFlow run and `other`'s: the logged values
    (evaluate and the step's logs: loss, task_loss, every term) and the weights after the step
    (|a - b| / (|a| + 1e-3), elementwise)."""
    with open(os.path.join(work, "tensorflow.json")) as f:
        tf_runs = json.load(f)
    with open(os.path.join(work, f"{other}.json")) as f:
        runs = json.load(f)
    worst = {"logs": 0.0, "weights": 0.0}
    for case, tf_run in tf_runs.items():
        for part in ("evaluate", "step"):
            for key, value in tf_run[part].items():
                diff = abs(value - runs[case][part][key]) / max(abs(value), 1e-12)
                worst["logs"] = max(worst["logs"], diff)
        with np.load(os.path.join(work, f"tensorflow.{case}.npz")) as a, \
                np.load(os.path.join(work, f"{other}.{case}.npz")) as b:
            assert a.files == b.files, (case, a.files, b.files)
            for k in a.files:
                diff = float(np.max(np.abs(a[k] - b[k]) / (np.abs(a[k]) + 1e-3)))
                worst["weights"] = max(worst["weights"], diff)
    return worst


def report(backend: str = "jax") -> None:
    """Every example spec x every strategy: print the worst differences TF vs `backend`."""
    import subprocess
    import tempfile

    with tempfile.TemporaryDirectory() as work:
        for name, mode in (("tensorflow", "write"), (backend, "read")):
            subprocess.run([sys.executable, __file__, work, mode],
                           env={**os.environ, "KERAS_BACKEND": name}, check=True)
        with open(os.path.join(work, "tensorflow.json")) as f:
            cases = len(json.load(f))
        worst = compare(work, backend)
        print(f"{cases} cases (spec x strategy), tensorflow vs {backend}: worst relative "
              f"difference of loss, task_loss and terms {worst['logs']:.2g}; of the weights "
              f"after one SGD step {worst['weights']:.2g}")


if __name__ == "__main__":
    if sys.argv[1] == "--report":
        report(*sys.argv[2:3])
    else:
        main(sys.argv[1], sys.argv[2], sys.argv[3:])
