"""YAML text -> plain data + a location for every value; safe only.

The loader reads PyYAML's *events* (libyaml when available) and builds dicts, lists and
scalars itself in one iterative pass: no PyYAML constructor or resolver ever runs, so no tag
can construct anything.  Plain scalars follow the YAML 1.2 core schema (`on`/`no` stay
strings).  Every problem (duplicate keys, tags, merge keys, ...) becomes a located diagnostic;
all of them are raised together as one `SpecError`.  Sizes are bounded before anything large is
built: bytes, line and scalar length, nesting depth, and values counted with aliases expanded.
"""
from __future__ import annotations

import math
import os
import re
import stat
from dataclasses import dataclass, field
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Final, Union

import yaml
from yaml.events import (
    AliasEvent,
    DocumentStartEvent,
    MappingEndEvent,
    MappingStartEvent,
    ScalarEvent,
    SequenceEndEvent,
    SequenceStartEvent,
    StreamEndEvent,
)

from specc.errors import Collector, Span, SpecError, quote

__all__ = [
    "MAX_BYTES",
    "MAX_DEPTH",
    "MAX_NODES",
    "MAX_SCALAR",
    "Document",
    "load_file",
    "load_text",
]

MAX_BYTES: Final = 1_000_000  # file size limit (refused before reading it all)
MAX_DEPTH: Final = 64  # nesting depth limit (mappings and lists)
MAX_NODES: Final = 100_000  # values in the document, counting every alias expansion
MAX_SCALAR: Final = 10_000  # longest scalar and longest line, in characters
MAX_DIGITS: Final = 100  # longest integer literal

Path = tuple[Union[str, int], ...]

if yaml.__with_libyaml__:
    from yaml.cyaml import CParser as _Parser
else:  # pragma: no cover - depends on how PyYAML was built
    _Parser = yaml.SafeLoader  # type: ignore[assignment,misc]


# ---------------------------------------------------------------------------------- Document


class _SpanMap(Mapping):
    """path -> Span, made on access from the parser's marks (cheaper than a Span per value)."""

    __slots__ = ("_file", "_marks")

    def __init__(self, file: str, marks: dict[Path, Any]) -> None:
        self._file = file
        self._marks = marks

    def __getitem__(self, path: Path) -> Span:
        mark = self._marks[path]
        return Span(self._file, mark.line + 1, mark.column + 1)

    def __contains__(self, path: object) -> bool:
        return path in self._marks

    def __iter__(self) -> Iterator[Path]:
        return iter(self._marks)

    def __len__(self) -> int:
        return len(self._marks)

    def __repr__(self) -> str:
        return f"<{len(self._marks)} spans in {self._file!r}>"


@dataclass(frozen=True)
class Document:
    """A loaded spec file: its data and where each value (and each mapping key) starts.

    An alias shares its anchor's value object; `spans` holds the alias's own position, and
    `aliases` maps that path to the anchor's path so that `span()` of anything under an alias
    points into the anchored block.
    """

    file: str
    data: Any
    spans: Mapping[Path, Span]
    key_spans: Mapping[Path, Span]
    aliases: Mapping[Path, Path] = field(default_factory=dict, repr=False)

    def _resolve(self, path: Sequence[str | int]) -> tuple[Path, bool]:
        """Walk `path` through the data, skipping elements that are not there.

        Returns the path in span space (aliases followed) and whether its last step was a
        mapping key.
        """
        node = self.data
        where: Path = ()
        keyed = False
        aliases = self.aliases
        for element in path:
            if isinstance(node, dict):
                if not isinstance(element, str) or element not in node:
                    continue
                keyed = True
            elif isinstance(node, list):
                if (
                    not isinstance(element, int)
                    or isinstance(element, bool)
                    or not 0 <= element < len(node)
                ):
                    continue
                keyed = False
            else:
                continue
            node = node[element]
            where = aliases.get(where, where) + (element,)
        return where, keyed

    def span(self, path: Sequence[str | int]) -> Span:
        """Where the value at `path` starts; a missing key gives its parent mapping's span."""
        where, _ = self._resolve(path)
        return self._span_at(where)

    def key_span(self, path: Sequence[str | int]) -> Span:
        """Where the key naming the value at `path` starts; `span(path)` if it has no key."""
        where, keyed = self._resolve(path)
        if keyed and where in self.key_spans:
            return self.key_spans[where]
        return self._span_at(where)

    def _span_at(self, where: Path) -> Span:
        spans = self.spans
        while where not in spans and where:
            where = where[:-1]
        return spans[where] if where in spans else Span(self.file)


# ------------------------------------------------------------------------------ public loaders


