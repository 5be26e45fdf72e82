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
from typing import Any, Final, Iterator, Optional, Union

import yaml

from specc.loader import MAX_BYTES, MAX_NODES

Path = tuple[Union[str, int], ...]
Pos = tuple[int, int]

if yaml.__with_libyaml__:
    _Loader: Any = yaml.CSafeLoader
else:  # pragma: no cover - depends on how PyYAML was built
    _Loader = yaml.SafeLoader


class Text:
    """A document's lines, for turning code-point columns into the client's units and back:
    the position encoding agreed at initialization (UTF-16 unless the client chose UTF-8 or
    UTF-32)."""

    def __init__(self, source: str, encoding: str = "utf-16") -> None:
        self.lines = source.split("\n")
        self.encoding = encoding

    def line(self, n: int) -> str:
        return self.lines[n] if 0 <= n < len(self.lines) else ""

    def _units(self, c: str) -> int:
        if self.encoding == "utf-8":
            return len(c.encode("utf-8", "surrogatepass"))
        if self.encoding == "utf-32":
            return 1
        return 2 if ord(c) > 0xFFFF else 1

    def to_utf16(self, pos: Pos) -> Pos:
        """`pos` (code points) in the client's units (named for the protocol's default)."""
        line, col = pos
        head = self.line(line)[:col]
        if head.isascii():
            return line, col
        return line, sum(self._units(c) for c in head)

    def from_utf16(self, pos: Pos) -> Pos:
        """A position in the client's units, in code points."""
        line, units = pos
        text = self.line(line)
        if text.isascii():
            return line, min(units, len(text))
        col = 0
        for c in text:
            units -= self._units(c)
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
    """The index of a text; None when it is not well-formed YAML (or too large to index).
    Built from the parser's events in one pass (no node tree, no tag resolution); of a
    stream of several documents, the first."""
    if len(source) > MAX_BYTES:
        return None
    out = Index()
    try:
        _build(yaml.parse(source, Loader=_Loader), out)
    except (yaml.YAMLError, ValueError, RecursionError, _TooMany):
        return None
    out.scalars.sort(key=lambda s: (s.start, not s.key))
    return out


_NO_KEY: Final = object()


class _Frame:
    """An open mapping or list: its data, path, start, and (a mapping) the key read last."""

    __slots__ = ("data", "path", "start", "key", "is_key")

    def __init__(self, data: Any, path: Path, start: Pos, is_key: bool) -> None:
        self.data, self.path, self.start, self.key = data, path, start, _NO_KEY
        self.is_key = is_key        # a collection written as a mapping key (rare)


def _build(events: Any, out: Index) -> None:
    stack: list[_Frame] = []
    count = 0
    ends = out.ends
    for event in events:
        kind = type(event)
        if kind in _SKIP:
            if kind is yaml.DocumentEndEvent:
                return
            continue
        count += 1
        if count > MAX_NODES:
            raise _TooMany
        start = (event.start_mark.line, event.start_mark.column)
        if kind is yaml.MappingEndEvent or kind is yaml.SequenceEndEvent:
            frame = stack.pop()
            end = (event.end_mark.line, event.end_mark.column)
            if frame.start not in ends or end < ends[frame.start]:
                ends[frame.start] = end
            if frame.is_key:
                stack[-1].key = "?"
            else:
                _put(stack, out, frame.data, frame.path)
            continue
        top = stack[-1] if stack else None
        as_key = top is not None and type(top.data) is dict and top.key is _NO_KEY
        if kind is yaml.ScalarEvent:
            end = (event.end_mark.line, event.end_mark.column)
            if start not in ends or end < ends[start]:
                ends[start] = end
            if as_key:
                top.key = event.value
                out.scalars.append(Scalar((*top.path, event.value), True, event.value, start,
                                          end))
                continue
            path = _child(top)
            out.scalars.append(Scalar(path, False, event.value, start, end))
            _put(stack, out, event.value, path)
        elif kind is yaml.AliasEvent:
            if as_key:
                top.key = "*"
            else:
                _put(stack, out, None, _child(top))
        else:                           # a mapping or a list starts
            data: Any = {} if kind is yaml.MappingStartEvent else []
            path = (*top.path, "?") if as_key else _child(top)
            stack.append(_Frame(data, path, start, as_key))


_SKIP: Final = (yaml.StreamStartEvent, yaml.StreamEndEvent, yaml.DocumentStartEvent,
                yaml.DocumentEndEvent)


def _child(top: Optional[_Frame]) -> Path:
    if top is None:
        return ()
    if type(top.data) is dict:
        return (*top.path, top.key)
    return (*top.path, len(top.data))


def _put(stack: list[_Frame], out: Index, value: Any, path: Path) -> None:
    """Store a finished value in its parent (the document's root in `out.data`)."""
    if not stack:
        out.data = value
        return
    top = stack[-1]
    if type(top.data) is dict:
        top.data[top.key] = value
        top.key = _NO_KEY
    else:
        top.data.append(value)


class _TooMany(Exception):
    """More nodes than the loader would read: no index."""
