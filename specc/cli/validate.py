"""`specc validate PATH...`: check spec files without importing TensorFlow."""
from __future__ import annotations

import argparse
import sys

from specc.cli.common import add_budget, add_plugin, add_set, render, spec_files
from specc.config import Options

HELP = "check spec files without importing TensorFlow"
KERAS = False


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("paths", nargs="+", metavar="PATH", help="spec files or folders")
    p.add_argument("--format", choices=("text", "json", "github"), default="text",
                   help="text: file:line:col: error: message [code]; github: annotations")
    p.add_argument("-j", "--jobs", type=int, default=0, metavar="N",
                   help="worker processes (default: 0, one per core when there are many "
                        "files; 1: none)")
    p.add_argument("--strict", action=argparse.BooleanOptionalAction, default=None,
                   help="warnings fail too (exit 1); --no-strict: they do not (default: the "
                        "configuration's `strict`, else off)")
    add_plugin(p)
    add_budget(p)
    add_set(p)


def run(args: argparse.Namespace, options: Options) -> int:
    from specc.validation import validate_paths

    files = spec_files(args.paths)
    diags = validate_paths(files, jobs=args.jobs, overrides=options.overrides,
                           limits=options.limits)
    if diags or args.format == "json":
        out = render(diags, args.format)
        if out:
            print(out)
    errors = [d for d in diags if d.severity == "error"]
    warned = len(diags) - len(errors)
    if args.format == "text":
        bad = len({d.notes[0].file if d.file.startswith("--set ") and d.notes else d.file
                   for d in errors})    # an override's error: the spec of its note
        also = f" ({warned} warning{'s' * (warned != 1)})" if warned else ""
        print(f"{len(errors)} error{'s' * (len(errors) != 1)} in {bad} of {len(files)} file"
              f"{'s' * (len(files) != 1)}{also}" if errors else
              f"{len(files)} spec file{'s' * (len(files) != 1)} valid{also}", file=sys.stderr)
    return 1 if errors or (options.strict and warned) else 0
