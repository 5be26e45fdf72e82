"""Benchmark: `specc validate` on many spec files, against check-jsonschema; hostile files.

    python tests/benchmarks/bench_validate.py                # 1,000 files, 5 repeats
    python tests/benchmarks/bench_validate.py -n 5000 -r 3   # a bigger run

What it measures (wall time of a subprocess, interpreter start included):

1. `specc validate DIR` (default: worker processes), `specc validate -j 1 DIR` (one process),
   and `check-jsonschema --schemafile schema.json FILES...` on the same N generated files
   (variations of the format 1 examples in specs/; `--format2` adds the format 2 ones), with
   `specc schema -o` as the schema.  Reference: the
   check-jsonschema run of this same invocation; printed: specc / check-jsonschema.
   Targets (issue 18): specc <= 0.5 s for 1,000 files, ratio <= 0.2; one file
   (`specc validate specs/resnet50.yaml`) <= 0.15 s.  Where a single run's time goes is
   printed beside it, each part measured in the same run: the interpreter alone
   (`python -c pass`), importing the validation path, the first validation (Pydantic builds
   its validators then), and a second validation of the same file.
2. Hostile files: an alias bomb (billion laughs), a 50 MB file, 10,000-deep flow nesting,
   deep block nesting (mappings, and compact `- - - x` sequences).  Wall time and peak RSS
   (`/usr/bin/time -v`, or getrusage of the child) of `specc validate FILE`; each must be
   refused (exit 1) with a diagnostic.  Reference: `specc validate` on one valid spec.
   Targets: < 1 s and < 200 MB each.

Timings are medians (and minimums) of several repeats, taken with time.perf_counter.
No timed assertion: the script reports, it does not fail on a slow machine.
"""
from __future__ import annotations

import argparse
import copy
import os
import random
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_Dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
SPECS = ROOT / "specs"


# ----------------------------------------------------------------------------- commands

def specc_cmd() -> list[str]:
    exe = shutil.which("specc")
    return [exe] if exe else [sys.executable, "-m", "specc"]


def check_jsonschema_cmd() -> list[str] | None:
    exe = shutil.which("check-jsonschema")
    if exe:
        return [exe]
    try:
        import check_jsonschema  # noqa: F401
    except ImportError:
        return None
    return [sys.executable, "-m", "check_jsonschema"]


def ensure_check_jsonschema(install: bool) -> list[str] | None:
    cmd = check_jsonschema_cmd()
    if cmd is None and install:
        print("check-jsonschema is missing: pip install check-jsonschema", flush=True)
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "check-jsonschema"],
                       check=False)
        cmd = check_jsonschema_cmd()
    return cmd


# ----------------------------------------------------------------------------- timing

CPU: dict[str, list[float]] = {}


