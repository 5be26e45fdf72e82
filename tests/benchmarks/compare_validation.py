"""Benchmark: `specc validate` CPU time of this tree against an older commit, interleaved.

    python tests/benchmarks/compare_validation.py 087927e        # before the redesign
    python tests/benchmarks/compare_validation.py HEAD~20 -r 9

The older commit is checked out into a temporary git worktree. Both trees validate the same
inputs, written from the older commit's format 1 examples: 1,000 files (`specc validate -j 1
DIR`, one process) and that commit's `specs/resnet50.yaml` (one file, interpreter start
included). Each round runs old then new; the CPU time (user + sys of the child, from
os.wait4) is less sensitive to a loaded machine than wall time. Printed: the median of each
and new / old. No timed assertion: the script reports.
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def cpu_seconds(tree: Path, args: list[str], cwd: Path) -> float:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    proc = subprocess.Popen([sys.executable, "-m", "specc", "validate", *args], cwd=cwd,
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    if os.waitstatus_to_exitcode(status) not in (0, 1):
        raise SystemExit(f"specc validate {' '.join(args)} failed in {tree}")
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("commit", help="the older commit to compare with")
    parser.add_argument("-n", type=int, default=1000, help="files in the bulk run")
    parser.add_argument("-r", type=int, default=5, help="rounds")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="specc-compare-"))
    old = work / "old"
    try:
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "-q", "--detach", str(old),
                        args.commit], check=True)
        files = work / "files"
        files.mkdir()
        sources = [p for p in sorted((old / "specs").glob("*.yaml"))
                   if re.search(r"(?m)^specc: 1\b", p.read_text())]
        for i in range(args.n):
            text = sources[i % len(sources)].read_text()
            (files / f"s{i:04d}.yaml").write_text(
                re.sub(r"(?m)^name: (\S+)", rf"name: \g<1>_{i}", text, count=1))
        shutil.copy(old / "specs" / "resnet50.yaml", work / "resnet50.yaml")
        times: dict[str, dict[str, list[float]]] = {"old": {}, "new": {}}
        for _ in range(args.r):
            for name, tree in (("old", old), ("new", ROOT)):
                for case, cli in (("bulk", ["-j", "1", "files"]), ("one", ["resnet50.yaml"])):
                    times[name].setdefault(case, []).append(cpu_seconds(tree, cli, work))
        for case, what in (("bulk", f"{args.n:,} files"), ("one", "resnet50.yaml")):
            o, n = (statistics.median(times[k][case]) for k in ("old", "new"))
            print(f"{what}: {args.commit} {o:.2f} s CPU, this tree {n:.2f} s CPU: "
                  f"{n / o:.2f}x (medians of {args.r})")
    finally:
        subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(old)],
                       check=False)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
