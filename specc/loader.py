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
from specc.scalars import (MERGE_KEY, MISSING, PLAIN, BadNumber, kind_of, number_problem,
                           resolve_plain, tag_problem)
from specc.yamltext import (MAX_BYTES, MAX_DEPTH, MAX_LINE, MAX_NODES, MAX_SCALAR, bad_character,
                            check_lines, decode, deep_opening, mark_span, syntax_message,
                            too_large_file)

__all__ = [
    "MAX_BYTES",
    "MAX_DEPTH",
    "MAX_NODES",
    "MAX_SCALAR",
    "Document",
    "load_file",
    "load_text",
]

Path = tuple[Union[str, int], ...]

if yaml.__with_libyaml__:
    from yaml.cyaml import CParser as _Parser  # type: ignore[attr-defined]
else:  # pragma: no cover - depends on how PyYAML was built
    _Parser = yaml.SafeLoader  # type: ignore[assignment,misc]


# ---------------------------------------------------------------------------------- Document


class _SpanMap(Mapping[Path, Span]):
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

        Returns the path in span space (aliases followed) and whether it ends on a mapping
        entry: the last step was a key, and nothing after it was missing from a container
        (a tag skipped below a scalar keeps the entry; a missing key points at its mapping).
        """
        node = self.data
        where: Path = ()
        keyed = False
        aliases = self.aliases
        for element in path:
            if isinstance(node, dict):
                found = isinstance(element, str) and element in node
            elif isinstance(node, list):
                found = (
                    isinstance(element, int)
                    and not isinstance(element, bool)
                    and 0 <= element < len(node)
                )
            else:
                continue  # below a scalar: a union tag or the like
            if not found:
                keyed = False
                continue
            keyed = isinstance(node, dict)
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
                raise too_large_file(file)
            data = stream.read(MAX_BYTES + 1)
    except (OSError, ValueError) as exc:  # ValueError: a NUL in the path
        reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
        raise SpecError.at(
            Span(file), f"cannot read the file: {reason[:1].lower()}{reason[1:]}", "io"
        ) from None
    return load_text(data, file)


def load_text(text: str | bytes, file: str) -> Document:
    """Load spec text (str, or bytes that must be UTF-8); raises SpecError with every problem."""
    if len(text) > MAX_BYTES:
        raise too_large_file(file)
    if isinstance(text, (bytes, bytearray, memoryview)):
        text = decode(bytes(text), file)
    elif text.startswith("\ufeff"):
        text = text[1:]
    if len(text) > MAX_LINE:
        check_lines(text, file)
    collector = Collector(file)
    parser = None
    try:
        parser = _Parser(text)
        return _build(parser, file, collector)
    except _Stop:
        pass
    except _Refused as refused:
        raise _nesting_refused(text, file, refused, collector) from None
    except yaml.MarkedYAMLError as exc:
        span = mark_span(file, exc.problem_mark)
        collector.error(span, syntax_message(exc, text), "yaml-syntax")
    except (yaml.YAMLError, UnicodeError):  # reader errors: characters YAML does not allow
        collector.error(*bad_character(text, file), "encoding")
    except (RecursionError, MemoryError, ValueError, TypeError) as exc:  # pragma: no cover
        message = f"cannot read this file as YAML ({type(exc).__name__})"
        collector.error(Span(file), message, "yaml-syntax")
    finally:
        if parser is not None:
            parser.dispose()
    raise SpecError(collector.diagnostics) from None


def _too_long(value: str) -> str:
    return f"value too long ({len(value):,} characters; the limit is {MAX_SCALAR:,})"


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


def _too_many() -> str:
    limit = f"{MAX_NODES:,}"
    return f"the file has too many values (the limit is {limit}, counting each alias expansion)"


def _too_deep() -> str:
    return f"nesting is too deep (the limit is {MAX_DEPTH} levels)"


def _key_problem(value: Any, raw: str | None) -> str:
    hint = f" (write it in quotes: {quote(raw)})" if raw is not None else ""
    return f"mapping keys must be strings, not {kind_of(value)}{hint}"


def _build(parser: Any, file: str, collector: Collector) -> Document:
    """One pass over the parser's events: data, spans, and every problem found.

    The container being filled lives in local variables (it is the hot path); its parents
    wait on `stack`.  Outside the document's root the "container" is a pseudo-root (None).
    """

    def error(mark: Any, message: str, code: str) -> None:
        collector.error(Span(file, mark.line + 1, mark.column + 1), message, code)

    def fatal(mark: Any, message: str, code: str) -> _Stop:
        error(mark, message, code)
        return _Stop()

    def take_key(value: Any, mark: Any, container: dict, path: Path, raw: str | None = None,
                 plain: bool = False) -> Any:
        """A mapping key just read: the key the next value goes under, or _SKIP if refused."""
        if value.__class__ is not str:
            error(mark, _key_problem(value, raw), "key-type")
            return _SKIP
        if value in container:
            first = key_spans[path + (value,)]
            error(mark, f"duplicate key {quote(value)} (first at line {first.line + 1})",
                  "duplicate-key")
            return _SKIP
        if plain and value == "<<":
            error(mark, MERGE_KEY, "merge-key")
            return _SKIP
        key_spans[path + (value,)] = mark
        return value

    # Hot-loop names as locals (read here, so tests may patch the module's limits).
    get_event = parser.get_event
    plain_get = PLAIN.get
    scalar_event = ScalarEvent
    max_nodes, max_scalar = MAX_NODES, MAX_SCALAR
    missing, no_key, skip = MISSING, _NO_KEY, _SKIP
    stack: list[tuple[Any, ...]] = []
    # path -> parser mark; a path holds _SKIP only under a refused key (never returned)
    spans: dict[tuple[Any, ...], Any] = {}
    key_spans: dict[tuple[Any, ...], Any] = {}
    aliases: dict[Path, Path] = {}
    anchors: dict[str, tuple[Any, int, int, Path | None]] = {}  # name: value, size, height, path
    count = 0  # values so far, aliases expanded
    documents = 0
    root: Any = MISSING
    root_mark: Any = None
    root_empty = False
    # The container being filled (a dict or list; None outside the root) and its state.
    container: Any = None
    path: tuple[Any, ...] = ()
    is_map = False
    key: Any = _NO_KEY  # in a mapping: _NO_KEY, the pending key, or _SKIP (drop the value)
    height = 0  # deepest container nesting below it
    start_mark: Any = None
    anchor: str | None = None
    start = 0  # `count` before it began, for its anchor's expanded size

    event = None
    while True:
        try:
            event = get_event()
        except yaml.MarkedYAMLError as exc:
            if _PARSER_TOO_DEEP not in (exc.problem or ""):
                raise
            raise _Refused(exc, len(stack), event) from None
        kind = event.__class__

        if kind is scalar_event:  # the hot path: most events are scalars
            mark = event.start_mark
            value = event.value
            count += 1
            if count > max_nodes:
                raise fatal(mark, _too_many(), "yaml-too-large")
            if len(value) > max_scalar:
                error(mark, _too_long(value), "yaml-too-large")
            if event.tag is not None:
                error(mark, tag_problem(event.tag), "yaml-tag")
            elif event.implicit[0]:  # plain: the YAML 1.2 core schema
                resolved = plain_get(value, missing)
                if resolved is not missing:
                    value = resolved
                else:
                    try:
                        value = resolve_plain(value)
                    except BadNumber:
                        if not (is_map and key is no_key):  # (a key gets "keys must be strings")
                            error(mark, number_problem(value), "yaml-number")
                        value = math.nan
            if event.anchor is not None:
                anchors[event.anchor] = (value, 1, 0, None)
            if is_map:
                if key is no_key:
                    key = take_key(value, mark, container, path, event.value,
                                   bool(event.implicit[0]))
                    continue
                if key is not skip:
                    container[key] = value
                spans[path + (key,)] = mark
                key = no_key
            elif container is not None:
                spans[path + (len(container),)] = mark
                container.append(value)
            else:
                spans[()] = mark
                root, root_mark = value, mark
                root_empty = value is None and event.value == "" and bool(event.implicit[0])
            continue

        if kind is MappingStartEvent or kind is SequenceStartEvent:
            mark = event.start_mark
            count += 1
            if count > MAX_NODES:
                raise fatal(mark, _too_many(), "yaml-too-large")
            if len(stack) >= MAX_DEPTH:
                raise fatal(mark, _too_deep(), "yaml-too-deep")
            if event.tag is not None:
                error(mark, tag_problem(event.tag), "yaml-tag")
            if is_map:
                child = path + (_SKIP if key is _NO_KEY else key,)  # a key: checked when complete
            elif container is not None:
                child = path + (len(container),)
            else:
                child = ()
            spans[child] = mark
            stack.append((container, path, is_map, key, height, start_mark, anchor, start))
            is_map = kind is MappingStartEvent
            container = {} if is_map else []
            path, key, height, start_mark = child, _NO_KEY, 0, mark
            anchor, start = event.anchor, count - 1
            continue

        if kind is MappingEndEvent or kind is SequenceEndEvent:
            value, mark, value_height = container, start_mark, height + 1
            if anchor is not None:
                anchors[anchor] = (value, count - start, value_height, path)
            container, path, is_map, key, height, start_mark, anchor, start = stack.pop()
            alias = False
            target = None
        elif kind is AliasEvent:
            mark = event.start_mark
            name = event.anchor
            entry = anchors.get(name)
            if entry is None:
                if anchor == name or any(frame[6] == name for frame in stack):
                    error(mark, f"alias {quote('*' + name)} refers to a block that contains it",
                          "yaml-alias")
                else:
                    error(mark, f"unknown anchor {quote(name)} (define it with '&' before using "
                                f"{quote('*' + name)})", "yaml-alias")
                entry = (None, 1, 0, None)
            value, size, value_height, target = entry
            count += size
            if count > MAX_NODES:
                raise fatal(mark, _too_many(), "yaml-too-large")
            if len(stack) + value_height > MAX_DEPTH:
                raise fatal(mark, _too_deep(), "yaml-too-deep")
            alias = True
        elif kind is DocumentStartEvent:
            documents += 1
            if documents > 1:
                raise fatal(event.start_mark,
                            "a spec file holds one YAML document; a second one starts here",
                            "multi-document")
            continue
        elif kind is StreamEndEvent:
            break
        else:  # stream start, document end
            continue

        # A finished container, or an alias: place it.
        if height < value_height:
            height = value_height
        if is_map:
            if key is _NO_KEY:
                key = take_key(value, mark, container, path)
                continue
            if key is not _SKIP:
                container[key] = value
            child = path + (key,)
            key = _NO_KEY
        elif container is not None:
            child = path + (len(container),)
            container.append(value)
        else:
            child = ()
            root, root_mark = value, mark
        if alias:
            spans[child] = mark
            if target is not None:
                aliases[child] = target

    if root is MISSING or root_empty:
        collector.error(Span(file), "the file is empty; a spec starts with 'specc: 1'", "empty")
    elif not isinstance(root, dict):
        error(root_mark, f"a spec is a mapping at the top level, not {kind_of(root)}", "top-level")
    collector.raise_if_any()
    return Document(file, root, _SpanMap(file, spans), _SpanMap(file, key_spans), aliases)


# ------------------------------------------------------------------- the parser's own limit

#: libyaml (bundled with PyYAML >= 6.0.2 wheels) refuses more than 1,000 nested levels itself.
_PARSER_TOO_DEEP: Final = "exceeded maximum nesting depth"


class _Refused(Exception):
    """The parser refused the nesting before specc's own check saw it (it reads ahead)."""

    def __init__(self, error: yaml.MarkedYAMLError, depth: int, last: Any) -> None:
        super().__init__(error.problem)
        self.error = error
        self.depth = depth  # containers open after the last event delivered
        self.last = last  # that event (None: none yet)


