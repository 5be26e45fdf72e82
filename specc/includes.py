"""The files a spec reads through `imports:` and `extends:`: paths resolved and kept inside
the project folder, cycles, depth, and the bounds on files, bytes and values (specc.compose
puts what they hold together).
"""
from __future__ import annotations

import dataclasses
import difflib
import os
import stat
from typing import Any, Final

from specc import loader
from specc.errors import Diagnostic, Span, SpecError, quote
from specc.loader import Document
from specc.provenance import MAX_ERRORS

Path = tuple

#: Files reached through `imports:` / `extends:` from one spec, nesting included.
MAX_INCLUDE_DEPTH: Final = 16
#: Distinct files one spec may read, itself included.
MAX_FILES: Final = 256

IMPORTS: Final = "imports"
EXTENDS: Final = "extends"


def project_root(file: str) -> str:
    """The folder that holds the nearest pyproject.toml with [tool.specc] (from the spec's
    folder upward), else the spec's own folder (the current folder for text)."""
    folder = os.path.dirname(os.path.abspath(file)) if os.path.exists(file) else os.getcwd()
    try:
        from specc import config

        found = config.find(folder)
    except (SpecError, OSError, ValueError):
        found = None
    return os.path.realpath(found.parent if found is not None else folder)


@dataclasses.dataclass
class OpenFiles:
    """Texts that stand in for files on disk, by real path (an editor's unsaved buffers:
    specc.lsp), and the real path of every file a composition asked for, there or not (what
    an analysis depends on)."""

    texts: dict[str, str] = dataclasses.field(default_factory=dict)
    asked: set[str] = dataclasses.field(default_factory=set)


class Failed(Exception):
    """A file could not be used (the problem is recorded)."""


