"""Provenance: where each entry of the flat spec was written, and the chain of block uses
that made it, so that a diagnostic on a produced entry points at the use site with notes
down to the block's definition.

Below expansion (which records origins) and every stage after it (the checks, the rules,
overrides, lowering), which report problems through `diagnostic(doc, path, ...)` whatever
kind of document they hold. `dedupe` keeps one diagnostic per problem in a definition (not
one per instance) and `limit_errors` caps what one file reports.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Final, Iterable, Sequence

from specc.errors import Diagnostic, Span
from specc.loader import Document

Path = tuple

#: The most problems one file reports (then one diagnostic saying how many more).
MAX_ERRORS: Final = 1_000


@dataclass(frozen=True)
class Use:
    """One level of expansion: the instance `name` of `block`, made by the entry at `site`."""

    name: str
    block: str
    site: Path


@dataclass(frozen=True)
class Origin:
    """Where a produced entry was written, and the uses (outermost first) that produced it."""

    path: Path
    chain: tuple[Use, ...] = ()


class ExpandedDocument:
    """The flat spec's data, with `span`/`key_span` mapped back into the source document."""

    def __init__(self, source: Document, data: dict, origins: dict[Path, Origin],
                 problems: Sequence[Diagnostic] = ()) -> None:
        self.source = source
        self.file = source.file
        self.data = data
        self.origins = origins
        #: Expansion problems: the entries they concern are left out of `data`, so that the
        #: rest can still be validated and every problem reported in one run.
        self.problems = tuple(problems)

    def _map(self, path: Sequence[str | int]) -> tuple[Path, tuple[Use, ...]]:
        path = tuple(path)
        if len(path) >= 2 and (path[0], path[1]) in self.origins:
            origin = self.origins[(path[0], path[1])]
            return origin.path + path[2:], origin.chain
        return path, ()

    def span(self, path: Sequence[str | int]) -> Span:
        where, chain = self._map(path)
        return self.source.span(chain[0].site) if chain else self.source.span(where)

    def key_span(self, path: Sequence[str | int]) -> Span:
        where, chain = self._map(path)
        return self.source.span(chain[0].site) if chain else self.source.key_span(where)

    def diagnostic(self, path: Sequence[str | int], message: str, code: str,
                   key: bool = False, severity: str = "error") -> Diagnostic:
        """A diagnostic at the use site, with notes down to the definition."""
        where, chain = self._map(path)
        if not chain:
            span = self.source.key_span(where) if key else self.source.span(where)
            return Diagnostic(span, message, code, severity)
        return in_chain(self.source, where, chain, message, code, severity)


def in_chain(doc: Document, where: Path, chain: tuple[Use, ...], message: str, code: str,
             severity: str = "error") -> Diagnostic:
    """A problem found in a block instance: at the outermost use site, with notes down to the
    definition; for a block from another file (specc.compose), at the definition there, with
    notes at each use."""
    inner = chain[-1]
    definition = doc.span(where)
    # The same problem in another instance: the same place in the definition, the same
    # message once the instance's own names (`s1.b2.c1`, `layers[7]`) are taken out of it.
    generic = _LAYER_INDEX.sub("layers[]", message.replace(inner.name + ".", ""))
    site = doc.span(chain[0].site)
    if definition.file != site.file:
        return Diagnostic(definition, f"{message} in '{inner.name}' (block '{inner.block}')",
                          code, severity, tuple(
                              Diagnostic(doc.span(use.site), f"'{use.name}' is an instance "
                                         f"of block '{use.block}', made here", code, "note")
                              for use in chain), group=(definition, code, generic))
    notes = [Diagnostic(doc.span(use.site), f"'{use.name}' is an instance of block "
                        f"'{use.block}', made here", code, "note") for use in chain[1:]]
    notes.append(Diagnostic(definition, f"in the definition of block '{inner.block}'",
                            code, "note"))
    return Diagnostic(site, f"{message} in '{inner.name}' (block '{inner.block}')", code,
                      severity, tuple(notes), group=(definition, code, generic))


_LAYER_INDEX: Final = re.compile(r"layers\[\d+\]")


def diagnostic(doc: Any, path: Sequence[str | int], message: str, code: str,
               key: bool = False, severity: str = "error") -> Diagnostic:
    """A located diagnostic for `path` in either kind of document."""
    if isinstance(doc, ExpandedDocument):
        return doc.diagnostic(path, message, code, key, severity)
    span = doc.key_span(path) if key else doc.span(path)
    return Diagnostic(span, message, code, severity)


def dedupe(diagnostics: Iterable[Diagnostic]) -> list[Diagnostic]:
    """One diagnostic per problem in a definition, not one per instance of the block (its
    `group`, set where it was made): one pass with a dict, linear in the diagnostics."""
    out: list[Diagnostic] = []
    seen: dict[tuple, int] = {}
    counts: dict[int, int] = {}
    plain: set[Diagnostic] = set()
    for d in diagnostics:
        if d.group is None:
            if d not in plain:             # the same problem twice (a repeated entry's copies)
                plain.add(d)
                out.append(d)
            continue
        if d.group in seen:
            counts[seen[d.group]] = counts.get(seen[d.group], 0) + 1
            continue
        seen[d.group] = len(out)
        out.append(d)
    for index, more in counts.items():
        d = out[index]
        out[index] = Diagnostic(d.span, f"{d.message} and {more} other instance"
                                f"{'s' * (more != 1)}", d.code, d.severity, d.notes, d.group)
    return out


def limit_errors(diagnostics: Sequence[Diagnostic]) -> list[Diagnostic]:
    """At most MAX_ERRORS diagnostics (the first in the file), then one that says how many
    more there are: a spec with 60,000 mistakes is fixed from the top anyway."""
    if len(diagnostics) <= MAX_ERRORS:
        return list(diagnostics)
    ordered = sorted(diagnostics, key=lambda d: (d.span, d.code, d.message))
    rest = ordered[MAX_ERRORS]
    return [*ordered[:MAX_ERRORS],
            Diagnostic(rest.span, f"more than {MAX_ERRORS:,} problems: the first "
                       f"{MAX_ERRORS:,} are shown, {len(ordered) - MAX_ERRORS:,} more from here "
                       "on (fix these first)", "too-many-errors")]
