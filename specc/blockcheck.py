"""A block's definition checked without a use: what expansion refuses whatever the arguments.

A block that no entry uses is never expanded, so nothing in it would be checked: a library
validated on its own (all its blocks) or a spec's block not used yet. These checks report,
at the definition, the problems that do not depend on the arguments:
- a `${...}` that does not parse, or names something that is not a parameter of the block
  (`i` only in an entry with `repeat:`);
- a layer `type:` that is neither in the catalog nor registered;
- a `use:` of a block that does not exist;
- a `from:` or `share:` that names neither an input of the block nor one of its entries, and
  a penalty's `layer:` that names none of its entries.
A used block's problems are the expansion's, with the use that met them (no second report).
Values written with `${...}` are left to the expansion.
"""
from __future__ import annotations

import ast
import re
from typing import Any, Final, Iterator

from specc import custom_layers as _custom
from specc import expr
from specc.catalog import LAYER_TYPES
from specc.errors import did_you_mean, quote
from specc.expand_base import ExpanderBase, Path, Scope
from specc.hints import suggest
from specc.penalties import PluginError

#: Words an expression may use besides the block's parameters and `i`.
CONSTANTS: Final = frozenset({"true", "True", "false", "False", "null", "None"})
_COPY: Final = re.compile(r"(.*?)\d+")                 # `block3`: a repeated entry's copy


def check_unused(ex: ExpanderBase, name: str, defined: set[str]) -> None:
    """Report the problems of block `name`'s definition (read into `ex.blocks`) through
    `ex.error`; `defined`: every block name this spec or library can use."""
    block = ex.blocks[name]
    where: Path = ("blocks", name)
    top = Scope("", {})
    params = set(block["params"])
    for path, text in _strings(block, where):
        repeated = len(path) > 4 and path[2] == "layers" and \
            isinstance(block["layers"][path[3]], dict) and "repeat" in block["layers"][path[3]]
        problem = _expression_problem(text, params | ({"i"} if repeated else set()))
        if problem:
            ex.error(path, top, f"{quote(text)}: {problem}", "expression")
    entries = [(k, e) for k, e in enumerate(block["layers"]) if isinstance(e, dict)]
    names = [e.get("name") for _, e in entries]
    if any(not isinstance(n, str) or "${" in n for n in names):
        own: set[str] | None = None          # names made by expressions: references unknown
    else:
        own = set(names)
    copies = {e["name"] for _, e in entries if "repeat" in e} if own is not None else set()
    for k, entry in entries:
        path = (*where, "layers", k)
        _check_entry(ex, entry, path, top, defined)
        if own is None:
            continue
        for key in ("from", "share"):
            for at, ref in _refs(entry.get(key), (*path, key)):
                if not _known(ref, own | set(block["inputs"]), copies):
                    known = [*block["inputs"], *names]
                    ex.error(at, top, f"unknown name {quote(ref)} in block {quote(name)}"
                             f"{did_you_mean(ref, known)} (known: {', '.join(known)}) (inside a "
                             f"block, `{key}:` reads the block's inputs and its own layers)",
                             "unknown-ref")
    clauses = block.get("penalties")
    for k, clause in enumerate(clauses if isinstance(clauses, list) else []):
        ref = clause.get("layer") if isinstance(clause, dict) else None
        if own is not None and isinstance(ref, str) and "${" not in ref \
                and not _known(ref, own, copies):
            ex.error((*where, "penalties", k, "layer"), top,
                     f"unknown name {quote(ref)} in block {quote(name)}"
                     f"{did_you_mean(ref, sorted(own))} (known: {', '.join(n for n in names)}) "
                     "(inside a block, a penalty's `layer:` names one of the block's own "
                     "layers)", "unknown-ref")


def _check_entry(ex: ExpanderBase, entry: dict, path: Path, top: Scope,
                 defined: set[str]) -> None:
    """An entry's `type:` (a known layer type) or `use:` (a block of this spec)."""
    kind, use = entry.get("type"), entry.get("use")
    if isinstance(use, str) and "${" not in use and use not in defined:
        known = sorted(defined)
        ex.error((*path, "use"), top, f"unknown block {quote(use)}{did_you_mean(use, known)} "
                 f"(blocks: {', '.join(known) or 'none'})", "unknown-ref")
    elif use is None and isinstance(kind, str) and "${" not in kind and not _is_type(kind):
        ex.error((*path, "type"), top, f"unknown layer type {quote(kind)}"
                 f"{suggest(kind, _custom.known_types())} {_custom.unknown_type_note()}",
                 "unknown-type")


def _is_type(kind: str) -> bool:
    try:
        return kind in LAYER_TYPES or _custom.lookup(kind) is not None
    except PluginError:
        return True                     # an installed plugin is broken: said where it is used


def _known(ref: str, names: set[str], copies: set[str]) -> bool:
    head = ref.split(".", 1)[0]
    copy = _COPY.fullmatch(head)
    return "${" in ref or head in names or (copy is not None and copy.group(1) in copies)


def _refs(value: Any, path: Path) -> Iterator[tuple[Path, str]]:
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, list):
        for k, item in enumerate(value):
            if isinstance(item, str):
                yield (*path, k), item


def _strings(value: Any, path: Path) -> Iterator[tuple[Path, str]]:
    """Every string holding `${` in a block's entries, clauses and outputs, with its path."""
    if isinstance(value, str):
        if "${" in value:
            yield path, value
    elif isinstance(value, dict):
        for key, item in value.items():
            if key not in ("description", "params", "inputs"):
                yield from _strings(item, (*path, key))
    elif isinstance(value, list):
        for k, item in enumerate(value):
            yield from _strings(item, (*path, k))


def _expression_problem(text: str, names: set[str]) -> str | None:
    """Why a string's `${...}` cannot be evaluated with any values of `names`, or None."""
    if "${" in expr.PATTERN.sub("", text):
        return "an unclosed `${`: write `${expression}`"
    for match in expr.PATTERN.finditer(text):
        try:
            tree = expr.parse(match.group(1))
        except expr.ExprError as exc:
            return str(exc)
        called = {id(n.func) for n in ast.walk(tree) if isinstance(n, ast.Call)}
        for node in ast.walk(tree):
            if isinstance(node, ast.Name) and id(node) not in called \
                    and node.id not in names and node.id not in CONSTANTS:
                shown = ", ".join(sorted(names)) or "none"
                return (f"unknown name {node.id!r}{did_you_mean(node.id, names)} "
                        f"(names here: {shown})")
    return None
