"""The long run of the valid => builds => trains => saves property:
`python tests/buildable_long.py [N]` (default 2,000) draws N drafts from the strategy of
tests/test_buildable.py and counts the outcomes: invalid draft (skipped), located build
error, trained and saved, or anything else (a bug: printed with its spec).
"""
from __future__ import annotations

import collections
import os
import sys
import tempfile
import time
import traceback
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import yaml  # noqa: E402
from hypothesis import HealthCheck, given, settings  # noqa: E402

from test_buildable import (TRANSFORMER, _loaded, builds_trains_saves, keras,  # noqa: E402
                            valid_drafts)

sys.path.insert(0, str(TRANSFORMER))
import transformer_layers  # noqa: E402,F401  (the transformer base's layer plugin)

outcomes: collections.Counter = collections.Counter()


def main() -> int:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    started = time.perf_counter()

    @settings(max_examples=n, deadline=None, suppress_health_check=list(HealthCheck),
              database=None)
    @given(draft=valid_drafts())
    def run(draft: dict) -> None:
        spec = _loaded(draft)
        if spec is None:
            outcomes["invalid draft"] += 1
            return
        keras.backend.clear_session()
        try:
            with tempfile.TemporaryDirectory() as tmp:
                outcomes[builds_trains_saves(spec, Path(tmp))] += 1
        except Exception:                                  # the property is broken
            outcomes["CRASH"] += 1
            print("---- crash on:\n" + yaml.safe_dump(draft, sort_keys=False)
                  + traceback.format_exc(limit=3), flush=True)

    run()
    total = sum(outcomes.values())
    print(f"{total} drafts in {time.perf_counter() - started:.0f} s: "
          + ", ".join(f"{k}: {v}" for k, v in outcomes.most_common()))
    return 1 if outcomes["CRASH"] else 0


if __name__ == "__main__":
    sys.exit(main())
