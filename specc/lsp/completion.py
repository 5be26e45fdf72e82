"""Completion: what may be written where the cursor is.

Keys: a layer type's arguments, a use's block parameters (`with:`), a clause's fields for its
kind, a block's keys, the spec's top-level keys. Values: layer types (`type:`), names of
inputs and layers in scope (`from:`, `layer:`, `share:`, `outputs`, a weight clause's
`layers`, `freeze`), block names (`use:`), penalty kinds (`kind:`), losses, metrics, and any
argument's closed word list (`padding:`, `activation:`).
"""
from __future__ import annotations

from typing import Any, Iterable, Optional

from lsprotocol import types as lsp

from specc.lsp import names, vocabulary as vocab
from specc.lsp.analysis import Analysis
from specc.lsp.cursor import Cursor, locate, lookup
from specc.lsp.diagnostics import to_range
from specc.lsp.yamlindex import Pos

Item = tuple[str, str, str]            # label, detail, documentation
_K = lsp.CompletionItemKind


def complete(analysis: Analysis, pos: Pos, valid: Optional[Analysis] = None) -> list[lsp.CompletionItem]:
    """The completion items at `pos` (0-based, code points); `valid`: the document's last
    valid analysis, whose flat names (block instances' layers, ports) are offered too."""
    cursor = locate(analysis.source, pos)
    if cursor is None:
        return []
    start = (pos[0], max(pos[1] - len(cursor.prefix), 0))
    edit = to_range(analysis, start, pos)
    imported = analysis.imported or _imported(analysis, cursor) or (
        valid.imported if valid is not None else {})
    blocks = {**{n: b for n, (b, _) in imported.items()}, **names.blocks(cursor.data)}
    if cursor.key:
        items, kind, suffix = _keys(cursor, blocks), _K.Property, ": "
    else:
        items, kind = _values(cursor, valid, blocks), _K.Value
        suffix = ""
    return [lsp.CompletionItem(
        label=label, kind=kind, detail=detail or None,
        documentation=lsp.MarkupContent(lsp.MarkupKind.Markdown, doc) if doc else None,
        text_edit=lsp.TextEdit(edit, label + suffix), filter_text=label,
        sort_text=f"{n:04d}") for n, (label, detail, doc) in enumerate(items)]


def _imported(analysis: Analysis, cursor: Cursor) -> dict[str, Any]:
    """The blocks of the files a half-typed text imports (its text with the cursor's marker
    loads where the text itself may not)."""
    if not isinstance(cursor.data, dict) or not ({"imports", "extends"} & set(cursor.data)):
        return {}
    from specc.errors import SpecError
    from specc.loader import load_text
    from specc.lsp.analysis import imported_blocks

    try:
        return imported_blocks(load_text(cursor.source, analysis.file), analysis.open_texts)
    except SpecError:
        return {}


def _fields(fields: Iterable[tuple[str, str, bool]], taken: Any) -> list[Item]:
    present = set(taken) if isinstance(taken, dict) else set()
    return [(key, "required" if req else "", doc) for key, doc, req in fields
            if key not in present and key != "type"]


def _keys(c: Cursor, blocks: dict[str, Any]) -> list[Item]:
    path, parent = c.path, c.parent
    where = [p for p in path[:-1] if isinstance(p, str)]
    if len(path) == 1:
        return _fields(vocab.spec_fields(), parent)
    if len(path) == 3 and path[0] == "blocks":
        from specc.expand import BLOCK_KEYS

        model = vocab.model_of("BlockDef")
        return [(k, "", vocab.description(model, k)) for k in BLOCK_KEYS
                if k not in (parent or {})]
    if where[-1:] == ["with"]:
        entry = lookup(c.data, path[:-2])
        block = blocks.get(entry.get("use")) if isinstance(entry, dict) else None
        params = block.get("params") if isinstance(block, dict) else None
        return [(k, _param_detail(v), "") for k, v in
                (params if isinstance(params, dict) else {}).items() if k not in (parent or {})]
    if len(where) >= 1 and where[-1] in ("penalties", "weight_penalties"):
        weight = where[-1] == "weight_penalties"
        kind = parent.get("kind") if isinstance(parent, dict) else None
        return _fields(vocab.clause_fields(kind, weight), parent)
    if where[:1] == ["inputs"] and len(path) == 3:
        return _fields(vocab.fields(vocab.model_of("InputSpec")), parent)
    if where[-1:] == ["layers"] and isinstance(parent, dict):
        return _entry_keys(parent)
    return []


