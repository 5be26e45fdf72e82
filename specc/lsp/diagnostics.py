"""specc's diagnostics as LSP diagnostics: the same start, code and message as
`specc validate`, a range over the value (or key) that starts there, and the notes (the uses
of a block and its definition) as related information."""
from __future__ import annotations

from typing import Final

from lsprotocol import types as lsp

from specc.errors import Diagnostic
from specc.lsp.analysis import Analysis
from specc.lsp.yamlindex import Pos

SOURCE: Final = "specc"
_SEVERITY: Final = {"error": lsp.DiagnosticSeverity.Error,
                    "warning": lsp.DiagnosticSeverity.Warning,
                    "note": lsp.DiagnosticSeverity.Information}


def span_range(analysis: Analysis, line: int, column: int) -> lsp.Range:
    """The range of what starts at 1-based `line`:`column`: the node there (a scalar, or a
    flow collection), else the rest of that line's word."""
    start: Pos = (max(line - 1, 0), max(column - 1, 0))
    end = analysis.index.end_of(start) if analysis.index is not None else None
    if end is None or end <= start:
        text = analysis.text.line(start[0])
        stop = start[1]
        while stop < len(text) and not text[stop].isspace():
            stop += 1
        end = (start[0], max(stop, start[1] + 1) if text else start[1])
    if end[0] != start[0]:          # a block collection: its first line is enough
        end = (start[0], len(analysis.text.line(start[0])))
    return to_range(analysis, start, end)


def to_range(analysis: Analysis, start: Pos, end: Pos) -> lsp.Range:
    a, b = analysis.text.to_utf16(start), analysis.text.to_utf16(end)
    return lsp.Range(lsp.Position(*a), lsp.Position(*b))


def convert(analysis: Analysis, diag: Diagnostic, uri: str) -> lsp.Diagnostic:
    """One specc diagnostic for the document at `uri`, its notes as related information; one
    about another file (an imported library, the project configuration) sits at the top,
    naming where it is."""
    if diag.file != analysis.file:
        return lsp.Diagnostic(range=span_range(analysis, 1, 1), message=str(diag),
                              severity=_SEVERITY[diag.severity], code=diag.code,
                              source=SOURCE)
    related = [lsp.DiagnosticRelatedInformation(_location(analysis, n, uri), n.message)
               for n in diag.notes]
    return lsp.Diagnostic(
        range=span_range(analysis, diag.line, diag.column), message=diag.message,
        severity=_SEVERITY[diag.severity], code=diag.code, source=SOURCE,
        related_information=related or None)


def _location(analysis: Analysis, note: Diagnostic, uri: str) -> lsp.Location:
    """A note's place: in this document, over the value there; in another file (an imported
    library, a base spec), at its line and column."""
    if note.file == analysis.file:
        return lsp.Location(uri, span_range(analysis, note.line, note.column))
    from pygls.uris import from_fs_path

    at = lsp.Position(max(note.line - 1, 0), max(note.column - 1, 0))
    return lsp.Location(from_fs_path(note.file) or note.file, lsp.Range(at, at))


def diagnostics(analysis: Analysis, uri: str) -> list[lsp.Diagnostic]:
    return [convert(analysis, d, uri) for d in analysis.diagnostics]
