"""`specc lsp`: the language server for editors, over stdio (the `lsp` extra; no Keras)."""
from __future__ import annotations

import argparse
import os
import sys

from specc.cli.backend import findable
from specc.config import Options
from specc.errors import UsageError

HELP = "the language server for editors (over stdio; the lsp extra)"
KERAS = False


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--stdio", action="store_true", help="talk over stdin and stdout (the "
                   "default and only transport; accepted because editors pass it)")


def run(args: argparse.Namespace, options: Options) -> int:
    if not findable("pygls"):
        raise UsageError('specc lsp needs pygls, which this install lacks: '
                         'pip install "specc-keras[lsp]"')
    from specc.lsp import serve

    serve()
    if sys.stdout.closed:            # pygls closes it when the client leaves
        sys.stdout = open(os.devnull, "w")
    return 0
