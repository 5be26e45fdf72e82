"""The long format 2 fuzz run: `python tests/fuzz_format2_long.py [N] [BUILDS]` (defaults
50,000 and 0).

Draws specs from tests/test_fuzz_format2.py's strategies and loads each: the outcomes are a
Spec or a SpecError, nothing else (the time limit is on CPU time, which a loaded machine does
not stretch; wall time is printed too). It runs in chunks of 1,000 and prints a summary line after
each (so a run stopped early still reports). For each case it measures the wall time of the load (and,
for a valid spec, of checking that its flat form is valid and the same spec), and the process's
peak memory. Prints the counts, the time, p50/p99/max per case, the worst peak memory, and the
cases over 100 ms; exits 1 on any other exception, a case over 100 ms or a peak over 200 MB
above the start. BUILDS > 0 also builds that many valid specs and their flat forms with Keras
and compares them (layer names, weight shapes).
"""
from __future__ import annotations

import collections
import os
import resource
import sys
import time
import traceback
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).resolve().parent))

import yaml  # noqa: E402
from hypothesis import HealthCheck, given, settings  # noqa: E402

from specc.errors import SpecError  # noqa: E402
from test_fuzz_format2 import check, specs  # noqa: E402

LIMIT_S = 0.100
LIMIT_MB = 200


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024      # Linux: KiB


CHUNK = 1_000


def report(times: list[float], cpus: list[float], start: float, base: float,
           outcomes) -> None:
    def q(values: list[float], f: float) -> float:
        return values[min(len(values) - 1, int(f * len(values)))] * 1000

    wall, cpu = sorted(times), sorted(cpus)
    print(f"{len(wall)} cases in {time.perf_counter() - start:.0f} s; per case wall p50 "
          f"{q(wall, 0.5):.2f} ms, p99 {q(wall, 0.99):.2f} ms, max {wall[-1] * 1000:.1f} ms; "
          f"CPU p99 {q(cpu, 0.99):.2f} ms, max {cpu[-1] * 1000:.1f} ms; peak memory "
          f"+{rss_mb() - base:.0f} MB over the start ({rss_mb():.0f} MB in all); "
          f"{outcomes['UNHANDLED']} unhandled, {sum(t > LIMIT_S for t in cpu)} over "
          f"{LIMIT_S * 1000:.0f} ms CPU", flush=True)


def run(n: int, builds: int) -> int:
    outcomes: collections.Counter = collections.Counter()
    crashes: list[str] = []
    slow: list[tuple[float, str]] = []
    times: list[float] = []               # wall time per case
    cpus: list[float] = []                # CPU time per case (what a loaded machine keeps)
    valid: list[str] = []
    base = rss_mb()

    @settings(max_examples=min(n, CHUNK), deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(specs())
    def one(data: dict) -> None:
        text = yaml.safe_dump(data, sort_keys=False, allow_unicode=True)
        start, cpu = time.perf_counter(), time.process_time()
        try:
            spec = check(text)
            outcomes["valid" if spec is not None else "SpecError"] += 1
            if spec is not None and len(valid) < builds and "blocks" in data \
                    and any(isinstance(e, dict) and "use" in e for e in data["layers"]):
                valid.append(text)
        except SpecError as exc:          # check() lets none through; kept for safety
            outcomes[f"SpecError [{exc.code}]"] += 1
        except Exception:  # noqa: BLE001 -- the point is to find these
            outcomes["UNHANDLED"] += 1
            crashes.append(text[:3000] + "\n" + traceback.format_exc())
        took = time.perf_counter() - start
        times.append(took)
        cpus.append(time.process_time() - cpu)
        if cpus[-1] > LIMIT_S:
            slow.append((cpus[-1], text[:3000]))

    for spec in sorted((Path(__file__).resolve().parent.parent / "specs").glob("*.yaml")):
        try:                              # warm up: first-use imports are not a case's time
            check(spec.read_text(encoding="utf-8"))
            check("specc: 2\nlayers: [oops]\n")
        except SpecError:
            pass
    start = time.perf_counter()
    while len(times) < n:                 # in chunks, with a summary line after each one
        one()
        report(times, cpus, start, base, outcomes)
        if slow:
            print(f"  slowest so far ({max(slow)[0] * 1000:.0f} ms CPU): "
                  + max(slow)[1][:300].replace("\n", " | "), flush=True)
    peak = rss_mb() - base
    for key, count in outcomes.most_common():
        print(f"  {count:7d}  {key}")
    for took, text in sorted(slow, reverse=True)[:3]:
        print("-" * 60 + f"\nslow case: {took * 1000:.0f} ms\n{text}")
    for crash in crashes[:5]:
        print("-" * 60 + "\n" + crash)
    if builds:
        import specc
        from specc.expand import to_yaml
        from specc.loader import load_text
        from specc.validation import expand_document

        for text in valid:
            a = specc.build(specc.loads(text, "f.yaml"))
            flat = to_yaml(expand_document(load_text(text, "f.yaml")).data)
            b = specc.build(specc.loads(flat, "flat.yaml"))
            assert [x.name for x in a.layers] == [x.name for x in b.layers]
            assert [tuple(w.shape) for w in a.weights] == [tuple(w.shape) for w in b.weights]
        print(f"built {len(valid)} valid specs and their flat forms: the same models")
    return 1 if crashes or slow or peak > LIMIT_MB else 0


if __name__ == "__main__":
    sys.exit(run(int(sys.argv[1]) if len(sys.argv) > 1 else 50_000,
                 int(sys.argv[2]) if len(sys.argv) > 2 else 0))
