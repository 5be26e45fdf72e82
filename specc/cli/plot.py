"""`specc plot SPEC`: the layer graph drawn with the penalty taps marked."""
from __future__ import annotations

import argparse
import sys

from specc.cli.backend import start_backend
from specc.cli.common import add_spec, spec_file
from specc.config import Options

HELP = "draw the layer graph with the penalty taps marked"
KERAS = True


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_spec(p)
    p.add_argument("-o", "--output", default="model.png", help="image file (.png, .svg, .pdf)")


def run(args: argparse.Namespace, options: Options) -> int:
    import specc
    from specc.artifacts import check_output_path
    from specc.plot import missing_tools, plot

    spec = spec_file(args.spec)
    problem = missing_tools()
    if problem:
        print(f"specc: error: {problem}", file=sys.stderr)
        return 1
    check_output_path(args.output, [args.spec], suffix=None)
    graph = specc.lower(specc.load(spec, overrides=options.overrides, limits=options.limits),
                        args.via)
    start_backend(options)
    from specc.runtime import emit

    plot(emit(graph, compile=False), graph, args.output)
    print(f"wrote {args.output}")
    return 0
