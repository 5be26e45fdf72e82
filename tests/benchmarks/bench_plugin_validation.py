"""Benchmark: `specc validate` of a spec that uses a one-file plugin (a plugin whose module
imports Keras at its top), against the same spec with catalog layers and loss.

    python tests/benchmarks/bench_plugin_validation.py          # 5 rounds
    python tests/benchmarks/bench_plugin_validation.py -n 11

Each round runs three fresh processes, in turn (the command as a user runs it: interpreter
start, configuration, plugin, validation):

(a) catalog: the siamese spec with its plugin layer and loss replaced by catalog ones (a Dot
    in place of EuclideanDistance, mse in place of contrastive), `--no-config`;
(b) one-file plugin: specs/siamese_contrastive/siamese_contrastive.yaml with this
    repository's [tool.specc] (which names specs/siamese_contrastive/siamese_plugin.py):
    specc reads the plugin from its source, without its Keras imports;
(c) the same plugin imported as a module before validating (what a plugin that imports Keras
    cost before one-file plugins: TensorFlow's start-up).

Printed: the median wall time of each, and (b)/(a) (the target: at most 1.2) and (c)/(a).
The machine may be shared: the load average is printed. No assertion on any time.
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
FOLDER = ROOT / "specs" / "siamese_contrastive"
SPEC = FOLDER / "siamese_contrastive.yaml"


def catalog_twin(text: str) -> str:
    text = text.replace("type: EuclideanDistance,", "type: Dot, axes: 1,")
    return text.replace("loss: {type: contrastive, margin: 1.0}", "loss: mse")


def _run(argv: list[str], env: dict) -> float:
    t0 = time.perf_counter()
    run = subprocess.run(argv, capture_output=True, text=True, cwd=ROOT, env=env)
    elapsed = time.perf_counter() - t0
    if run.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed:\n{run.stdout}{run.stderr}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("-n", type=int, default=5, help="rounds (default 5)")
    args = parser.parse_args()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3"}
    with tempfile.TemporaryDirectory() as tmp:
        twin = Path(tmp) / "siamese_catalog.yaml"
        twin.write_text(catalog_twin(SPEC.read_text()))
        eager = ("import sys\n"
                 f"sys.path.insert(0, {str(FOLDER)!r})\n"
                 "import siamese_plugin\n"
                 "from specc.cli import main\n"
                 f"sys.exit(main(['validate', '--no-config', {str(SPEC)!r}]))\n")
        cases = {
            "catalog": [sys.executable, "-m", "specc", "validate", "--no-config", str(twin)],
            "one-file": [sys.executable, "-m", "specc", "validate", "--config",
                         str(ROOT / "pyproject.toml"), str(SPEC)],
            "imported": [sys.executable, "-c", eager],
        }
        for argv in cases.values():                 # warm the file cache once
            _run(argv, env)
        times: dict[str, list[float]] = {k: [] for k in cases}
        for _ in range(args.n):
            for key, argv in cases.items():
                times[key].append(_run(argv, env))
    med = {k: statistics.median(v) for k, v in times.items()}
    print(f"load average {os.getloadavg()[0]:.2f}; median of {args.n} runs of `specc validate`:")
    print(f"  (a) catalog layers and loss       {med['catalog']:7.3f} s")
    print(f"  (b) one-file plugin, from config  {med['one-file']:7.3f} s")
    print(f"  (c) the plugin imported (Keras)   {med['imported']:7.3f} s")
    print(f"ratio one-file / catalog: {med['one-file'] / med['catalog']:.3f} (target <= 1.2)")
    print(f"ratio imported / catalog: {med['imported'] / med['catalog']:.3f}")


if __name__ == "__main__":
    main()