def load_file(path: str | os.PathLike[str]) -> Document:
    """Load a spec file; diagnostics name the file exactly as `path` was given."""
    file = os.fspath(path)
    if isinstance(file, bytes):  # pragma: no cover - bytes paths are unusual
        file = os.fsdecode(file)
    try:
        with open(file, "rb") as stream:
            info = os.fstat(stream.fileno())
            if stat.S_ISDIR(info.st_mode):  # pragma: no cover - open() already refuses on POSIX
                raise IsADirectoryError(21, "Is a directory")
            if stat.S_ISREG(info.st_mode) and info.st_size > MAX_BYTES:
                raise _too_large_file(file)
            data = stream.read(MAX_BYTES + 1)
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise SpecError.at(
            Span(file), f"cannot read the file: {reason[:1].lower()}{reason[1:]}", "io"
        ) from None
    return load_text(data, file)


def load_text(text: str | bytes, file: str) -> Document:
    """Load spec text (str, or bytes that must be UTF-8); raises SpecError with every problem."""
    if len(text) > MAX_BYTES:
        raise _too_large_file(file)
    if isinstance(text, (bytes, bytearray, memoryview)):
        text = _decode(bytes(text), file)
    elif text.startswith("\ufeff"):
        text = text[1:]
    if len(text) > MAX_SCALAR:
        _check_lines(text, file)
    collector = Collector(file)
    parser = _Parser(text)
    try:
        return _build(parser, file, collector)
    except _Stop:
        pass
    except yaml.MarkedYAMLError as exc:
        collector.error(_mark_span(file, exc.problem_mark), _syntax_message(exc, text), "yaml-syntax")
    except (yaml.YAMLError, UnicodeError):  # reader errors: characters YAML does not allow
        collector.error(*_bad_character(text, file), "encoding")
    except (RecursionError, MemoryError, ValueError, TypeError) as exc:  # pragma: no cover
        collector.error(Span(file), f"cannot read this file as YAML ({type(exc).__name__})", "yaml-syntax")
    finally:
        parser.dispose()
    raise SpecError(collector.diagnostics) from None


# ---------------------------------------------------------------------------- text, bytes, lines

_BOM: Final = b"\xef\xbb\xbf"
# Characters YAML allows in a stream (YAML 1.2, 5.1); anything else is binary data.
_NOT_PRINTABLE: Final = re.compile(
    "[^\t\n\r\x20-\x7e\x85\xa0-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]"
)


def _too_large_file(file: str) -> SpecError:
    return SpecError.at(
        Span(file), f"the file is too large (the limit is {MAX_BYTES:,} bytes)", "file-too-large"
    )


def _position(text: str | bytes, index: int) -> tuple[int, int]:
    """1-based (line, column) of `index`; for bytes the column counts UTF-8 characters."""
    newline = "\n" if isinstance(text, str) else b"\n"
    line_start = text.rfind(newline, 0, index) + 1  # type: ignore[arg-type]
    before = text[line_start:index]
    column = len(before.decode("utf-8", "replace") if isinstance(before, bytes) else before)
    return text.count(newline, 0, index) + 1, column + 1  # type: ignore[arg-type]


def _decode(data: bytes, file: str) -> str:
    if data.startswith(_BOM):
        data = data[len(_BOM) :]
    nul = data.find(b"\0")
    if nul >= 0:
        line, column = _position(data, nul)
        raise SpecError.at(Span(file, line, column), "binary data, not text (found a NUL byte)", "encoding")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line, column = _position(data, exc.start)
        raise SpecError.at(
            Span(file, line, column),
            f"not UTF-8 text (invalid byte 0x{data[exc.start]:02x})",
            "encoding",
        ) from None


def _bad_character(text: str, file: str) -> tuple[Span, str]:
    """Locate the first character that YAML does not allow (after a reader error)."""
    found = _NOT_PRINTABLE.search(text)
    if found is None:  # pragma: no cover - the reader refused something the pattern allows
        return Span(file), "binary data, not text"
    line, column = _position(text, found.start())
    return Span(file, line, column), f"binary data, not text (found {quote(found.group())})"


def _check_lines(text: str, file: str) -> None:
    for number, line in enumerate(text.splitlines(), 1):
        if len(line) > MAX_SCALAR:
            raise SpecError.at(
                Span(file, number, 1),
                f"line too long ({len(line):,} characters; the limit is {MAX_SCALAR:,})",
                "yaml-too-large",
            )


def _mark_span(file: str, mark: Any) -> Span:
    return Span(file, mark.line + 1, mark.column + 1) if mark is not None else Span(file)


def _syntax_message(exc: yaml.MarkedYAMLError, text: str) -> str:
    """PyYAML's problem text, made readable: the character named, the context located."""
    problem = exc.problem or "cannot parse this text"
    mark = exc.problem_mark
    char = _char_at(text, mark.line, mark.column) if mark is not None else None
    if problem == "found character that cannot start any token" and char:
        problem = f"found character {char!r} that cannot start any token"  # libyaml omits it
    message = f"invalid YAML: {problem}"
    if char == "\t" or "tab" in problem:
        return message + "; indent with spaces, not tabs"
    context, where = exc.context, exc.context_mark
    if context and where is not None and mark is not None and where.line != mark.line:
        message += f" ({context} that starts at line {where.line + 1})"
    return message


