"""Go to definition, find references and rename, for layer names (and inputs) and block names.

A layer name belongs to a scope (specc.lsp.names): the top level, or one block's definition.
Its occurrences are where it is defined (an entry's `name`, an input's key, a block's
`inputs`) and every reference that starts with it in the same scope: `from:`, `share:`, a
clause's `layer:`, `outputs`, `call:`, `freeze`, a weight clause's `layers`, a per-output
`loss`/`loss_weights`/`metrics` key; a dotted path `conv2.block1.out` or a repeat's
`block2` counts by its first word, and a rename replaces only that word. A block's
occurrences are its key under `blocks:` and every `use:` of it, in its own file and in every
project file that imports or extends that one (specc.lsp.project).
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Final, Optional

from lsprotocol import types as lsp

from specc.includes import project_root
from specc.lsp import names, project
from specc.lsp.analysis import Analysis
from specc.lsp.diagnostics import to_range
from specc.lsp.yamlindex import Path, Pos, Scalar, Text, index
from specc.spec.base import NAME_PATTERN

_NAME: Final = re.compile(NAME_PATTERN)


@dataclass(frozen=True)
class Symbol:
    kind: str          # "layer" (a layer, a block instance or an input) or "block"
    scope: Path
    name: str


@dataclass(frozen=True)
class Occurrence:
    start: Pos
    end: Pos
    definition: bool


def symbol_at(analysis: Analysis, pos: Pos) -> Optional[Symbol]:
    if analysis.index is None:
        return None
    s = analysis.index.at(pos)
    if s is None:
        return None
    data, path = analysis.data, s.path
    if s.key and len(path) == 2 and path[0] == "blocks":
        return Symbol("block", (), s.value)
    if not s.key and path[-1:] == ("use",):
        return Symbol("block", (), s.value)
    scope = names.scope_of(path)
    known = names.definitions(data, scope)
    if not s.key and path[len(scope):][:1] == ("layers",) and path[-1:] == ("name",) \
            and len(path) == len(scope) + 3:
        return Symbol("layer", scope, s.value)
    if s.key and len(path) == 2 and path[0] == "inputs" or (
            scope and not s.key and path[len(scope):][:1] == ("inputs",)):
        return Symbol("layer", scope, s.value)
    refs = {p: (text, sc) for p, text, sc in names.references(data)}
    refs.update({p: (text, ()) for p, text in names.keyed_references(data)})
    if path in refs and refs[path][0] == s.value:
        head = names.head(s.value, known, names.repeated(data, scope))
        if head is not None:
            return Symbol("layer", scope, head)
    return None


def occurrences(analysis: Analysis, symbol: Symbol) -> list[Occurrence]:
    data, index = analysis.data, analysis.index
    if index is None:
        return []
    out: list[Occurrence] = []

    def add(scalar: Optional[Scalar], definition: bool, length: Optional[int] = None) -> None:
        if scalar is None:
            return
        line, col = scalar.start
        if analysis.text.line(line)[col:col + 1] in ("'", '"'):
            col += 1                                  # a quoted scalar: the word inside
        size = len(symbol.name) if length is None else length
        out.append(Occurrence((line, col), (line, col + size), definition))

    if symbol.kind == "block":
        add(index.find(("blocks", symbol.name), key=True), True)
        for path, block in names.uses(data):
            if block == symbol.name:
                add(index.find(path), False)
        return out
    known = names.definitions(data, symbol.scope)
    repeats = names.repeated(data, symbol.scope)
    where = known.get(symbol.name)
    if where is not None and where != symbol.scope:
        add(index.find(where, key=where[:1] == ("inputs",) and not symbol.scope), True)
    for path, text, scope in names.references(data):
        if scope == symbol.scope and names.head(text, known, repeats) == symbol.name:
            add(index.find(path), False)
    if not symbol.scope:
        for path, text in names.keyed_references(data):
            if names.head(text, known, repeats) == symbol.name:
                add(index.find(path, key=True), False)
    return out


def locations(analysis: Analysis, uri: str, symbol: Symbol, definition: Optional[bool] = None,
              texts: Optional[dict[str, str]] = None) -> list[lsp.Location]:
    """Where the symbol is defined (`definition=True`), used (False) or both (None); a block
    across the project's files (`texts`: the editor's, by real path)."""
    if symbol.kind == "block":
        sites = block_sites(analysis, uri, symbol, texts, readers=definition is not True)
        return [lsp.Location(where, to_range(owner, o.start, o.end))
                for where, (owner, found) in sites.items()
                for o in found if definition is None or o.definition == definition]
    return [lsp.Location(uri, to_range(analysis, o.start, o.end))
            for o in occurrences(analysis, symbol)
            if definition is None or o.definition == definition]


def block_sites(analysis: Analysis, uri: str, symbol: Symbol, texts: Optional[dict[str, str]],
                readers: bool = True) -> dict[str, tuple[Analysis, list[Occurrence]]]:
    """uri -> (its text, the block's occurrences there): the file that defines the block (this
    one, or the library or base it comes from) and, with `readers`, every project file that
    reads that one (specc.lsp.project) and does not define a block of that name itself."""
    from pygls.uris import from_fs_path, to_fs_path

    texts = dict(texts or {})
    elsewhere = _imported(analysis, symbol)
    home = analysis
    if elsewhere is not None:
        file = to_fs_path(elsewhere.uri) or elsewhere.uri
        text = project.text_of(os.path.realpath(file), texts)
        home = _light(file, text or "", analysis.text.encoding)
    home_uri = uri if home is analysis else (from_fs_path(home.file) or home.file)
    sites = {home_uri: (home, occurrences(home, symbol))}
    if not readers:
        return sites
    here = os.path.realpath(analysis.file)
    for file, text in project.readers(os.path.realpath(home.file),
                                      project_root(home.file), texts):
        other = analysis if os.path.realpath(file) == here else \
            _light(file, text, analysis.text.encoding)
        if symbol.name in names.blocks(other.data):     # its own block of that name
            continue
        found = occurrences(other, symbol)
        if found:
            sites[uri if other is analysis else (from_fs_path(file) or file)] = (other, found)
    return sites


def _light(file: str, text: str, encoding: str) -> Analysis:
    """Another file's text, indexed for its names (not validated)."""
    return Analysis(file, text, Text(text, encoding), index(text))


