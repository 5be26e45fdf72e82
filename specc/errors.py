"""Diagnostics: every problem in a spec is a located, coded message; SpecError carries them all."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final, Iterable, Literal

Severity = Literal["error", "warning", "note"]

#: Longest excerpt of user input that a message may quote.
MAX_QUOTE: Final = 40


@dataclass(frozen=True, order=True)
class Span:
    """A position in a spec file; line and column are 1-based."""

    file: str
    line: int = 1
    column: int = 1


@dataclass(frozen=True)
class Diagnostic:
    """One problem: where, what, and a short stable code (mypy style)."""

    span: Span
    message: str
    code: str
    severity: Severity = "error"
    #: Further locations (severity "note"): for a problem inside a block instance, the uses
    #: that made it and the block's definition.
    notes: tuple["Diagnostic", ...] = ()
    #: For a problem inside a block instance: what makes it the same problem in every
    #: instance (the definition's place, the code, the message without the instance's
    #: name), so that it is reported once for them all (specc.provenance.dedupe).
    group: tuple | None = field(default=None, compare=False, repr=False)

    @property
    def file(self) -> str:
        return self.span.file

    @property
    def line(self) -> int:
        return self.span.line

    @property
    def column(self) -> int:
        return self.span.column

    def render(self) -> str:
        """`file:line:col: error: message  [code]`, the CLI's text format."""
        s = self.span
        head = f"{s.file}:{s.line}:{s.column}: {self.severity}: {self.message}"
        if self.severity == "note":
            return head
        return "\n".join([f"{head}  [{self.code}]", *(n.render() for n in self.notes)])

    def __str__(self) -> str:
        s = self.span
        return f"{s.file}:{s.line}:{s.column}: {self.message}"


class SpecError(Exception):
    """The one exception for a bad spec. `str()` is `file:line:col: message`, one line a problem."""

    def __init__(self, diagnostics: Iterable[Diagnostic]) -> None:
        diags = tuple(sorted(diagnostics, key=lambda d: (d.span, d.code, d.message)))
        if not diags:
            raise ValueError("SpecError needs at least one diagnostic")
        self.diagnostics: tuple[Diagnostic, ...] = diags
        super().__init__(str(self))

    @classmethod
    def at(cls, span: Span, message: str, code: str) -> SpecError:
        return cls([Diagnostic(span, message, code)])

    @property
    def first(self) -> Diagnostic:
        return self.diagnostics[0]

    @property
    def file(self) -> str:
        return self.first.file

    @property
    def line(self) -> int:
        return self.first.line

    @property
    def column(self) -> int:
        return self.first.column

    @property
    def message(self) -> str:
        return self.first.message

    @property
    def code(self) -> str:
        return self.first.code

    def __str__(self) -> str:
        return "\n".join(str(d) for d in self.diagnostics)

    def __reduce__(self):  # picklable despite the custom __init__
        return (type(self), (self.diagnostics,))


class UsageError(Exception):
    """Bad command-line use or unusable inputs other than a spec (a missing file, an .npz
    without the arrays the spec names): the CLI prints it and exits 2."""


def quote(value: object) -> str:
    """repr() of a user value, cut short so that a message never echoes a huge input."""
    text = repr(value)
    return text if len(text) <= MAX_QUOTE else text[: MAX_QUOTE - 3] + "..."


def a_(word: str) -> str:
    """`word` with its indefinite article: "a Dense", "an Embedding" (by its first letter)."""
    return f"{'an' if word[:1].lower() in 'aeiou' else 'a'} {word}"


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """` (did you mean 'x'?)` for the closest choice, or an empty string."""
    import difflib

    close = difflib.get_close_matches(str(word)[:100], list(choices), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


@dataclass
class Collector:
    """Gathers diagnostics from every stage; raises them once."""

    file: str
    diagnostics: list[Diagnostic] = field(default_factory=list)

    def error(self, span: Span, message: str, code: str) -> None:
        self.diagnostics.append(Diagnostic(span, message, code))

    def raise_if_any(self) -> None:
        if self.diagnostics:
            raise SpecError(self.diagnostics)


def keras_reason(exc: BaseException) -> str:
    """Keras's reason for an exception in one line, without the call-arguments dump it appends."""
    import re

    text = str(exc).split("\n\nArguments received", 1)[0]
    text = re.sub(r"\s+", " ", text).strip()
    return text if len(text) <= 300 else text[:297] + "..."
