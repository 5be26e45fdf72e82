"""Benchmark: training epoch time of a specc model against the same model written by hand.

    python tests/benchmarks/bench_train.py                 # 8 timed epochs per model
    python tests/benchmarks/bench_train.py --epochs 8 --samples 25600
    KERAS_BACKEND=jax python tests/benchmarks/bench_train.py      # on another backend

The model: MLP 784-512-512-256-128-10 (ReLU, logits), sparse categorical cross-entropy,
Adam, batch 256, 12,800 samples of random data, and two activation penalties:

    d2_energy: l2, rate 1e-4, on layer d2's *pre-activation*   r · mean_i Σ_j a_ij²
    d4_sparse: l1, rate 1e-4, on layer d4's output              r · mean_i Σ_j |a_ij|

For each strategy the specc model is `specc.build(spec, via=STRATEGY)`; the hand-written
reference is a plain Keras model with the same layers and the same penalties done the way a
user would write that mechanism by hand:

    activity_regularizer  Dense(activation=None, activity_regularizer=L2(r)) + Activation,
                          and Dense(..., activity_regularizer=L1(r))  (Keras divides by B)
    add_loss              a small identity layer whose call does add_loss(r·Σ f(a) / B)
    output                a keras.Model subclass with the two activations as extra outputs
                          that overrides compute_loss / compute_metrics (the only way that
                          does not need dummy targets, see keras3-notes.md)

Before timing, each pair is checked to compute the same loss (same weights copied in).
Each model is warmed up with one epoch (tracing), then the epochs are timed interleaved
(specc, hand, specc, hand, ...) so that machine drift hits both alike.  Printed: median and
min epoch time per model, the ratio specc / hand per strategy (target <= 1.03: ratio of the
medians; also the ratio of the minimums and the median of the per-round back-to-back ratios,
which resist a machine shared with other work), each model against the fastest hand-written
variant, and -- noise-free -- the op counts of one traced training step, specc vs hand.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

SPEC = """\
specc: 1
name: bench_mlp
seed: 1
inputs:
  x: {shape: [784]}
layers:
  - {name: d1, type: Dense, units: 512, activation: relu}
  - {name: d2, type: Dense, units: 512, activation: relu}
  - {name: d3, type: Dense, units: 256, activation: relu}
  - {name: d4, type: Dense, units: 128, activation: relu}
  - {name: logits, type: Dense, units: 10}
outputs: [logits]
loss: {type: sparse_categorical_crossentropy, from_logits: true}
penalties:
  - {name: d2_energy, layer: d2, at: pre_activation, kind: l2, rate: 1.0e-4}
  - {name: d4_sparse, layer: d4, kind: l1, rate: 1.0e-4}