def _imported(analysis: Analysis, symbol: Symbol) -> Optional[lsp.Location]:
    """Where a block from another file (an import, a base spec) is defined."""
    if symbol.kind != "block" or symbol.name in names.blocks(analysis.data):
        return None
    found = analysis.imported.get(symbol.name)
    if found is None:
        return None
    from pygls.uris import from_fs_path

    span = found[1]
    start = lsp.Position(span.line - 1, span.column - 1)      # names are ASCII
    end = lsp.Position(span.line - 1, span.column - 1 + len(symbol.name))
    return lsp.Location(from_fs_path(span.file) or span.file, lsp.Range(start, end))


def rename(analysis: Analysis, uri: str, pos: Pos, new: str,
           texts: Optional[dict[str, str]] = None) -> Optional[lsp.WorkspaceEdit]:
    """Every occurrence of the name at `pos` replaced by `new` (which must be a plain name); a
    block's in every project file that reads its definition (`texts` as for `locations`)."""
    symbol = symbol_at(analysis, pos)
    if symbol is None:
        return None
    if not _NAME.fullmatch(new):
        raise ValueError(f"{new!r} is not a valid name: use letters, digits and '_' (at most "
                         "64), starting with a letter or '_'")
    if symbol.kind == "block":
        return lsp.WorkspaceEdit(changes={
            where: [lsp.TextEdit(to_range(owner, o.start, o.end), new) for o in found]
            for where, (owner, found) in block_sites(analysis, uri, symbol, texts).items()})
    edits = [lsp.TextEdit(to_range(analysis, o.start, o.end), new)
             for o in occurrences(analysis, symbol)]
    return lsp.WorkspaceEdit(changes={uri: edits})


def prepare(analysis: Analysis, pos: Pos) -> Optional[lsp.Range]:
    """The range of the name a rename at `pos` would change, or None."""
    symbol = symbol_at(analysis, pos)
    if symbol is None:
        return None
    for o in occurrences(analysis, symbol):
        if o.start <= pos <= o.end:
            return to_range(analysis, o.start, o.end)
    return None
