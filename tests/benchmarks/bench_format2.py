"""Benchmark: the format 2 ResNet50 spec (specs/resnet50.yaml), validated and built.

    python tests/benchmarks/bench_format2.py                 # 20 validations, 3 builds each
    python tests/benchmarks/bench_format2.py -n 50 -r 5      # a bigger run

(a) validate, in-process: what `specc validate` does for one file, stage by stage
        load      specc.loader.load_file(path)              (YAML -> located data)
        expand    specc.validation.expand_document(doc)     (blocks, repeats -> the flat spec)
        check     specc.validation.validate_document(doc)   (expansion again, the Pydantic
                  models and the semantic checks; "check" is its time minus "expand")
    The total, load + expand + check, is `specc.load(path)`.  Target: median <= 50 ms.
    The first call (imports, Pydantic's first validation) is left out.  Each repeat also
    times `validate_document(load_file(path))` once more on its own for CPU time.

(b) build, side by side: `specc.build(path)` (load, expand, validate, lower, emit Keras
    layers, compile: Adam, categorical cross-entropy, the spec's 16 clauses) against
    `keras.applications.ResNet50(weights=None)` + `compile(Adam, categorical_crossentropy)`.
    The two alternate in each repeat (drift cancels); keras.backend.clear_session() and a
    garbage collection run between builds, outside the clock; one warm-up build of each is left
    out.  Printed: median and min of wall and CPU time, and specc / reference.  Target: <= 1.05.

The machine may be shared: the load average is printed at the start and at the end, and CPU
time (user + sys of this process) next to wall time; a wall ratio that misses while the CPU
ratio meets the target is noise.  No assertion on any time.
"""
from __future__ import annotations

import argparse
import gc
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

ROOT = Path(__file__).resolve().parents[2]
SPEC = ROOT / "specs" / "resnet50.yaml"


def ms(seconds: float) -> str:
    return f"{seconds * 1000:8.2f} ms"


def bench_validate(n: int) -> float:
    from specc.loader import load_file
    from specc.validation import expand_document, validate_document

    path = str(SPEC)
    validate_document(load_file(path))                 # warm-up: imports, first validation
    stages: dict[str, list[float]] = {"load": [], "expand": [], "check": [], "total": []}
    cpu: list[float] = []
    layers = 0
    for _ in range(n):
        c0 = time.process_time()
        spec = validate_document(load_file(path))
        cpu.append(time.process_time() - c0)
        t0 = time.perf_counter()
        doc = load_file(path)
        t1 = time.perf_counter()
        flat = expand_document(doc)
        t2 = time.perf_counter()
        spec = validate_document(doc)
        t3 = time.perf_counter()
        layers = len(spec.layers)
        assert len(flat.data["layers"]) == layers
        stages["load"].append(t1 - t0)
        stages["expand"].append(t2 - t1)
        stages["check"].append((t3 - t2) - (t2 - t1))   # validate_document expands again
        stages["total"].append((t1 - t0) + (t3 - t2))
    print(f"\n(a) validate {SPEC.relative_to(ROOT)} in-process ({layers} flat layers), "
          f"median / min of {n}:")
    for name, values in stages.items():
        print(f"    {name:7s} {ms(statistics.median(values))}   min {ms(min(values))}")
    print(f"    cpu     {ms(statistics.median(cpu))}   min {ms(min(cpu))}   "
          "(load + expand + check, timed apart: CPU time of this process)")
    total = statistics.median(stages["total"])
    print(f"    target: total <= 50 ms -> {'met' if total <= 0.050 else 'MISSED'} on wall, "
          f"{'met' if statistics.median(cpu) <= 0.050 else 'MISSED'} on cpu")
    return total


def build_specc() -> tuple[float, float, object]:
    import specc

    c0, t0 = time.process_time(), time.perf_counter()
    model = specc.build(str(SPEC))
    return time.perf_counter() - t0, time.process_time() - c0, model


def build_reference() -> tuple[float, float, object]:
    import keras

    c0, t0 = time.process_time(), time.perf_counter()
    model = keras.applications.ResNet50(weights=None)
    model.compile(optimizer=keras.optimizers.Adam(), loss="categorical_crossentropy")
    return time.perf_counter() - t0, time.process_time() - c0, model


def bench_build(repeats: int) -> float:
    import keras

    runs: dict[str, list[tuple[float, float]]] = {"specc": [], "reference": []}
    counts = {}
    for k in range(repeats + 1):                       # k == 0: warm-up, left out
        for name, fn in (("specc", build_specc), ("reference", build_reference)):
            wall, cpu, model = fn()
            counts[name] = model.count_params()
            del model
            keras.backend.clear_session()
            gc.collect()
            if k:
                runs[name].append((wall, cpu))
    assert counts["specc"] == counts["reference"], counts
    print(f"\n(b) build + compile, ResNet50 ({counts['specc']:,} parameters), "
          f"median / min of {repeats} (after one warm-up each):")
    med = {}
    for name, values in runs.items():
        walls, cpus = [w for w, _ in values], [c for _, c in values]
        med[name] = (statistics.median(walls), statistics.median(cpus))
        print(f"    {name:9s} wall {statistics.median(walls):6.3f} s  min {min(walls):6.3f} s   "
              f"cpu {statistics.median(cpus):6.3f} s  min {min(cpus):6.3f} s")
    wall_ratio = med["specc"][0] / med["reference"][0]
    cpu_ratio = med["specc"][1] / med["reference"][1]
    print(f"    specc / reference: wall {wall_ratio:.3f}, cpu {cpu_ratio:.3f}   "
          f"(target <= 1.05 -> {'met' if wall_ratio <= 1.05 else 'MISSED'} on wall, "
          f"{'met' if cpu_ratio <= 1.05 else 'MISSED'} on cpu)")
    return wall_ratio


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("-n", "--validations", type=int, default=20,
                    help="validations timed for (a) (default 20)")
    ap.add_argument("-r", "--repeats", type=int, default=3,
                    help="builds of each timed for (b) (default 3)")
    ap.add_argument("--skip-build", action="store_true", help="only (a); no Keras import")
    args = ap.parse_args()
    sys.path.insert(0, str(ROOT))
    t_start = time.perf_counter()
    print(f"bench_format2: Python {sys.version.split()[0]}, {os.cpu_count()} CPUs, "
          f"load avg {os.getloadavg()[0]:.2f}")
    bench_validate(args.validations)
    if not args.skip_build:
        import keras

        print(f"\nKeras {keras.__version__}, backend {keras.backend.backend()}")
        bench_build(args.repeats)
    print(f"\nload avg {os.getloadavg()[0]:.2f}; total {time.perf_counter() - t_start:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