optimizer: {type: adam, learning_rate: 1.0e-3}
"""
R2, R1 = 1e-4, 1e-4
STRATEGIES = ("activity_regularizer", "add_loss", "output")


def hand_model(strategy: str):
    import keras
    from keras import ops

    x = keras.Input(shape=(784,), name="x")
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    if strategy == "activity_regularizer":
        h = keras.layers.Dense(512, activation="relu", name="d1")(x)
        h = keras.layers.Dense(512, name="d2", activity_regularizer=keras.regularizers.L2(R2))(h)
        h = keras.layers.Activation("relu", name="d2_activation")(h)
        h = keras.layers.Dense(256, activation="relu", name="d3")(h)
        h = keras.layers.Dense(128, activation="relu", name="d4",
                               activity_regularizer=keras.regularizers.L1(R1))(h)
        y = keras.layers.Dense(10, name="logits")(h)
        model = keras.Model(x, y, name="hand_activity")
    elif strategy == "add_loss":
        class Penalty(keras.layers.Layer):
            def __init__(self, rate, square, **kw):
                super().__init__(**kw)
                self.rate, self.square = rate, square

            def call(self, a):
                f = ops.square(a) if self.square else ops.abs(a)
                self.add_loss(self.rate * ops.sum(f) / ops.cast(ops.shape(a)[0], a.dtype))
                return a

        h = keras.layers.Dense(512, activation="relu", name="d1")(x)
        h = keras.layers.Dense(512, name="d2")(h)
        h = Penalty(R2, True, name="d2_preact_penalty")(h)
        h = keras.layers.Activation("relu", name="d2_activation")(h)
        h = keras.layers.Dense(256, activation="relu", name="d3")(h)
        h = keras.layers.Dense(128, activation="relu", name="d4")(h)
        h = Penalty(R1, False, name="d4_penalty")(h)
        y = keras.layers.Dense(10, name="logits")(h)
        model = keras.Model(x, y, name="hand_add_loss")
    else:
        class PenaltyOutputs(keras.Model):
            def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None,
                             training=True):
                logits, a2, a4 = y_pred
                b = ops.cast(ops.shape(a2)[0], a2.dtype)
                total = super().compute_loss(x, y, logits, sample_weight, training)
                return (total + R2 * ops.sum(ops.square(a2)) / b
                        + R1 * ops.sum(ops.abs(a4)) / b)

            def compute_metrics(self, x, y, y_pred, sample_weight=None):
                return super().compute_metrics(x, y, y_pred[0], sample_weight)

        h = keras.layers.Dense(512, activation="relu", name="d1")(x)
        a2 = keras.layers.Dense(512, name="d2")(h)
        h = keras.layers.Activation("relu", name="d2_activation")(a2)
        h = keras.layers.Dense(256, activation="relu", name="d3")(h)
        a4 = keras.layers.Dense(128, activation="relu", name="d4")(h)
        y = keras.layers.Dense(10, name="logits")(a4)
        model = PenaltyOutputs(x, [y, a2, a4], name="hand_output")
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss=loss)
    return model


def copy_weights(src, dst) -> None:
    for name in ("d1", "d2", "d3", "d4", "logits"):
        dst.get_layer(name).set_weights(src.get_layer(name).get_weights())


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--epochs", type=int, default=8, help="timed epochs per model (default 8)")
    ap.add_argument("--samples", type=int, default=12_800)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--strategies", nargs="+", choices=STRATEGIES, default=list(STRATEGIES))
    ap.add_argument("--no-ops", action="store_true", help="skip counting the graph ops")
    args = ap.parse_args()

    t0 = time.perf_counter()
    import numpy as np
    import keras

    import specc
    print(f"keras {keras.__version__} ({keras.backend.backend()}), {os.cpu_count()} cores, "
          f"load avg {os.getloadavg()[0]:.2f}; imports {time.perf_counter() - t0:.1f} s")

    rng = np.random.default_rng(0)
    x = rng.standard_normal((args.samples, 784)).astype("float32")
    y = rng.integers(0, 10, size=(args.samples,)).astype("int32")
    xe, ye = x[: args.batch], y[: args.batch]

    folder = Path(tempfile.mkdtemp(prefix="specc-bench-train-"))
    spec_path = folder / "bench_mlp.yaml"
    spec_path.write_text(SPEC)

    models: dict[tuple[str, str], object] = {}
    for strategy in args.strategies:
        keras.utils.set_random_seed(1)
        t = time.perf_counter()
        sm = specc.build(str(spec_path), via=strategy)
        t_specc = time.perf_counter() - t
        t = time.perf_counter()
        hm = hand_model(strategy)
        t_hand = time.perf_counter() - t
        copy_weights(sm, hm)
        # Same computation?  Loss of one batch, same weights, training-mode penalties.
        ls = float(sm.evaluate(xe, ye, batch_size=args.batch, verbose=0, return_dict=True)["loss"])
        lh = float(hm.evaluate(xe, ye, batch_size=args.batch, verbose=0, return_dict=True)["loss"])
        rel = abs(ls - lh) / abs(lh)
        print(f"{strategy:21s} built: specc {t_specc:.2f} s, hand {t_hand:.2f} s; "
              f"loss on one batch: specc {ls:.6f} hand {lh:.6f} (rel diff {rel:.1e})"
              + ("" if rel < 1e-5 else "  <-- NOT THE SAME COMPUTATION"))
        models[strategy, "specc"] = sm
        models[strategy, "hand"] = hm

    if not args.no_ops and keras.backend.backend() == "tensorflow":
        # A noise-free complement to the timings: ops in one traced training step.
        import collections
        import tensorflow as tf

        xb, yb = tf.constant(xe), tf.constant(ye)
        print("ops in one traced train step (tf.function of model.train_step):")
        for strategy in args.strategies:
            counts = {}
            for who in ("specc", "hand"):
                model = models[strategy, who]
                graph = tf.function(lambda m=model: m.train_step((xb, yb))) \
                    .get_concrete_function().graph
                counts[who] = collections.Counter(op.type for op in graph.get_operations())
            extra = {k: counts["specc"][k] - counts["hand"][k]
                     for k in sorted(set(counts["specc"]) | set(counts["hand"]))
                     if counts["specc"][k] != counts["hand"][k]}
            print(f"  {strategy:21s} specc {sum(counts['specc'].values())}, hand "
                  f"{sum(counts['hand'].values())}; specc - hand by type: "
                  + ", ".join(f"{k} {v:+d}" for k, v in sorted(extra.items(),
                                                                 key=lambda kv: -abs(kv[1]))))

    cpu_times: dict[int, float] = {}

    def epoch(model) -> float:
        """Wall time of one epoch; its CPU time (all threads) is kept in cpu_times."""
        c = time.process_time()
        t = time.perf_counter()
        model.fit(x, y, batch_size=args.batch, epochs=1, verbose=0, shuffle=False)
        wall = time.perf_counter() - t
        cpu_times[id(model)] = time.process_time() - c
        return wall

    warm = {}
    for key, model in models.items():
        warm[key] = epoch(model)   # traces train_function
    print("warm-up epoch (incl. tracing): " + ", ".join(
        f"{s}/{w} {t:.2f} s" for (s, w), t in warm.items()))

    times: dict[tuple[str, str], list[float]] = {k: [] for k in models}
    cpus: dict[tuple[str, str], list[float]] = {k: [] for k in models}
    paired: dict[str, list[float]] = {s: [] for s in args.strategies}
    for r in range(args.epochs):
        for strategy in args.strategies:
            order = ("specc", "hand") if r % 2 == 0 else ("hand", "specc")
            for who in order:
                model = models[strategy, who]
                times[strategy, who].append(epoch(model))
                cpus[strategy, who].append(cpu_times[id(model)])
            paired[strategy].append(times[strategy, "specc"][-1] / times[strategy, "hand"][-1])

    print(f"\nepoch time, {args.samples} samples, batch {args.batch}, {args.epochs} timed "
          f"epochs each (median / min):")
    best_hand = min(statistics.median(times[s, "hand"]) for s in args.strategies)
    all_met = True
    for strategy in args.strategies:
        s, h = times[strategy, "specc"], times[strategy, "hand"]
        ratio = statistics.median(s) / statistics.median(h)
        ratio_min = min(s) / min(h)
        met = ratio <= 1.03
        all_met &= met
        print(f"  {strategy:21s} specc {statistics.median(s):6.3f} / {min(s):6.3f} s   "
              f"hand {statistics.median(h):6.3f} / {min(h):6.3f} s   "
              f"RATIO specc/hand {ratio:.3f} (of minimums {ratio_min:.3f}, median of "
              f"back-to-back pairs {statistics.median(paired[strategy]):.3f})  "
              f"target <= 1.03: {'MET' if met else 'MISSED'}")
    print("  CPU time per epoch (all threads; less sensitive to other work on the machine), "
          "median: " + ", ".join(
              f"{st}: specc {statistics.median(cpus[st, 'specc']):.3f} s, hand "
              f"{statistics.median(cpus[st, 'hand']):.3f} s, ratio "
              f"{statistics.median(cpus[st, 'specc']) / statistics.median(cpus[st, 'hand']):.3f}"
              for st in args.strategies))
    print("  against the fastest hand-written variant "
          f"({best_hand:.3f} s): " + ", ".join(
              f"{s}: specc {statistics.median(times[s, 'specc']) / best_hand:.3f}, "
              f"hand {statistics.median(times[s, 'hand']) / best_hand:.3f}"
              for s in args.strategies))
    print(f"training target (every strategy <= 1.03): {'MET' if all_met else 'MISSED'}; "
          f"load avg {os.getloadavg()[0]:.2f}; total {time.perf_counter() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
