"""`specc explain SPEC`: the whole objective as a formula (no TensorFlow)."""
from __future__ import annotations

import argparse

from specc.cli.common import add_spec, spec_file
from specc.config import Options

HELP = "the whole objective as a formula (no TensorFlow)"
KERAS = False


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_spec(p, "show the plan for one forced strategy")


def run(args: argparse.Namespace, options: Options) -> int:
    import specc
    from specc.explain import explain

    spec = specc.load(spec_file(args.spec), overrides=options.overrides, limits=options.limits)
    print(explain(specc.lower(spec, args.via), options.limits))
    return 0
