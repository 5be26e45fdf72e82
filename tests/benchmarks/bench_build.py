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
            "total": t4 - t0, "cpu": cpu}


def time_reference(cfg: dict) -> tuple[float, float]:
    """(wall, CPU) seconds of from_config + compile."""
    import keras

    cfg = copy.deepcopy(cfg)
    c0 = time.process_time()
    t0 = time.perf_counter()
    model = keras.Model.from_config(cfg)
    model.compile(optimizer=keras.optimizers.Adam(), loss="mse")
    return time.perf_counter() - t0, time.process_time() - c0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[10, 100, 300, 1000])
    ap.add_argument("-r", "--repeats", type=int, default=3,
                    help="repeats per size (default 3; at least 9 for sizes <= 100)")
    args = ap.parse_args()

    t_start = time.perf_counter()
    import keras
    import specc  # noqa: F401
    print(f"keras {keras.__version__} ({keras.backend.backend()}), {os.cpu_count()} cores, "
          f"load avg {os.getloadavg()[0]:.2f}; imports {time.perf_counter() - t_start:.1f} s")

    folder = Path(tempfile.mkdtemp(prefix="specc-bench-build-"))
    # Warm-up: first-use costs (imports inside Keras and specc, validator building).
    warm = folder / "warm.yaml"
    warm.write_text(spec_text(3))
    time_specc(str(warm))
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
