"""Command line: `specc validate | schema | build | fit | ...`, one module per command.

Exit codes: 0 success, 1 a spec is invalid (or a golden check failed), 2 usage error.
Every command module has HELP, KERAS (whether it builds with Keras), add_arguments(parser)
and run(args, options). Every command reads the project configuration ([tool.specc] in the
nearest pyproject.toml, specc.config) into an Options object, its flags over it, and passes it
on. Keras is imported inside the commands that build, never on the validation path, and only
after everything that can be checked without it (the spec, paths, tools, installed extras)
has been: a command that refuses does so before paying for TensorFlow.
"""
from __future__ import annotations

import argparse
import os
import sys
from dataclasses import replace
from pathlib import Path
from types import ModuleType
from typing import Final, Sequence

from specc.cli import (build, expand, explain, fit, golden, importing, lsp, plot, schema,
                       validate)
from specc.cli.backend import BACKENDS, check_installed, quiet_tensorflow, select_backend
from specc.cli.common import HelpFormatter, render
from specc.config import Options
from specc.errors import SpecError, UsageError

#: The commands in the order --help lists them: name -> module.
COMMANDS: Final[dict[str, ModuleType]] = {
    getattr(module, "NAME", module.__name__.rsplit(".", 1)[1]): module
    for module in (validate, schema, build, fit, plot, explain, expand, importing, golden,
                   lsp)}


def _read_paths(args: argparse.Namespace) -> list[str]:
    """The paths a command reads: where its configuration is looked for."""
    for name in ("paths", "specs"):
        if getattr(args, name, None):
            return list(getattr(args, name))
    for name in ("spec", "model", "output"):
        if getattr(args, name, None):
            return [getattr(args, name)]
    return []


def options_for(args: argparse.Namespace) -> Options:
    """The project configuration for this command, its flags over it (specc.config)."""
    from specc import config

    configured = config.load(_read_paths(args), config=getattr(args, "config", None),
                             isolated=getattr(args, "no_config", False))
    golden_dir = getattr(args, "dir", None)
    return configured.with_flags(
        plugins=tuple(args.plugin) if getattr(args, "plugin", None) else None,
        max_params=getattr(args, "max_params", None),
        max_activation=getattr(args, "max_activation", None),
        golden_dir=Path(golden_dir) if golden_dir is not None else None,
        strict=getattr(args, "strict", None),
        backend=getattr(args, "backend", None),
        verbose=getattr(args, "verbose", False) or None)


def _add_common(p: argparse.ArgumentParser, keras: bool) -> None:
    """What every command takes: --verbose and the configuration (and --backend where it
    builds)."""
    if keras:
        p.add_argument("--backend", choices=tuple(BACKENDS), help=(
            "Keras backend to run on (default: KERAS_BACKEND, else Keras's own setting, "
            "tensorflow unless changed)"))
    p.add_argument("--verbose", action="store_true",
                   help="show TensorFlow's start-up log lines (hidden by default)")
    p.add_argument("--config", metavar="PYPROJECT", help=(
        "read [tool.specc] from this pyproject.toml (default: the nearest one, from the "
        "specs' folder up)"))
    p.add_argument("--no-config", action="store_true",
                   help="ignore any pyproject.toml: defaults and flags only")


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="specc", description=(
        "A declarative model-spec compiler for Keras 3: validate YAML specs, export their "
        "schema, build them into compiled models."))
    from specc import __version__

    parser.add_argument("--version", action="version", version=f"specc {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, module in COMMANDS.items():
        p = sub.add_parser(name, help=module.HELP, formatter_class=HelpFormatter)
        module.add_arguments(p)
        _add_common(p, module.KERAS)
        p.set_defaults(func=module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = make_parser()
    args = parser.parse_args(argv)
    args._argv = list(sys.argv[1:] if argv is None else argv)   # fit --jobs reruns them
    try:
        options = options_for(args)
        if COMMANDS[args.command].KERAS:
            check_installed(args.command, select_backend(args, options))
    except SpecError as exc:        # the project configuration: a usage problem, located
        print(render(list(exc.diagnostics), "text"), file=sys.stderr)
        return 2
    except UsageError as exc:
        print(f"specc: error: {exc}", file=sys.stderr)
        return 2
    quiet_tensorflow(args)
    from specc.config import plugins_imported
    from specc.overrides import parse_all

    try:
        overrides = parse_all(getattr(args, "set", []), sweep=args.command == "fit")
        options = replace(options, overrides=tuple(overrides))
        with plugins_imported(options):
            code = args.func(args, options)
        sys.stdout.flush()
        return code
    except BrokenPipeError:         # `specc explain spec.yaml | head`: the reader left
        _drop_stdout()
        return 141                  # as a Unix tool killed by SIGPIPE (128 + 13)
    except SpecError as exc:
        print(render(list(exc.diagnostics), getattr(args, "format", "text")))
        return 1
    except UsageError as exc:
        print(f"specc: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:          # a file specc had to read or write: no traceback
        print(f"specc: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt as exc:
        from specc.artifacts import Terminated

        print("specc: interrupted", file=sys.stderr)
        return 143 if isinstance(exc, Terminated) else 130


def _drop_stdout() -> None:
    """Point standard output at /dev/null, so that the interpreter's last flush at exit does
    not raise BrokenPipeError again (Python's documented recipe)."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):   # no real stdout (captured): nothing will be flushed
        pass
