"""Hover: for a layer, its output shape, parameter count, what it reads and the clauses on it;
for a block use, the layers it expands to and its parameters; for a clause, its formula and
log key; for an argument, its description. Shapes and counts are those of the size budget
(specc.budget), read from the document's last valid version while the text has errors."""
from __future__ import annotations

from typing import Any, Optional

from lsprotocol import types as lsp

from specc.lsp import names, vocabulary as vocab
from specc.lsp.analysis import Analysis
from specc.lsp.cursor import lookup
from specc.lsp.diagnostics import to_range
from specc.lsp.yamlindex import Path, Pos, Scalar

#: At most this many instances or layers listed in one hover.
SHOWN = 8


def hover(analysis: Analysis, pos: Pos, valid: Optional[Analysis] = None) -> Optional[lsp.Hover]:
    if analysis.index is None:
        return None
    scalar = analysis.index.at(pos)
    if scalar is None:
        return None
    facts = analysis.facts or (valid.facts if valid is not None else None)
    imported = analysis.imported or (valid.imported if valid is not None else {})
    text = describe(scalar, analysis.data, facts, imported)
    if not text:
        return None
    if facts is not None and analysis.spec is None:
        text += "\n\n*(shapes and counts: the last valid version)*"
    return lsp.Hover(lsp.MarkupContent(lsp.MarkupKind.Markdown, text),
                     to_range(analysis, scalar.start, scalar.end))


def describe(s: Scalar, data: Any, facts: Any, imported: dict[str, Any] | None = None) -> str:
    """The hover text for the scalar `s` ('' for none); `imported`: the blocks from other
    files (specc.lsp.analysis.imported_blocks)."""
    if imported:                       # a block of a library reads as one written here
        data = {**data, "blocks": {**{n: b for n, (b, _) in imported.items()},
                                   **names.blocks(data)}} if isinstance(data, dict) else data
    path = s.path
    keys = [p for p in path if isinstance(p, str)]
    scope = names.scope_of(path)
    rel = path[len(scope):]
    if s.key:
        return _key(s, data, scope, rel)
    last = keys[-1] if keys else ""
    if last in names.REF_KEYS or last in ("outputs", "freeze") or "call" in keys:
        return _reference(data, s.value, scope, facts)      # a clause's `layer:` too
    if rel[:1] in (("penalties",), ("weight_penalties",)) and len(rel) >= 2:
        return _clause(data, (*scope, *rel[:2]), facts)
    if rel[:1] == ("layers",) and len(rel) == 3 and last == "name":
        return _entry(data, (*scope, *rel[:2]), facts)
    if last == "type" and rel[:1] == ("layers",):
        return f"**{s.value}** · layer type\n\n{vocab.describe_type(s.value)}"
    if last == "use":
        return _block(data, s.value, facts)
    return ""


def _key(s: Scalar, data: Any, scope: Path, rel: Path) -> str:
    key = s.value
    if len(s.path) == 1:
        return _field(key, dict((k, d) for k, d, _ in vocab.spec_fields()).get(key, ""))
    if s.path[:1] == ("blocks",) and len(s.path) == 2:
        return _block(data, key, None)
    if s.path[:1] == ("inputs",) and len(s.path) == 2:
        shape = lookup(data, (*s.path, "shape"))
        return f"**{key}** · input, shape {shape}"
    parent = lookup(data, s.path[:-1])
    if rel[:1] == ("layers",) and len(rel) == 3 and isinstance(parent, dict):
        model = (vocab.model_of("UseEntry") if "use" in parent else
                 vocab.model_of("ShareEntry") if "share" in parent else
                 vocab.layer_model(parent.get("type")))
        words = vocab.choices(model, key)
        return _field(key, vocab.description(model, key)) + (
            f"\n\none of: {', '.join(words)}" if 0 < len(words) <= 40 else "")
    if rel[:1] in (("penalties",), ("weight_penalties",)) and len(rel) == 3:
        kind = parent.get("kind") if isinstance(parent, dict) else None
        docs = {k: d for k, d, _ in vocab.clause_fields(kind, rel[0] == "weight_penalties")}
        return _field(key, docs.get(key, ""))
    return ""


def _field(key: str, doc: str) -> str:
    return f"**{key}**" + (f": {doc}" if doc else "")


def _shape(shape: Any) -> str:
    from specc.budget import count

    if shape is None:
        return "unknown"
    return "(" + ", ".join(["batch", *("None" if d is None else count(d) for d in shape)]) + ")"


def layer_text(facts: Any, name: str) -> str:
    """A flat layer: type, output shape, parameters, what it reads, the clauses on it."""
    from specc.budget import count

    layer = facts.layers[name]
    size = facts.size(name)
    lines = [f"**{name}** · {layer.type}"]
    if size is not None:
        params = "unknown" if size.params is None else count(size.params)
        shared = f" (shares {size.shared}'s weights)" if size.shared else ""
        lines.append(f"output {_shape(size.shape)} · params {params}{shared}")
    reads = facts.reads.get(name) or []
    lines.append(f"reads: {', '.join(reads) if reads else 'nothing'}")
    on, weights = facts.clause_layers(name)
    for c in on:
        lines.append(f"penalty `{c.name}`: {c.kind} on its {c.at.replace('_', ' ')}")
    for c in weights:
        lines.append(f"weight penalty `{c.name}`: {c.kind} on {', '.join(c.weight_kinds)}")
    return "  \n".join(lines)


