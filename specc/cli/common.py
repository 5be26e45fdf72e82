"""What every command shares: finding spec files, rendering diagnostics, the common flags."""
from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Final, Sequence

from specc.errors import Diagnostic, UsageError
from specc.penalties import VIAS

SPEC_SUFFIXES: Final = (".yaml", ".yml")


def spec_files(paths: Sequence[str]) -> list[str]:
    """Files as given; folders searched recursively for *.yaml / *.yml, sorted."""
    found: list[str] = []
    for p in paths:
        path = Path(p)
        if path.is_dir():
            hits = sorted(str(f) for f in path.rglob("*") if f.suffix in SPEC_SUFFIXES
                          and f.is_file())
            if not hits:
                raise UsageError(f"{p}: no *.yaml or *.yml files in this folder")
            found.extend(hits)
        elif path.exists():
            found.append(p)
        else:
            raise UsageError(f"{p}: no such file or folder")
    return found


def spec_file(path: str) -> str:
    """The one spec file a command compiles: a missing file or a folder is a usage error,
    worded as for `validate`."""
    p = Path(path)
    if p.is_dir():
        raise UsageError(f"{path}: is a folder (give one spec file)")
    if not p.exists():
        raise UsageError(f"{path}: no such file or folder")
    return path


def render(diags: list[Diagnostic], fmt: str) -> str:
    """Diagnostics as text (file:line:col: severity: message [code]), JSON or GitHub
    annotations."""
    if fmt == "json":
        return json.dumps([{"file": d.file, "line": d.line, "column": d.column,
                            "severity": d.severity, "code": d.code, "message": d.message,
                            **({"notes": [{"file": n.file, "line": n.line, "column": n.column,
                                           "message": n.message} for n in d.notes]}
                               if d.notes else {})}
                           for d in diags], indent=2, ensure_ascii=False)
    if fmt == "github":
        def esc(s: str) -> str:
            return s.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")

        def prop(s: str) -> str:     # a property value also escapes ':' and ','
            return esc(s).replace(":", "%3A").replace(",", "%2C")
        return "\n".join(f"::{d.severity} file={prop(d.file)},line={d.line},col={d.column},"
                         f"title={prop(f'specc [{d.code}]')}::{esc(d.message)}" for d in diags)
    return "\n".join(d.render() for d in diags)


def shown(path: Path | None) -> str | None:
    """A configured path as a user would write it: relative to the current folder when it is
    inside it."""
    if path is None:
        return None
    try:
        return str(Path(path).resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def add_plugin(p: argparse.ArgumentParser) -> None:
    p.add_argument("--plugin", action="append", default=[], metavar="MODULE",
                   help="import this Python module first (it registers penalty kinds or "
                        "layer types), after the configuration's plugins; repeatable")


def add_budget(p: argparse.ArgumentParser) -> None:
    """--max-params / --max-activation: the size budget every spec is validated against."""
    from specc.budget import MAX_ACTIVATION, MAX_PARAMS, parse_count

    p.add_argument("--max-params", type=parse_count, metavar="N", help=(
        f"refuse specs with more parameters (default {MAX_PARAMS:,}; 250M, 1e9 and "
        "1_000_000 are understood)"))
    p.add_argument("--max-activation", type=parse_count, metavar="N", help=(
        f"refuse specs with a tensor of more values per sample (default {MAX_ACTIVATION:,})"))


def add_set(p: argparse.ArgumentParser, sweep: bool = False) -> None:
    """--set PATH=VALUE (specc.overrides), repeatable."""
    p.add_argument("--set", action="append", default=[], metavar="PATH=VALUE", dest="set",
                   help="override a value by name before validation: dense4.units=128, "
                        "dense4_energy.rate=1e-3, optimizer.learning_rate=3e-4, seed=3 "
                        "(VALUE is YAML); repeatable" + (
                            "; a comma list (rate=1e-4,1e-3) sweeps: one run per value "
                            "(the product of several lists) in a sub-folder of --out, and "
                            "sweep.csv + sweep.png comparing them" if sweep else ""))


def add_spec(p: argparse.ArgumentParser, via_help: str = "force one strategy on every "
             "penalty clause", sweep: bool = False) -> None:
    """SPEC, --via, --plugin, the budget and --set: what every command that compiles a spec
    takes."""
    p.add_argument("spec", metavar="SPEC")
    p.add_argument("--via", choices=VIAS, help=via_help)
    add_plugin(p)
    add_budget(p)
    add_set(p, sweep)


class HelpFormatter(argparse.HelpFormatter):
    """--help shows each option's default, unless it has none or its help already says it."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if ("default" in text or not action.option_strings
                or action.default in (None, False, [], argparse.SUPPRESS)):
            return text
        return f"{text} (default: %(default)s)"
