"""Expansion (format 2): blocks, repeats, `if`, `${...}` and shared uses -> the flat spec.

A pure stage between loading and validation, with no Keras: it reads the located source
`Document` and produces an `ExpandedDocument` whose data is a flat spec (every layer a plain
layer entry or a `share` of one, every name hierarchical, every `from` resolved) that the
models and checks of format 1 already understand. Every produced entry keeps its provenance:
the source path where it was written (in a block's definition, or at top level) and the chain
of uses that made it, so a diagnostic points at the use site with notes down to the definition.

Names: a use named `conv3` of a block makes layers `conv3.<local name>`; `repeat: n` on an
entry named `block` makes `block1` ... `blockn`, chained. Inside a block, names are local:
`from:` reads the block's inputs or its own layers, never the outside.
"""
from __future__ import annotations

import copy
import difflib
import re
from dataclasses import dataclass, field
from typing import Any, Final, Iterable

from specc import expr
from specc.errors import Diagnostic, SpecError, did_you_mean, quote
from specc.loader import Document
from specc.provenance import MAX_ERRORS, ExpandedDocument, Origin, Use, dedupe, in_chain

Path = tuple

#: Bounds that make expansion fast on any input: produced layers, nesting of uses, repeats,
#: entries expanded (every instance and every copy a repeat makes, those that `if:` leaves
#: out included) and problems reported. Expressions have their own (specc.expr: sizes of
#: values, and MAX_STEPS evaluation steps for one whole expansion).
MAX_LAYERS: Final = 20_000
MAX_NESTING: Final = 16
MAX_REPEAT: Final = 10_000
MAX_ENTRIES: Final = 2 * MAX_LAYERS      # a layer and an instance per layer, at most

#: Keys that exist only in format 2 (their presence in a format 1 spec is an error).
ENTRY_KEYS: Final = ("use", "with", "repeat", "if", "share", "call")
PARAM_TYPES: Final = {"int": (int,), "float": (int, float), "bool": (bool,), "str": (str,),
                      "list": (list,), "any": (object,)}
BLOCK_KEYS: Final = ("description", "params", "inputs", "outputs", "layers", "penalties",
                     "weight_penalties")


# ------------------------------------------------------------------------------ format 1


def format1_problems(doc: Document) -> list[Diagnostic]:
    """Format 2 constructs in a spec that says `specc: 1`: one error each."""
    data = doc.data
    out: list[Diagnostic] = []

    def need(path: Path, what: str, key: bool = True) -> None:
        span = doc.key_span(path) if key else doc.span(path)
        out.append(Diagnostic(span, f"{what} is a format 2 construct: declare `specc: 2` at "
                              "the top of the spec", "format"))

    for key in ("blocks", "imports", "extends"):
        if key in data:
            need((key,), f"`{key}:`")
    layers = data.get("layers")
    for i, entry in enumerate(layers if isinstance(layers, list) else []):
        if not isinstance(entry, dict):
            continue
        for key in ENTRY_KEYS:
            if key in entry:
                need(("layers", i, key), f"`{key}:` in a layer")
        for key, value in entry.items():
            if isinstance(key, str) and key.endswith(("_initializer", "_constraint")) \
                    and isinstance(value, dict):
                need(("layers", i, key), f"an {key.rsplit('_', 1)[1]} with arguments")
    if _any_expression(data):            # rare: only then walk again for the paths
        for path, value in _walk(data, ()):
            if expr.has_expression(value):
                need(path, "a `${...}` expression", key=False)
    return out


def _any_expression(data: Any) -> bool:
    stack = [data]
    while stack:
        node = stack.pop()
        if isinstance(node, str):
            if "${" in node:
                return True
        elif isinstance(node, dict):
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return False


def _walk(value: Any, path: Path) -> Iterable[tuple[Path, Any]]:
    stack = [(path, value)]
    while stack:
        where, node = stack.pop()
        if isinstance(node, dict):
            stack.extend((where + (k,), v) for k, v in node.items())
        elif isinstance(node, list):
            stack.extend((where + (i,), v) for i, v in enumerate(node))
        else:
            yield where, node


# ------------------------------------------------------------------------------- expansion


class _Problem(Exception):
    """Stops the expansion of one entry; the diagnostic is already recorded."""


class _TooLarge(Exception):
    """Stops the whole expansion: a bound is passed (the diagnostic is recorded)."""

    def __init__(self, keep_all: bool = False) -> None:
        super().__init__()
        self.keep_all = keep_all            # too many errors: report them, not only the bound


