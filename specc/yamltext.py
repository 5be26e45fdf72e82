"""The spec file as text, around the YAML parser: the bytes decoded as UTF-8 (a BOM, NUL bytes
and invalid bytes located), line lengths, PyYAML's syntax errors made readable, and where a
too-deep nesting opens when libyaml refuses it before specc's own count does. The size limits
of a spec file live here; specc.loader applies them.
"""
from __future__ import annotations

import re
from typing import Any, Final

import yaml

from specc.errors import Span, SpecError, quote

MAX_BYTES: Final = 1_000_000  # file size limit (refused before reading it all)
MAX_DEPTH: Final = 64  # nesting depth limit (mappings and lists)
MAX_NODES: Final = 100_000  # values in the document, counting every alias expansion
MAX_SCALAR: Final = 10_000  # longest scalar, in characters
MAX_LINE: Final = 2 * MAX_SCALAR  # longest line (room for a key beside a longest scalar)


_BOM: Final = b"\xef\xbb\xbf"
# Characters YAML allows in a stream (YAML 1.2, 5.1); anything else is binary data.
_NOT_PRINTABLE: Final = re.compile(
    "[^\t\n\r\x20-\x7e\x85\xa0-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]"
)


def too_large_file(file: str) -> SpecError:
    return SpecError.at(
        Span(file), f"the file is too large (the limit is {MAX_BYTES:,} bytes)", "file-too-large"
    )


def position(text: str | bytes, index: int) -> tuple[int, int]:
    """1-based (line, column) of `index`; for bytes the column counts UTF-8 characters."""
    newline = "\n" if isinstance(text, str) else b"\n"
    line_start = text.rfind(newline, 0, index) + 1  # type: ignore[arg-type]
    before = text[line_start:index]
    column = len(before.decode("utf-8", "replace") if isinstance(before, bytes) else before)
    return text.count(newline, 0, index) + 1, column + 1  # type: ignore[arg-type]


def decode(data: bytes, file: str) -> str:
    if data.startswith(_BOM):
        data = data[len(_BOM) :]
    elif data[:2] in (b"\xff\xfe", b"\xfe\xff"):
        raise SpecError.at(Span(file), "not UTF-8 text (UTF-16 byte-order mark)", "encoding")
    nul = data.find(b"\0")
    if nul >= 0:
        line, column = position(data, nul)
        message = "binary data, not text (found a NUL byte)"
        raise SpecError.at(Span(file, line, column), message, "encoding")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line, column = position(data, exc.start)
        raise SpecError.at(
            Span(file, line, column),
            f"not UTF-8 text (invalid byte 0x{data[exc.start]:02x})",
            "encoding",
        ) from None


def bad_character(text: str, file: str) -> tuple[Span, str]:
    """Locate the first character that YAML does not allow (after a reader error)."""
    found = _NOT_PRINTABLE.search(text)
    if found is None:  # pragma: no cover - the reader refused something the pattern allows
        return Span(file), "binary data, not text"
    line, column = position(text, found.start())
    return Span(file, line, column), f"binary data, not text (found {quote(found.group())})"


def check_lines(text: str, file: str) -> None:
    for number, line in enumerate(text.splitlines(), 1):
        if len(line) > MAX_LINE:
            raise SpecError.at(
                Span(file, number, 1),
                f"line too long ({len(line):,} characters; the limit is {MAX_LINE:,})",
                "yaml-too-large",
            )


def mark_span(file: str, mark: Any) -> Span:
    return Span(file, mark.line + 1, mark.column + 1) if mark is not None else Span(file)


def syntax_message(exc: yaml.MarkedYAMLError, text: str) -> str:
    """PyYAML's problem text, made readable: the character named, the context located."""
    problem = exc.problem or "cannot parse this text"
    mark = exc.problem_mark
    char = char_at(text, mark.line, mark.column) if mark is not None else None
    if problem == "found character that cannot start any token" and char:
        problem = f"found character {char!r} that cannot start any token"  # libyaml omits it
    message = f"invalid YAML: {problem}"
    if char == "\t" or re.search(r"\btab\b", problem):
        return message + "; indent with spaces, not tabs"
    context, where = exc.context, exc.context_mark
    if context and where is not None and mark is not None and where.line != mark.line:
        message += f" ({context} that starts at line {where.line + 1})"
    from specc.hints import syntax_hint

    if mark is None:
        return message + syntax_hint(problem)
    return message + syntax_hint(problem, text.splitlines(), mark.line, mark.column)


def char_at(text: str, line: int, column: int) -> str | None:
    lines = text.splitlines()
    if 0 <= line < len(lines) and 0 <= column < len(lines[line]):
        return lines[line][column]
    return None




_BLANK: Final = frozenset(" \t\r\n")


def deep_opening(text: str, start: int, end: int, depth: int) -> int | None:
    """Index of the '[' or '{' in text[start:end] that opens level MAX_DEPTH + 1, or None.

    `depth` containers are open at `start`.  A flow-context scan: quoted scalars, comments and
    tags are skipped; anything it misjudges is caught by the parse that confirms its answer.
    """
    i, token_start = start, True
    while i < end:
        ch = text[i]
        if ch in "[{":
            if depth >= MAX_DEPTH:
                return i
            depth, token_start = depth + 1, True
        elif ch in "]}":
            depth, token_start = depth - 1, False
        elif ch == ",":
            token_start = True
        elif ch in _BLANK:
            pass
        elif ch == "#" and (i == 0 or text[i - 1] in _BLANK):
            newline = text.find("\n", i, end)
            i = end if newline < 0 else newline
            continue
        elif token_start and ch in "'\"":
            i = quoted_end(text, i, end)
            token_start = False
            continue
        elif token_start and ch == "!":  # a tag: its URI may hold brackets
            while i < end and text[i] not in _BLANK and text[i] != ",":
                i += 1
            continue
        elif ch in ":?" and (i + 1 >= end or text[i + 1] in _BLANK or text[i + 1] in ",[]{}"):
            token_start = True
        else:
            token_start = False  # inside a plain scalar
        i += 1
    return None


def quoted_end(text: str, i: int, end: int) -> int:
    """Index just past the quoted scalar that starts at text[i] (`end` if it runs past)."""
    quote_char = text[i]
    j = i + 1
    while j < end:
        ch = text[j]
        if quote_char == '"' and ch == "\\":
            j += 2
            continue
        if ch == quote_char:
            if quote_char == "'" and j + 1 < end and text[j + 1] == "'":
                j += 2  # '' is a quote inside a single-quoted scalar
                continue
            return j + 1
        j += 1
    return end
