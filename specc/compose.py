"""Block libraries and base specs (format 2): `imports:` and `extends:`, put together into one
located document before expansion.

- `imports: [blocks/resnet.yaml]` brings the blocks that a *block library* defines (a file
  with `blocks:`, and optionally `imports:` and `description:`) into the spec's `blocks:`.
- `extends: base.yaml` starts from another spec (composed first, recursively) and overrides
  it by name: a top-level key replaces the base's (`null` deletes it); `inputs`, `blocks` and
  per-output `loss` / `loss_weights` / `metrics` are merged by key; `layers`, `penalties` and
  `weight_penalties` are merged by the entries' `name`: an entry with a base entry's name
  changes the keys it gives (a block use's `with:` and a layer's `call:` are merged by key),
  `replace: true` writes it whole, `delete: true` removes it, `after:` / `before:` place a new
  entry (or move one); other entries are added at the end. Nothing is ever matched by index.

Paths are relative to the file that names them and must stay inside the project: the folder
that holds the pyproject.toml with [tool.specc] (searched upward from the top spec), else the
top spec's folder; symbolic links are followed before the check. Every diagnostic points into
the file where the problem is, and `with_sites` adds a note at each import or extends that
brought that file in. Include depth, the number of files, and the bytes and values of all
files together are bounded (the last two by the loader's own one-file limits).
"""
from __future__ import annotations

import dataclasses
import difflib
import os
import stat
from typing import Any, Final, Iterable, Mapping, Sequence

from specc import loader
from specc.errors import Diagnostic, Span, SpecError, did_you_mean, quote
from specc.expand import MAX_ERRORS
from specc.loader import Document

Path = tuple

#: Files reached through `imports:` / `extends:` from one spec, nesting included.
MAX_INCLUDE_DEPTH: Final = 16
#: Distinct files one spec may read, itself included.
MAX_FILES: Final = 256

IMPORTS: Final = "imports"
EXTENDS: Final = "extends"
#: Keys of a block library file.
LIBRARY_KEYS: Final = ("specc", "description", "blocks", IMPORTS)
#: Keys only an overriding entry (in a spec that `extends:` another) may carry.
DIRECTIVES: Final = ("delete", "replace", "after", "before")
#: Sections of named entries, merged by `name`.
_LISTS: Final = ("layers", "penalties", "weight_penalties")
#: Mappings merged key by key (the per-output forms of loss, loss_weights and metrics).
_MAPS: Final = ("inputs", "blocks", "loss", "loss_weights", "metrics")
#: Keys of an overriding entry merged key by key rather than replaced.
_ENTRY_MAPS: Final = ("with", "call")
#: What makes an entry what it is: changing one of them needs `replace: true`.
_KINDS: Final = ("type", "use", "share", "kind")
#: Top-level keys that make a file a spec rather than a block library.
_SPEC_KEYS: Final = ("inputs", "layers", "outputs", "loss", "optimizer", EXTENDS)


def is_library(data: Any) -> bool:
    """Whether loaded data is a block library: `blocks:` and none of a spec's own sections."""
    return isinstance(data, dict) and "blocks" in data and not any(k in data for k in _SPEC_KEYS)


def uses_files(data: Any) -> bool:
    return isinstance(data, dict) and data.get("specc") == 2 and (
        IMPORTS in data or EXTENDS in data)


# ------------------------------------------------------------------------------ provenance


class _Where:
    """Where a composed value was written: a document and a path in it, with the places of
    the parts that came from elsewhere (`kids`, by key or index of the composed value)."""

    __slots__ = ("doc", "path", "kids")

    def __init__(self, doc: Any, path: Path, kids: dict | None = None) -> None:
        self.doc = doc
        self.path = path
        self.kids = kids

    def child(self, key: Any) -> _Where:
        kid = self.kids.get(key) if self.kids else None
        return kid if kid is not None else _Where(self.doc, self.path + (key,))

    def locate(self, path: Sequence[Any]) -> tuple[Any, Path]:
        node = self
        for i, key in enumerate(path):
            kid = node.kids.get(key) if node.kids else None
            if kid is None:
                return node.doc, node.path + tuple(path[i:])
            node = kid
        return node.doc, node.path

    def same(self, other: _Where) -> bool:
        return self.doc is other.doc and self.path == other.path


