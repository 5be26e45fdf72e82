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

from typing import Any, Final

from specc import expr
from specc.blockcheck import check_unused
from specc.blockdefs import BLOCK_KEYS, PARAM_TYPES, BlockDefinitions
from specc.errors import SpecError, did_you_mean, quote
from specc.expand_base import Path, Problem, Scope, TooLarge, is_name
from specc.format1 import ENTRY_KEYS, format1_problems
from specc.loader import Document
from specc.provenance import MAX_ERRORS, ExpandedDocument, Origin, Use, dedupe

__all__ = ["BLOCK_KEYS", "ENTRY_KEYS", "MAX_ENTRIES", "MAX_ERRORS", "MAX_LAYERS",
           "MAX_NESTING", "MAX_REPEAT", "PARAM_TYPES", "Expander", "expand", "format1_problems",
           "to_yaml"]

#: Bounds that make expansion fast on any input: produced layers, nesting of uses, repeats,
#: entries expanded (every instance and every copy a repeat makes, those that `if:` leaves
#: out included) and problems reported. Expressions have their own (specc.expr: sizes of
#: values, and MAX_STEPS evaluation steps for one whole expansion).
MAX_LAYERS: Final = 20_000
MAX_NESTING: Final = 16
MAX_REPEAT: Final = 10_000
MAX_ENTRIES: Final = 2 * MAX_LAYERS      # a layer and an instance per layer, at most


class Expander(BlockDefinitions):
    """Walks the source spec once; collects diagnostics instead of stopping at the first."""


    def entries(self, raw: list, path: Path, scope: Scope) -> None:
        for i, entry in enumerate(raw):
            try:
                self.entry(entry, path + (i,), scope)
            except Problem:
                if isinstance(entry, dict) and isinstance(entry.get("name"), str):
                    scope.left_out.setdefault(entry["name"], None)     # reported already

    def entry(self, entry: Any, path: Path, scope: Scope) -> None:
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
            here = Scope(**{**scope.__dict__, "values": {**scope.values, "i": index}}) \
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
            except Problem:
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
            raise Problem()

    def count(self, path: Path, scope: Scope) -> None:
        """One more entry expanded (a layer, an instance, or one that `if:` leaves out)."""
        self.expanded += 1
        if self.expanded > MAX_ENTRIES:
            raise self.bound(path, scope, f"the spec expands more than {MAX_ENTRIES:,} entries "
                             "(layers, block instances and repeated copies, those that `if:` "
                             "leaves out included)")

    def repeated_name(self, raw: Any, path: Path, scope: Scope) -> str:
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
        if not isinstance(name, str) or not is_name(name):
            raise self.fail(path + ("name",), scope, f"{quote(name)} is not a valid name: use "
                            "letters, digits and '_' (at most 64), starting with a letter or "
                            "'_'", "bad-name")
        return name

    def condition(self, raw: Any, path: Path, scope: Scope) -> bool:
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

    def _name(self, fields: dict, path: Path, scope: Scope) -> str:
        name = self.value(fields.get("name"), path + ("name",), scope)
        # Top-level names may be paths already (the flat form that `specc expand` prints).
        if not isinstance(name, str) or not is_name(name, dotted=scope.block is None):
            if name is None:
                raise self.fail(path, scope, "missing required key 'name'", "missing-key")
            raise self.fail(path + ("name",), scope, f"{quote(name)} is not a valid name: use "
                            "letters, digits and '_' (at most 64), starting with a letter or '_'",
                            "bad-name")
        if name in scope.refs or name in scope.instances or (name in scope.inputs):
            raise self.fail(path + ("name",), scope, f"duplicate name {quote(name)}",
                            "duplicate-name")
        return name

    def _reads(self, fields: dict, path: Path, scope: Scope) -> Any:
        if "from" in fields:
            return self.refs(self.value(fields["from"], path + ("from",), scope),
                             path + ("from",), scope)
        if scope.previous is None and scope.block is not None:
            raise self.fail(path, scope, f"{quote(fields.get('name'))} has no `from:` and block "
                            f"{quote(scope.block)} has several inputs "
                            f"({', '.join(scope.inputs)}): say which one it reads",
                            "missing-from")
        return scope.previous

    def layer(self, fields: dict, path: Path, scope: Scope) -> None:
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
            except Problem:
                failed = True
        if failed:
            raise Problem()
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

    def call(self, raw: Any, path: Path, scope: Scope) -> Any:
        """`call: {ARG: NAME or [NAMES]}` with the names resolved (booleans kept)."""
        if not isinstance(raw, dict):
            return raw
        out, failed = {}, False
        for k, v in raw.items():
            try:
                out[k] = v if isinstance(v, bool) else \
                    self.refs(self.value(v, path + (k,), scope), path + (k,), scope)
            except Problem:
                failed = True
        if failed:
            raise Problem()
        return out

    def emit(self, entry: Any, path: Path, scope: Scope, name: str | None) -> None:
        if len(self.layers) >= MAX_LAYERS:
            raise self.bound(path, scope, f"the spec expands to more than {MAX_LAYERS:,} "
                             "layers")
        self.origins[("layers", len(self.layers))] = Origin(path, scope.chain)
        self.layers.append(entry)

    def use(self, fields: dict, path: Path, scope: Scope, share_of: str | None = None) -> None:
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
                 scope: Scope, share_of: str | None, frozen: bool = False) -> None:
        block = self.blocks[block_name]
        self.used.add(block_name)
        inputs = block["inputs"]
        given = [reads] if isinstance(reads, str) else list(reads or [])
        if len(given) != len(inputs):
            raise self.fail(path, scope, f"block {quote(block_name)} reads {len(inputs)} input"
                            f"{'s' * (len(inputs) != 1)} ({', '.join(inputs)}), given "
                            f"{len(given)}: say which with `from:`", "arity")
        full = scope.prefix + name
        chain = (*scope.chain, Use(full, block_name, path))
        inner = Scope(prefix=full + ".", values=dict(args), chain=chain,
                       refs=dict(zip(inputs, given)), inputs=tuple(inputs),
                       previous=given[0] if len(given) == 1 else None,
                       share_of=share_of, block=block_name, frozen=frozen)
        where = ("blocks", block_name)
        before = len(self.problems)
        self.entries(block["layers"], where + ("layers",), inner)
        if len(self.problems) > before:       # its layers were reported: the rest would echo
            raise Problem()
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

    def share_instance(self, name: str, target: Scope, target_name: str, reads: Any,
                       path: Path, scope: Scope) -> None:
        """Apply an instance's layers again to other inputs: the same weights, new calls."""
        block_name, args, _, _ = scope.made[target_name]
        self.instance(name, block_name, args, reads, path, scope, share_of=target.prefix)

    def clauses(self, block: dict, where: Path, inner: Scope) -> None:
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
                except Problem:
                    continue
                target = self.penalties if section == "penalties" else self.weight_penalties
                target.append((value, Origin(path, inner.chain)))


