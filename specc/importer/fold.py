"""Folding: a flat imported spec -> format 2 blocks, uses and repeats, as a person writes it.

Keras names the layers of a repeated sub-graph `<instance>_<local>` (`conv2_block1_1_conv`,
`block_3_expand`, `block2a_se_squeeze`). An instance is a run of consecutive entries whose
names share a prefix ending in an index (`conv2_block1`); instances whose prefixes differ
only in their digits form a family (`conv#_block`), written as one block: the union of their
entries in order, a value that differs between instances as a parameter, an entry that some
instances lack under `if:`. Consecutive instances `<stem>1` .. `<stem>K` become one
`repeat: K` (its copies are named exactly so), the per-index values as `${...}` of `i`.

An instance reads one tensor from outside (its block input `x`) and is read from outside only
through its last entry; entries that share layers or take call arguments are not folded.
Families are taken greedily, the one that saves most lines first. The result is checked:
expanded again (specc.expand, no Keras), it must give the flat entries back, renamed
(`conv2_block1_1_conv` -> `conv2_block1._1_conv`); otherwise the flat spec is kept.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Final

_INDEX: Final = re.compile(r"^(.*?)(\d+)([a-z]?)$")
_NAME: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
_SKIP: Final = ("share", "call")


@dataclass
class _Instance:
    prefix: str                    # conv2_block1
    stem: str                      # conv2_block
    index: str                     # "1" (or "2a": no repeat)
    start: int                     # first entry (index into the flat list)
    end: int                       # one past the last
    x: Any = None                  # the outside tensor it reads


@dataclass
class _Family:
    key: str
    instances: list[_Instance] = field(default_factory=list)

    def size(self) -> int:
        return sum(i.end - i.start for i in self.instances)


def explicit_reads(layers: list[dict[str, Any]], inputs: list[str]) -> list[Any]:
    """Each entry's `from:` with the implicit one (the previous entry) written out."""
    out = []
    for k, entry in enumerate(layers):
        if "from" in entry:
            out.append(entry["from"])
        else:
            out.append(layers[k - 1]["name"] if k else inputs[0])
    return out


def _refs(value: Any) -> list[str]:
    return [value] if isinstance(value, str) else [v for v in value or () if isinstance(v, str)]


def _candidates(layers: list[dict[str, Any]]) -> dict[str, _Family]:
    """Every family of instances the names suggest (an instance: 2 entries or more)."""
    runs: dict[str, list[int]] = {}
    for k, entry in enumerate(layers):
        tokens = entry["name"].split("_")
        for depth in range(1, len(tokens)):
            prefix = "_".join(tokens[:depth])
            if _INDEX.match(prefix):
                runs.setdefault(prefix, []).append(k)
    families: dict[str, _Family] = {}
    for prefix, ks in runs.items():
        if len(ks) < 2 or ks[-1] - ks[0] + 1 != len(ks):
            continue                                    # not one consecutive run
        stem, digits, letter = _INDEX.match(prefix).groups()  # type: ignore[union-attr]
        key = re.sub(r"\d+", "#", stem) + ("#a" if letter else "#")
        families.setdefault(key, _Family(key)).instances.append(
            _Instance(prefix, stem, digits + letter, ks[0], ks[-1] + 1))
    return families


def _valid(inst: _Instance, layers: list[dict[str, Any]], reads: list[Any],
           outputs: list[str], used: set[int]) -> bool:
    """One outside input, read from outside only through its last entry, nothing shared."""
    inside = {layers[k]["name"] for k in range(inst.start, inst.end)}
    if any(k in used for k in range(inst.start, inst.end)):
        return False
    outside: set[str] = set()
    for k in range(inst.start, inst.end):
        if any(key in layers[k] for key in _SKIP):
            return False
        outside.update(r for r in _refs(reads[k]) if r not in inside)
    if len(outside) != 1 or any("." in r for r in outside):
        return False
    inst.x = next(iter(outside))
    last = layers[inst.end - 1]["name"]
    for k, entry in enumerate(layers):
        if inst.start <= k < inst.end:
            continue
        if entry.get("share") in inside:
            return False
        touched = set(_refs(reads[k])) | set(_refs_in_call(entry.get("call")))
        if touched & (inside - {last}):
            return False
    return not (set(outputs) & (inside - {last}))


def _refs_in_call(call: Any) -> list[str]:
    if not isinstance(call, dict):
        return []
    return [r for v in call.values() for r in _refs(v)]


