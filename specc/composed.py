"""A spec put together from several files (specc.compose), located: where each composed
value was written, and the notes at the `imports:` / `extends:` that brought a file in.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Iterable, Mapping, Sequence

from specc.errors import Diagnostic, Span
from specc.loader import Document

Path = tuple


class Where:
    """Where a composed value was written: a document and a path in it, with the places of
    the parts that came from elsewhere (`kids`, by key or index of the composed value)."""

    __slots__ = ("doc", "path", "kids")

    def __init__(self, doc: Any, path: Path, kids: dict | None = None) -> None:
        self.doc = doc
        self.path = path
        self.kids = kids

    def child(self, key: Any) -> Where:
        kid = self.kids.get(key) if self.kids else None
        return kid if kid is not None else Where(self.doc, self.path + (key,))

    def locate(self, path: Sequence[Any]) -> tuple[Any, Path]:
        node = self
        for i, key in enumerate(path):
            kid = node.kids.get(key) if node.kids else None
            if kid is None:
                return node.doc, node.path + tuple(path[i:])
            node = kid
        return node.doc, node.path

    def same(self, other: Where) -> bool:
        return self.doc is other.doc and self.path == other.path


class ComposedDocument:
    """A spec put together from several files; `span`/`key_span` point into the file (and
    the place in it) where each value was written. Reads like a loader `Document`."""

    def __init__(self, top: Document, data: dict, where: Where,
                 sites: Mapping[str, tuple[Diagnostic, ...]], files: Sequence[str]) -> None:
        self.file = top.file
        self.data = data
        self.top = top
        self.where = where
        #: file -> the notes that say how it was reached (the imports / extends, innermost first)
        self.sites = dict(sites)
        #: every file read, the top spec first
        self.files = tuple(files)

    def span(self, path: Sequence[str | int]) -> Span:
        doc, src = self.where.locate(path)
        return doc.span(src)

    def key_span(self, path: Sequence[str | int]) -> Span:
        doc, src = self.where.locate(path)
        return doc.key_span(src)


def with_sites(diagnostics: Iterable[Diagnostic],
               sites: Mapping[str, tuple[Diagnostic, ...]]) -> list[Diagnostic]:
    """Each diagnostic located in an imported or base file, with notes at the import or
    extends that brought that file in (once per file a diagnostic or its notes point into)."""
    out = []
    for d in diagnostics:
        extra: list[Diagnostic] = []
        for file in dict.fromkeys([d.file, *(n.file for n in d.notes)]):
            extra.extend(n for n in sites.get(file, ()) if n not in d.notes and n not in extra)
        out.append(dataclasses.replace(d, notes=d.notes + tuple(
            dataclasses.replace(n, code=d.code) for n in extra)) if extra else d)
    return out


def sites_of(doc: Any) -> Mapping[str, tuple[Diagnostic, ...]]:
    """The include-site notes of the composed document under `doc` (an expanded or overridden
    document wraps it), for `with_sites`; empty for a spec of one file."""
    for _ in range(8):
        if isinstance(doc, ComposedDocument):
            return doc.sites
        doc = getattr(doc, "source", None) or getattr(doc, "inner", None)
    return {}