def _param_detail(value: Any) -> str:
    if isinstance(value, dict):
        return f"{value.get('type', 'any')}, default {value.get('default')}"
    return f"{value} (required)" if value in ("int", "float", "bool", "str", "list", "any") \
        else f"default {value}"


def _entry_keys(entry: dict) -> list[Item]:
    if "use" in entry:
        return _fields(vocab.fields(vocab.model_of("UseEntry")), entry)
    if "share" in entry:
        return _fields(vocab.fields(vocab.model_of("ShareEntry")), entry)
    model = vocab.layer_model(entry.get("type"))
    if model is None:
        return [(k, "", "") for k in ("name", "type", "use", "share", "from") if k not in entry]
    fields = [*vocab.fields(model), *((k, d, False) for k, d in vocab.ENTRY_DOCS.items())]
    return _fields(fields, entry)


def _values(c: Cursor, valid: Optional[Analysis], blocks: dict[str, Any]) -> list[Item]:
    path = c.path
    keys = [p for p in path if isinstance(p, str)]
    last = keys[-1] if keys else ""
    scope = names.scope_of(path)
    section = keys[0] if keys else ""
    if last == "type" and section in ("layers", "blocks") and "layers" in keys:
        return [(t, "layer type", vocab.describe_type(t)) for t in vocab.layer_types()]
    if last == "use":
        return [(b, "block", _block_doc(v)) for b, v in blocks.items()]
    if last == "kind":
        weight = "weight_penalties" in keys
        kinds = vocab.weight_kinds() if weight else vocab.penalty_kinds()
        return [(k, "penalty kind", f"`{f}`") for k, f in kinds.items()]
    if section == "loss":
        return [(x, "loss", "") for x in vocab.losses()]
    if section == "metrics":
        return [(x, "metric", "") for x in vocab.metrics()]
    if last in names.REF_KEYS or last in ("outputs", "freeze") or (
            last == "layers" and section == "weight_penalties") or "call" in keys:
        return _names(c, scope, valid)
    if last == "weights" and section == "weight_penalties":
        return [("kernel", "", ""), ("bias", "", "")]
    entry = lookup(c.data, path[:2 + len(scope)]) if "layers" in keys else None
    if isinstance(entry, dict):
        model = vocab.layer_model(entry.get("type"))
        return [(w, last, "") for w in vocab.choices(model, last)]
    return []


def _block_doc(block: Any) -> str:
    if not isinstance(block, dict):
        return ""
    params = block.get("params")
    text = str(block.get("description") or "")
    if isinstance(params, dict) and params:
        text += ("\n\n" if text else "") + "params: " + ", ".join(
            f"`{k}` ({_param_detail(v)})" for k, v in params.items())
    return text


def _names(c: Cursor, scope: tuple, valid: Optional[Analysis]) -> list[Item]:
    own = names.definitions(c.data, scope)
    entry = lookup(c.data, c.path[:2 + len(scope)]) if c.path[len(scope):][:1] == ("layers",) \
        else None
    itself = entry.get("name") if isinstance(entry, dict) else None
    items = [(n, "input" if p[len(scope):][:1] != ("layers",) else "layer", "")
             for n, p in own.items() if n and n != itself]
    for _, e in names.entries(c.data, scope):         # ports: `lstm.state_h`
        model = vocab.layer_model(e.get("type"))
        if isinstance(e.get("name"), str) and e.get("return_state") == "true" and model:
            items += [(f"{e['name']}.{port}", f"port of {e['type']}", "")
                      for port in getattr(model, "state_ports", ())]
    if not scope and valid is not None and valid.spec is not None and "." in c.prefix:
        # the layers (and ports) of the instance typed so far (`conv2.` -> conv2.block1.conv1,
        # ...), from the last valid version: offered once a dot asks for them
        stem = c.prefix.rsplit(".", 1)[0] + "."
        out = []
        for layer in valid.spec.layers:
            if layer.name.startswith(stem):
                out.append((layer.name, f"{layer.type} (expanded)", ""))
                out += [(f"{layer.name}.{port}", f"port of {layer.type}", "")
                        for port in layer.ports()]
        return out
    return items
