"""Coverage of `specc import`: every keras.applications architecture, import -> build -> compare.

    python tests/benchmarks/import_coverage.py                 # all (slow: ~40 models, twice)
    python tests/benchmarks/import_coverage.py ResNet50 VGG16  # some
    python tests/benchmarks/import_coverage.py --full-size     # default input shapes

For each architecture of the installed Keras: build it with `weights=None` (nothing is
downloaded) on a small input (32x32x3, or the smallest size the architecture accepts; 10
classes), convert it (`specc.importer.convert`), fold it into blocks (the spec's code lines
are reported flat and folded), write and validate the folded spec in a temporary folder, build the spec (`specc.build`), give it the source model's weights, and compare:

  - structure: every layer with weights, by name, class and weight shapes;
  - parameters: total and trainable counts;
  - outputs: one random batch of 2, max |a - b| / max |a| <= 1e-6.

Prints one line per architecture and `N of N round-trip`; a failure says why (the importer's
refusal lines, or which comparison differs).
"""
from __future__ import annotations

import argparse
import gc
import math
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Final

from specc.budget import Limits

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

#: Output agreement asked of a round trip (relative to the largest output value).
RTOL: Final = 1e-6
#: Input sizes tried, smallest first: architectures refuse inputs below their own minimum.
SIZES: Final = (32, 75, 224, 331)
#: The largest architectures hold more than the default budget of 100M parameters.
BUDGET: Final = Limits(max_params=10**9)

def source(name: str, full_size: bool) -> Any:
    import keras

    constructor = getattr(keras.applications, name)
    if full_size:
        return constructor(weights=None)
    last: Exception | None = None
    for size in SIZES:
        try:
            return constructor(weights=None, input_shape=(size, size, 3), classes=10)
        except ValueError as exc:
            last = exc
    raise RuntimeError(f"no input size of {SIZES} accepted: {last}")


def summary(lines: list[str]) -> str:
    """Refusal lines grouped by what they refuse: `36 layers like 'x' (Class): reason`."""
    groups: dict[str, list[str]] = {}
    for line in lines:
        head, _, reason = line.partition(": ")
        kind = head.split(" (", 1)[-1].rstrip(")") if " (" in head else head
        groups.setdefault(f"{kind}: {reason}", []).append(head.split(" (", 1)[0])
    return " | ".join(f"{len(heads)}x like {heads[0]} ({key})" for key, heads in groups.items())


def code_lines(text: str) -> int:
    """Lines of a spec that are neither blank nor comments."""
    return sum(1 for line in text.splitlines() if line.strip() and
               not line.lstrip().startswith("#"))


def round_trip(name: str, folder: Path, full_size: bool) -> tuple[bool, str]:
    import keras

    import specc
    from specc import importer

    keras.backend.clear_session()
    model = source(name, full_size)
    from specc.importer.convert import fold_imported

    try:
        imported = importer.convert(model)
    except importer.ImportRefused as exc:
        return False, "refused: " + summary(exc.lines)
    flat_lines = code_lines(importer.to_yaml(imported.data))
    fold_imported(imported)
    folded_lines = code_lines(importer.to_yaml(imported.data))
    spec_path = folder / f"{name}.yaml"
    importer.write(imported, spec_path, limits=BUDGET)
    built = specc.build(specc.load(spec_path, limits=BUDGET))
    importer.assign(built, imported)
    report = importer.compare(model, built, imported.in_spec, renamed=imported.renamed)
    problems = []
    if not report["structure"]:
        problems.append("structure differs")
    total, trainable = report["params"], report["trainable"]
    stats = sum(math.prod(w.shape) for n, layer in imported.owners.items()
                if n in imported.in_spec for w in layer.weights)
    if total[0] - stats != total[1] or trainable[0] != trainable[1]:
        problems.append(f"parameters {total[0]:,} vs {total[1]:,}")
    if not report["outputs"] or report["max_rel_diff"] > RTOL:
        problems.append(f"outputs differ: {report['max_rel_diff']:.3g}")
    shape = "x".join(str(d) for d in model.input_shape[1:])
    detail = (f"code lines {flat_lines} flat, {folded_lines} folded, "
              f"{len(imported.owners)} layers, {total[1]:,} params, input {shape}, "
              f"max rel diff {report['max_rel_diff']:.2g}, format {imported.data['specc']}")
    if stats:
        detail += f"; Normalization statistics ({stats} values) written in the spec"
    del model, built
    gc.collect()
    return not problems, "; ".join(problems) or detail


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="*", help="architectures (default: all)")
    parser.add_argument("--full-size", action="store_true",
                        help="default input shapes and classes (slower)")
    args = parser.parse_args(argv)
    from specc import importer

    names = args.names or importer.applications()
    ok = 0
    with tempfile.TemporaryDirectory() as folder:
        for name in names:
            t0 = time.perf_counter()
            try:
                good, why = round_trip(name, Path(folder), args.full_size)
            except Exception as exc:        # report it, go on with the next architecture
                good, why = False, f"error: {type(exc).__name__}: {str(exc)[:300]}"
            ok += good
            print(f"{name:20s} {'ok  ' if good else 'FAIL'} {time.perf_counter() - t0:6.1f} s  "
                  f"{why}", flush=True)
    print(f"\n{ok} of {len(names)} keras.applications architectures round-trip "
          f"(structure, parameters, outputs within {RTOL:g} relative)")
    return 0 if ok == len(names) else 1


if __name__ == "__main__":
    sys.exit(main())
