"""Quick fixes: every diagnostic that says `did you mean 'x'?` (specc.hints.suggest,
specc.errors.did_you_mean) offers to write x in place of the word it refused.

The refused word is the one the message quotes before its suggestion (the one closest to the
suggestion when it quotes several: `unknown name 'aa' in block 'pair'`); it is looked for
where the diagnostic points, then at its notes (a problem in a block instance is reported at
the use, and the word is in the block's definition), as a whole word.
"""
from __future__ import annotations

import difflib
import re
from typing import Final, Iterable, Optional

from lsprotocol import types as lsp

from specc.lsp.analysis import Analysis

_SUGGESTION: Final = re.compile(r"did you mean '([^']+)'\?")
_QUOTED: Final = re.compile(r"'([^']*)'|\"([^\"]*)\"")
#: How many lines below a place the refused word is looked for (a block-style entry).
_LINES: Final = 40


def refused(message: str) -> Optional[tuple[str, str]]:
    """(the refused word, the suggestion) of a did-you-mean message, or None."""
    m = _SUGGESTION.search(message)
    if m is None:
        return None
    wanted = m.group(1)
    words = [a or b for a, b in _QUOTED.findall(message[:m.start()])]
    words = [w for w in words if w and w != wanted]
    if not words:
        return None
    best = max(words, key=lambda w: (difflib.SequenceMatcher(None, w, wanted).ratio(),
                                     words.index(w)))
    return best, wanted


def _find(analysis: Analysis, word: str, start: lsp.Position) -> Optional[lsp.Range]:
    """The first whole-word `word` from `start` on (UTF-16 positions)."""
    pattern = re.compile(rf"(?<![A-Za-z0-9_]){re.escape(word)}(?![A-Za-z0-9_])")
    line, col = analysis.text.from_utf16((start.line, start.character))
    for n in range(line, min(line + _LINES, len(analysis.text.lines))):
        m = pattern.search(analysis.text.line(n), col if n == line else 0)
        if m:
            a = analysis.text.to_utf16((n, m.start()))
            b = analysis.text.to_utf16((n, m.end()))
            return lsp.Range(lsp.Position(*a), lsp.Position(*b))
    return None


def fixes(analysis: Analysis, uri: str,
          diagnostics: Iterable[lsp.Diagnostic]) -> list[lsp.CodeAction]:
    """A quick fix for each did-you-mean among `diagnostics` whose refused word is found."""
    out = []
    for d in diagnostics:
        found = refused(d.message)
        if found is None:
            continue
        word, wanted = found
        places = [d.range.start, *(r.location.range.start for r in d.related_information or ()
                                   if r.location.uri == uri)]
        for place in places:
            where = _find(analysis, word, place)
            if where is not None:
                out.append(lsp.CodeAction(
                    title=f"Replace '{word}' with '{wanted}'",
                    kind=lsp.CodeActionKind.QuickFix, diagnostics=[d], is_preferred=True,
                    edit=lsp.WorkspaceEdit(changes={uri: [lsp.TextEdit(where, wanted)]})))
                break
    return out
