"""Pydantic errors -> located messages: each error (`loc`, `type`, `ctx`) becomes a message
that names the thing and the fix, located through the document's span table.
"""
from __future__ import annotations

import re
from typing import Any, Final

from pydantic import ValidationError

from specc import custom_layers as _custom
from specc import penalties as catalog
from specc.errors import MAX_QUOTE, Diagnostic, a_, did_you_mean, quote
from specc.hints import key_hint, literal_hint, number_hint, suggest
from specc.loader import Document
from specc.provenance import dedupe, diagnostic
from specc.spec.base import OBJECT_TYPES, PATH_PATTERN, Strict
from specc.spec.clauses import WeightClause
from specc.spec.layers import LAYER_TYPES
from specc.spec.model import InputSpec, Spec

_TYPE_WORDS: Final = {
    "int_type": "an integer", "int_parsing": "an integer", "float_type": "a number",
    "string_type": "a string", "bool_type": "true or false", "list_type": "a list",
    "dict_type": "a mapping", "model_type": "a mapping", "model_attributes_type": "a mapping",
    "literal_error": "one of the allowed words", "none_required": "null",
    "int_from_float": "an integer",
}


def _type_name(value: Any) -> str:
    return {bool: "a boolean", int: "an integer", float: "a number", str: "a string",
            list: "a list", dict: "a mapping", type(None): "null"}.get(type(value), "a value")


def _all_models() -> dict[str, type[Strict]]:
    found: dict[str, type[Strict]] = {}
    todo = list(Strict.__subclasses__())
    while todo:
        cls = todo.pop()
        found.setdefault(cls.__name__, cls)
        todo.extend(cls.__subclasses__())
    return found


_MODELS: Final = _all_models()


def _fields(cls: type[Strict]) -> list[str]:
    return [f.alias or n for n, f in cls.model_fields.items()]


def _model_for(loc: tuple, data: Any) -> type[Strict] | None:
    """The model class whose field set applies at the end of `loc` (for did-you-mean)."""
    for k, part in enumerate(reversed(loc[:-1])):
        if k == 0 and len(loc) > 2 and loc[-3] == "scheduled":     # inside a schedule
            from specc.schedules import MODELS
            if part in MODELS:
                return MODELS[part]
        if isinstance(part, str):
            if part in LAYER_TYPES or part in _custom.registered_names():
                return _custom.model_for(part)
            if part in _MODELS:
                return _MODELS[part]
    head = loc[0] if loc else None
    if len(loc) == 1:
        return Spec
    if head in ("loss", "metrics"):              # a loss or metric with arguments
        return _object_model(loc, data)
    if head == "layers" and isinstance(data, dict):
        try:
            layer = data["layers"][loc[1]]
            kind = layer["type"] if len(loc) == 3 else layer["layer"]["type"]
        except (KeyError, IndexError, TypeError):
            return None
        if len(loc) == 3:
            return _custom.model_for(kind)
        return _MODELS.get(f"{kind}Args") if isinstance(kind, str) else None
    if head == "inputs" and len(loc) == 3:
        return InputSpec
    if head == "weight_penalties":
        return WeightClause
    if head == "pair_penalties" and len(loc) >= 3:
        from specc.spec.clauses import PairClause
        return PairClause
    if head == "penalties" and len(loc) >= 3:
        from specc.spec.clauses import Clause
        return Clause
    return None


def _object_model(loc: tuple, data: Any) -> type[Strict] | None:
    """The model of the loss or metric entry that holds the key at the end of `loc`."""
    from specc import custom_losses
    from specc.spec.model import LossSpec

    entry = data
    for part in _data_path(loc[:-1], data, False)[0]:
        entry = entry[part]
    kind = entry.get("type") if isinstance(entry, dict) else None
    if not isinstance(kind, str):
        return None
    found = custom_losses.lookup("loss" if loc[0] == "loss" else "metric", kind)
    if found is not None:
        return found.model
    return LossSpec if loc[0] == "loss" and kind in custom_losses.catalog_names("loss") else None


def _object_words(path: tuple) -> tuple[list[str], str]:
    """For a word refused under `loss` or `metrics`: the names plugins registered, and the
    note saying where custom ones come from."""
    if not path or path[0] not in ("loss", "metrics") or not (
            path[-1] == "type" or len(path) <= 2 if path[0] == "loss"
            else isinstance(path[-1], int) or path[-1] == "type"):
        return [], ""                   # not where a name goes (`loss.out`, `metrics[0]`)
    from specc import custom_losses

    kind = "loss" if path[0] == "loss" else "metric"
    return sorted(custom_losses.registered_names(kind)), custom_losses.unknown_note(kind)