def _char_at(text: str, line: int, column: int) -> str | None:
    lines = text.splitlines()
    if 0 <= line < len(lines) and 0 <= column < len(lines[line]):
        return lines[line][column]
    return None


# ------------------------------------------------------------------------------ plain scalars

_MISSING: Final = object()
_CONSTANTS: Final[dict[str, Any]] = {
    "": None, "~": None, "null": None, "Null": None, "NULL": None,
    "true": True, "True": True, "TRUE": True,
    "false": False, "False": False, "FALSE": False,
    **{sign + inf: sign_value * math.inf
       for sign, sign_value in (("", 1), ("+", 1), ("-", -1))
       for inf in (".inf", ".Inf", ".INF")},
    ".nan": math.nan, ".NaN": math.nan, ".NAN": math.nan,
}  # fmt: skip
_NUMBER_START: Final = frozenset("0123456789+-.")
_INT: Final = re.compile(r"[-+]?[0-9]+")
_FLOAT: Final = re.compile(r"[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?")
_OCT_HEX: Final = re.compile(r"0o[0-7]+|0x[0-9a-fA-F]+")


class _BadNumber(Exception):
    pass


def _number(text: str) -> Any:
    """A plain scalar that starts like a number: int, float, or the string itself."""
    if _INT.fullmatch(text):
        if len(text.lstrip("+-")) > MAX_DIGITS:
            raise _BadNumber
        return int(text)
    if _FLOAT.fullmatch(text):
        value = float(text)
        if math.isinf(value):
            raise _BadNumber
        return value
    if _OCT_HEX.fullmatch(text):
        if len(text) - 2 > MAX_DIGITS:
            raise _BadNumber
        return int(text[2:], 8 if text[1] == "o" else 16)
    return text


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return "a string"


def _tag_text(tag: str) -> str:
    return "!!" + tag[18:] if tag.startswith("tag:yaml.org,2002:") else tag


# ----------------------------------------------------------------------------------- builder


class _Stop(Exception):
    """A fatal problem was collected; stop reading."""