@dataclass
class _Scope:
    """Names visible where entries are expanded: top level, or inside one block instance."""

    prefix: str                                        # "" or "conv3.block2."
    values: dict[str, Any]                             # parameters and `i`, for `${}`
    chain: tuple[Use, ...] = ()
    refs: dict[str, str] = field(default_factory=dict)        # local name -> full reference
    instances: dict[str, "_Scope"] = field(default_factory=dict)
    made: dict[str, tuple[str, dict, Path, tuple[Use, ...]]] = field(default_factory=dict)
    #: name -> why it does not exist (None: its entry had an error, reported already)
    left_out: dict[str, str | None] = field(default_factory=dict)
    previous: str | None = None                        # what an entry without `from` reads
    inputs: tuple[str, ...] = ()
    share_of: str | None = None                        # making shares of this instance prefix
    block: str | None = None                           # the block being expanded (None: top)
    frozen: bool = False                               # inside a use with `trainable: false`
    #: a repeated entry's name -> its first and last copy (`share:` names one of them)
    repeated: dict[str, tuple[str, str]] = field(default_factory=dict)

    def resolve(self, ref: str) -> str:
        """A reference as written here -> the full name it means; raises KeyError."""
        if ref in self.refs:
            return self.refs[ref]
        head, _, rest = ref.partition(".")
        if rest and head in self.instances:
            return self.instances[head].resolve(rest)
        if rest and head in self.refs:                 # a port of a layer: lstm.state_h
            return f"{self.refs[head]}.{rest}"
        owner, _, port = ref.rpartition(".")
        if owner and owner in self.refs:               # the flat form: e.lstm.state_h
            return f"{self.refs[owner]}.{port}"
        raise KeyError(ref)

    def is_port(self, ref: str) -> bool:
        """Whether `ref` names another output of a layer (`enc.state_h`), not a layer."""
        if ref in self.refs or ref in self.instances:
            return False
        head, _, rest = ref.partition(".")
        if rest and head in self.instances:
            return self.instances[head].is_port(rest)
        return bool(rest)