def _entry(data: Any, path: Path, facts: Any) -> str:
    """A source entry: the layer it is, or the layers its use or repeat made."""
    entry = lookup(data, path)
    name = entry.get("name") if isinstance(entry, dict) else None
    if facts is None or not isinstance(name, str):
        return ""
    made = facts.made_by(path)
    layers = [facts.spec.layers[j].name for j in made]
    if layers == [name]:
        return layer_text(facts, name)
    if "use" in entry:
        given = entry.get("with")
        head = _block(data, entry["use"], None, title=f"**{name}** · use of block "
                      f"`{entry['use']}`" + (f" with {given}" if given else ""))
    elif path[0] == "blocks":
        head = f"**{name}** · in block `{path[1]}`, made {len(layers)} time(s)"
    else:
        head = f"**{name}** · repeated: {len(layers)} layers"
    if "use" in entry or path[0] != "blocks":
        return head + "\n\n" + _expansion(facts, layers)
    return head + "  \n" + "  \n".join(_brief(facts, n) for n in layers[:SHOWN]) + (
        f"  \n… and {len(layers) - SHOWN} more" if len(layers) > SHOWN else "")


def _brief(facts: Any, name: str) -> str:
    from specc.budget import count

    size = facts.size(name)
    if size is None:
        return f"`{name}`"
    params = "unknown" if size.params is None else count(size.params)
    return f"`{name}` {_shape(size.shape)} · params {params}"


def _expansion(facts: Any, layers: list[str]) -> str:
    from specc.budget import count

    total = sum((facts.size(n).params or 0) for n in layers if facts.size(n) is not None
                and facts.size(n).shared is None)
    shown = ", ".join(layers[:SHOWN]) + (f", … ({len(layers)} in all)"
                                         if len(layers) > SHOWN else "")
    last = layers[-1] if layers else None
    out = f"expands to {len(layers)} layers: {shown}  \nparams {count(total)}"
    if last is not None:
        out += f"  \nlast: `{last}` {_shape(facts.size(last).shape if facts.size(last) else None)}"
    return out


def _block(data: Any, block: str, facts: Any, title: str = "") -> str:
    spec = names.blocks(data).get(block)
    if not isinstance(spec, dict):
        return ""
    lines = [title or f"**{block}** · block"]
    if spec.get("description"):
        lines.append(str(spec["description"]))
    params = spec.get("params")
    if isinstance(params, dict) and params:
        lines.append("params: " + ", ".join(f"`{k}`: {v}" for k, v in params.items()))
    lines.append(f"inputs: {spec.get('inputs', ['x'])}")
    instances = [n for p, b in names.uses(data) if b == block
                 for n in [lookup(data, (*p[:-1], 'name'))] if isinstance(n, str)]
    if instances:
        lines.append(f"used by: {', '.join(instances)}")
    return "  \n".join(lines)


def _reference(data: Any, ref: str, scope: Path, facts: Any) -> str:
    if not scope and facts is not None and ref in facts.layers:
        return layer_text(facts, ref)
    known = names.definitions(data, scope)
    head = names.head(ref, known, names.repeated(data, scope))
    if head is None:
        return ""
    where = known[head]
    if where[len(scope):][:1] == ("layers",):
        return _entry(data, where[:-1], facts)
    return f"**{head}** · input" + (f" of block `{scope[1]}`" if scope else "")


def _clause(data: Any, path: Path, facts: Any) -> str:
    """A clause: its formula, where it attaches, its log keys (every instance's)."""
    from specc import penalties as catalog

    clause = lookup(data, path)
    if not isinstance(clause, dict):
        return ""
    section = path[-2]
    kind = clause.get("kind")
    weight = section == "weight_penalties"
    formula = (vocab.weight_kinds() if weight else vocab.penalty_kinds()).get(kind, "")
    lines = [f"**{clause.get('name')}** · {'weight ' if weight else ''}penalty `{kind}`"]
    if formula:
        lines.append(f"`{formula}`")
    if not weight:
        entry = catalog.lookup(kind) if isinstance(kind, str) else None
        via = clause.get("via") or (entry.default_via if entry else None)
        lines.append(f"on `{clause.get('layer')}` ({clause.get('at', 'output')}), via {via}")
    else:
        lines.append(f"on layers {clause.get('layers')}, weights {clause.get('weights')}")
    if facts is not None:
        from specc.checks import rate_keys

        made = [getattr(facts.spec, section)[j] for j in facts.made_by(path, section)]
        keys = [c.name for c in made] + [k for c in made for _, k in rate_keys(c)]
        if keys:
            shown = ", ".join(f"`{k}`" for k in keys[:SHOWN])
            lines.append(f"log key{'s' * (len(keys) > 1)}: {shown}" +
                         (f", … ({len(keys)} in all)" if len(keys) > SHOWN else ""))
    return "  \n".join(lines)
