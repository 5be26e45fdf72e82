"""Where each value of a spec's text starts and ends: the editor's view of the YAML.

specc's loader records where every value starts (a diagnostic's line:col); an editor also
needs where it ends (a diagnostic's range, the word a rename replaces) and which value a
cursor is on. PyYAML's composer gives both marks for every node without constructing
anything (no tag runs). Positions here are 0-based (line, column in code points); the LSP's
UTF-16 columns are made from them at the edge (`Text`).
"""
from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass, field
from typing import Any, Iterator, Optional, Union

import yaml

from specc.loader import MAX_BYTES, MAX_NODES

Path = tuple[Union[str, int], ...]
Pos = tuple[int, int]

if yaml.__with_libyaml__:
    _Loader: Any = yaml.CSafeLoader
else:  # pragma: no cover - depends on how PyYAML was built
    _Loader = yaml.SafeLoader


class Text:
    """A document's lines, for turning code-point columns into UTF-16 ones and back."""

    def __init__(self, source: str) -> None:
        self.lines = source.split("\n")

    def line(self, n: int) -> str:
        return self.lines[n] if 0 <= n < len(self.lines) else ""

    def to_utf16(self, pos: Pos) -> Pos:
        line, col = pos
        head = self.line(line)[:col]
        return line, col + sum(1 for c in head if ord(c) > 0xFFFF)

    def from_utf16(self, pos: Pos) -> Pos:
        line, units = pos
        col = 0
        for c in self.line(line):
            units -= 2 if ord(c) > 0xFFFF else 1
            if units < 0:
                break
            col += 1
        return line, col


@dataclass(frozen=True)
class Scalar:
    """One scalar of the text: a mapping key (`key`) or a value, at `path` in the data."""

    path: Path
    key: bool
    value: str
    start: Pos
    end: Pos

    def covers(self, pos: Pos) -> bool:
        return self.start <= pos <= self.end


@dataclass
class Index:
    """Every scalar of a document with its range, and every node's end by its start."""

    scalars: list[Scalar] = field(default_factory=list)
    ends: dict[Pos, Pos] = field(default_factory=dict)   # node start -> the smallest node's end
    data: Any = None                                     # the plain data, scalars as strings
    _by_path: Optional[dict] = field(default=None, repr=False)

    def at(self, pos: Pos) -> Optional[Scalar]:
        """The scalar under the cursor (a key before a value when both touch it)."""
        starts = [s.start for s in self.scalars]
        k = bisect_right(starts, pos)
        for s in reversed(self.scalars[max(0, k - 2):k]):
            if s.covers(pos):
                return s
        return None

    def end_of(self, start: Pos) -> Optional[Pos]:
        return self.ends.get(start)

    def find(self, path: Path, key: bool = False) -> Optional[Scalar]:
        """The scalar at `path` (its key, with `key`); None when it is not a scalar."""
        if self._by_path is None:
            self._by_path = {(s.path, s.key): s for s in self.scalars}
        return self._by_path.get((path, key))

    def __iter__(self) -> Iterator[Scalar]:
        return iter(self.scalars)


def index(source: str) -> Optional[Index]:
    """The index of a text; None when it is not well-formed YAML (or too large to index)."""
    if len(source) > MAX_BYTES:
        return None
    try:
        root = yaml.compose(source, Loader=_Loader)
    except (yaml.YAMLError, ValueError, RecursionError):
        return None
    out = Index()
    if root is not None:
        try:
            out.data = _walk(root, (), out, set(), [0])
        except _TooMany:
            return None
    out.scalars.sort(key=lambda s: (s.start, not s.key))
    return out


def _mark(m: Any) -> Pos:
    return m.line, m.column


def _note(out: Index, node: Any) -> None:
    start, end = _mark(node.start_mark), _mark(node.end_mark)
    old = out.ends.get(start)
    if old is None or end < old:
        out.ends[start] = end


def _walk(node: Any, path: Path, out: Index, seen: set[int], count: list[int]) -> Any:
    count[0] += 1
    if count[0] > MAX_NODES:
        raise _TooMany
    _note(out, node)
    if isinstance(node, yaml.ScalarNode):
        out.scalars.append(Scalar(path, False, node.value, _mark(node.start_mark),
                                  _mark(node.end_mark)))
        return node.value
    if id(node) in seen:               # an alias: its anchor was walked once already
        return None
    seen.add(id(node))
    if isinstance(node, yaml.SequenceNode):
        return [_walk(item, (*path, i), out, seen, count) for i, item in enumerate(node.value)]
    data: dict = {}
    for key, value in node.value:
        name = key.value if isinstance(key, yaml.ScalarNode) else None
        if name is None:
            continue
        _note(out, key)
        out.scalars.append(Scalar((*path, name), True, name, _mark(key.start_mark),
                                  _mark(key.end_mark)))
        data[name] = _walk(value, (*path, name), out, seen, count)
    return data


class _TooMany(Exception):
    """More nodes than the loader would read: no index."""