class Expander:
    """Walks the source spec once; collects diagnostics instead of stopping at the first."""

    def __init__(self, doc: Document) -> None:
        self.doc = doc
        self.problems: list[Diagnostic] = []
        self.layers: list[dict] = []
        self.penalties: list[tuple[Any, Origin]] = []       # made by block instances
        self.weight_penalties: list[tuple[Any, Origin]] = []
        self.origins: dict[Path, Origin] = {}
        self.blocks: dict[str, dict] = {}
        self.top_names: set[str] = set()
        self.work = expr.Work()             # expression steps, for the whole expansion
        self.expanded = 0                   # entries expanded, against MAX_ENTRIES
        self.groups: set[Any] = set()       # problems counted against MAX_ERRORS
        self.distinct = 0

    # --- diagnostics -------------------------------------------------------------------

    def error(self, path: Path, scope: _Scope, message: str, code: str, key: bool = False) -> None:
        if scope.chain:
            problem = in_chain(self.doc, path, scope.chain, message, code)
        else:
            span = self.doc.key_span(path) if key else self.doc.span(path)
            problem = Diagnostic(span, message, code)
        key = problem if problem.group is None else problem.group
        if key not in self.groups:                 # a new problem (not another instance)
            self.groups.add(key)
            self.distinct += 1
            if self.distinct > MAX_ERRORS:
                self.problems.append(Diagnostic(problem.span, f"more than {MAX_ERRORS:,} "
                                                "problems: expansion stopped here (fix the "
                                                "ones above first)", "too-many-errors"))
                raise _TooLarge(keep_all=True)
        self.problems.append(problem)

    def bound(self, path: Path, scope: _Scope, message: str) -> _TooLarge:
        """A bound is passed: the one error, and the exception that stops the expansion."""
        self.problems.append(in_chain(self.doc, path, scope.chain, message, "too-large")
                             if scope.chain else Diagnostic(self.doc.span(path), message,
                                                            "too-large"))
        return _TooLarge()

    def fail(self, path: Path, scope: _Scope, message: str, code: str, key: bool = False):
        self.error(path, scope, message, code, key)
        return _Problem()

    # --- values ------------------------------------------------------------------------

    def value(self, raw: Any, path: Path, scope: _Scope) -> Any:
        """`raw` with every `${...}` evaluated in `scope` (a new object; the source is kept).
        Every bad expression in it is reported before the entry is given up."""
        if isinstance(raw, str):
            if "${" not in raw:
                return raw
            try:
                return expr.substitute(raw, scope.values, self.work)
            except expr.TooMuchWork as exc:
                raise self.bound(path, scope, str(exc)) from None
            except expr.ExprError as exc:
                raise self.fail(path, scope, f"{quote(raw)}: {exc}", "expression")
        if not isinstance(raw, (dict, list)):
            return raw
        failed = False
        items = raw.items() if isinstance(raw, dict) else enumerate(raw)
        out = {}
        for k, v in items:
            try:
                out[k] = self.value(v, path + (k,), scope)
            except _Problem:
                failed = True
        if failed:
            raise _Problem()
        return out if isinstance(raw, dict) else list(out.values())

    def ref(self, name: Any, path: Path, scope: _Scope) -> str:
        if not isinstance(name, str):
            raise self.fail(path, scope, f"expected a layer name, got {quote(name)}", "bad-type")
        try:
            return scope.resolve(name)
        except KeyError:
            pass
        if name in scope.left_out:
            if scope.left_out[name] is None:    # its own entry was reported: no second error
                raise _Problem()
            raise self.fail(path, scope, f"{quote(name)} does not exist here: "
                            f"{scope.left_out[name]}", "unknown-ref")
        known = [*scope.refs, *(f"{i}.<name>" for i in scope.instances)]
        where = f" in block '{scope.block}'" if scope.block else ""
        hint = _block_ref_hint(path) if scope.block else ""
        raise self.fail(path, scope, f"unknown name {quote(name)}{where}"
                        f"{did_you_mean(name, scope.refs)} (known: "
                        f"{', '.join(known[:12]) or 'none'}{', ...' if len(known) > 12 else ''})"
                        f"{hint}", "unknown-ref")

    def refs(self, raw: Any, path: Path, scope: _Scope) -> Any:
        """A `from`-like value (a name or a list of names) resolved to full names."""
        if isinstance(raw, list):
            return [self.ref(r, path + (i,), scope) for i, r in enumerate(raw)]
        return self.ref(raw, path, scope)

    # --- blocks ------------------------------------------------------------------------

    def read_blocks(self, raw: Any) -> None:
        top = _Scope("", {})
        if not isinstance(raw, dict):
            self.error(("blocks",), top, "`blocks:` is a mapping of block name -> definition",
                       "bad-type")
            return
        for name, block in raw.items():
            path = ("blocks", name)
            if not isinstance(name, str) or not _is_name(name):
                self.error(path, top, f"{quote(name)} is not a valid block name: use letters, "
                           "digits and '_', starting with a letter or '_'", "bad-name", key=True)
                continue
            if not isinstance(block, dict):
                self.error(path, top, f"block {quote(name)}: expected a mapping with `layers:`",
                           "bad-type")
                continue
            bad = [k for k in block if k not in BLOCK_KEYS]
            for k in bad:
                self.error(path + (k,), top, f"unknown key {quote(k)} in block {quote(name)}"
                           f"{did_you_mean(str(k), BLOCK_KEYS)} (keys: {', '.join(BLOCK_KEYS)})",
                           "unknown-key", key=True)
            if not isinstance(block.get("layers"), list) or not block["layers"]:
                self.error(path, top, f"block {quote(name)} needs `layers:`, a non-empty list",
                           "missing-key")
                continue
            try:
                params = self.read_params(block.get("params", {}), path + ("params",), top)
                inputs = self.read_names(block.get("inputs", ["x"]), path + ("inputs",), top)
            except _Problem:
                continue
            if not bad:
                self.blocks[name] = {**block, "params": params, "inputs": inputs}

    def read_names(self, raw: Any, path: Path, scope: _Scope) -> tuple[str, ...]:
        names = [raw] if isinstance(raw, str) else raw
        if not isinstance(names, list) or not names or not all(
                isinstance(n, str) and _is_name(n) for n in names):
            raise self.fail(path, scope, "expected a name or a non-empty list of names",
                            "bad-type")
        return tuple(names)

    def read_params(self, raw: Any, path: Path, scope: _Scope) -> dict[str, tuple[str, Any, bool]]:
        """name -> (type, default, required). `f: int` is required; `s: 1` has a default."""
        if not isinstance(raw, dict):
            raise self.fail(path, scope, "`params:` is a mapping of parameter name -> type "
                            "(`filters: int`), default (`stride: 1`) or "
                            "`{type: int, default: 1}`", "bad-type")
        out: dict[str, tuple[str, Any, bool]] = {}
        for name, spec in raw.items():
            where = path + (name,)
            if not isinstance(name, str) or not _is_name(name) or name == "i":
                raise self.fail(where, scope, f"{quote(name)} is not a valid parameter name"
                                + (" (`i` is the repeat index)" if name == "i" else ""),
                                "bad-name", key=True)
            if isinstance(spec, str) and spec in PARAM_TYPES:
                out[name] = (spec, None, True)
            elif isinstance(spec, dict):
                extra = [k for k in spec if k not in ("type", "default", "description")]
                kind = spec.get("type", "any")
                if extra or kind not in PARAM_TYPES:
                    raise self.fail(where, scope, f"parameter {quote(name)}: write "
                                    f"`{{type: {'|'.join(PARAM_TYPES)}, default: ...}}`",
                                    "bad-value")
                required = "default" not in spec
                if not required and not _fits(spec["default"], kind):
                    raise self.fail(where + ("default",), scope,
                                    f"parameter {quote(name)}: the default is not {kind}",
                                    "bad-type")
                out[name] = (kind, spec.get("default"), required)
            else:
                out[name] = (_type_of(spec), spec, False)
        return out

    def arguments(self, block_name: str, raw: Any, path: Path, scope: _Scope) -> dict[str, Any]:
        """A use's `with:`, evaluated in the caller's scope and checked against the params."""
        params = self.blocks[block_name]["params"]
        given = raw if raw is not None else {}
        if not isinstance(given, dict):
            raise self.fail(path, scope, "`with:` is a mapping of parameter -> value", "bad-type")
        out: dict[str, Any] = {}
        failed = False
        misspelt: set[str] = set()                 # `filterz` reported: not also `filters`
        for name, written in given.items():        # every problem of every parameter
            if name not in params:
                unset = [p for p in params if p not in given]
                misspelt.update(difflib.get_close_matches(str(name)[:100], unset, 1, 0.6))
                self.error(path + (name,), scope, f"block {quote(block_name)} has no "
                           f"parameter {quote(name)}{did_you_mean(str(name), unset)} "
                           f"(parameters: {', '.join(params) or 'none'})", "unknown-key",
                           key=True)
                failed = True
                continue
            try:
                value = self.value(written, path + (name,), scope)
            except _Problem:
                failed = True
                continue
            kind = params[name][0]
            if not _fits(value, kind):
                self.error(path + (name,), scope, f"parameter {quote(name)} of block "
                           f"{quote(block_name)} is {kind}, got {quote(value)}", "bad-type")
                failed = True
                continue
            out[name] = value
        for name, (kind, default, required) in params.items():
            if name not in out and name not in given:
                if required and name in misspelt:
                    continue
                if required:
                    self.error(path if raw is not None else path[:-1], scope,
                               f"block {quote(block_name)} needs parameter {quote(name)} "
                               f"({kind}) in `with:`", "missing-key")
                    failed = True
                    continue
                out[name] = copy.deepcopy(default)
        if failed:
            raise _Problem()
        return out

    # --- entries -----------------------------------------------------------------------

    def entries(self, raw: list, path: Path, scope: _Scope) -> None:
        for i, entry in enumerate(raw):
            try:
                self.entry(entry, path + (i,), scope)
            except _Problem:
                if isinstance(entry, dict) and isinstance(entry.get("name"), str):
                    scope.left_out.setdefault(entry["name"], None)     # reported already

    def entry(self, entry: Any, path: Path, scope: _Scope) -> None:
        if not isinstance(entry, dict):
            self.count(path, scope)
            self.emit(entry, path, scope, None)       # the flat validation explains it
            return
        name = entry.get("name")
        repeated = "repeat" in entry
        count = 1
        if repeated:
            count = self.value(entry["repeat"], path + ("repeat",), scope)
            if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= MAX_REPEAT:
                raise self.fail(path + ("repeat",), scope, f"repeat: expected an integer from 1 "
                                f"to {MAX_REPEAT:,}, got {quote(count)}", "bad-value")
            name = self.repeated_name(name, path, scope)
        failed = False
        for index in range(count):
            self.count(path, scope)
            here = _Scope(**{**scope.__dict__, "values": {**scope.values, "i": index}}) \
                if repeated else scope
            own = f"{name}{index + 1}" if repeated else name
            try:
                if "if" in entry and not self.condition(entry["if"], path + ("if",), here):
                    if isinstance(own, str):
                        scope.left_out[own] = "its `if:` is false here"
                    if isinstance(name, str):
                        scope.left_out[name] = "its `if:` is false here"
                    continue
                fields = {k: v for k, v in entry.items() if k not in ("repeat", "if")}
                if repeated:
                    fields["name"] = own
                    if index > 0:
                        fields.pop("from", None)
                if "use" in fields:
                    self.use(fields, path, here)
                else:
                    self.layer(fields, path, here)
            except _Problem:
                if not repeated:
                    raise
                # The other copies are expanded too: a problem inside a block is then
                # reported once for all its instances, counted right ("and 7 other ...").
                failed = True
                scope.left_out.setdefault(own, None)
                continue
            if repeated:                   # the chain's result goes by the entry's name too
                scope.refs[name] = scope.refs[own]
                if own in scope.instances:
                    scope.instances[name] = scope.instances[own]
                    scope.made[name] = scope.made[own]
                scope.repeated[name] = (f"{name}1", own)
            if here is not scope:
                scope.previous = here.previous
        if failed:
            scope.refs.pop(name, None)
            scope.instances.pop(name, None)
            raise _Problem()

    def count(self, path: Path, scope: _Scope) -> None:
        """One more entry expanded (a layer, an instance, or one that `if:` leaves out)."""
        self.expanded += 1
        if self.expanded > MAX_ENTRIES:
            raise self.bound(path, scope, f"the spec expands more than {MAX_ENTRIES:,} entries "
                             "(layers, block instances and repeated copies, those that `if:` "
                             "leaves out included)")

    def repeated_name(self, raw: Any, path: Path, scope: _Scope) -> str:
        """The name of a repeated entry, whose copies are `<name>1` .. `<name>N`."""
        if not isinstance(raw, str):
            raise self.fail(path, scope, "an entry with `repeat:` needs a `name:`",
                            "missing-key")
        if "${" not in raw:
            return raw
        try:                               # `${}` of the enclosing block's parameters only
            name = expr.substitute(raw, scope.values, self.work)
        except expr.TooMuchWork as exc:
            raise self.bound(path + ("name",), scope, str(exc)) from None
        except expr.ExprError as exc:
            uses_i = "i" not in scope.values and "unknown name 'i'" in str(exc)
            raise self.fail(path + ("name",), scope, f"{quote(raw)}: " + (
                "the name of a repeated entry cannot use `i`: its copies are named "
                "<name>1 .. <name>N" if uses_i else str(exc)), "expression")
        if not isinstance(name, str) or not _is_name(name):
            raise self.fail(path + ("name",), scope, f"{quote(name)} is not a valid name: use "
                            "letters, digits and '_' (at most 64), starting with a letter or "
                            "'_'", "bad-name")
        return name

    def condition(self, raw: Any, path: Path, scope: _Scope) -> bool:
        """`if:` -- true or false, a `${...}`, or a bare expression (`if: project`)."""
        if isinstance(raw, str) and "${" not in raw:     # `if: conv_shortcut`, `if: i > 0`
            try:
                keep = expr.evaluate(raw, scope.values, self.work)
            except expr.TooMuchWork as exc:
                raise self.bound(path, scope, str(exc)) from None
            except expr.ExprError as exc:
                raise self.fail(path, scope, f"if: {quote(raw)}: {exc}", "expression")
        else:
            keep = self.value(raw, path, scope)
        if not isinstance(keep, bool):
            raise self.fail(path, scope, f"if: expected true or false, got {quote(keep)}",
                            "bad-type")
        return keep

    def _name(self, fields: dict, path: Path, scope: _Scope) -> str:
        name = self.value(fields.get("name"), path + ("name",), scope)
        # Top-level names may be paths already (the flat form that `specc expand` prints).
        if not isinstance(name, str) or not _is_name(name, dotted=scope.block is None):
            if name is None:
                raise self.fail(path, scope, "missing required key 'name'", "missing-key")
            raise self.fail(path + ("name",), scope, f"{quote(name)} is not a valid name: use "
                            "letters, digits and '_' (at most 64), starting with a letter or '_'",
                            "bad-name")
        if name in scope.refs or name in scope.instances or (name in scope.inputs):
            raise self.fail(path + ("name",), scope, f"duplicate name {quote(name)}",
                            "duplicate-name")
        return name

    def _reads(self, fields: dict, path: Path, scope: _Scope) -> Any:
        if "from" in fields:
            return self.refs(self.value(fields["from"], path + ("from",), scope),
                             path + ("from",), scope)
        if scope.previous is None and scope.block is not None:
            raise self.fail(path, scope, f"{quote(fields.get('name'))} has no `from:` and block "
                            f"{quote(scope.block)} has several inputs "
                            f"({', '.join(scope.inputs)}): say which one it reads",
                            "missing-from")
        return scope.previous

    def layer(self, fields: dict, path: Path, scope: _Scope) -> None:
        """A plain layer, or a `share:` of a layer or of a block instance."""
        failed = False
        parts: dict[str, Any] = {}
        steps = (
            ("name", lambda: self._name(fields, path, scope)),
            ("out", lambda: self.value({k: v for k, v in fields.items()
                                        if k not in ("name", "from", "call")}, path, scope)),
            ("reads", lambda: self._reads(fields, path, scope)),
            ("call", lambda: self.call(fields.get("call"), path + ("call",), scope)),
        )
        for part, step in steps:           # every problem of the entry, not only the first
            try:
                parts[part] = step()
            except _Problem:
                failed = True
        if failed:
            raise _Problem()
        name, out, reads, call = parts["name"], parts["out"], parts["reads"], parts["call"]
        if "share" in out and "type" not in out:
            target = out["share"]
            if isinstance(target, str) and target in scope.repeated:
                first, last = scope.repeated[target]
                raise self.fail(path + ("share",), scope, f"{quote(target)} is a repeated "
                                f"entry ({first} .. {last}): share one of its copies, such as "
                                f"`share: {last}`", "bad-value")
            if isinstance(target, str) and target in scope.instances:
                self.share_instance(name, scope.instances[target], target, reads, path, scope)
                return
            if isinstance(target, str) and target in scope.inputs:
                raise self.fail(path + ("share",), scope, f"{quote(target)} is an input: "
                                "`share:` names a layer or a block instance whose weights "
                                "this call uses", "bad-value")
            if isinstance(target, str) and scope.is_port(target):
                try:
                    scope.resolve(target)
                except KeyError:
                    pass
                else:
                    raise self.fail(path + ("share",), scope, f"{quote(target)} is not a "
                                    "layer: `share:` names a layer or a block instance "
                                    f"(`share: {target.rsplit('.', 1)[0]}`), not one of its "
                                    "outputs", "bad-value")
            out["share"] = self.ref(target, path + ("share",), scope)
        full = scope.prefix + name
        if scope.share_of is not None and "share" not in out:
            out = {"share": scope.share_of + full[len(scope.prefix):]}
        entry: dict[str, Any] = {"name": full}
        implicit = "from" not in fields and (not self.layers or (isinstance(
            self.layers[-1], dict) and reads == self.layers[-1].get("name"))) \
            and not scope.chain and scope.share_of is None
        if reads is not None and not implicit:
            entry["from"] = reads
        for k, v in out.items():
            entry[k] = v
        if scope.frozen and "share" not in entry and _has_weights(entry.get("type")):
            entry["trainable"] = False         # a use with `trainable: false` freezes it all
        if call is not None:
            entry["call"] = call
        self.emit(entry, path, scope, name)
        scope.refs[name] = full
        scope.previous = full

    def call(self, raw: Any, path: Path, scope: _Scope) -> Any:
        """`call: {ARG: NAME or [NAMES]}` with the names resolved (booleans kept)."""
        if not isinstance(raw, dict):
            return raw
        out, failed = {}, False
        for k, v in raw.items():
            try:
                out[k] = v if isinstance(v, bool) else \
                    self.refs(self.value(v, path + (k,), scope), path + (k,), scope)
            except _Problem:
                failed = True
        if failed:
            raise _Problem()
        return out

    def emit(self, entry: Any, path: Path, scope: _Scope, name: str | None) -> None:
        if len(self.layers) >= MAX_LAYERS:
            raise self.bound(path, scope, f"the spec expands to more than {MAX_LAYERS:,} "
                             "layers")
        self.origins[("layers", len(self.layers))] = Origin(path, scope.chain)
        self.layers.append(entry)

    def use(self, fields: dict, path: Path, scope: _Scope, share_of: str | None = None) -> None:
        """A block instance: its layers, clauses and outputs, under the use's name."""
        name = self._name(fields, path, scope)
        bad = [k for k in fields
               if k not in ("name", "use", "from", "with", "share", "trainable")]
        if bad:
            raise self.fail(path + (bad[0],), scope, f"unknown key {quote(bad[0])} in a block use"
                            f"{did_you_mean(str(bad[0]), ('name', 'use', 'from', 'with', 'trainable'))} "
                            "(a use has name, use, from, with, trainable, repeat, if)",
                            "unknown-key", key=True)
        trainable = self.value(fields.get("trainable", True), path + ("trainable",), scope)
        if not isinstance(trainable, bool):
            raise self.fail(path + ("trainable",), scope, f"trainable: expected true or false, "
                            f"got {quote(trainable)}", "bad-type")
        block_name = fields["use"]
        if not isinstance(block_name, str) or block_name not in self.blocks:
            known = list(self.blocks)
            raise self.fail(path + ("use",), scope, f"unknown block {quote(block_name)}"
                            f"{did_you_mean(str(block_name), known)} (blocks: "
                            f"{', '.join(known) or 'none'})", "unknown-ref")
        if any(u.block == block_name for u in scope.chain):
            cycle = " -> ".join([*(u.block for u in scope.chain), block_name])
            raise self.fail(path + ("use",), scope, f"block {quote(block_name)} uses itself "
                            f"({cycle})", "cycle")
        if len(scope.chain) >= MAX_NESTING:
            raise self.fail(path, scope, f"blocks nest deeper than {MAX_NESTING} levels",
                            "too-deep")
        args = self.arguments(block_name, fields.get("with"), path + ("with",), scope)
        reads = self._reads(fields, path, scope)
        if scope.share_of is not None:        # a use inside an instance being shared
            share_of = f"{scope.share_of}{name}."
        self.instance(name, block_name, args, reads, path, scope, share_of,
                      frozen=scope.frozen or not trainable)

    def instance(self, name: str, block_name: str, args: dict, reads: Any, path: Path,
                 scope: _Scope, share_of: str | None, frozen: bool = False) -> None:
        block = self.blocks[block_name]
        inputs = block["inputs"]
        given = [reads] if isinstance(reads, str) else list(reads or [])
        if len(given) != len(inputs):
            raise self.fail(path, scope, f"block {quote(block_name)} reads {len(inputs)} input"
                            f"{'s' * (len(inputs) != 1)} ({', '.join(inputs)}), given "
                            f"{len(given)}: say which with `from:`", "arity")
        full = scope.prefix + name
        chain = (*scope.chain, Use(full, block_name, path))
        inner = _Scope(prefix=full + ".", values=dict(args), chain=chain,
                       refs=dict(zip(inputs, given)), inputs=tuple(inputs),
                       previous=given[0] if len(given) == 1 else None,
                       share_of=share_of, block=block_name, frozen=frozen)
        where = ("blocks", block_name)
        before = len(self.problems)
        self.entries(block["layers"], where + ("layers",), inner)
        if len(self.problems) > before:       # its layers were reported: the rest would echo
            raise _Problem()
        outputs = block.get("outputs")
        if outputs is None:
            outs = [inner.previous] if inner.previous else []
        else:
            names = [outputs] if isinstance(outputs, str) else outputs
            if not isinstance(names, list):
                raise self.fail(where + ("outputs",), inner, "`outputs:` is a name or a list",
                                "bad-type")
            outs = [self.ref(o, where + ("outputs", k) if isinstance(outputs, list)
                             else where + ("outputs",), inner) for k, o in enumerate(names)]
        if not outs:
            raise self.fail(where, inner, "the block makes no layer", "empty")
        self.clauses(block, where, inner)
        scope.instances[name] = inner
        scope.made[name] = (block_name, args, path, scope.chain)
        scope.refs[name] = outs[0]
        scope.previous = outs[0]

    def share_instance(self, name: str, target: _Scope, target_name: str, reads: Any,
                       path: Path, scope: _Scope) -> None:
        """Apply an instance's layers again to other inputs: the same weights, new calls."""
        block_name, args, _, _ = scope.made[target_name]
        self.instance(name, block_name, args, reads, path, scope, share_of=target.prefix)

    def clauses(self, block: dict, where: Path, inner: _Scope) -> None:
        """A block's clauses, once per instance, named and targeted inside it."""
        for section in ("penalties", "weight_penalties"):
            raw = block.get(section, [])
            if not isinstance(raw, list):
                self.error(where + (section,), inner, f"`{section}:` is a list", "bad-type")
                continue
            for k, clause in enumerate(raw):
                path = where + (section, k)
                try:
                    value = self.value(clause, path, inner)
                    if isinstance(value, dict):
                        value = dict(value)
                        if isinstance(value.get("name"), str):
                            value["name"] = inner.prefix + value["name"]
                        if section == "penalties" and "layer" in value:
                            value["layer"] = self.ref(value["layer"], path + ("layer",), inner)
                        elif section == "weight_penalties" and "layers" in value:
                            pats = value["layers"]
                            value["layers"] = ([inner.prefix + p if isinstance(p, str) else p
                                                for p in pats] if isinstance(pats, list)
                                               else inner.prefix + pats
                                               if isinstance(pats, str) else pats)
                except _Problem:
                    continue
                target = self.penalties if section == "penalties" else self.weight_penalties
                target.append((value, Origin(path, inner.chain)))