def run_timed(cmd: list[str], cpu_key: str | None = None,
              **kw) -> tuple[float, subprocess.CompletedProcess]:
    """Wall time of the command; its CPU time (user+sys, workers included) goes to CPU[key]."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          errors="replace", **kw)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if cpu_key:
        CPU.setdefault(cpu_key, []).append(after.ru_utime - before.ru_utime
                                           + after.ru_stime - before.ru_stime)
    return wall, proc


def cpu(key: str) -> str:
    return f"  cpu {statistics.median(CPU[key]):6.3f} s"


def fmt(times: list[float]) -> str:
    return f"median {statistics.median(times):7.3f} s  min {min(times):7.3f} s"


# ----------------------------------------------------------------------------- generation

def _vary(data: dict, i: int, rng: random.Random) -> dict:
    """A different but valid spec: new name, seed, units, rates, dropout."""
    data = copy.deepcopy(data)
    data["name"] = f"{data['name']}_{i:05d}"
    data["seed"] = rng.randrange(1, 10_000)
    outputs = set(data.get("outputs", []))
    for layer in data["layers"]:
        # Output layers keep their units (they must match the targets / loss).
        if layer.get("type") == "Dense" and layer["name"] not in outputs:
            layer["units"] = rng.choice([8, 16, 24, 32, 48, 64, 96, 128, 256])
        if layer.get("type") in ("Conv2D", "Conv1D") and "filters" in layer:
            layer["filters"] = rng.choice([4, 8, 16, 32])
        if layer.get("type") == "Dropout":
            layer["rate"] = round(rng.uniform(0.05, 0.5), 3)
    for clause in data.get("penalties", []) or []:
        for key in ("rate", "l1", "l2"):
            if key in clause:
                clause[key] = float(f"{rng.uniform(1e-5, 1e-2):.3e}")
    for clause in data.get("weight_penalties", []) or []:
        if "rate" in clause:
            clause["rate"] = float(f"{rng.uniform(1e-6, 1e-3):.3e}")
    opt = data.get("optimizer")
    if isinstance(opt, dict) and "learning_rate" in opt:
        opt["learning_rate"] = float(f"{rng.uniform(1e-4, 1e-2):.3e}")
    return data


def generate(folder: Path, n: int, seed: int = 0, format2: bool = False) -> list[Path]:
    """Variations of the format 1 examples (the benchmark's fixed mix, comparable across
    releases); with `format2`, of the format 2 examples too (ResNet50, MobileNetV2, ...)."""
    rng = random.Random(seed)
    bases = []
    for path in sorted(SPECS.glob("*.yaml")):
        data = yaml.load(path.read_text(), Loader=_Loader)
        if data.get("specc") != 1 and not format2:
            continue
        header = "".join(line for line in path.read_text().splitlines(True)
                         if line.startswith("#"))
        bases.append((path.stem, header, data))
    files = []
    for i in range(n):
        stem, header, data = bases[i % len(bases)]
        text = header + yaml.dump(_vary(data, i, rng), Dumper=_Dumper, sort_keys=False,
                                  default_flow_style=None, width=100)
        path = folder / f"{stem}_{i:05d}.yaml"
        path.write_text(text)
        files.append(path)
    return files


# ----------------------------------------------------------------------------- hostile files

def hostile_files(folder: Path) -> dict[str, Path]:
    out: dict[str, Path] = {}

    # Billion laughs: 9 levels of 10 aliases each -> 10^9 strings once expanded.
    lines = ["specc: 1", "name: bomb", 'a0: &a0 ["lol","lol","lol","lol","lol","lol","lol",'
             '"lol","lol","lol"]']
    for k in range(1, 10):
        lines.append(f"a{k}: &a{k} [" + ",".join(f"*a{k - 1}" for _ in range(10)) + "]")
    lines.append("layers: *a9")
    p = folder / "billion_laughs.yaml"
    p.write_text("\n".join(lines) + "\n")
    out["billion laughs (10^9 aliases)"] = p

    # A 50 MB file of plausible spec text.
    p = folder / "fifty_mb.yaml"
    chunk = "  - {name: layer_x, type: Dense, units: 16, activation: relu}\n"
    reps = 50 * 1024 * 1024 // len(chunk) + 1
    with open(p, "w") as f:
        f.write("specc: 1\nname: huge\ninputs: {x: {shape: [4]}}\nlayers:\n")
        f.write(chunk * reps)
    out["50 MB file"] = p

    # 10,000-deep flow nesting.
    p = folder / "deep_flow.yaml"
    p.write_text("specc: 1\nname: deep\nlayers: " + "[" * 10_000 + "]" * 10_000 + "\n")
    out["10,000-deep flow [[[...]]]"] = p

    # The same, one bracket per line (short lines: the parser itself meets the nesting).
    p = folder / "deep_flow_lines.yaml"
    p.write_text("specc: 1\nname: deep\nlayers:\n" + "  [\n" * 10_000 + "  ]\n" * 10_000)
    out["10,000-deep flow, one bracket per line"] = p

    # 10,000-deep compact block sequences on one line: `- - - ... - x`.
    p = folder / "deep_block_seq.yaml"
    p.write_text("specc: 1\nname: deep\nlayers:\n" + "- " * 10_000 + "x\n")
    out["10,000-deep block `- - - x`"] = p

    # Deep block mappings, one space of indentation per level (the deepest that fits in 1 MB:
    # indentation grows quadratically, 10,000 levels would be 50 MB).
    depth = 1_400
    p = folder / "deep_block_map.yaml"
    with open(p, "w") as f:
        f.write("specc: 1\nname: deep\nlayers:\n")
        for k in range(1, depth + 1):
            f.write(" " * k + "a:\n")
        f.write(" " * (depth + 1) + "x\n")
    out[f"{depth:,}-deep block mappings"] = p

    # Deep block sequences, each level on its own line (indentation grows too).
    depth = 1_400
    p = folder / "deep_block_seq_lines.yaml"
    with open(p, "w") as f:
        f.write("specc: 1\nname: deep\nlayers:\n")
        for k in range(depth):
            f.write(" " * k + "-\n")
        f.write(" " * depth + "x\n")
    out[f"{depth:,}-deep block sequences (one per line)"] = p
    return out


_RSS = re.compile(r"Maximum resident set size \(kbytes\): (\d+)")


def run_with_memory(cmd: list[str]) -> tuple[float, float, subprocess.CompletedProcess]:
    """(wall seconds, peak RSS MB of the child, process)."""
    gnu_time = "/usr/bin/time"
    if os.path.exists(gnu_time):
        t0 = time.perf_counter()
        proc = subprocess.run([gnu_time, "-v", *cmd], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, errors="replace")
        wall = time.perf_counter() - t0
        m = _RSS.search(proc.stderr)
        peak = int(m.group(1)) / 1024 if m else float("nan")
        proc.stderr = proc.stderr[: m.start()] if m else proc.stderr
        proc.stderr = proc.stderr.split("\tCommand being timed")[0]
        return wall, peak, proc
    # Fallback: getrusage of children in a fresh helper process (peak of that one child).
    helper = ("import resource,subprocess,sys,time;t=time.perf_counter();"
              "p=subprocess.run(sys.argv[1:],capture_output=True,text=True);"
              "w=time.perf_counter()-t;"
              "print(p.returncode,w,resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss);"
              "sys.stderr.write(p.stdout[:2000])")
    proc = subprocess.run([sys.executable, "-c", helper, *cmd], stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True)
    rc, wall, kb = proc.stdout.split()
    child = subprocess.CompletedProcess(cmd, int(rc), proc.stderr, "")
    return float(wall), int(kb) / 1024, child


# ----------------------------------------------------------------------------- start-up

_PARTS = """\
import json, sys, time
t0 = time.perf_counter()
import specc.validation
t1 = time.perf_counter()
from specc.validation import validate_paths
validate_paths([sys.argv[1]], jobs=1)
t2 = time.perf_counter()
validate_paths([sys.argv[1]], jobs=1)
t3 = time.perf_counter()
print(json.dumps([t1 - t0, t2 - t1, t3 - t2]))
"""


def print_startup_parts(spec: str, repeats: int) -> None:
    """Where one run's time goes: the interpreter, imports, the first and a second
    validation of the same file (medians of `repeats` fresh processes)."""
    import json

    bare = [run_timed([sys.executable, "-c", "pass"])[0] for _ in range(repeats)]
    parts = []
    for _ in range(repeats):
        _, proc = run_timed([sys.executable, "-c", _PARTS, spec])
        parts.append(json.loads(proc.stdout))
    imports, first, again = (statistics.median(p[k] for p in parts) for k in range(3))
    print(f"  of which: interpreter start {statistics.median(bare):.3f} s, importing the "
          f"validation path {imports:.3f} s, first validation {first:.3f} s (Pydantic builds "
          f"its validators), a second validation of the file {again:.3f} s")


# ----------------------------------------------------------------------------- main

def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("-n", "--files", type=int, default=1000, help="spec files (default 1000)")
    ap.add_argument("-r", "--repeats", type=int, default=5, help="repeats of each specc run")
    ap.add_argument("--cj-repeats", type=int, default=2,
                    help="repeats of check-jsonschema (default 2: ~30 s each for 1,000 files)")
    ap.add_argument("--no-install", action="store_true",
                    help="do not pip install check-jsonschema when it is missing")
    ap.add_argument("--skip-hostile", action="store_true")
    ap.add_argument("--skip-bulk", action="store_true")
    ap.add_argument("--keep", metavar="DIR", help="generate into DIR and keep it")
    ap.add_argument("--format2", action="store_true",
                    help="also vary the format 2 examples (a different mix: not comparable "
                         "with the format 1 figures)")
    args = ap.parse_args()

    specc = specc_cmd()
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} cores, load avg "
          f"{os.getloadavg()[0]:.2f}; specc: {' '.join(specc)}")
    tmp = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="specc-bench-"))
    tmp.mkdir(parents=True, exist_ok=True)
    try:
        folder = tmp / "specs"
        folder.mkdir(exist_ok=True)
        for old in folder.glob("*.yaml"):
            old.unlink()
        t0 = time.perf_counter()
        files = generate(folder, args.files, format2=args.format2)
        print(f"generated {len(files)} spec files in {time.perf_counter() - t0:.1f} s "
              f"({sum(f.stat().st_size for f in files) / 1e6:.2f} MB) under {folder}")

        # Reference for the per-invocation floor: one valid file.
        one = [run_timed([*specc, "validate", str(files[0])], "one")[0]
               for _ in range(args.repeats)]
        print(f"\nspecc validate <1 file>            {fmt(one)}{cpu('one')}"
              "   (interpreter start + imports)")
        resnet = str(SPECS / "resnet50.yaml")
        res = [run_timed([*specc, "validate", resnet], "resnet")[0] for _ in range(args.repeats)]
        print(f"specc validate specs/resnet50.yaml {fmt(res)}{cpu('resnet')}   target <= 0.15 s:"
              f" {'MET' if statistics.median(res) <= 0.15 else 'MISSED'}")
        print_startup_parts(resnet, args.repeats)

        if not args.skip_bulk:
            # Correctness first: every generated file must be valid.
            _, proc = run_timed([*specc, "validate", str(folder)])
            if proc.returncode != 0:
                print(proc.stdout[-3000:], proc.stderr[-3000:])
                print("generated files are not all valid: fix the generator")
                return 1
            print(f"check: {proc.stderr.strip()}")

            par, seq = [], []
            for _ in range(args.repeats):   # interleaved, to cancel drift
                par.append(run_timed([*specc, "validate", str(folder)], "par")[0])
                seq.append(run_timed([*specc, "validate", "-j", "1", str(folder)], "seq")[0])
            print(f"specc validate DIR ({len(files)} files)   {fmt(par)}{cpu('par')}")
            print(f"specc validate -j 1 DIR             {fmt(seq)}{cpu('seq')}")
            print(f"  parallel speed-up (-j1 / default): {statistics.median(seq) / statistics.median(par):.2f}x"
                  f"  (per file, -j 1: {(statistics.median(seq) - statistics.median(one)) / len(files) * 1e3:.3f} ms)")

            cj = ensure_check_jsonschema(not args.no_install)
            if cj is None:
                print("check-jsonschema is not installed: no comparison")
            else:
                schema = tmp / "schema.json"
                subprocess.run([*specc, "schema", "-o", str(schema)], check=True)
                cj_cmd = [*cj, "--schemafile", str(schema), *map(str, files)]
                cj_times = []
                for k in range(args.cj_repeats):
                    elapsed, proc = run_timed(cj_cmd, "cj")
                    cj_times.append(elapsed)
                    if k == 0 and proc.returncode != 0:
                        print("check-jsonschema rejects the generated files:")
                        print(proc.stdout[-2000:], proc.stderr[-2000:])
                print(f"check-jsonschema ({len(files)} files)     {fmt(cj_times)}{cpu('cj')}")
                ratio = statistics.median(par) / statistics.median(cj_times)
                ratio1 = statistics.median(seq) / statistics.median(cj_times)
                print(f"\nRATIO specc/check-jsonschema: {ratio:.3f}  (-j 1: {ratio1:.3f})"
                      f"   target <= 0.2: {'MET' if ratio <= 0.2 else 'MISSED'}")
            spec_med = statistics.median(par)
            # start-up once, plus the per-file cost scaled to 1,000 files
            start = statistics.median(one)
            scaled = start + (spec_med - start) * 1000 / len(files)
            print(f"specc for {len(files)} files: {spec_med:.3f} s   target <= 0.5 s per 1,000"
                  f" files: {'MET' if scaled <= 0.5 else 'MISSED'}"
                  + (f" (estimated {scaled:.3f} s for 1,000)" if len(files) != 1000 else ""))

        if not args.skip_hostile:
            print("\nhostile files: `specc validate FILE` (wall incl. start; peak RSS of the process)")
            ref = [run_with_memory([*specc, "validate", str(files[0])]) for _ in range(3)]
            ref_wall = statistics.median(r[0] for r in ref)
            ref_mem = statistics.median(r[1] for r in ref)
            print(f"  {'reference: one valid spec':44s} {ref_wall:6.3f} s  {ref_mem:7.1f} MB")
            hdir = tmp / "hostile"
            hdir.mkdir(exist_ok=True)
            all_ok = True
            for label, path in hostile_files(hdir).items():
                runs = [run_with_memory([*specc, "validate", str(path)]) for _ in range(3)]
                wall = statistics.median(r[0] for r in runs)
                peak = max(r[1] for r in runs)
                proc = runs[-1][2]
                first = (proc.stdout.strip().splitlines() or proc.stderr.strip().splitlines()
                         or ["(no output)"])[0]
                first = first.replace(str(hdir) + "/", "")
                ok = wall < 1.0 and peak < 200 and proc.returncode == 1
                all_ok &= ok
                size = path.stat().st_size
                print(f"  {label:44s} {wall:6.3f} s  {peak:7.1f} MB  exit {proc.returncode}  "
                      f"{'ok ' if ok else 'BAD'} ({size / 1e6:.2f} MB file; "
                      f"{wall / ref_wall:.2f}x time, {peak / ref_mem:.2f}x memory of the "
                      f"reference)\n      -> {first[:150]}")
            print(f"hostile targets (< 1 s, < 200 MB, refused with exit 1): "
                  f"{'MET' if all_ok else 'MISSED'}")
        print(f"\nload avg {os.getloadavg()[0]:.2f}")
    finally:
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