def _has_weights(kind: Any) -> bool:
    """Whether layers of this catalog type can be frozen (they have `trainable`)."""
    from specc.spec.layers import LAYER_TYPES

    cls = LAYER_TYPES.get(kind) if isinstance(kind, str) else None
    return cls is not None and "trainable" in cls.model_fields


def expand(doc: Document) -> ExpandedDocument:
    """The flat spec of a format 2 document, with the problems found on the way."""
    data = doc.data
    ex = Expander(doc)
    ex.read_blocks(data.get("blocks", {}))
    top = Scope("", {})
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
        except TooLarge as stop:
            raise SpecError(dedupe(ex.problems) if stop.keep_all else ex.problems[-1:]) from None
        flat["layers"] = ex.layers
    check_unused_blocks(ex, doc, data.get("blocks"))
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


def check_unused_blocks(ex: Expander, doc: Document, raw: Any) -> None:
    """The definitions of the blocks this file writes that no entry used
    (specc.blockcheck); an imported library's are its own file's to check."""
    if not isinstance(raw, dict):
        return
    for name in ex.blocks:
        if name not in ex.used and doc.key_span(("blocks", name)).file == doc.file:
            try:
                check_unused(ex, name, set(raw))
            except TooLarge:
                return


def to_yaml(data: dict) -> str:
    """The flat spec as YAML a person can read (one line per layer and clause), and that
    loads back into the same data (`specc expand` prints it): specc.yaml_writer's."""
    from specc.yaml_writer import dump

    return dump(data, ["the flat form of a format 2 spec, written by `specc expand`"])