class Includes:
    """Opens the files a spec names, once each; records the problems, with notes at the
    import or extends that brought each file in."""

    def __init__(self, top: Document, open_files: OpenFiles | None = None) -> None:
        self.top = top
        self.open_files = open_files if open_files is not None else OpenFiles()
        self.root = project_root(top.file)
        self.problems: list[Diagnostic] = []
        self.stopped = False
        self.resolved: dict[tuple[str, str], tuple[str, str, bool]] = {}
        self.reals: dict[str, str] = {}                 # shown file -> real path
        self.docs: dict[str, Document] = {}            # real path -> document
        self.sites: dict[str, tuple[Diagnostic, ...]] = {}
        real = os.path.realpath(top.file) if os.path.exists(top.file) else top.file
        self.top_real = real
        self.reals[top.file] = real
        self.docs[real] = top
        try:
            self.bytes = os.path.getsize(real)
        except OSError:
            self.bytes = 0
        self.values = len(top.spans)

    def bound(self, span: Span, message: str) -> None:
        self.error(span, message, "too-large")
        self.stopped = True
        raise Failed

    def error(self, span: Span, message: str, code: str = "include",
              notes: tuple[Diagnostic, ...] = ()) -> None:
        self.problems.append(Diagnostic(span, message, code, notes=notes))
        if len(self.problems) >= MAX_ERRORS and not self.stopped:   # 50,000 missing files
            self.problems.append(Diagnostic(span, f"more than {MAX_ERRORS:,} problems: "
                                            "reading stopped here (fix the ones above first)",
                                            "too-many-errors"))
            self.stopped = True
            raise Failed

    # --- files ----------------------------------------------------------------------------

    def open(self, doc: Document, where: Path, value: Any, stack: tuple[str, ...],
             how: str) -> Document:
        """The document `value` (a path written at `where` in `doc`) names; raises Failed."""
        if self.stopped:                # a bound is passed: reported once, nothing more read
            raise Failed
        site = doc.span(where)
        key = IMPORTS if how == "imported" else EXTENDS
        if not isinstance(value, str) or not value.strip() or "\0" in value:
            one = (" (one base per spec; a base may extend another)"
                   if how == "extended" and isinstance(value, list) else "")
            self.error(site, f"`{key}:` names a file by its path (a string, relative to this "
                       f"file), not {quote(value)}{one}", "bad-type")
            raise Failed
        folder = os.path.dirname(doc.file)          # "" for text: the current folder
        resolved = self.resolved.get((folder, value))
        if resolved is None:                    # one file imported 10,000 times: one lookup
            shown = os.path.normpath(os.path.join(folder, value))
            real = os.path.realpath(shown)
            resolved = self.resolved[(folder, value)] = (
                shown, real, os.path.commonpath([real, self.root]) == self.root)
        shown, real, inside_root = resolved
        self.open_files.asked.add(real)
        if not inside_root:
            inside = os.path.commonpath([os.path.abspath(shown), self.root]) == self.root
            self.error(site, f"{quote(value)} is {'a link to a file ' if inside else ''}"
                       f"outside the project folder {self.root}: "
                       f"`{key}:` reads files inside the folder of pyproject.toml with "
                       "[tool.specc] (else of the top spec), by relative paths")
            raise Failed
        if real in stack:
            names = [self._shown(r) for r in stack[stack.index(real):]]
            self.error(site, f"{quote(value)} is already being read: a cycle "
                       f"({' -> '.join([*names, shown])})", "cycle")
            raise Failed
        if len(stack) > MAX_INCLUDE_DEPTH:
            self.error(site, f"files nest deeper than {MAX_INCLUDE_DEPTH} levels of "
                       "`imports:` / `extends:`", "too-deep")
            raise Failed
        if real not in self.docs:
            self.docs[real] = self.read(real, shown, value, site, how)
            self.reals[self.docs[real].file] = real
        found = self.docs[real]
        note = Diagnostic(site, f"{'imported' if how == 'imported' else 'extended'} here",
                          "include", "note")
        self.sites.setdefault(found.file, (note, *self.sites.get(doc.file, ())))
        return found

    def read(self, real: str, shown: str, value: str, site: Span, how: str) -> Document:
        if len(self.docs) >= MAX_FILES:
            self.bound(site, f"the spec reads more than {MAX_FILES} files")
        text = self.open_files.texts.get(real)
        if text is not None:                    # an editor's buffer, saved or not
            return self.parse(text.encode("utf-8"), shown, site, how)
        try:
            info = os.stat(real)
        except OSError as exc:
            self.error(site, f"cannot read {quote(value)}: {(exc.strerror or 'error').lower()}"
                       f"{self._near(real, value)}")
            raise Failed from None
        if not stat.S_ISREG(info.st_mode):
            self.error(site, f"{quote(value)} is not a regular file")
            raise Failed
        if self.bytes + info.st_size > loader.MAX_BYTES:      # bounded before it is read
            self._too_many_bytes(site)
        try:
            with open(real, "rb") as stream:
                data = stream.read(loader.MAX_BYTES + 1)
        except OSError as exc:
            self.error(site, f"cannot read {quote(value)}: {(exc.strerror or 'error').lower()}")
            raise Failed from None
        return self.parse(data, shown, site, how)

    def parse(self, data: bytes, shown: str, site: Span, how: str) -> Document:
        """A file's bytes as a document, within the bounds on bytes and values together."""
        self.bytes += len(data)
        if self.bytes > loader.MAX_BYTES:
            self._too_many_bytes(site)
        try:
            doc = loader.load_text(data, shown)
        except SpecError as exc:
            note = Diagnostic(site, f"{how} here", "include", "note")
            self.problems.extend(dataclasses.replace(d, notes=(*d.notes, note))
                                 for d in exc.diagnostics)
            raise Failed from None
        self.values += len(doc.spans)
        if self.values > loader.MAX_NODES:
            self.bound(site, f"the spec and the files it reads hold more than "
                       f"{loader.MAX_NODES:,} values together (the one-file limit)")
        return doc

    def _too_many_bytes(self, site: Span) -> None:
        self.bound(site, f"the spec and the files it reads hold more than "
                   f"{loader.MAX_BYTES:,} bytes together (the one-file limit)")

    def _shown(self, real: str) -> str:
        doc = self.docs.get(real)
        return doc.file if doc is not None else real

    @staticmethod
    def _near(real: str, value: str) -> str:
        folder, name = os.path.split(real)
        try:
            names = [n for n in os.listdir(folder) if n.endswith((".yaml", ".yml"))]
        except OSError:
            return ""
        close = difflib.get_close_matches(name, names, 1, 0.6)
        return f" (did you mean {quote(os.path.join(os.path.dirname(value), close[0]))}?)" \
            if close else ""

    def real(self, doc: Document) -> str:
        return self.reals.get(doc.file) or os.path.realpath(doc.file)
