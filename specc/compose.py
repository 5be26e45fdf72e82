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

import os
from typing import Any, Final

from specc import loader
from specc.composed import ComposedDocument, Where, sites_of, with_sites
from specc.errors import Diagnostic, SpecError, did_you_mean, quote
from specc.includes import (EXTENDS, IMPORTS, MAX_FILES, MAX_INCLUDE_DEPTH, Failed, Includes,
                            OpenFiles, project_root)
from specc.loader import Document

__all__ = ["DIRECTIVES", "EXTENDS", "IMPORTS", "LIBRARY_KEYS", "MAX_FILES", "MAX_INCLUDE_DEPTH",
           "ComposedDocument", "OpenFiles", "check_library", "compose", "is_library", "loader",
           "project_root", "sites_of", "uses_files", "with_sites"]

Path = tuple

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


class _Composer(Includes):
    def __init__(self, top: Document, open_files: OpenFiles | None = None) -> None:
        super().__init__(top, open_files)
        self.libraries: dict[str, dict[str, tuple[Any, Where]]] = {}

    # --- imports ----------------------------------------------------------------------------

    def imports(self, doc: Document, stack: tuple[str, ...]) -> dict[str, tuple[Any, Where]]:
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
        out: dict[str, tuple[Any, Where]] = {}
        seen: set[str] = set()
        for value, where in paths:
            if isinstance(value, str) and value in seen:   # the same path again: nothing new
                continue
            if isinstance(value, str):
                seen.add(value)
            try:
                lib = self.open(doc, where, value, stack, "imported")
            except Failed:
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

    def library(self, doc: Document, stack: tuple[str, ...]) -> dict[str, tuple[Any, Where]]:
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
            place = Where(doc, ("blocks", name))
            if name in out:
                self.error(doc.key_span(("blocks", name)), f"block {quote(name)} is also "
                           f"defined in {out[name][1].doc.file}, which this file imports",
                           "duplicate-name")
                continue
            out[name] = (value, place)
        self.libraries[real] = out
        return out

    # --- specs ------------------------------------------------------------------------------

    def spec(self, doc: Document, stack: tuple[str, ...]) -> tuple[dict, Where]:
        """`doc`'s spec with its imports and its base put in; raises Failed."""
        data = doc.data
        own = {k: v for k, v in data.items() if k not in (IMPORTS, EXTENDS)}
        kids: dict[Any, Where] = {}
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
                kids["blocks"] = Where(doc, ("blocks",), block_kids)
        here = Where(doc, (), kids)
        if EXTENDS not in data:
            return own, here
        base_doc = self.open(doc, (EXTENDS,), data[EXTENDS], stack, "extended")
        base = base_doc.data
        if not isinstance(base, dict) or base.get("specc") != 2 or is_library(base):
            what = ("a block library: use `imports:` for its blocks" if is_library(base) else
                    "not a format 2 spec (`specc: 2`)")
            self.error(doc.span((EXTENDS,)), f"{quote(data[EXTENDS])} is {what}", "bad-value")
            raise Failed
        base_data, base_where = self.spec(base_doc, (*stack, self.real(base_doc)))
        return self.merge(base_data, base_where, own, here)

    # --- merging by name --------------------------------------------------------------------

    def merge(self, base: dict, bw: Where, child: dict, cw: Where) -> tuple[dict, Where]:
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
        return out, Where(cw.doc, cw.path, kids)

    def merge_map(self, base: dict, bw: Where, child: dict, cw: Where,
                  blocks: bool = False) -> tuple[dict, Where]:
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
        return out, Where(cw.doc, cw.path, kids)

    def merge_block(self, base: dict, bw: Where, child: dict, cw: Where
                    ) -> tuple[dict, Where]:
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
        return out, Where(cw.doc, cw.path, kids)

    def merge_list(self, base: list, bw: Where, child: list, cw: Where
                   ) -> tuple[list, Where]:
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
        return values, Where(cw.doc, cw.path, kids)

    def directives(self, value: dict, place: Where, named: dict[str, _Node]) -> dict:
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

    def merge_entry(self, value: Any, place: Where, named: dict[str, _Node],
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
                    kids[key] = Where(doc, path + (key,), inner_kids)
                else:
                    merged[key], kids[key] = v, place.child(key)
            target.value, target.where = merged, Where(doc, path, kids)
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

    def __init__(self, value: Any, where: Where | None) -> None:
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


def compose(doc: Document, open_files: OpenFiles | None = None) -> Document | ComposedDocument:
    """`doc` with its imports and base put in (format 2); `doc` itself when it names no
    other file. Raises SpecError with every problem, each with notes at the include sites.
    `open_files`: texts that stand in for files on disk (specc.includes.OpenFiles)."""
    if not uses_files(doc.data):
        return doc
    composer = _Composer(doc, open_files)
    try:
        data, where = composer.spec(doc, (composer.top_real,))
    except Failed:
        data = where = None
    if composer.problems:
        raise SpecError(with_sites(composer.problems, composer.sites))
    _rebase_weights(data, where, doc)
    files = [d.file for d in composer.docs.values()]
    return ComposedDocument(doc, data, where, composer.sites, files)


def _rebase_weights(data: dict, where: Where, top: Document) -> None:
    """`weights: FILE` is relative to the file that writes it; the composed spec is read as
    the top spec's, so a relative path a base wrote is rewritten relative to the top spec."""
    value, doc = data.get("weights"), where.child("weights").doc
    if doc is top or not isinstance(value, str) or not value or os.path.isabs(value) \
            or value.startswith("~"):
        return
    written = os.path.join(os.path.dirname(os.path.abspath(doc.file)), value)
    data["weights"] = os.path.relpath(written, os.path.dirname(os.path.abspath(top.file))
                                      if os.path.exists(top.file) else os.getcwd())


def check_library(doc: Document, open_files: OpenFiles | None = None) -> list[Diagnostic]:
    """The problems of a block library file checked on its own (`specc validate` on it): its
    keys, its imports, and each block's definition as expansion reads it. `open_files`: texts
    that stand in for files on disk (specc.includes.OpenFiles)."""
    composer = _Composer(doc, open_files)
    blocks = composer.library(doc, (composer.top_real,))
    from specc.expand import Expander, check_unused_blocks

    located = ComposedDocument(doc, {"blocks": {n: v for n, (v, _) in blocks.items()}},
                               Where(doc, (), {"blocks": Where(doc, ("blocks",), {
                                   n: w for n, (_, w) in blocks.items()})}),
                               composer.sites, [])
    ex = Expander(located)  # type: ignore[arg-type]
    ex.read_blocks(located.data["blocks"])
    check_unused_blocks(ex, located, located.data["blocks"])  # type: ignore[arg-type]
    found = sorted([*composer.problems, *ex.problems], key=lambda d: (d.span, d.code))
    return with_sites(found, composer.sites)