def _local(name: str, prefix: str) -> str:
    local = name[len(prefix):].lstrip("_") or "out"
    return local if _NAME.fullmatch(local) else ("_" + local)[:64]


def _union(orders: list[list[str]]) -> list[str]:
    """The locals of every instance in one order that keeps each instance's order."""
    union: list[str] = []
    for order in orders:
        at = 0
        for local in order:
            if local in union:
                at = union.index(local) + 1
            else:
                union.insert(at, local)
                at += 1
    return union


def _literal(value: Any) -> str:
    """A value as an expression literal (`${...}`)."""
    if isinstance(value, str):
        return repr(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_literal(v) for v in value) + "]"
    return repr(value)


def _per_index(values: list[Any]) -> Any:
    """The values of a parameter over a repeat's copies, as one value or a `${...}` of i."""
    if all(v == values[0] for v in values):
        return values[0]
    if values[0] is True and not any(values[1:]) and all(v is False for v in values[1:]):
        return "${i == 0}"
    if values[0] is False and all(v is True for v in values[1:]):
        return "${i > 0}"
    if len(values) > 2 and all(v == values[1] for v in values[1:]):
        return f"${{{_literal(values[0])} if i == 0 else {_literal(values[1])}}}"
    return f"${{{_literal(values)}[i]}}"


def _default(type_name: str, key: str) -> tuple[bool, Any]:
    from specc.catalog import LAYER_TYPES

    cls = LAYER_TYPES.get(type_name)
    info = getattr(cls, "model_fields", {}).get(key)
    if info is None or info.is_required():
        return False, None
    return True, info.get_default(call_default_factory=True)


def _type_word(values: list[Any]) -> str:
    kinds = {type(v) for v in values}
    for word, kind in (("bool", bool), ("int", int), ("float", float), ("str", str),
                       ("list", list)):
        if kinds == {kind}:
            return word
    return "any"


class _Block:
    """One family written as a block: its entries, parameters and each instance's values."""

    def __init__(self, family: _Family, layers: list[dict[str, Any]], reads: list[Any]):
        self.family = family
        self.n = len(family.instances)
        self.entries: list[dict[str, Any]] = []
        self.params: dict[str, list[Any]] = {}
        self.locals: list[dict[str, int]] = []        # per instance: local -> flat index
        for inst in family.instances:
            self.locals.append({_local(layers[k]["name"], inst.prefix): k
                                for k in range(inst.start, inst.end)})
        self.layers, self.reads = layers, reads

    def param(self, wanted: str, values: list[Any], short: str | None = None) -> str:
        """A parameter holding `values` (one per instance): `short` (the argument's own
        name) when free, else `wanted`; values already held by one reuse it."""
        for known, vals in self.params.items():
            if vals == values:
                return known                           # the same values: one parameter
        if short is not None and short not in self.params and short not in ("i", "x"):
            self.params[short] = values
            return short
        name = re.sub(r"_+", "_", re.sub(r"[^A-Za-z0-9_]", "_", wanted)).strip("_")[:60] or "p"
        name = name if name[0].isalpha() else "p_" + name
        base, k = name, 1
        while name in self.params or name in ("i", "x"):
            k += 1
            name = f"{base}_{k}"
        self.params[name] = values
        return name

    def mapped(self, j: int, value: Any) -> Any:
        inst = self.family.instances[j]
        names = {self.layers[k]["name"]: local for local, k in self.locals[j].items()}

        def one(r: Any) -> Any:
            return names.get(r, "x" if r == inst.x else r)
        return one(value) if isinstance(value, str) else [one(v) for v in value]

    def build(self) -> bool:
        orders = [list(d) for d in self.locals]
        union = _union(orders)
        presence: dict[tuple[bool, ...], str] = {}
        for local in union:
            present = [j for j in range(self.n) if local in self.locals[j]]
            flat = [self.layers[self.locals[j][local]] for j in present]
            if len({e["type"] for e in flat}) != 1:
                return False
            entry: dict[str, Any] = {"name": local, "type": flat[0]["type"]}
            if not self.from_(entry, local, union, present):
                return False
            keys = list(dict.fromkeys(k for e in flat for k in e
                                      if k not in ("name", "type", "from")))
            for key in keys:
                values = []
                for e in flat:
                    if key not in e:
                        known, default = _default(e["type"], key)
                        if not known:
                            return False
                        values.append(default)
                    else:
                        values.append(e[key])
                if all(v == values[0] for v in values):
                    entry[key] = values[0]
                else:
                    entry[key] = "${" + self.param(f"{local}_{key}",
                                                   self.spread(present, values), key) + "}"
            pattern = tuple(j in present for j in range(self.n))
            if not all(pattern):
                if pattern not in presence:
                    presence[pattern] = self.param(f"has_{local}", list(pattern))
                entry["if"] = "${" + presence[pattern] + "}"
            self.entries.append(entry)
        return True

    def spread(self, present: list[int], values: list[Any]) -> list[Any]:
        """Values of the present instances, the absent ones given a neighbour's (unused)."""
        out: list[Any] = [None] * self.n
        for j, v in zip(present, values):
            out[j] = v
        last = values[0]
        for j in range(self.n):
            if j in present:
                last = out[j]
            else:
                out[j] = last
        return out

    def from_(self, entry: dict[str, Any], local: str, union: list[str],
              present: list[int]) -> bool:
        reads = [self.mapped(j, self.reads[self.locals[j][local]]) for j in present]
        implicit = []
        for j in present:
            before = [u for u in union[:union.index(local)] if u in self.locals[j]]
            implicit.append(before[-1] if before else "x")
        if all(r == p for r, p in zip(reads, implicit)):
            return True
        if all(r == reads[0] for r in reads):
            entry["from"] = reads[0]
        else:
            entry["from"] = "${" + self.param(f"{local}_from",
                                              self.spread(present, reads)) + "}"
        return True


