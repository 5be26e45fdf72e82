"""One family of instances written as a block: its entries in one order, a value that differs
between instances as a parameter, an entry some instances lack under `if:`, and the values of
a repeat's copies as `${...}` of `i` (used by specc.importer.fold)."""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Final

from specc.importer.repeats import snake

NAME: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")


@dataclass
class Instance:
    prefix: str                    # conv2_block1
    stem: str                      # conv2_block
    index: str                     # "1" (or "2a": no repeat)
    start: int                     # first entry (index into the flat list)
    end: int                       # one past the last
    x: Any = None                  # the outside tensor it reads
    y: str | None = None           # a second one (a NASNet cell reads two cells back)
    names: list[str] | None = None  # its entries' local names (found by structure)


@dataclass
class Family:
    key: str
    instances: list[Instance] = field(default_factory=list)
    name: str | None = None        # the block's name (found by structure)

    def size(self) -> int:
        return sum(i.end - i.start for i in self.instances)


def local_name(name: str, prefix: str, type_name: str) -> str:
    """`conv2_block1_1_conv` in `conv2_block1` -> `_1_conv`; the layer named as its instance
    (MobileNet's `conv_dw_1` before `conv_dw_1_bn`) after its type (`depthwise_conv2d`)."""
    local = name[len(prefix):].lstrip("_") or snake(type_name)
    return local if NAME.fullmatch(local) else ("_" + local)[:64]


def union_of(orders: list[list[str]]) -> list[str]:
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


def literal(value: Any) -> str:
    """A value as an expression literal (`${...}`)."""
    if isinstance(value, str):
        return repr(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(literal(v) for v in value) + "]"
    return repr(value)


def per_index(values: list[Any]) -> Any:
    """The values of a parameter over a repeat's copies, as one value or a `${...}` of i."""
    if all(v == values[0] for v in values):
        return values[0]
    if values[0] is True and not any(values[1:]) and all(v is False for v in values[1:]):
        return "${i == 0}"
    if values[0] is False and all(v is True for v in values[1:]):
        return "${i > 0}"
    if all(isinstance(v, bool) for v in values) and values == sorted(values):
        return f"${{i >= {values.index(True)}}}"       # False .. False, True .. True
    if all(isinstance(v, bool) for v in values) and values == sorted(values, reverse=True):
        return f"${{i < {values.index(False)}}}"
    if len(values) > 2 and all(v == values[1] for v in values[1:]):
        return f"${{{literal(values[0])} if i == 0 else {literal(values[1])}}}"
    return progression(values) or f"${{{literal(values)}[i]}}"


def progression(values: list[Any]) -> str | None:
    """Integers in an arithmetic or geometric progression as a formula of i
    (`${64 * 2 ** i}` for 64, 128, 256), else None."""
    if len(values) < 3 or not all(type(v) is int for v in values):
        return None
    a, b = values[0], values[1]
    if all(v == a + (b - a) * j for j, v in enumerate(values)):
        step = b - a
        term = "i" if abs(step) == 1 else f"{abs(step)} * i"
        return f"${{{a} {'+' if step > 0 else '-'} {term}}}" if a else \
            (f"${{{term}}}" if step > 0 else f"${{-{term}}}")
    if a > 0 and b > a and b % a == 0 and all(v == a * (b // a) ** j for j, v in enumerate(values)):
        return f"${{{a} * {b // a} ** i}}"
    if b > 0 and a > b and a % b == 0 and \
            all(v * (a // b) ** j == a for j, v in enumerate(values)):
        return f"${{{a} // {a // b} ** i}}"
    return None


def default_of(type_name: str, key: str) -> tuple[bool, Any]:
    from specc.catalog import LAYER_TYPES

    cls = LAYER_TYPES.get(type_name)
    info = getattr(cls, "model_fields", {}).get(key)
    if info is None or info.is_required():
        return False, None
    return True, info.get_default(call_default_factory=True)


def type_word(values: list[Any]) -> str:
    kinds = {type(v) for v in values}
    for word, kind in (("bool", bool), ("int", int), ("float", float), ("str", str),
                       ("list", list)):
        if kinds == {kind}:
            return word
    return "any"


def instance_locals(inst: Instance, layers: list[dict[str, Any]]) -> dict[str, int]:
    """The local names of a named instance's entries (-> flat index): the name without the
    instance's prefix, or, for a layer Keras named, its type after the named entry before it
    (`expand_bn_re_lu`), numbered after that one, so that instances agree."""
    out: dict[str, int] = {}
    seen: dict[str, int] = {}
    anchor = ""
    for k in range(inst.start, inst.end):
        name, type_name = layers[k]["name"], layers[k]["type"]
        if name == inst.prefix or name.startswith(inst.prefix + "_"):
            local = anchor = local_name(name, inst.prefix, type_name)
        else:
            base = f"{anchor}_{snake(type_name)}".strip("_")[:60]
            count = seen[base] = seen.get(base, -1) + 1
            local = base if count == 0 else f"{base}_{count}"
        while local in out or local in ("x", "y", "i"):
            local += "_"
        out[local] = k
    return out


class Block:
    """One family written as a block: its entries, parameters and each instance's values."""

    def __init__(self, family: Family, layers: list[dict[str, Any]], reads: list[Any]):
        self.family = family
        self.n = len(family.instances)
        self.entries: list[dict[str, Any]] = []
        self.params: dict[str, list[Any]] = {}
        self.locals: list[dict[str, int]] = []        # per instance: local -> flat index
        for inst in family.instances:
            if inst.names is not None:
                self.locals.append({local: inst.start + p for p, local in enumerate(inst.names)})
            else:
                self.locals.append(instance_locals(inst, layers))
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
            return names.get(r, "x" if r == inst.x else "y" if r == inst.y else r)
        return one(value) if isinstance(value, str) else [one(v) for v in value]

    def build(self) -> bool:
        if len({inst.y is None for inst in self.family.instances}) > 1:
            return False               # one block, one number of inputs
        orders = [list(d) for d in self.locals]
        union = union_of(orders)
        if any([u for u in union if u in order] != order for order in orders):
            return False               # instances order their entries differently (Xception)
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
                        known, default = default_of(e["type"], key)
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
            # with two inputs, an entry reading an input says which (specc.expand asks)
            two = self.family.instances[j].y is not None
            implicit.append(before[-1] if before else None if two else "x")
        if all(r == p for r, p in zip(reads, implicit)):
            return True
        if all(r == reads[0] for r in reads):
            entry["from"] = reads[0]
        else:
            entry["from"] = "${" + self.param(f"{local}_from",
                                              self.spread(present, reads)) + "}"
        return True