class _Key:
    """Marker for a mapping's state: waiting for a key, or dropping the next value."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return self.name


_NO_KEY: Final = _Key("<no key>")
_SKIP: Final = _Key("<skip>")


class _Frame:
    """A mapping or list being built."""

    __slots__ = ("container", "path", "is_map", "key", "mark", "anchor", "start", "height")

    def __init__(self, container: Any, path: Path, is_map: bool, mark: Any, anchor: str | None, start: int) -> None:
        self.container = container
        self.path = path
        self.is_map = is_map
        self.key: Any = _NO_KEY
        self.mark = mark
        self.anchor = anchor
        self.start = start  # values counted before this one (for an anchor's expanded size)
        self.height = 0  # deepest nesting of containers inside


def _build(parser: Any, file: str, collector: Collector) -> Document:
    """One pass over the parser's events: data, spans, and every problem found."""

    def error(mark: Any, message: str, code: str) -> None:
        collector.error(Span(file, mark.line + 1, mark.column + 1), message, code)

    def fatal(mark: Any, message: str, code: str) -> _Stop:
        error(mark, message, code)
        return _Stop()

    get_event = parser.get_event
    stack: list[_Frame] = []
    spans: dict[Path, Any] = {}
    key_spans: dict[Path, Any] = {}
    aliases: dict[Path, Path] = {}
    anchors: dict[str, tuple[Any, int, int, Path | None]] = {}  # name -> value, size, height, path
    count = 0
    documents = 0
    root: Any = _MISSING
    root_mark: Any = None
    root_empty = False

    while True:
        event = get_event()
        kind = event.__class__
        mark = event.start_mark
        top = stack[-1] if stack else None
        as_key = top is not None and top.is_map and top.key is _NO_KEY

        if kind is ScalarEvent:
            count += 1
            if count > MAX_NODES:
                raise fatal(mark, _TOO_MANY, "yaml-too-large")
            value = event.value
            if len(value) > MAX_SCALAR:
                error(mark, f"value too long ({len(value):,} characters; the limit is {MAX_SCALAR:,})",
                      "yaml-too-large")
            if event.tag is not None:
                error(mark, f"tags are not allowed in a spec ({quote(_tag_text(event.tag))})", "yaml-tag")
            elif event.implicit[0]:  # plain: YAML 1.2 core schema
                if as_key and value == "<<":
                    error(mark, "merge keys ('<<') are not part of YAML 1.2; write the keys out", "merge-key")
                    top.key = _SKIP  # type: ignore[union-attr]
                    continue
                constant = _CONSTANTS.get(value, _MISSING)
                if constant is not _MISSING:
                    value = constant
                elif value[0] in _NUMBER_START:
                    try:
                        value = _number(value)
                    except _BadNumber:
                        if not as_key:
                            error(mark, f"number out of range: {quote(value)} (quote it if it is text)",
                                  "yaml-number")
                        value = 0
            if event.anchor is not None:
                anchors[event.anchor] = (value, 1, 0, None)  # a scalar has nothing under it
            if top is None:
                root_empty = value is None and event.value == "" and event.implicit[0]
            height = 0
            target: Path | None = None
        elif kind is MappingStartEvent or kind is SequenceStartEvent:
            count += 1
            if count > MAX_NODES:
                raise fatal(mark, _TOO_MANY, "yaml-too-large")
            if len(stack) >= MAX_DEPTH:
                raise fatal(mark, f"nesting is too deep (the limit is {MAX_DEPTH} levels)", "yaml-too-deep")
            if event.tag is not None:
                error(mark, f"tags are not allowed in a spec ({quote(_tag_text(event.tag))})", "yaml-tag")
            if top is None:
                path: Path = ()
            elif as_key:
                path = top.path + (_SKIP,)  # type: ignore[operator]
            elif top.is_map:
                path = top.path + (top.key,)
            else:
                path = top.path + (len(top.container),)
            if not as_key:
                spans[path] = mark
            is_map = kind is MappingStartEvent
            stack.append(_Frame({} if is_map else [], path, is_map, mark, event.anchor, count - 1))
            continue
        elif kind is MappingEndEvent or kind is SequenceEndEvent:
            frame = stack.pop()
            value, mark = frame.container, frame.mark
            height = frame.height + 1
            if frame.anchor is not None:
                anchors[frame.anchor] = (value, count - frame.start, height, frame.path)
            top = stack[-1] if stack else None
            as_key = top is not None and top.is_map and top.key is _NO_KEY
            target = None
        elif kind is AliasEvent:
            name = event.anchor
            entry = anchors.get(name)
            if entry is None:
                if any(frame.anchor == name for frame in stack):
                    error(mark, f"alias {quote('*' + name)} refers to a block that contains it", "yaml-alias")
                else:
                    error(mark, f"unknown anchor {quote(name)} (define it with '&' before using "
                                f"{quote('*' + name)})", "yaml-alias")
                entry = (None, 1, 0, None)
            value, size, height, target = entry
            count += size
            if count > MAX_NODES:
                raise fatal(mark, _TOO_MANY, "yaml-too-large")
            if len(stack) + height > MAX_DEPTH:
                raise fatal(mark, f"nesting is too deep (the limit is {MAX_DEPTH} levels)", "yaml-too-deep")
        elif kind is DocumentStartEvent:
            documents += 1
            if documents > 1:
                raise fatal(mark, "a spec file holds one YAML document; a second one starts here",
                            "multi-document")
            continue
        elif kind is StreamEndEvent:
            break
        else:  # stream start, document end
            continue

        # A complete value: place it in its parent (or make it the root).
        if top is None:
            root, root_mark = value, mark
            continue
        if top.height < height:
            top.height = height
        if not top.is_map:
            path = top.path + (len(top.container),)
            top.container.append(value)
        elif as_key:
            if not isinstance(value, str):
                hint = f" (write it in quotes: {quote(event.value)})" if kind is ScalarEvent else ""
                error(mark, f"mapping keys must be strings, not {_kind(value)}{hint}", "key-type")
                top.key = _SKIP
            elif value in top.container:
                first = key_spans[top.path + (value,)]
                error(mark, f"duplicate key {quote(value)} (first at line {first.line + 1})", "duplicate-key")
                top.key = _SKIP
            else:
                top.key = value
                key_spans[top.path + (value,)] = mark
            continue
        else:
            key = top.key
            top.key = _NO_KEY
            path = top.path + (key,)
            if key is not _SKIP:
                top.container[key] = value
        if kind is not MappingEndEvent and kind is not SequenceEndEvent:
            spans[path] = mark
            if target is not None:
                aliases[path] = target

    if root is _MISSING or root_empty:
        collector.error(Span(file), "the file is empty; a spec starts with 'specc: 1'", "empty")
    elif not isinstance(root, dict):
        error(root_mark, f"a spec is a mapping at the top level, not {_kind(root)}", "top-level")
    collector.raise_if_any()
    return Document(file, root, _SpanMap(file, spans), _SpanMap(file, key_spans), aliases)


_TOO_MANY: Final = (
    f"the file has too many values (the limit is {MAX_NODES:,}, counting each alias expansion)"
)