def _choose(layers: list[dict[str, Any]], reads: list[Any],
            outputs: list[str]) -> list[_Block]:
    """Families, the one saving most entries first, each as a block (2 instances or more)."""
    families = _candidates(layers)
    used: set[int] = set()
    blocks: list[_Block] = []
    while True:
        best: tuple[int, _Block] | None = None
        for family in families.values():
            kept = _Family(family.key, [i for i in family.instances
                                       if _valid(i, layers, reads, outputs, used)])
            if len(kept.instances) < 2:
                continue
            block = _Block(kept, layers, reads)
            if not block.build():
                continue
            saving = kept.size() - len(block.entries) - len(kept.instances) - 4
            if saving > 0 and (best is None or saving > best[0]):
                best = (saving, block)
        if best is None:
            return sorted(blocks, key=lambda b: b.family.instances[0].start)
        block = best[1]
        blocks.append(block)
        del families[block.family.key]
        for inst in block.family.instances:
            used.update(range(inst.start, inst.end))


def _runs(block: _Block, layers: list[dict[str, Any]]) -> list[list[int]]:
    """The block's instances (by position) grouped into repeats: `<stem>1` .. `<stem>K`,
    consecutive, each reading the one before."""
    runs: list[list[int]] = []
    insts = block.family.instances
    for j, inst in enumerate(insts):
        if runs:
            prev = insts[runs[-1][-1]]
            if inst.stem == prev.stem and inst.index.isdigit() and prev.index.isdigit() and \
                    int(inst.index) == int(prev.index) + 1 and inst.start == prev.end and \
                    inst.x == layers[prev.end - 1]["name"] and insts[runs[-1][0]].index == "1":
                runs[-1].append(j)
                continue
        runs.append([j])
    out = []
    for run in runs:                  # a run not starting at 1 is written instance by instance
        if len(run) > 1 and insts[run[0]].index == "1" and _NAME.fullmatch(insts[run[0]].stem):
            out.append(run)
        else:
            out += [[j] for j in run]
    return out


