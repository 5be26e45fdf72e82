"""Benchmark: build time (construct + compile) of a specc spec against Keras's own from_config.

    python tests/benchmarks/bench_build.py                       # sizes 10 100 300 1000
    python tests/benchmarks/bench_build.py --sizes 10 1000 3000 -r 5

The model: a chain of N Dense layers (32 units, ReLU; the last one 10 units, linear) on a
32-feature input, MSE, Adam; no penalties.  For each N:

    specc      what specc.build(spec_path) does, stage by stage, each timed (the sum is
               the build time):
                 load+validate  specc.load(path)         (YAML -> validated Spec)
                 lower          specc.lower(spec)        (Spec -> Graph, no Keras)
                 emit           specc.runtime.emit(graph, compile=False)  (Keras layers, Model)
                 compile        model.compile(**compile_args(graph))
    reference  keras.Model.from_config(cfg) + compile(Adam, "mse"), where cfg is the
               get_config() of a plain hand-built functional model of the same architecture;
               the deep copy of cfg (from_config empties its argument) is made before the
               clock starts.

Specc and the reference alternate within each repeat (drift cancels); keras.backend.
clear_session() runs between builds, outside the clock.  Printed: median / min per size, the
ratio specc / reference (target <= 1.2 at 10 and at 1,000 layers), and the time per layer at
each size (linear growth: per-layer time roughly constant).

    python tests/benchmarks/bench_build.py --deep                # sizes 100 1000 10000
    python tests/benchmarks/bench_build.py --deep --sizes 100 1000 3000 --units 32

--deep (issue 10, depth): a chain of N Dense(4) layers (--units), no reference; for each N,
specc.build stage by stage, then save (specc.artifacts.save_model) and reload
(specc.load_model(path, safe_mode=True)) with a prediction check.  Printed: per-layer build,
save and load cost at each size and the per-layer build cost at the largest size over the
smallest (target <= 1.2).  Repeats: -r for N <= 1,000, one above (a 10,000-layer chain takes
minutes).  Models over 500 layers run through specc.runtime.deep (a big stack, a raised
recursion limit); without it Keras raises RecursionError from about 1,000 layers.
"""
from __future__ import annotations

import argparse
import copy
import gc
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

STAGES = ("load+validate", "lower", "emit", "compile")


def spec_text(n: int) -> str:
    lines = ["specc: 1", f"name: chain_{n}", "inputs:", "  x: {shape: [32]}", "layers:"]
    for i in range(n - 1):
        lines.append(f"  - {{name: d{i}, type: Dense, units: 32, activation: relu}}")
    lines.append("  - {name: out, type: Dense, units: 10}")
    lines += ["outputs: [out]", "loss: mse", "optimizer: adam", ""]
    return "\n".join(lines)


def hand_config(n: int) -> dict:
    import keras

    x = keras.Input(shape=(32,), name="x")
    h = x
    for i in range(n - 1):
        h = keras.layers.Dense(32, activation="relu", name=f"d{i}")(h)
    y = keras.layers.Dense(10, name="out")(h)
    cfg = keras.Model(x, y, name=f"chain_{n}").get_config()
    keras.backend.clear_session()
    return cfg


def time_specc(path: str) -> dict[str, float]:
    import specc
    from specc.runtime import emit
    from specc.runtime.emit import compile_args

    c0 = time.process_time()
    t0 = time.perf_counter()
    spec = specc.load(path)
    t1 = time.perf_counter()
    graph = specc.lower(spec)
    t2 = time.perf_counter()
    model = emit(graph, compile=False)
    t3 = time.perf_counter()
    model.compile(**compile_args(graph))
    t4 = time.perf_counter()
    cpu = time.process_time() - c0
    assert len(model.layers) == len(spec.layers) + 1
    return {"load+validate": t1 - t0, "lower": t2 - t1, "emit": t3 - t2, "compile": t4 - t3,
            "total": t4 - t0, "cpu": cpu, "model": model}


def time_reference(cfg: dict) -> tuple[float, float]:
    """(wall, CPU) seconds of from_config + compile."""
    import keras

    cfg = copy.deepcopy(cfg)
    c0 = time.process_time()
    t0 = time.perf_counter()
    model = keras.Model.from_config(cfg)
    model.compile(optimizer=keras.optimizers.Adam(), loss="mse")
    return time.perf_counter() - t0, time.process_time() - c0


