"""`specc expand SPEC`: the flat spec, blocks, repeats, `${...}` and shares resolved (no
TensorFlow)."""
from __future__ import annotations

import argparse
import sys

from specc.cli.common import add_set, spec_file
from specc.config import Options

HELP = "print the flat spec: blocks, repeats and shares resolved (no TensorFlow)"
KERAS = False


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--plugin", action="append", default=[], metavar="MODULE",
                   help="import this module first (custom penalty kinds or layer types); "
                        "repeatable")
    p.add_argument("spec", metavar="SPEC")
    add_set(p)


def run(args: argparse.Namespace, options: Options) -> int:
    import specc
    from specc.expand import to_yaml

    spec = specc.load(spec_file(args.spec), overrides=options.overrides, limits=options.limits)
    sys.stdout.write(to_yaml(spec.document.data))
    return 0
