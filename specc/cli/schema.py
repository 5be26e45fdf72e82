"""`specc schema`: the JSON Schema of the spec format (with the configured plugins' types)."""
from __future__ import annotations

import argparse
import json
import sys

from specc.cli.common import add_plugin
from specc.config import Options

HELP = "print the JSON Schema of the spec format"
KERAS = False


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("-o", "--output", help="write it to this file instead")
    add_plugin(p)


def schema_text() -> str:
    from specc.spec.model import json_schema

    return json.dumps(json_schema(), indent=1, ensure_ascii=False) + "\n"


def run(args: argparse.Namespace, options: Options) -> int:
    # main imported the configured plugins and --plugin's: their layer types join the schema
    text = schema_text()
    if args.output:
        from specc.artifacts import write_atomic

        write_atomic(args.output, text.encode())
    else:
        sys.stdout.write(text)
    return 0
