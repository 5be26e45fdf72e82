"""`specc build SPEC`: compile a spec; print the summary and the loss terms."""
from __future__ import annotations

import argparse
import sys

from specc.cli.backend import start_backend
from specc.cli.common import add_spec, render, spec_file
from specc.config import Options

HELP = "compile a spec; print the summary and the loss terms"
KERAS = True


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_spec(p)
    p.add_argument("-o", "--output", help="write the model here (.keras), atomically")


def run(args: argparse.Namespace, options: Options) -> int:
    import specc
    from specc.artifacts import check_output_path, save_model
    from specc.explain import composition
    from specc.fit_adapt import to_adapt, unadapted_warnings

    spec = spec_file(args.spec)
    if args.output:
        check_output_path(args.output, [args.spec])
    graph = specc.lower(specc.load(spec, overrides=options.overrides, limits=options.limits),
                        args.via)
    lookups = [graph.origins[n.origin][0] for n in to_adapt(graph) if n.op != "Normalization"]
    if args.output and lookups:     # refused before Keras starts: Keras would write the file,
        print(f"specc: error: {args.output} not written: Keras cannot load a model whose "
              f"lookup has no vocabulary ({', '.join(map(repr, lookups))}); give "
              "`vocabulary:` in the spec, or `specc fit` it (it adapts on the training "
              "data, then saves)", file=sys.stderr)           # but not load it (empty table)
        return 1
    start_backend(options)
    from specc.runtime import emit
    from specc.runtime.summary import summary_text

    model = emit(graph)
    warnings = unadapted_warnings(graph)
    if warnings:
        print(render(warnings, "text"), file=sys.stderr)
    print(summary_text(model))
    print()
    print("\n".join(composition(graph)))
    if args.output:
        save_model(model, args.output)
        print(f"\nwrote {args.output}")
    return 0
