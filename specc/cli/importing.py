"""`specc import`: a .keras file or a keras.applications architecture -> a spec (and its
weights)."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from specc.cli.backend import start_backend
from specc.cli.common import add_budget, add_plugin
from specc.config import Options
from specc.errors import UsageError

NAME = "import"
#: `--check`: how far the spec's outputs may be from the source's, relative to the largest
#: (two graphs of the same arithmetic: equal here, up to a backend's kernel choice).
CHECK_RTOL = 1e-5

HELP = "write a spec (and its weights) that rebuilds a Keras model or a keras.applications " \
       "architecture"
KERAS = True


def shape_arg(text: str) -> tuple[int, ...]:
    try:
        shape = tuple(int(d) for d in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: sizes separated by commas, e.g. 96,96,3")
    if not shape or any(d <= 0 for d in shape):
        raise argparse.ArgumentTypeError(f"{text!r}: positive sizes, e.g. 96,96,3")
    return shape


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", nargs="?", metavar="MODEL.keras", help="a saved Keras model "
                   "(read with safe_mode=True after its config is checked)")
    p.add_argument("--application", metavar="NAME", help="a keras.applications architecture, "
                   "built with weights=None (nothing is downloaded); --list names them")
    p.add_argument("--input-shape", type=shape_arg, metavar="H,W,C",
                   help="with --application: the input shape")
    p.add_argument("--classes", type=int, metavar="N", help="with --application: classes")
    p.add_argument("-o", "--output", metavar="SPEC.yaml",
                   help="write the spec here, atomically (default: print it)")
    p.add_argument("--weights", nargs="?", const=True, default=False, metavar="imagenet",
                   help="also write the model's weights beside the spec (SPEC.weights.h5) and "
                   "refer to them (`weights:`); `--weights imagenet` with --application: the "
                   "pretrained weights, from Keras's local cache only (nothing is downloaded)")
    p.add_argument("--name", help="the spec's model name (default: the model's)")
    p.add_argument("--flat", action="store_true", help="write every layer (format 1 where "
                   "it can), not repeated sub-graphs folded into blocks")
    p.add_argument("--check", action="store_true", help="then build the spec and compare it "
                   "with the model: structure, parameters, outputs on a random batch")
    p.add_argument("--list", action="store_true", help="list keras.applications "
                   "architectures and exit")
    add_plugin(p)
    add_budget(p)


def _check_usage(args: argparse.Namespace) -> None:
    """Every refusal that needs no Keras, before Keras starts."""
    from specc import importer
    from specc.artifacts import check_output_path

    if (args.model is None) == (args.application is None):
        raise UsageError("give a MODEL.keras file or --application NAME (one of them)")
    if args.model is not None and (args.input_shape or args.classes is not None):
        raise UsageError("--input-shape and --classes go with --application")
    if args.output is None and args.weights:
        raise UsageError("--weights writes a file beside the spec: give -o SPEC.yaml")
    sources = [args.model] if args.model else []
    if args.output is not None:
        if not args.output.endswith((".yaml", ".yml")):
            raise UsageError(f"{args.output}: the spec file must end in .yaml or .yml")
        check_output_path(args.output, sources, suffix=None)
        if args.weights:
            check_output_path(importer.weights_path(args.output), sources, suffix=None)
    if args.model is not None and not Path(args.model).is_file():
        raise UsageError(f"{args.model}: no such file" if not Path(args.model).exists()
                         else f"{args.model}: is not a file (give a saved .keras model)")


def run(args: argparse.Namespace, options: Options) -> int:
    from specc import importer

    if args.list:
        start_backend(options)
        print("\n".join(importer.applications()))
        return 0
    if args.weights not in (True, False, "imagenet"):
        if args.model is None and str(args.weights).endswith(".keras"):
            args.model, args.weights = args.weights, True       # `--weights m.keras`
        else:
            raise UsageError(f"--weights {args.weights}: give no value, or `imagenet`")
    if args.weights == "imagenet" and args.application is None:
        raise UsageError("--weights imagenet goes with --application (a .keras file holds "
                         "its own weights)")
    _check_usage(args)
    start_backend(options)
    source = args.model or (f"keras.applications.{args.application}"
                            f"(weights={'imagenet' if args.weights == 'imagenet' else None!r})")
    try:
        if args.model is not None:
            model = importer.keras_file(args.model)
        else:
            model = importer.application(args.application, args.input_shape, args.classes,
                                         "imagenet" if args.weights == "imagenet" else None)
        imported = importer.convert(model, args.name, fold=not args.flat)
        import keras

        header = [f"Written by `specc import` from {source}, Keras {keras.__version__}.",
                  *imported.notes[:20],
                  *([f"... and {len(imported.notes) - 20} more notes"]
                    if len(imported.notes) > 20 else [])]
        if args.output is not None:
            written = importer.write(imported, args.output, header,
                                     with_weights=bool(args.weights), limits=options.limits)
        else:
            text = importer.validated_text(imported, header, limits=options.limits)
    except importer.ImportRefused as exc:
        print(f"specc: cannot import {source}: {len(exc.lines)} part"
              f"{'s' * (len(exc.lines) != 1)} without a spec form (nothing written):",
              file=sys.stderr)
        for line in exc.lines:
            print(f"  {line}", file=sys.stderr)
        return 1
    if args.output is None:
        sys.stdout.write(text)
        return 0
    if args.check:
        import specc

        built = specc.build(written[0])
        if not args.weights:
            importer.assign(built, imported)
        report = importer.compare(model, built, imported.in_spec, renamed=imported.renamed)
        same = (report["structure"] and report["outputs"] and report["params"][0] ==
                report["params"][1] and report["max_rel_diff"] <= CHECK_RTOL)
        print(f"check: structure {'same' if report['structure'] else 'DIFFERENT'}, "
              f"parameters {report['params'][0]:,} -> {report['params'][1]:,}, outputs "
              f"max |a - b| / max |a| = {report['max_rel_diff']:.3g}"
              + ("" if same else f" (FAILED: the outputs may differ by {CHECK_RTOL:g} of the "
                 "largest; structure and parameters must be the same)"))
    for path in written:
        print(f"wrote {path}")
    return 0 if not args.check or same else 1