_NAME: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
_PATH: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}(\.[A-Za-z_][A-Za-z0-9_]{0,63}){0,15}")


def _has_weights(kind: Any) -> bool:
    """Whether layers of this catalog type can be frozen (they have `trainable`)."""
    from specc.spec.layers import LAYER_TYPES

    cls = LAYER_TYPES.get(kind) if isinstance(kind, str) else None
    return cls is not None and "trainable" in cls.model_fields


def _is_name(name: str, dotted: bool = False) -> bool:
    return (_PATH if dotted else _NAME).fullmatch(name) is not None


def _fits(value: Any, kind: str) -> bool:
    if kind in ("int", "float") and isinstance(value, bool):
        return False
    return isinstance(value, PARAM_TYPES[kind])


def _type_of(value: Any) -> str:
    """The parameter type a default value gives (`stride: 1` is an int parameter)."""
    return {bool: "bool", int: "int", float: "float", str: "str", list: "list"}.get(
        type(value), "any")


def expand(doc: Document) -> ExpandedDocument:
    """The flat spec of a format 2 document, with the problems found on the way."""
    data = doc.data
    ex = Expander(doc)
    ex.read_blocks(data.get("blocks", {}))
    top = _Scope("", {})
    inputs = data.get("inputs")
    if isinstance(inputs, dict):
        top.refs.update({n: n for n in inputs if isinstance(n, str)})
        top.inputs = tuple(n for n in inputs if isinstance(n, str))
        if len(inputs) == 1:
            top.previous = next(iter(inputs))
    layers = data.get("layers")
    flat = {k: v for k, v in data.items() if k != "blocks"}
    if isinstance(layers, list):
        try:
            ex.entries(layers, ("layers",), top)
        except _TooLarge as stop:
            raise SpecError(dedupe(ex.problems) if stop.keep_all else ex.problems[-1:]) from None
        flat["layers"] = ex.layers
    top_refs = top

    def resolve(name: Any) -> Any:
        if isinstance(name, str):
            try:
                return top_refs.resolve(name)
            except KeyError:
                return name
        return name

    if isinstance(data.get("outputs"), list):
        flat["outputs"] = [resolve(o) for o in data["outputs"]]
    for key in ("loss", "loss_weights", "metrics"):
        value = data.get(key)
        if isinstance(value, dict) and key == "loss_weights" and \
                isinstance(value.get("schedule"), str):
            continue                        # one schedule for every output, not a mapping
        if isinstance(value, dict) and key != "loss" or (
                key == "loss" and isinstance(value, dict) and "type" not in value):
            flat[key] = {resolve(k): v for k, v in value.items()}
    pairs = data.get("pair_penalties")
    if isinstance(pairs, list):         # top level only: a pair names two paths (or uses)
        flat["pair_penalties"] = [
            {**c, "layers": [resolve(r) for r in c["layers"]]}
            if isinstance(c, dict) and isinstance(c.get("layers"), list) else c for c in pairs]
    for section in ("penalties", "weight_penalties"):
        own = data.get(section, [])
        if not isinstance(own, list):
            continue
        items = []
        for k, clause in enumerate(own):
            if section == "penalties" and isinstance(clause, dict) and "layer" in clause:
                clause = {**clause, "layer": resolve(clause["layer"])}
            items.append(clause)
        made = ex.penalties if section == "penalties" else ex.weight_penalties
        for clause, origin in made:
            ex.origins[(section, len(items))] = origin
            items.append(clause)
        if items or section in data:
            flat[section] = items
    return ExpandedDocument(doc, flat, ex.origins, dedupe(ex.problems))


def to_yaml(data: dict) -> str:
    """The flat spec as YAML a person can read (one line per layer and clause), and that
    loads back into the same data (`specc expand` prints it): specc.yaml_writer's."""
    from specc.yaml_writer import dump

    return dump(data, ["the flat form of a format 2 spec, written by `specc expand`"])


def _block_ref_hint(path: Path) -> str:
    """What the key holding an unknown name inside a block may name."""
    key = next((p for p in reversed(path) if isinstance(p, str)), "from")
    if key == "share":
        return (" (inside a block, `share:` names a layer or a use of a block defined in "
                "this block)")
    if key == "layer":
        return " (inside a block, a penalty's `layer:` names one of the block's own layers)"
    if key != "from":                   # a call argument (`initial_state:`, `mask:`, ...)
        return (f" (inside a block, `call: {{{key}: ...}}` reads the block's inputs and its "
                "own layers)")
    return " (inside a block, `from:` reads the block's inputs and its own layers)"
