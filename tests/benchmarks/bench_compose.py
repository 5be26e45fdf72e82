"""Benchmark: what a block library and a base spec cost at validation (issue 21).

    python tests/benchmarks/bench_compose.py            # 30 interleaved rounds
    python tests/benchmarks/bench_compose.py -n 100

Three specs that expand to the same ResNet50, validated in-process (`specc.load`), in
interleaved rounds so that drift on a shared machine cancels:

    inline    specs/resnet50.yaml with the library's blocks pasted in (one file; the reference)
    imports   specs/resnet50.yaml itself (`imports: [blocks/resnet.yaml]`)
    extends   a spec that `extends: resnet50.yaml` and overrides nothing

Printed: median and min CPU time per validation and each one's ratio to `inline`. The first
call (imports, Pydantic's first validation) is left out. No assertion on any time.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import yaml  # noqa: E402

import specc  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("-n", type=int, default=30, help="rounds")
    n = parser.parse_args().n
    specs = ROOT / "specs"
    with tempfile.TemporaryDirectory(dir=ROOT, prefix=".bench-") as folder:   # in the project
        inline = yaml.safe_load((specs / "resnet50.yaml").read_text())
        del inline["imports"]
        inline = {**inline, "blocks": yaml.safe_load(
            (specs / "blocks" / "resnet.yaml").read_text())["blocks"]}
        paths = {"inline": Path(folder) / "inline.yaml", "imports": specs / "resnet50.yaml",
                 "extends": Path(folder) / "child.yaml"}
        paths["inline"].write_text(yaml.safe_dump(inline, sort_keys=False))
        paths["extends"].write_text("specc: 2\nextends: ../specs/resnet50.yaml\n")
        same = {k: specc.load(p).model_dump() for k, p in paths.items()}   # warm-up, and check
        assert same["inline"] == same["imports"] == same["extends"]
        times: dict[str, list[float]] = {k: [] for k in paths}
        print(f"load average {os.getloadavg()[0]:.1f}; {n} rounds")
        for _ in range(n):
            for name, path in paths.items():
                start = time.process_time()
                specc.load(path)
                times[name].append(time.process_time() - start)
    reference = statistics.median(times["inline"])
    for name, values in times.items():
        median = statistics.median(values)
        print(f"{name:8} median {median * 1e3:7.2f} ms CPU  min {min(values) * 1e3:7.2f} ms  "
              f"ratio {median / reference:.3f}")
    print(f"load average {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
