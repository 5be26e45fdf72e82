"""`specc golden SPEC...`: check each spec's model summary and loss values against golden
files (or write them with --update)."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from specc.cli.backend import start_backend
from specc.cli.common import add_budget, add_plugin, add_set, render, shown, spec_files
from specc.config import Options
from specc.compose import check_library, is_library
from specc.errors import SpecError, UsageError
from specc.loader import load_file

HELP = "check a spec's model summary and loss values against golden files (or write them " \
       "with --update)"
KERAS = True


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("specs", nargs="+", metavar="SPEC", help="spec files or folders")
    p.add_argument("--dir", metavar="DIR", help="where the golden files are: "
                   "DIR/<spec>.summary.txt, DIR/<spec>.losses.json (default: the "
                   "configuration's golden_dir, else next to each spec)")
    p.add_argument("--update", action="store_true",
                   help="write the golden files instead of checking them")
    add_plugin(p)
    add_budget(p)
    add_set(p)


def _distinct(specs: list[str], directory: str | None) -> list[str]:
    """The spec files, each once; two specs that would share golden files are refused."""
    from specc import golden

    files: list[str] = []
    owners: dict[Path, str] = {}                  # golden summary file -> the spec it is for
    for f in spec_files(specs):
        # the names clash or not whatever the backend: judge them without starting Keras
        summary_path = golden.golden_paths(f, directory, "tensorflow")[0]
        key = summary_path.resolve()
        if key not in owners:
            owners[key] = f
            files.append(f)
        elif Path(owners[key]).resolve() != Path(f).resolve():   # the same spec twice: once
            raise UsageError(f"{owners[key]} and {f} would share the golden files "
                             f"{summary_path}")
    return files


def run(args: argparse.Namespace, options: Options) -> int:
    import specc
    from specc import golden

    directory = shown(options.golden_dir)
    if directory is not None and not args.update and not Path(directory).is_dir():
        raise UsageError(f"golden folder {directory}: no such folder")
    files = _distinct(args.specs, directory)
    failed = 0
    valid = []
    libraries = 0
    for f in files:                               # every spec validated before Keras starts
        try:
            doc = load_file(f)
            if is_library(doc.data):              # a folder's block library: checked, no model
                problems = check_library(doc)
                if problems:
                    raise SpecError(problems)
                print(f"{f}: block library, valid (no model to pin)", flush=True)
                libraries += 1
                continue
            specc.load(f, overrides=options.overrides, limits=options.limits)
        except SpecError as exc:
            print(render(list(exc.diagnostics), "text"))
            failed += 1
            continue
        valid.append(f)
    if valid:
        start_backend(options)
    settings = {"overrides": options.overrides, "limits": options.limits}
    for f in valid:
        try:
            result = (golden.update(f, directory, **settings) if args.update
                      else golden.check(f, directory, **settings))
        except SpecError as exc:
            print(render(list(exc.diagnostics), "text"))
            failed += 1
            continue
        print(result.report(), flush=True)
        failed += not result.ok
    n = len(files) - libraries
    libs = f" ({libraries} block librar{'ies' if libraries != 1 else 'y'} valid)" if libraries else ""
    print(f"{failed} of {n} spec{'s' * (n != 1)} failed{libs}" if failed else
          f"{n} spec{'s' * (n != 1)}: golden files "
          f"{'up to date' if args.update else 'match'}{libs}",
          file=sys.stderr)
    return 1 if failed else 0
