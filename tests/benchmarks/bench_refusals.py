"""How long a refusing command takes, wall time with interpreter start, against `validate`.

    python tests/benchmarks/bench_refusals.py [--runs 3] [--against OTHER_CHECKOUT]

Each refusal (an invalid spec to `build`; `import -o` into a missing folder; `plot` with
Graphviz's `dot` off the PATH; `fit --data` of a missing file) is run --runs times in a fresh
interpreter with this checkout first on PYTHONPATH, and with OTHER_CHECKOUT's when given (an
older specc, to compare); the median is printed, and its ratio to `specc validate` of the same
invalid spec measured in the same run. A refusal that pays for TensorFlow costs ~10x validate.
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BAD = ("specc: 1\nname: m\ninputs:\n  x: {shape: [4]}\nlayers:\n  - {name: h, type: Dense}\n"
       "outputs: [h]\nloss: mse\n")
GOOD = BAD.replace("type: Dense}", "type: Dense, units: 3}")
CASES = {
    "validate bad.yaml (reference)": ["validate", "bad.yaml"],
    "build bad.yaml": ["build", "bad.yaml"],
    "import --application ResNet50 -o missing_dir/x.yaml": [
        "import", "--application", "ResNet50", "-o", "missing_dir/x.yaml"],
    "plot good.yaml (no dot on PATH)": ["plot", "good.yaml"],
    "fit good.yaml --data missing.npz": ["fit", "good.yaml", "--data", "missing.npz"],
}


def measure(checkout: Path, argv: list[str], folder: Path, runs: int) -> tuple[float, int]:
    env = {**os.environ, "PYTHONPATH": str(checkout), "TF_CPP_MIN_LOG_LEVEL": "3",
           "PATH": str(Path(sys.executable).parent)}        # no Graphviz `dot` on it
    times, code = [], 0
    for _ in range(runs):
        start = time.perf_counter()
        code = subprocess.run([sys.executable, "-m", "specc", *argv], cwd=folder, env=env,
                              capture_output=True).returncode
        times.append(time.perf_counter() - start)
    return statistics.median(times), code


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--against", type=Path, help="another checkout of specc")
    args = parser.parse_args()
    checkouts = {"this": ROOT, **({"other": args.against.resolve()} if args.against else {})}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "bad.yaml").write_text(BAD)
        (folder / "good.yaml").write_text(GOOD)
        for name, checkout in checkouts.items():
            print(f"{name}: {checkout}")
            reference = None
            for label, argv in CASES.items():
                seconds, code = measure(checkout, argv, folder, args.runs)
                reference = reference or seconds
                print(f"  {label:<55} {seconds:6.2f} s  exit {code}  "
                      f"{seconds / reference:5.1f}x validate")


if __name__ == "__main__":
    main()