def deep_text(n: int, units: int) -> str:
    lines = ["specc: 1", f"name: deep_{n}", "seed: 1", "inputs:", f"  x: {{shape: [{units}]}}",
             "layers:"]
    lines += [f"  - {{name: d{i}, type: Dense, units: {units}}}" for i in range(n)]
    lines += [f"outputs: [d{n - 1}]", "loss: mse", "optimizer: sgd", ""]
    return "\n".join(lines)


def deep_main(args: argparse.Namespace) -> int:
    """Per-layer build / save / load cost of deep chains (see --deep in the docstring)."""
    import resource

    import numpy as np

    t_start = time.perf_counter()
    import keras
    import specc
    from specc.artifacts import save_model
    from specc.runtime.deep import DEEP_LAYERS

    print(f"keras {keras.__version__} ({keras.backend.backend()}), {os.cpu_count()} cores, "
          f"load avg {os.getloadavg()[0]:.2f}; imports {time.perf_counter() - t_start:.1f} s; "
          f"Dense({args.units}) chains; deep path above {DEEP_LAYERS} layers")
    folder = Path(tempfile.mkdtemp(prefix="specc-bench-deep-"))
    warm = folder / "warm.yaml"
    warm.write_text(deep_text(3, args.units))
    time_specc(str(warm))
    keras.backend.clear_session()
    x = np.random.RandomState(0).standard_normal((4, args.units)).astype("float32")
    rows = []
    for n in args.sizes:
        path = folder / f"deep_{n}.yaml"
        path.write_text(deep_text(n, args.units))
        runs = []
        for _ in range(args.repeats if n <= 1000 else 1):
            gc.collect()
            stages = time_specc(str(path))     # emit takes the deep path above DEEP_LAYERS
            model = stages.pop("model")
            want = model.predict(x, verbose=0)
            t0 = time.perf_counter()
            save_model(model, folder / "m.keras")
            stages["save"] = time.perf_counter() - t0
            del model
            keras.backend.clear_session()
            gc.collect()
            t0 = time.perf_counter()
            again = specc.load_model(folder / "m.keras", safe_mode=True)
            stages["load"] = time.perf_counter() - t0
            np.testing.assert_allclose(again.predict(x, verbose=0), want, rtol=1e-5, atol=1e-6)
            del again
            keras.backend.clear_session()
            runs.append(stages)
        med = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
        rows.append((n, med, len(runs)))
        print(f"N = {n:6d} ({len(runs)} run{'s' * (len(runs) > 1)}): build {med['total']:8.2f} s "
              f"[{', '.join(f'{k} {med[k]:.2f}' for k in STAGES)}], save {med['save']:.2f} s, "
              f"load {med['load']:.2f} s; peak RSS "
              f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB", flush=True)
    print("\nper-layer cost (ms/layer; constant = linear growth):")
    print(f"  {'N':>6s} {'build':>8s} {'cpu':>8s} {'emit':>8s} {'save':>8s} {'load':>8s}")
    for n, med, _ in rows:
        print(f"  {n:6d} {med['total'] / n * 1e3:8.3f} {med['cpu'] / n * 1e3:8.3f} "
              f"{med['emit'] / n * 1e3:8.3f} {med['save'] / n * 1e3:8.3f} "
              f"{med['load'] / n * 1e3:8.3f}")
    if len(rows) >= 2:
        (a, ma, _), (b, mb, _) = rows[0], rows[-1]
        ratio = (mb["total"] / b) / (ma["total"] / a)
        print(f"  per-layer build cost at N={b} / at N={a}: {ratio:.2f} (CPU "
              f"{(mb['cpu'] / b) / (ma['cpu'] / a):.2f}; save "
              f"{(mb['save'] / b) / (ma['save'] / a):.2f}, load "
              f"{(mb['load'] / b) / (ma['load'] / a):.2f})   target <= 1.2: "
              f"{'MET' if ratio <= 1.2 else 'MISSED'}")
    print(f"load avg {os.getloadavg()[0]:.2f}; total {time.perf_counter() - t_start:.0f} s")
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=None,
                    help="default 10 100 300 1000; with --deep 100 1000 10000")
    ap.add_argument("-r", "--repeats", type=int, default=3,
                    help="repeats per size (default 3; at least 9 for sizes <= 100)")
    ap.add_argument("--deep", action="store_true",
                    help="per-layer build, save and load cost of deep chains (no reference)")
    ap.add_argument("--units", type=int, default=4, help="--deep: units per Dense layer")
    args = ap.parse_args()
    if args.deep:
        args.sizes = args.sizes or [100, 1000, 10000]
        return deep_main(args)
    args.sizes = args.sizes or [10, 100, 300, 1000]

    t_start = time.perf_counter()
    import keras
    import specc  # noqa: F401
    print(f"keras {keras.__version__} ({keras.backend.backend()}), {os.cpu_count()} cores, "
          f"load avg {os.getloadavg()[0]:.2f}; imports {time.perf_counter() - t_start:.1f} s")

    folder = Path(tempfile.mkdtemp(prefix="specc-bench-build-"))
    # Warm-up: first-use costs (imports inside Keras and specc, validator building).
    warm = folder / "warm.yaml"
    warm.write_text(spec_text(3))
    time_specc(str(warm)).pop("model")
    time_reference(hand_config(3))  # warm-up
    keras.backend.clear_session()

    rows = []
    for n in args.sizes:
        path = folder / f"chain_{n}.yaml"
        path.write_text(spec_text(n))
        cfg = hand_config(n)
        repeats = max(args.repeats, 9) if n <= 100 else args.repeats
        stages: list[dict[str, float]] = []
        builds: list[float] = []
        refs: list[float] = []
        ref_cpus: list[float] = []
        for r in range(repeats):
            order = ("specc", "ref") if r % 2 == 0 else ("ref", "specc")
            for who in order:
                gc.collect()
                if who == "specc":
                    stages.append(time_specc(str(path)))
                    stages[-1].pop("model")
                    builds.append(stages[-1]["total"])
                else:
                    wall, cpu = time_reference(cfg)
                    refs.append(wall)
                    ref_cpus.append(cpu)
                keras.backend.clear_session()
        med = {k: statistics.median(s[k] for s in stages) for k in (*STAGES, "total", "cpu")}
        row = {"n": n, "stages": med, "build": statistics.median(builds),
               "build_min": min(builds), "ref": statistics.median(refs), "ref_min": min(refs),
               "cpu": med["cpu"], "ref_cpu": statistics.median(ref_cpus)}
        rows.append(row)
        print(f"\nN = {n:5d} ({repeats} repeats)\n"
              f"  specc.build          median {row['build']:7.3f} s  min {row['build_min']:7.3f} s\n"
              f"  from_config+compile  median {row['ref']:7.3f} s  min {row['ref_min']:7.3f} s\n"
              f"  RATIO specc/reference {row['build'] / row['ref']:.3f} "
              f"(of minimums {row['build_min'] / row['ref_min']:.3f})"
              + (f"   target <= 1.2: {'MET' if row['build'] / row['ref'] <= 1.2 else 'MISSED'}"
                 if n in (10, 1000) else "")
              + f"\n  CPU time (median): specc {row['cpu']:.3f} s, reference {row['ref_cpu']:.3f} s,"
              f" ratio {row['cpu'] / row['ref_cpu']:.3f}")
        print("  specc split (median): " + ", ".join(
            f"{k} {med[k] * 1e3:.1f} ms ({med[k] / med['total'] * 100:.0f}%)" for k in STAGES))

    print("\nper-layer time (ms/layer; constant = linear growth):")
    print(f"  {'N':>5s} {'specc.build':>12s} {'reference':>10s} {'ratio':>6s} "
          + " ".join(f"{k:>14s}" for k in STAGES))
    for row in rows:
        n, med = row["n"], row["stages"]
        print(f"  {n:5d} {row['build'] / n * 1e3:12.3f} {row['ref'] / n * 1e3:10.3f} "
              f"{row['build'] / row['ref']:6.3f} "
              + " ".join(f"{med[k] / n * 1e3:14.3f}" for k in STAGES))
    if len(rows) >= 2:
        a, b = rows[-2], rows[-1]
        growth = (b["build"] / b["n"]) / (a["build"] / a["n"])
        print(f"  per-layer time at N={b['n']} / at N={a['n']}: {growth:.2f} "
              f"(1.0 = linear; reference: {(b['ref'] / b['n']) / (a['ref'] / a['n']):.2f})")
    print(f"load avg {os.getloadavg()[0]:.2f}; total {time.perf_counter() - t_start:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