class ComposedDocument:
    """A spec put together from several files; `span`/`key_span` point into the file (and
    the place in it) where each value was written. Reads like a loader `Document`."""

    def __init__(self, top: Document, data: dict, where: _Where,
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


# ------------------------------------------------------------------------------ the project


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


class _Failed(Exception):
    """A file could not be used (the problem is recorded)."""


class _Composer:
    def __init__(self, top: Document) -> None:
        self.top = top
        self.root = project_root(top.file)
        self.problems: list[Diagnostic] = []
        self.stopped = False
        self.resolved: dict[tuple[str, str], tuple[str, str, bool]] = {}
        self.reals: dict[str, str] = {}                 # shown file -> real path
        self.docs: dict[str, Document] = {}            # real path -> document
        self.sites: dict[str, tuple[Diagnostic, ...]] = {}
        self.libraries: dict[str, dict[str, tuple[Any, _Where]]] = {}
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
        raise _Failed

    def error(self, span: Span, message: str, code: str = "include",
              notes: tuple[Diagnostic, ...] = ()) -> None:
        self.problems.append(Diagnostic(span, message, code, notes=notes))
        if len(self.problems) >= MAX_ERRORS and not self.stopped:   # 50,000 missing files
            self.problems.append(Diagnostic(span, f"more than {MAX_ERRORS:,} problems: "
                                            "reading stopped here (fix the ones above first)",
                                            "too-many-errors"))
            self.stopped = True
            raise _Failed

    # --- files ----------------------------------------------------------------------------

    def open(self, doc: Document, where: Path, value: Any, stack: tuple[str, ...],
             how: str) -> Document:
        """The document `value` (a path written at `where` in `doc`) names; raises _Failed."""
        if self.stopped:                # a bound is passed: reported once, nothing more read
            raise _Failed
        site = doc.span(where)
        key = IMPORTS if how == "imported" else EXTENDS
        if not isinstance(value, str) or not value.strip() or "\0" in value:
            one = (" (one base per spec; a base may extend another)"
                   if how == "extended" and isinstance(value, list) else "")
            self.error(site, f"`{key}:` names a file by its path (a string, relative to this "
                       f"file), not {quote(value)}{one}", "bad-type")
            raise _Failed
        folder = os.path.dirname(doc.file)          # "" for text: the current folder
        resolved = self.resolved.get((folder, value))
        if resolved is None:                    # one file imported 10,000 times: one lookup
            shown = os.path.normpath(os.path.join(folder, value))
            real = os.path.realpath(shown)
            resolved = self.resolved[(folder, value)] = (
                shown, real, os.path.commonpath([real, self.root]) == self.root)
        shown, real, inside_root = resolved
        if not inside_root:
            inside = os.path.commonpath([os.path.abspath(shown), self.root]) == self.root
            self.error(site, f"{quote(value)} is {'a link to a file ' if inside else ''}"
                       f"outside the project folder {self.root}: "
                       f"`{key}:` reads files inside the folder of pyproject.toml with "
                       "[tool.specc] (else of the top spec), by relative paths")
            raise _Failed
        if real in stack:
            names = [self._shown(r) for r in stack[stack.index(real):]]
            self.error(site, f"{quote(value)} is already being read: a cycle "
                       f"({' -> '.join([*names, shown])})", "cycle")
            raise _Failed
        if len(stack) > MAX_INCLUDE_DEPTH:
            self.error(site, f"files nest deeper than {MAX_INCLUDE_DEPTH} levels of "
                       "`imports:` / `extends:`", "too-deep")
            raise _Failed
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
        try:
            info = os.stat(real)
        except OSError as exc:
            self.error(site, f"cannot read {quote(value)}: {(exc.strerror or 'error').lower()}"
                       f"{self._near(real, value)}")
            raise _Failed from None
        if not stat.S_ISREG(info.st_mode):
            self.error(site, f"{quote(value)} is not a regular file")
            raise _Failed
        self.bytes += info.st_size
        if self.bytes > loader.MAX_BYTES:
            self.bound(site, f"the spec and the files it reads hold more than "
                       f"{loader.MAX_BYTES:,} bytes together (the one-file limit)")
        try:
            with open(real, "rb") as stream:
                data = stream.read(loader.MAX_BYTES + 1)
            doc = loader.load_text(data, shown)
        except OSError as exc:
            self.error(site, f"cannot read {quote(value)}: {(exc.strerror or 'error').lower()}")
            raise _Failed from None
        except SpecError as exc:
            note = Diagnostic(site, f"{how} here", "include", "note")
            self.problems.extend(dataclasses.replace(d, notes=(*d.notes, note))
                                 for d in exc.diagnostics)
            raise _Failed from None
        self.values += len(doc.spans)
        if self.values > loader.MAX_NODES:
            self.bound(site, f"the spec and the files it reads hold more than "
                       f"{loader.MAX_NODES:,} values together (the one-file limit)")
        return doc

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

    # --- imports ----------------------------------------------------------------------------

    def imports(self, doc: Document, stack: tuple[str, ...]) -> dict[str, tuple[Any, _Where]]:
        """The blocks that `doc`'s `imports:` bring in: name -> (definition, its place)."""
        raw = doc.data.get(IMPORTS)
        if raw is None:
            return {}
        if not isinstance(raw, (str, list)):
            self.error(doc.span((IMPORTS,)), "`imports:` is a list of block library files",
                       "bad-type")
            return {}
        paths = [(raw, (IMPORTS,))] if isinstance(raw, str) else \
            [(p, (IMPORTS, i)) for i, p in enumerate(raw)]
        out: dict[str, tuple[Any, _Where]] = {}
        seen: set[str] = set()
        for value, where in paths:
            if isinstance(value, str) and value in seen:   # the same path again: nothing new
                continue
            if isinstance(value, str):
                seen.add(value)
            try:
                lib = self.open(doc, where, value, stack, "imported")
            except _Failed:
                continue
            if not is_library(lib.data):
                self.error(doc.span(where), f"{quote(value)} is not a block library (a file "
                           "with `blocks:` and no inputs, layers or outputs)" + (
                               "; to build on a spec, use `extends:`"
                               if isinstance(lib.data, dict) and "layers" in lib.data else ""),
                           "bad-value")
                continue
            blocks = self.library(lib, (*stack, self.real(lib)))
            for name, (value_, place) in blocks.items():
                if name in out:
                    if not out[name][1].same(place):
                        first = out[name][1]
                        self.error(doc.span(where), f"block {quote(name)} is defined in two "
                                   f"imported files ({first.doc.file} and {place.doc.file})",
                                   "duplicate-name", (
                                       Diagnostic(first.doc.key_span(first.path), "one "
                                                  "definition", "duplicate-name", "note"),
                                       Diagnostic(place.doc.key_span(place.path), "the other",
                                                  "duplicate-name", "note")))
                    continue
                out[name] = (value_, place)
        return out

    def real(self, doc: Document) -> str:
        return self.reals.get(doc.file) or os.path.realpath(doc.file)

    def library(self, doc: Document, stack: tuple[str, ...]) -> dict[str, tuple[Any, _Where]]:
        real = self.real(doc)
        if real in self.libraries:
            return self.libraries[real]
        data = doc.data
        for key in data:
            if key not in LIBRARY_KEYS:
                self.error(doc.key_span((key,)), f"unknown key {quote(key)} in a block library"
                           f"{did_you_mean(str(key), LIBRARY_KEYS)} (a library holds "
                           f"{', '.join(LIBRARY_KEYS)})", "unknown-key")
        if "specc" in data and data["specc"] != 2:
            self.error(doc.span(("specc",)), "a block library is format 2 (`specc: 2`), "
                       f"not {quote(data['specc'])}", "version")
        out = self.imports(doc, stack)
        blocks = data.get("blocks")
        if not isinstance(blocks, dict):
            self.error(doc.span(("blocks",)), "`blocks:` is a mapping of block name -> "
                       "definition", "bad-type")
            blocks = {}
        for name, value in blocks.items():
            place = _Where(doc, ("blocks", name))
            if name in out:
                self.error(doc.key_span(("blocks", name)), f"block {quote(name)} is also "
                           f"defined in {out[name][1].doc.file}, which this file imports",
                           "duplicate-name")
                continue
            out[name] = (value, place)
        self.libraries[real] = out
        return out

    # --- specs ------------------------------------------------------------------------------

    def spec(self, doc: Document, stack: tuple[str, ...]) -> tuple[dict, _Where]:
        """`doc`'s spec with its imports and its base put in; raises _Failed."""
        data = doc.data
        own = {k: v for k, v in data.items() if k not in (IMPORTS, EXTENDS)}
        kids: dict[Any, _Where] = {}
        imported = self.imports(doc, stack)
        if imported:
            blocks = data.get("blocks")
            if blocks is None or isinstance(blocks, dict):
                merged: dict = {}
                block_kids: dict = {}
                for name, (value, place) in imported.items():
                    merged[name] = value
                    block_kids[name] = place
                for name, value in (blocks or {}).items():
                    if name in imported:
                        place = imported[name][1]
                        self.error(doc.key_span(("blocks", name)), f"block {quote(name)} is "
                                   f"also defined in {place.doc.file}, which this spec imports "
                                   "(rename one of them)", "duplicate-name", (Diagnostic(
                                       place.doc.key_span(place.path), "the imported "
                                       "definition", "duplicate-name", "note"),))
                        continue
                    merged[name] = value
                own["blocks"] = merged
                kids["blocks"] = _Where(doc, ("blocks",), block_kids)
        here = _Where(doc, (), kids)
        if EXTENDS not in data:
            return own, here
        base_doc = self.open(doc, (EXTENDS,), data[EXTENDS], stack, "extended")
        base = base_doc.data
        if not isinstance(base, dict) or base.get("specc") != 2 or is_library(base):
            what = ("a block library: use `imports:` for its blocks" if is_library(base) else
                    "not a format 2 spec (`specc: 2`)")
            self.error(doc.span((EXTENDS,)), f"{quote(data[EXTENDS])} is {what}", "bad-value")
            raise _Failed
        base_data, base_where = self.spec(base_doc, (*stack, self.real(base_doc)))
        return self.merge(base_data, base_where, own, here)

    # --- merging by name --------------------------------------------------------------------

    def merge(self, base: dict, bw: _Where, child: dict, cw: _Where) -> tuple[dict, _Where]:
        out = dict(base)
        kids = {k: bw.child(k) for k in base}
        for key, value in child.items():
            place = cw.child(key)
            old = out.get(key)
            if value is None and key != "specc":
                out.pop(key, None)
                kids.pop(key, None)
            elif key in _LISTS and isinstance(old, list) and isinstance(value, list):
                out[key], kids[key] = self.merge_list(old, bw.child(key), value, place)
            elif key in _MAPS and isinstance(old, dict) and isinstance(value, dict) and not (
                    {"type", "schedule"} & (set(old) | set(value))):
                out[key], kids[key] = self.merge_map(old, bw.child(key), value, place,
                                                     blocks=key == "blocks")
            else:
                out[key], kids[key] = value, place
        return out, _Where(cw.doc, cw.path, kids)

    def merge_map(self, base: dict, bw: _Where, child: dict, cw: _Where,
                  blocks: bool = False) -> tuple[dict, _Where]:
        """By key: the child's value replaces the base's; null deletes it. A block that the
        spec defines itself is merged into the base's block of that name."""
        out = dict(base)
        kids = {k: bw.child(k) for k in base}
        for key, value in child.items():
            place = cw.child(key)
            if value is None:
                out.pop(key, None)
                kids.pop(key, None)
            elif blocks and isinstance(out.get(key), dict) and isinstance(value, dict) \
                    and place.doc is cw.doc:                   # written here, not imported
                out[key], kids[key] = self.merge_block(out[key], bw.child(key), value, place)
            else:
                out[key], kids[key] = value, place
        return out, _Where(cw.doc, cw.path, kids)

    def merge_block(self, base: dict, bw: _Where, child: dict, cw: _Where
                    ) -> tuple[dict, _Where]:
        out = dict(base)
        kids = {k: bw.child(k) for k in base}
        for key, value in child.items():
            place = cw.child(key)
            old = out.get(key)
            if value is None:
                out.pop(key, None)
                kids.pop(key, None)
            elif key in _LISTS and isinstance(old, list) and isinstance(value, list):
                out[key], kids[key] = self.merge_list(old, bw.child(key), value, place)
            elif key == "params" and isinstance(old, dict) and isinstance(value, dict):
                out[key], kids[key] = self.merge_map(old, bw.child(key), value, place)
            else:
                out[key], kids[key] = value, place
        return out, _Where(cw.doc, cw.path, kids)

    def merge_list(self, base: list, bw: _Where, child: list, cw: _Where
                   ) -> tuple[list, _Where]:
        """Entries merged by `name` (a doubly linked list: every step is O(1))."""
        head = _Node(None, None)                    # sentinel: head.next is the first entry
        head.prev = head.next = head
        named: dict[str, _Node] = {}
        for i, value in enumerate(base):
            node = _Node(value, bw.child(i))
            node.link_before(head)
            if isinstance(value, dict) and isinstance(value.get("name"), str):
                named.setdefault(value["name"], node)
        for j, value in enumerate(child):
            place = cw.child(j)
            try:
                self.merge_entry(value, place, named, head)
            except _Skip:
                continue
        values, kids = [], {}
        node = head.next
        while node is not head:
            kids[len(values)] = node.where
            values.append(node.value)
            node = node.next
        return values, _Where(cw.doc, cw.path, kids)

    def directives(self, value: dict, place: _Where, named: dict[str, _Node]) -> dict:
        """An overriding entry's `delete`, `replace`, `after`, `before`, checked."""
        doc, path = place.doc, place.path
        directives = {d: value[d] for d in DIRECTIVES if d in value}
        for flag in ("delete", "replace"):
            if flag in directives and not isinstance(directives[flag], bool):
                self.error(doc.span(path + (flag,)), f"`{flag}:` is true or false, not "
                           f"{quote(directives[flag])}", "bad-type")
                raise _Skip
        for anchor in ("after", "before"):
            given = directives.get(anchor)
            if anchor in directives and not (isinstance(given, str) and given in named):
                self.error(doc.span(path + (anchor,)), f"`{anchor}:` names an entry of the "
                           f"base: no entry is named {quote(given)}"
                           f"{did_you_mean(str(given), list(named))}", "unknown-ref")
                raise _Skip
        if "after" in directives and "before" in directives:
            self.error(doc.key_span(path + ("before",)), "give `after:` or `before:`, not both",
                       "bad-value")
            raise _Skip
        return directives

    def merge_entry(self, value: Any, place: _Where, named: dict[str, _Node],
                    head: _Node) -> None:
        doc, path = place.doc, place.path
        if not isinstance(value, dict) or not isinstance(value.get("name"), str):
            if isinstance(value, dict) and any(d in value for d in DIRECTIVES):
                used = next(d for d in DIRECTIVES if d in value)
                self.error(doc.key_span(path + (used,)), f"`{used}:` needs the `name:` of "
                           "the entry it changes", "missing-key")
                raise _Skip
            _Node(value, place).link_before(head)
            return
        name = value["name"]
        directives = self.directives(value, place, named)
        body = {k: v for k, v in value.items() if k not in DIRECTIVES}
        target = named.get(name)
        if directives.get("delete"):
            extra = [k for k in body if k != "name"]
            if target is None:
                self.error(doc.span(path + ("name",)), f"nothing to delete: the base has no "
                           f"entry named {quote(name)}{did_you_mean(name, list(named))}",
                           "unknown-ref")
            elif extra or "replace" in directives or "after" in directives \
                    or "before" in directives:
                self.error(doc.key_span(path + ((extra or ["delete"])[0],)), "an entry with "
                           "`delete: true` holds only its `name:`", "bad-value")
            else:
                target.unlink()
                del named[name]
            raise _Skip
        if target is None:
            node = _Node(body, place)
        elif directives.get("replace"):
            target.value, target.where = body, place
            node = target
        else:
            old = target.value
            for key in _KINDS:
                if key in body and body[key] != old.get(key):
                    was = next((f"`{k}: {old[k]}`" for k in _KINDS if k in old), "no "
                               f"`{key}:`")
                    self.error(doc.span(path + (key,)), f"{quote(name)} has {was} in "
                               f"the base: to change its `{key}:`, write the entry whole with "
                               "`replace: true`", "bad-value",
                               (Diagnostic(target.where.doc.span(target.where.path), "the "
                                           "base's entry", "bad-value", "note"),))
                    raise _Skip
            merged, kids = dict(old), {k: target.where.child(k) for k in old}
            for key, v in body.items():
                if key in _ENTRY_MAPS and isinstance(old.get(key), dict) and isinstance(v, dict):
                    inner, inner_kids = dict(old[key]), {
                        k: target.where.child(key).child(k) for k in old[key]}
                    inner.update(v)
                    inner_kids.update((k, place.child(key).child(k)) for k in v)
                    merged[key] = inner
                    kids[key] = _Where(doc, path + (key,), inner_kids)
                else:
                    merged[key], kids[key] = v, place.child(key)
            target.value, target.where = merged, _Where(doc, path, kids)
            node = target
        if "after" in directives or "before" in directives:
            anchor = named[directives.get("after", directives.get("before"))]
            if anchor is node:
                self.error(doc.span(path + (("after", "before")["before" in directives],)),
                           f"{quote(name)} cannot be placed next to itself", "bad-value")
                raise _Skip
            if node.next is not None:
                node.unlink()
            if "after" in directives:
                node.link_before(anchor.next)
            else:
                node.link_before(anchor)
        elif node.next is None:
            node.link_before(head)
        named[name] = node


class _Skip(Exception):
    """One overriding entry is not applied (its problem is recorded)."""


class _Node:
    __slots__ = ("value", "where", "prev", "next")

    def __init__(self, value: Any, where: _Where | None) -> None:
        self.value = value
        self.where = where
        self.prev: _Node | None = None
        self.next: _Node | None = None

    def link_before(self, other: _Node) -> None:
        self.prev, self.next = other.prev, other
        other.prev.next = self
        other.prev = self

    def unlink(self) -> None:
        self.prev.next, self.next.prev = self.next, self.prev
        self.prev = self.next = None


# ----------------------------------------------------------------------------------- entry


def compose(doc: Document) -> Document | ComposedDocument:
    """`doc` with its imports and base put in (format 2); `doc` itself when it names no
    other file. Raises SpecError with every problem, each with notes at the include sites."""
    if not uses_files(doc.data):
        return doc
    composer = _Composer(doc)
    try:
        data, where = composer.spec(doc, (composer.top_real,))
    except _Failed:
        data = where = None
    if composer.problems:
        raise SpecError(with_sites(composer.problems, composer.sites))
    _rebase_weights(data, where, doc)
    files = [d.file for d in composer.docs.values()]
    return ComposedDocument(doc, data, where, composer.sites, files)


def _rebase_weights(data: dict, where: _Where, top: Document) -> None:
    """`weights: FILE` is relative to the file that writes it; the composed spec is read as
    the top spec's, so a relative path a base wrote is rewritten relative to the top spec."""
    value, doc = data.get("weights"), where.child("weights").doc
    if doc is top or not isinstance(value, str) or not value or os.path.isabs(value) \
            or value.startswith("~"):
        return
    written = os.path.join(os.path.dirname(os.path.abspath(doc.file)), value)
    data["weights"] = os.path.relpath(written, os.path.dirname(os.path.abspath(top.file))
                                      if os.path.exists(top.file) else os.getcwd())


def check_library(doc: Document) -> list[Diagnostic]:
    """The problems of a block library file checked on its own (`specc validate` on it): its
    keys, its imports, and each block's definition as expansion reads it."""
    composer = _Composer(doc)
    blocks = composer.library(doc, (composer.top_real,))
    from specc.expand import Expander

    located = ComposedDocument(doc, {"blocks": {n: v for n, (v, _) in blocks.items()}},
                               _Where(doc, (), {"blocks": _Where(doc, ("blocks",), {
                                   n: w for n, (_, w) in blocks.items()})}),
                               composer.sites, [])
    ex = Expander(located)  # type: ignore[arg-type]
    ex.read_blocks(located.data["blocks"])
    found = sorted([*composer.problems, *ex.problems], key=lambda d: (d.span, d.code))
    return with_sites(found, composer.sites)
