"""The long fuzz run: `python tests/fuzz_long.py [N] [BUILDS]` (defaults 50,000 and 500).

Draws mutated and resized specs from the same strategies as tests/test_fuzz.py and counts the
outcomes: valid, SpecError (by code), and anything else (a bug: printed with its input).
"""
from __future__ import annotations

import collections
import os
import sys
import time
import traceback

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import yaml  # noqa: E402
from hypothesis import HealthCheck, given, settings  # noqa: E402

import specc  # noqa: E402
from specc.errors import SpecError  # noqa: E402
from strategies import mutated_specs, resized_specs  # noqa: E402  (tests/ is the script's path)

outcomes: collections.Counter = collections.Counter()
crashes: list[str] = []


def classify(text: str, build: bool) -> None:
    try:
        spec = specc.loads(text, "fuzz.yaml")
        if build:
            specc.build(spec)
        outcomes["valid" + (" and built" if build else "")] += 1
    except SpecError as exc:
        outcomes[f"SpecError [{exc.code}]"] += 1
    except Exception:  # noqa: BLE001 -- the point is to find these
        outcomes["UNHANDLED"] += 1
        crashes.append(text[:2000] + "\n" + traceback.format_exc())


def run(n: int, builds: int) -> None:
    @settings(max_examples=n, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(mutated_specs())
    def mutated(data):
        classify(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), build=False)

    @settings(max_examples=builds, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(resized_specs())
    def resized(data):
        classify(yaml.safe_dump(data, sort_keys=False), build=True)

    start = time.perf_counter()
    mutated()
    resized()
    total = sum(outcomes.values())
    print(f"{total} cases in {time.perf_counter() - start:.0f} s")
    for key, count in outcomes.most_common():
        print(f"  {count:7d}  {key}")
    for crash in crashes[:5]:
        print("-" * 60 + "\n" + crash)
    sys.exit(1 if crashes else 0)


if __name__ == "__main__":
    run(int(sys.argv[1]) if len(sys.argv) > 1 else 50_000,
        int(sys.argv[2]) if len(sys.argv) > 2 else 500)