def _data_path(loc: tuple, data: Any, missing: bool) -> tuple[tuple, bool]:
    """Follow `loc` through the data, skipping union labels; (path, whether it all exists)."""
    path: list = []
    cur = data
    exists = True
    for i, part in enumerate(loc):
        if isinstance(cur, dict) and isinstance(part, str) and part in cur:
            cur = cur[part]
            path.append(part)
        elif isinstance(cur, list) and isinstance(part, int) and 0 <= part < len(cur):
            cur = cur[part]
            path.append(part)
        elif missing and isinstance(cur, dict) and isinstance(part, str) and i == len(loc) - 1:
            path.append(part)          # a missing key: the last element
            exists = False
        # else: a union member label ('Dense', 'str', 'list[...]'): skip it
    return tuple(path), exists


def _label(path: tuple, data: Any = None) -> str:
    """`layers[0] (conv1).units`: list indexes count from 0, as in the data (and JSON Pointer);
    an item that has a plain `name` is named too."""
    label = ""
    node = data
    for part in path:
        named = ""
        if isinstance(part, int) and isinstance(node, list) and 0 <= part < len(node):
            node = node[part]
            name = node.get("name") if isinstance(node, dict) else None
            if isinstance(name, str) and re.fullmatch(PATH_PATTERN, name):   # format 2: a path
                named = f" ({name})"
        else:
            node = node.get(part) if isinstance(node, dict) and isinstance(part, str) else None
        if isinstance(part, str) and len(part) > MAX_QUOTE:
            part = quote(part)          # a huge key (`? <10,000 characters>`): cut short
        label = f"{label}[{part}]{named}" if isinstance(part, int) else (
            f"{label}.{part}" if label else str(part))
    return label or "the spec"


def _literal_choices(ctx: dict) -> list[str]:
    return re.findall(r"'([^']*)'", str(ctx.get("expected", "")))