def fold(data: dict[str, Any], owners: dict[str, Any]) -> tuple[dict[str, Any],
                                                               dict[str, str]] | None:
    """The folded spec and the renaming of the flat names (None: nothing to fold, or the
    folded form would not expand to the same layers)."""
    layers, inputs = data["layers"], list(data["inputs"])
    reads = explicit_reads(layers, inputs)
    blocks = _choose(layers, reads, data["outputs"])
    if not blocks:
        return None
    rename: dict[str, str] = {}           # flat name -> its path in the folded spec
    outside: dict[str, str] = {}          # flat name -> how a top-level entry reads it
    starts: dict[int, tuple[_Block, list[int]]] = {}
    names: dict[str, dict[str, Any]] = {}
    for block in blocks:
        bname = re.sub(r"\d+", "", block.family.instances[0].stem).strip("_") or "block"
        bname = re.sub(r"_+", "_", bname)
        while bname in names:
            bname += "_"
        names[bname] = {}
        block.name = bname                 # type: ignore[attr-defined]
        for run in _runs(block, layers):
            starts[block.family.instances[run[0]].start] = (block, run)
        for j, inst in enumerate(block.family.instances):
            for local, k in block.locals[j].items():
                rename[layers[k]["name"]] = f"{inst.prefix}.{local}"
            outside[layers[inst.end - 1]["name"]] = inst.prefix
    new: list[dict[str, Any]] = []
    previous = inputs[0] if len(inputs) == 1 else None     # the flat name read implicitly
    k = 0
    while k < len(layers):
        if k in starts:
            block, run = starts[k]
            first, last = block.family.instances[run[0]], block.family.instances[run[-1]]
            entry: dict[str, Any] = {"name": first.stem if len(run) > 1 else first.prefix,
                                     "use": block.name}        # type: ignore[attr-defined]
            if len(run) > 1:
                entry["repeat"] = len(run)
            if first.x != previous:
                entry["from"] = outside.get(first.x, first.x)
            with_ = {p: _per_index([vals[j] for j in run]) for p, vals in block.params.items()}
            if with_:
                entry["with"] = with_
            new.append(entry)
            previous = layers[last.end - 1]["name"]
            k = last.end
            continue
        entry = dict(layers[k])
        entry.pop("from", None)
        read = reads[k]
        if read != previous or not isinstance(read, str):
            entry = {"name": entry["name"], **{"from": _renamed(read, outside)},
                     **{key: v for key, v in entry.items() if key != "name"}}
        if "call" in entry:
            entry["call"] = {key: _renamed(v, outside) for key, v in entry["call"].items()}
        if "share" in entry:
            entry["share"] = outside.get(entry["share"], entry["share"])
        new.append(entry)
        previous = entry["name"]
        k += 1
    blocks_data = {b.name: {"params": {p: _type_word(v) for p, v in b.params.items()},  # type: ignore[attr-defined]
                            "layers": b.entries} for b in blocks}
    if not all(b.params for b in blocks):
        for b in blocks:
            if not b.params:
                del blocks_data[b.name]["params"]     # type: ignore[attr-defined]
    folded = {"specc": 2, "name": data["name"], "inputs": data["inputs"],
              "blocks": blocks_data, "layers": new,
              "outputs": [outside.get(o, o) for o in data["outputs"]],
              **{k: v for k, v in data.items()
                 if k not in ("specc", "name", "inputs", "layers", "outputs")}}
    if not _same_layers(folded, data, reads, rename):
        return None
    return folded, rename


def _renamed(value: Any, outside: dict[str, str]) -> Any:
    if isinstance(value, str):
        return outside.get(value, value)
    return [outside.get(v, v) for v in value]


def _same_layers(folded: dict[str, Any], data: dict[str, Any], reads: list[Any],
                 rename: dict[str, str]) -> bool:
    """Expanded again (no Keras), the folded spec gives the flat entries, renamed."""
    from specc.errors import SpecError
    from specc.loader import load_text
    from specc.validation import expand_document
    from specc.yaml_writer import dump

    try:
        expanded = expand_document(load_text(dump(folded), "<fold>")).data["layers"]
    except SpecError:
        return False

    def path(value: Any) -> Any:
        return rename.get(value, value) if isinstance(value, str) else \
            [rename.get(v, v) for v in value]

    if len(expanded) != len(data["layers"]):
        return False
    got_reads = explicit_reads(expanded, list(folded["inputs"]))
    for got, got_read, entry, read in zip(expanded, got_reads, data["layers"], reads):
        got = {**got, "from": got_read}
        want = {**{k: v for k, v in entry.items() if k != "from"},
                "name": path(entry["name"]), "from": path(read)}
        if "share" in want:
            want["share"] = path(want["share"])
        if "call" in want:
            want["call"] = {k: path(v) for k, v in want["call"].items()}
        if _without_defaults(got) != _without_defaults(want):
            return False
    return True


def _without_defaults(entry: dict[str, Any]) -> dict[str, Any]:
    """An entry without the arguments that hold the catalog's default (`strides: [1, 1]`
    and no `strides` build the same layer)."""
    from specc.importer.arguments import _same

    out = {}
    for key, value in entry.items():
        if key not in ("name", "type", "from"):
            known, default = _default(entry.get("type", ""), key)
            if known and _same(value, default):
                continue
        out[key] = value
    return out
