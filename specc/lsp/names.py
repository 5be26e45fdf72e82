"""The names of a spec's source and where they are written: inputs, layer entries and block
instances (top level or local to a block), blocks, and the places that refer to them.

Scopes are those of format 2's expansion (specc.expand): inside a block, `from:`, `share:`,
a clause's `layer:` and the block's `outputs` name the block's inputs and its own entries;
elsewhere they name the spec's inputs and top-level entries (a dotted path `conv2.block1.out`
starts with one of them).
"""
from __future__ import annotations

from typing import Any, Final, Iterator

from specc.lsp.cursor import lookup
from specc.lsp.yamlindex import Path

#: Keys whose value (a name, or a list of names) refers to a layer or an input.
REF_KEYS: Final = ("from", "share", "layer")


def scope_of(path: Path) -> Path:
    """The scope a path is in: ("blocks", name) inside a block, () at top level."""
    return tuple(path[:2]) if len(path) >= 2 and path[0] == "blocks" else ()


def entries(data: Any, scope: Path) -> list[tuple[int, dict]]:
    layers = lookup(data, (*scope, "layers"))
    return [(i, e) for i, e in enumerate(layers) if isinstance(e, dict)] \
        if isinstance(layers, list) else []


def definitions(data: Any, scope: Path) -> dict[str, Path]:
    """Name -> the path of the scalar that defines it (an input's key, an entry's `name`)."""
    out: dict[str, Path] = {}
    if scope:
        inputs = lookup(data, (*scope, "inputs"))
        if inputs is None:
            out["x"] = (*scope,)                    # the default input of a block
        for k, name in enumerate(inputs if isinstance(inputs, list) else [inputs]):
            if isinstance(name, str):
                out[name] = (*scope, "inputs", k) if isinstance(inputs, list) \
                    else (*scope, "inputs")
    else:
        inputs = lookup(data, ("inputs",))
        for name in inputs if isinstance(inputs, dict) else ():
            out[name] = ("inputs", name)
    for i, entry in entries(data, scope):
        if isinstance(entry.get("name"), str):
            out.setdefault(entry["name"], (*scope, "layers", i, "name"))
    return out


def blocks(data: Any) -> dict[str, Any]:
    found = lookup(data, ("blocks",))
    return found if isinstance(found, dict) else {}


def repeated(data: Any, scope: Path) -> set[str]:
    """Names of the entries in `scope` that have `repeat:` (they make name1 .. nameN)."""
    return {e["name"] for _, e in entries(data, scope)
            if isinstance(e.get("name"), str) and e.get("repeat") is not None}


def head(ref: str, known: dict[str, Path], repeats: set[str] = frozenset()) -> str | None:
    """The defined name a reference starts with: `conv2.block1.out` -> conv2, `block2` of a
    repeated entry `block` -> block; None when it names nothing written in the source."""
    if ref in known:
        return ref
    first = ref.split(".", 1)[0]
    if first in known:
        return first
    stem = first.rstrip("0123456789")
    return stem if stem != first and stem in repeats else None


def references(data: Any) -> Iterator[tuple[Path, str, Path]]:
    """(path of a scalar that names a layer or an input, its text, its scope)."""
    def walk(value: Any, path: Path, scope: Path) -> Iterator[tuple[Path, str, Path]]:
        if isinstance(value, str):
            yield path, value, scope
        elif isinstance(value, list):
            for k, item in enumerate(value):
                yield from walk(item, (*path, k), scope)
        elif isinstance(value, dict):                 # a use's `from: {input: name}`
            for key, item in value.items():
                yield from walk(item, (*path, key), scope)

    for scope in [(), *(("blocks", b) for b in blocks(data))]:
        for i, entry in entries(data, scope):
            for key in ("from", "share"):
                if key in entry:
                    yield from walk(entry[key], (*scope, "layers", i, key), scope)
            call = entry.get("call")
            if isinstance(call, dict):
                yield from walk(call, (*scope, "layers", i, "call"), scope)
        clauses = lookup(data, (*scope, "penalties"))
        for k, clause in enumerate(clauses if isinstance(clauses, list) else []):
            if isinstance(clause, dict) and isinstance(clause.get("layer"), str):
                yield (*scope, "penalties", k, "layer"), clause["layer"], scope
        outputs = lookup(data, (*scope, "outputs"))
        if outputs is not None:
            yield from walk(outputs, (*scope, "outputs"), scope)
    if isinstance(lookup(data, ("freeze",)), list):
        yield from walk(data["freeze"], ("freeze",), ())
    clauses = lookup(data, ("weight_penalties",))
    for k, clause in enumerate(clauses if isinstance(clauses, list) else []):
        if isinstance(clause, dict) and "layers" in clause:
            yield from walk(clause["layers"], ("weight_penalties", k, "layers"), ())


def keyed_references(data: Any) -> Iterator[tuple[Path, str]]:
    """Mapping keys that name an output: `loss`, `loss_weights` and `metrics` per output."""
    for section in ("loss", "loss_weights", "metrics"):
        value = lookup(data, (section,))
        if isinstance(value, dict) and not ({"type", "schedule"} & set(value)):
            for key in value:
                yield (section, key), key


def uses(data: Any) -> Iterator[tuple[Path, str]]:
    """(path of a `use:` value, the block it names), in every scope."""
    for scope in [(), *(("blocks", b) for b in blocks(data))]:
        for i, entry in entries(data, scope):
            if isinstance(entry.get("use"), str):
                yield (*scope, "layers", i, "use"), entry["use"]
