"""Format 1's refusal of format 2 constructs: one located error for each `blocks:`,
`use:`, `repeat:`, `${...}` ... in a spec that says `specc: 1`.
"""
from __future__ import annotations

from typing import Any, Final, Iterable

from specc import expr
from specc.errors import Diagnostic
from specc.loader import Document

Path = tuple

#: Keys that exist only in format 2 (their presence in a format 1 spec is an error).
ENTRY_KEYS: Final = ("use", "with", "repeat", "if", "share", "call")


def format1_problems(doc: Document) -> list[Diagnostic]:
    """Format 2 constructs in a spec that says `specc: 1`: one error each."""
    data = doc.data
    out: list[Diagnostic] = []

    def need(path: Path, what: str, key: bool = True) -> None:
        span = doc.key_span(path) if key else doc.span(path)
        out.append(Diagnostic(span, f"{what} is a format 2 construct: declare `specc: 2` at "
                              "the top of the spec", "format"))

    for key in ("blocks", "imports", "extends"):
        if key in data:
            need((key,), f"`{key}:`")
    layers = data.get("layers")
    for i, entry in enumerate(layers if isinstance(layers, list) else []):
        if not isinstance(entry, dict):
            continue
        for key in ENTRY_KEYS:
            if key in entry:
                need(("layers", i, key), f"`{key}:` in a layer")
        for key, value in entry.items():
            if isinstance(key, str) and key.endswith(("_initializer", "_constraint")) \
                    and isinstance(value, dict):
                need(("layers", i, key), f"an {key.rsplit('_', 1)[1]} with arguments")
    if _any_expression(data):            # rare: only then walk again for the paths
        for path, value in _walk(data, ()):
            if expr.has_expression(value):
                need(path, "a `${...}` expression", key=False)
    return out


def _any_expression(data: Any) -> bool:
    stack = [data]
    while stack:
        node = stack.pop()
        if isinstance(node, str):
            if "${" in node:
                return True
        elif isinstance(node, dict):
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return False


def _walk(value: Any, path: Path) -> Iterable[tuple[Path, Any]]:
    stack = [(path, value)]
    while stack:
        where, node = stack.pop()
        if isinstance(node, dict):
            stack.extend((where + (k,), v) for k, v in node.items())
        elif isinstance(node, list):
            stack.extend((where + (i,), v) for i, v in enumerate(node))
        else:
            yield where, node

