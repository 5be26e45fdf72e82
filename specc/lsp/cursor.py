"""What the cursor is on, in text that is often half typed (`- {name: c, type: Con`).

A marker word is put at the cursor and the text composed again, the line first as it is, then
with its open brackets closed after the marker, then with the marker made a key (`marker:`);
the scalar that holds the marker tells where the cursor is in the data (its path, whether it
is a key) and what was typed before it. The rest of the document comes with it, so that the
siblings (the entry's `type`, its `use`) are known.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final, Optional

from specc.lsp.yamlindex import Path, Pos, index

MARK: Final = "zzspeccCursorzz"
_OPEN: Final = {"[": "]", "{": "}"}


@dataclass(frozen=True)
class Cursor:
    path: Path          # where the scalar under the cursor is in the data
    key: bool           # the cursor is on a mapping key
    prefix: str         # what was typed of that scalar before the cursor
    start: Pos          # where that scalar starts (the completion replaces from here)
    data: Any           # the document's data, scalars as strings (the marker's one aside)
    source: str = ""    # the text that was composed (the marker in it)

    @property
    def parent(self) -> Any:
        """The mapping or list holding the scalar under the cursor."""
        return lookup(self.data, self.path[:-1])


def lookup(data: Any, path: Path) -> Any:
    for part in path:
        if isinstance(data, dict) and part in data:
            data = data[part]
        elif isinstance(data, list) and isinstance(part, int) and 0 <= part < len(data):
            data = data[part]
        else:
            return None
    return data


def _closers(head: str) -> str:
    """The brackets `head` leaves open, closed (quotes and comments are rare in a head)."""
    stack: list[str] = []
    for c in head:
        if c in _OPEN:
            stack.append(_OPEN[c])
        elif stack and c == stack[-1]:
            stack.pop()
    return "".join(reversed(stack))


def locate(source: str, pos: Pos) -> Optional[Cursor]:
    """The cursor at 0-based `pos` (line, column in code points), or None."""
    lines = source.split("\n")
    line, col = pos
    if not 0 <= line < len(lines):
        return None
    text = lines[line]
    head, rest = text[:col], text[col:]
    shut = _closers(head)
    for patched in (head + MARK + rest, head + MARK + shut, head + MARK + ":" + shut):
        found = _find(lines, line, patched)
        if found is not None:
            return found
    return None


def _find(lines: list[str], line: int, patched: str) -> Optional[Cursor]:
    source = "\n".join([*lines[:line], patched, *lines[line + 1:]])
    tree = index(source)
    if tree is None:
        return None
    for s in tree:
        if MARK in s.value:
            path = s.path
            if s.key:
                path = (*path[:-1], s.value.replace(MARK, ""))
            return Cursor(path, s.key, s.value.split(MARK)[0], s.start, _clean(tree.data),
                          source)
    return None


def _clean(data: Any) -> Any:
    """The data with the marker taken out of keys and values."""
    if isinstance(data, dict):
        return {k.replace(MARK, ""): _clean(v) for k, v in data.items()}
    if isinstance(data, list):
        return [_clean(v) for v in data]
    return data.replace(MARK, "") if isinstance(data, str) else data