def _nesting_refused(text: str, file: str, refused: _Refused, collector: Collector) -> SpecError:
    """specc's own depth diagnostic, where specc's check stops, whatever libyaml refused.

    libyaml looks ahead up to 1,024 characters on a line for a possible mapping key, so on a
    line of brackets it can meet its own limit before delivering the events that specc counts.
    The opening that passes MAX_DEPTH is found by a light scan after the last event delivered,
    then confirmed by parsing the text up to it: specc's check fires there, exactly as with a
    parser that has no limit of its own.  When that fails, the refusal keeps libyaml's place.
    """
    start = refused.last.end_mark.index if refused.last is not None else 0
    mark = refused.error.problem_mark
    end = mark.index if mark is not None else len(text)
    cut = deep_opening(text, start, end, refused.depth)
    if cut is not None:
        retry = Collector(file)
        parser = _Parser(text[: cut + 1])
        try:
            _build(parser, file, retry)
        except (_Stop, _Refused, yaml.YAMLError, SpecError):
            pass
        finally:
            parser.dispose()
        if retry.diagnostics and retry.diagnostics[-1].code == "yaml-too-deep":
            return SpecError(retry.diagnostics)
    collector.error(mark_span(file, mark), _too_deep(), "yaml-too-deep")
    return SpecError(collector.diagnostics)
