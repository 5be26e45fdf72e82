"""Repeated sub-graphs found by their structure, whatever the layers are named.

A model written with Keras's automatic names (`conv2d_7`, `activation_12`) says nothing about
its repeated parts in its names, so they are found in the graph: a window of consecutive
entries of the flat spec is a candidate instance when it reads one or two tensors from
outside and is read from outside only through its last entry; its *shape* is the sequence of
its entries' types and argument names and of what each entry reads (an entry of the window
by its position, or which outside tensor). Windows of the same shape are instances of one
block: the arguments that differ between them become its parameters (fold_block.Block).

Only the shape is hashed here (no Keras, no values); the block built from a group is checked
by fold.py like any other (the folded spec must expand to the flat entries).
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Any, Final

#: The longest window tried (entries): a NASNet cell is about 60.
MAX_WINDOW: Final = 96
#: The most tensors a window reads from outside (a NASNet cell: the last two cells' outputs).
MAX_INPUTS: Final = 2
_AUTO: Final = re.compile(r"^(.*?)(?:_\d+)?$")
_NAME: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")


@dataclass(frozen=True)
class Window:
    start: int
    end: int                      # one past the last entry
    x: str                        # the outside tensor it reads first
    y: str | None = None          # a second one (a NASNet cell reads two cells back)


def snake(type_name: str) -> str:
    """A layer type as Keras names its layers (`SeparableConv2D` -> `separable_conv2d`)."""
    name = re.sub(r"\W+", "", type_name)
    name = re.sub(r"(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub(r"([a-z])([A-Z])", r"\1_\2", name).lower()


def is_auto(name: str, type_name: str) -> bool:
    """Whether a layer name is one Keras gave it (`conv2d`, `conv2d_7`)."""
    return _AUTO.match(name).group(1) == snake(type_name)     # type: ignore[union-attr]


def local_names(instances: list[list[dict[str, Any]]]) -> list[str]:
    """The names of the entries inside a block, from the instances' entries (position by
    position): names Keras gave become the type, numbered as Keras numbers within the block
    (`activation`, `activation_1`); names a person gave keep what all instances share
    (`block2_sepconv1_act`, `block3_sepconv2_act` -> `block_sepconv_act`; `a_wide`, `b_wide`
    -> `wide`), else the first instance's name."""
    out: list[str] = []
    seen: dict[str, int] = {}
    for column in zip(*instances):
        type_name, names = column[0]["type"], [e["name"] for e in column]
        if all(is_auto(n, e["type"]) for n, e in zip(names, column)):
            base = snake(type_name) or "layer"
            count = seen.get(base, 0)
            seen[base] = count + 1
            name = base if count == 0 else f"{base}_{count}"
        elif len({re.sub(r"\d+", "", n) for n in names}) == 1:
            name = re.sub(r"_+", "_", re.sub(r"\d+", "", names[0])).strip("_")
        else:
            head = os.path.commonprefix(names)
            tail = os.path.commonprefix([n[::-1] for n in names])[::-1]
            name = (head + tail).strip("_") if len(head) + len(tail) < min(map(len, names)) \
                else ""
            name = re.sub(r"_+", "_", name)
            if not name or not _NAME.fullmatch(name) or name in out:
                name = names[0]
        while name in out or name in ("x", "y", "i"):
            name += "_"
        out.append(name[:64])
    return out


def _refs(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [r for v in value.values() for r in _refs(v)]
    if isinstance(value, (list, tuple)):
        return [r for v in value for r in _refs(v)]
    return []


def _key(entry: dict[str, Any]) -> tuple[str, ...]:
    return (entry.get("type", ""), *sorted(k for k in entry if k not in ("name", "from")))


def groups(layers: list[dict[str, Any]], reads: list[Any], outputs: list[str],
           free: set[int]) -> dict[int, list[Window]]:
    """Every window of 2 entries or more among the `free` ones that could be an instance,
    grouped by shape (a hash of it; fold.py checks what it builds)."""
    position = {e["name"]: k for k, e in enumerate(layers)}
    n = len(layers)
    last_read = list(range(n))                 # the last entry reading entry k
    pinned = set()                             # read by a share, a call or as an output
    refs: list[list[str]] = []
    for k, entry in enumerate(layers):
        own = _refs(reads[k])
        refs.append(own)
        for r in own:
            if r in position:
                last_read[position[r]] = max(last_read[position[r]], k)
        for r in _refs(entry.get("call")) + _refs(entry.get("share")):
            pinned.add(position.get(r, -1))
    for o in outputs:
        pinned.add(position.get(o, -1))
    keys = [_key(e) for e in layers]
    found: dict[int, list[Window]] = {}
    for s in range(n):
        shape = 0
        inner_last = -1                        # the last reader of the entries before the end
        outside: list[str] = []
        for e in range(s + 1, min(n, s + MAX_WINDOW) + 1):
            k = e - 1
            entry = layers[k]
            if k not in free or "share" in entry or "call" in entry:
                break
            if k > s:
                if k - 1 in pinned:
                    break
                inner_last = max(inner_last, last_read[k - 1])
            coded = []
            for r in refs[k]:
                p = position.get(r, -1)
                if p >= s:
                    coded.append(p - s)
                else:
                    if r not in outside:
                        outside.append(r)
                    coded.append(-1 - outside.index(r))
            if len(outside) > MAX_INPUTS or any("." in r for r in outside):
                break
            shape = hash((shape, keys[k], tuple(coded)))
            if e - s >= 2 and inner_last < e and outside:
                found.setdefault(hash((shape, e - s, len(outside))), []).append(
                    Window(s, e, *outside))
    return found


def spread(windows: list[Window], used: set[int]) -> list[Window]:
    """The windows of one group that overlap neither each other nor `used`, leftmost first."""
    out: list[Window] = []
    end = -1
    for w in sorted(windows, key=lambda w: w.start):
        if w.start >= end and not any(k in used for k in range(w.start, w.end)):
            out.append(w)
            end = w.end
    return out


def chained(windows: list[Window], layers: list[dict[str, Any]]) -> list[list[int]]:
    """Windows (by position) grouped into runs: each one right after the one before and
    reading its last entry (a `repeat:`)."""
    runs: list[list[int]] = []
    for j, w in enumerate(windows):
        if runs:
            prev = windows[runs[-1][-1]]
            if w.start == prev.end and w.x == layers[prev.end - 1]["name"] and w.y is None:
                runs[-1].append(j)
                continue
        runs.append([j])
    return runs