def _message(err: dict, path: tuple, data: Any) -> tuple[str, str]:
    """(message, code) for one Pydantic error."""
    kind, ctx, value = err["type"], err.get("ctx") or {}, err.get("input")
    field = _label(path, data)
    loc = tuple(err["loc"])
    clause: Any = data                  # the mapping that holds the key, for `params:` hints
    for part in path[:-1]:
        clause = clause[part] if isinstance(clause, (dict, list)) and (
            part in clause if isinstance(clause, dict) else 0 <= part < len(clause)) else None
    params = clause.get("params") if isinstance(clause, dict) and path[0] == "penalties" else None
    if kind == "missing":
        under = (" (it is under `params:`; write it in the clause itself, beside `kind`)"
                 if isinstance(params, dict) and path[-1] in params else "")
        return f"missing required key {path[-1]!r}{under}", "missing-key"
    if kind == "extra_forbidden" and path[-1] == "params" and path[0] == "penalties":
        keys = [quote(k) for k in params if isinstance(k, str)][:4] \
            if isinstance(params, dict) else []
        return ("unknown key 'params': a clause has no `params`; write "
                f"{', '.join(keys) or 'the parameters of its kind'} in the clause itself, "
                "beside `kind`", "unknown-key")
    if kind == "extra_forbidden":
        model = _model_for(loc, data)
        hint = key_hint(path[-1], path, data) or (suggest(path[-1], _fields(model))
                                                   if model else "")
        where = (f" in {a_(model.__name__)} layer" if model in LAYER_TYPES.values()
                 or isinstance(model, type) and issubclass(model, _custom.PluginLayer) else "")
        return f"unknown key {quote(path[-1])}{where}{hint}", "unknown-key"
    if kind in ("union_tag_invalid", "unknown_kind"):
        tag = ctx.get("tag", ctx.get("kind", "")).strip("'")
        if path and str(path[-1]).endswith(("_initializer", "_constraint")):
            what = str(path[-1]).rsplit("_", 1)[1]
            known = sorted(OBJECT_TYPES[what])
            return (f"{field}: unknown {what} type {quote(tag)}{did_you_mean(tag, known)} "
                    f"(known: {', '.join(known)})", "unknown-type")
        if path and path[0] == "layers":
            return (f"unknown layer type {quote(tag)}{suggest(tag, _custom.known_types())} "
                    f"{_custom.unknown_type_note()}", "unknown-type")
        section = path[0] if path else "penalties"
        known = (list(catalog.PAIR_CATALOG) if section == "pair_penalties" else
                 list(catalog.WEIGHT_FORMULAS) if section == "weight_penalties" else
                 catalog.known_kinds())
        if section == "penalties" and tag in catalog.PAIR_CATALOG:
            return (f"penalty kind {quote(tag)} compares two tensors: write the clause under "
                    "`pair_penalties:`, with `layers: [s, t]` instead of `layer:`",
                    "unknown-kind")
        where = {"pair_penalties": " pair", "weight_penalties": " weight"}.get(section, "")
        return (f"unknown{where} penalty kind {quote(tag)}{suggest(tag, known)} "
                f"(known: {', '.join(known)})", "unknown-kind")
    if kind in ("union_tag_not_found", "missing_kind"):
        key = "type" if path and path[0] == "layers" else "kind"   # the unions' discriminators
        return f"missing required key {key!r}", "missing-key"
    if kind == "literal_error":
        plugged, note = _object_words(path)
        choices = _literal_choices(ctx) + plugged
        listed = (f"; expected one of: {', '.join(choices)}" if len(choices) <= 12
                  else f" ({len(choices)} choices; see the schema)")
        hint = suggest(value, choices)
        return (f"{field}: invalid value {quote(value)}{hint}{listed}"
                f"{'' if hint or not isinstance(value, str) else note}",
                "bad-value")
    if kind == "string_pattern_mismatch":
        return (f"{field}: {quote(value)} is not a valid name: use letters, digits and '_' "
                "(at most 64), starting with a letter or '_'", "bad-name")
    if kind in _TYPE_WORDS:
        hint = number_hint(value) if kind in ("int_type", "int_from_float") else ""
        return (f"{field}: expected {_TYPE_WORDS[kind]}, got {_type_name(value)} {quote(value)}"
                f"{hint}", "bad-type")
    msg = err["msg"].replace("Input should be", "must be").replace("Value error, ", "")
    got = f" (got {quote(value)})" if not isinstance(value, (dict, list)) else ""
    return f"{field}: {msg}{got}", "bad-value"


def model_diagnostics(exc: ValidationError, doc: Document) -> list[Diagnostic]:
    groups: dict[tuple, list[tuple[dict, bool]]] = {}
    for err in exc.errors(include_url=False):
        path, exists = _data_path(tuple(err["loc"]), doc.data, err["type"] == "missing")
        groups.setdefault(path, []).append((err, exists))
    # A union whose matching branch failed deeper (optimizer: {type: adamm}) also reports
    # that the value is not the other branches' type; keep only the deeper, useful errors.
    # (Every proper prefix of every path, once: linear in the errors, not quadratic.)
    above = {q[:k] for q in groups for k in range(len(q))}
    for path in [p for p, errs in groups.items()
                 if p in above and all(e["type"] in _TYPE_WORDS for e, _ in errs)]:
        del groups[path]
    out = []
    for path, errs in groups.items():
        err, exists = errs[0]
        if len(errs) > 1 and all(e["type"] in _TYPE_WORDS for e, _ in errs):
            words = list(dict.fromkeys(_TYPE_WORDS[e["type"]] for e, _ in errs))
            plugged, note = _object_words(path)
            value = err.get("input")
            hint = (suggest(value, [*_literal_choices(next(
                (e.get("ctx") or {} for e, _ in errs if e["type"] == "literal_error"), {})),
                *plugged]) if plugged and isinstance(value, str)
                else literal_hint(e for e, _ in errs))
            msg, code = (f"{_label(path, doc.data)}: expected {' or '.join(words)}, got "
                         f"{_type_name(value)} {quote(value)}{hint}"
                         f"{note if isinstance(value, str) and not hint else ''}", "bad-type")
        else:
            msg, code = _message(err, path, doc.data)
        if err["type"] in ("union_tag_invalid", "unknown_kind"):
            where, key = (*path, "type" if path and path[0] == "layers" else "kind"), False
        elif err["type"] == "extra_forbidden":
            where, key = path, True
        elif not exists:
            where, key = path[:-1], False
        else:
            where, key = path, False
        out.append(diagnostic(doc, where, msg, code, key))
    return dedupe(out)
