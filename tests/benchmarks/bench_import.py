"""Benchmark: `specc import` + `specc build` of ResNet50 against building it once with Keras.

    python tests/benchmarks/bench_import.py            # 3 repeats
    python tests/benchmarks/bench_import.py -r 5 --weights

round trip   importer.application("ResNet50") (keras.applications.ResNet50(weights=None)),
             importer.convert (folded, as the command does), importer.write (the spec
             text validated, written atomically; with --weights also the .weights.h5),
             then specc.build(spec) (load, validate, lower, emit, compile; with --weights
             the arrays loaded)
reference    keras.applications.ResNet50(weights=None) + compile(Adam, categorical
             cross-entropy)

The two alternate in each repeat (drift cancels); keras.backend.clear_session() and a garbage
collection run between them, outside the clock; one warm-up of each is left out. Printed:
median and min wall and CPU time of each, the round trip's stages, and round trip / reference
(target: <= 2). The load average is printed too: the machine may be shared, and a wall ratio
that misses while the CPU ratio meets the target is noise. No assertion on any time.
"""
from __future__ import annotations

import argparse
import gc
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def reference() -> tuple[float, float, dict[str, float]]:
    import keras

    c0, t0 = time.process_time(), time.perf_counter()
    model = keras.applications.ResNet50(weights=None)
    model.compile(optimizer=keras.optimizers.Adam(), loss="categorical_crossentropy")
    return time.perf_counter() - t0, time.process_time() - c0, {}


def round_trip(folder: Path, weights: bool) -> tuple[float, float, dict[str, float]]:
    import specc
    from specc import importer

    spec = folder / "resnet50.yaml"
    stages: dict[str, float] = {}
    c0 = time.process_time()
    t0 = time.perf_counter()
    model = importer.application("ResNet50")
    t1 = time.perf_counter()
    imported = importer.convert(model, fold=True)          # as `specc import` does
    t2 = time.perf_counter()
    importer.write(imported, spec, with_weights=weights)
    t3 = time.perf_counter()
    specc.build(spec)
    t4 = time.perf_counter()
    stages.update({"keras.applications": t1 - t0, "convert": t2 - t1, "write": t3 - t2,
                   "specc.build": t4 - t3})
    return t4 - t0, time.process_time() - c0, stages


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-r", "--repeats", type=int, default=3)
    parser.add_argument("--weights", action="store_true",
                        help="import with --weights (writes and loads 98 MB of arrays)")
    args = parser.parse_args(argv)
    import keras

    print(f"load avg {os.getloadavg()[0]:.2f}; Keras {keras.__version__}")
    runs: dict[str, list[tuple[float, float, dict[str, float]]]] = {"round trip": [],
                                                                    "reference": []}
    with tempfile.TemporaryDirectory() as tmp:
        for k in range(args.repeats + 1):
            for label, fn in (("round trip", lambda: round_trip(Path(tmp), args.weights)),
                              ("reference", reference)):
                keras.backend.clear_session()
                gc.collect()
                result = fn()
                if k > 0:
                    runs[label].append(result)
    for label, results in runs.items():
        wall = [r[0] for r in results]
        cpu = [r[1] for r in results]
        print(f"{label:10s}  wall median {statistics.median(wall):6.2f} s (min {min(wall):6.2f})"
              f"  CPU median {statistics.median(cpu):6.2f} s")
    for stage in runs["round trip"][0][2]:
        print(f"  {stage:20s} {statistics.median(r[2][stage] for r in runs['round trip']):6.2f}"
              " s wall (median)")
    ratio = statistics.median(r[0] for r in runs["round trip"]) / statistics.median(
        r[0] for r in runs["reference"])
    cpu_ratio = statistics.median(r[1] for r in runs["round trip"]) / statistics.median(
        r[1] for r in runs["reference"])
    print(f"round trip / reference: {ratio:.2f}x wall, {cpu_ratio:.2f}x CPU (target <= 2)")
    print(f"load avg {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
