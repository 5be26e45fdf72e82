"""Folding: a flat imported spec -> format 2 blocks, uses and repeats, as a person writes it.

Keras names the layers of a repeated sub-graph `<instance>_<local>` (`conv2_block1_1_conv`,
`block_3_expand`, `block2a_se_squeeze`). An instance is a run of consecutive entries whose
names share a prefix ending in an index (`conv2_block1`; layers Keras named itself, `re_lu_3`,
may sit between them); instances whose prefixes differ
only in their digits form a family (`conv#_block`), written as one block: the union of their
entries in order, a value that differs between instances as a parameter, an entry that some
instances lack under `if:`. Consecutive instances `<stem>1` .. `<stem>K` become one
`repeat: K` (its copies are named exactly so), the per-index values as `${...}` of `i`.

Repeats are also found by structure (specc.importer.repeats), for models whose names say
nothing (Keras's automatic `conv2d_7`): windows of consecutive entries with the same types,
argument names and wiring are instances of one block named after its main layer
(`separable_conv2d_block`), its entries after their types (`activation_1`) or what the names
a person gave share; chained windows become one `repeat:`.

An instance reads one tensor from outside (its block input `x`; or two, `x` and `y`, in the
order it first reads them: NASNet's cells, used each on its own) and is read from outside only
through its last entry; entries that share layers or take call arguments are not folded.
Families of both kinds are taken greedily, the one that saves most lines first; greed is
short-sighted, so the choice is made TRIES times, each without the previous try's first block
at first, and the fewest lines win. The result is checked:
expanded again (specc.expand, no Keras), it must give the flat entries back, renamed
(`conv2_block1_1_conv` -> `conv2_block1._1_conv`); otherwise the flat spec is kept.
"""
from __future__ import annotations

import re
from typing import Any, Final

from specc.expr import MAX_TEXT
from specc.importer import repeats
from specc.importer.fold_block import (NAME, Block, Family, Instance, default_of, per_index,
                                       type_word)

_INDEX: Final = re.compile(r"^(.*?)(\d+)([a-z]?)$")
_SKIP: Final = ("share", "call")
#: A name Keras gives (`re_lu_3`, `add_1` for a keras.ops call the walk wrote as Rescaling).
_GIVEN: Final = re.compile(r"[a-z]+(?:_[a-z]+)*(?:_\d+)?")
#: Choices of blocks tried (each without the first block of the one before, at first).
TRIES: Final = 3


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


def _candidates(layers: list[dict[str, Any]]) -> dict[str, Family]:
    """Every family of instances the names suggest (an instance: 2 entries or more, one run
    of entries named with its prefix, or named by Keras: MobileNetV3's `re_lu_3` sits between
    `expanded_conv_1_depthwise_bn` and `expanded_conv_1_project`)."""
    runs: dict[str, list[int]] = {}
    for k, entry in enumerate(layers):
        tokens = entry["name"].split("_")
        for depth in range(1, len(tokens) + 1):     # the name itself too: `conv_dw_1`
            prefix = "_".join(tokens[:depth])
            if _INDEX.match(prefix):
                runs.setdefault(prefix, []).append(k)
    families: dict[str, Family] = {}
    for prefix, ks in runs.items():
        inside = set(ks)
        if len(ks) < 2 or any(not _GIVEN.fullmatch(layers[k]["name"])
                              for k in range(ks[0], ks[-1]) if k not in inside):
            continue                                    # not one run
        stem, digits, letter = _INDEX.match(prefix).groups()  # type: ignore[union-attr]
        key = re.sub(r"\d+", "#", stem) + ("#a" if letter else "#")
        families.setdefault(key, Family(key)).instances.append(
            Instance(prefix, stem, digits + letter, ks[0], ks[-1] + 1))
    return families


def _valid(inst: Instance, layers: list[dict[str, Any]], reads: list[Any],
           outputs: list[str], used: set[int]) -> bool:
    """One or two outside inputs (`x`, `y` in the order first read), read from outside only
    through its last entry, nothing shared."""
    inside = {layers[k]["name"] for k in range(inst.start, inst.end)}
    if any(k in used for k in range(inst.start, inst.end)):
        return False
    outside: list[str] = []
    for k in range(inst.start, inst.end):
        if any(key in layers[k] for key in _SKIP):
            return False
        outside += [r for r in _refs(reads[k]) if r not in inside and r not in outside]
    if not 1 <= len(outside) <= 2 or any("." in r for r in outside):
        return False
    inst.x, inst.y = outside[0], (outside[1] if len(outside) > 1 else None)
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


def _choose(layers: list[dict[str, Any]], reads: list[Any], outputs: list[str],
            owners: dict[str, Any], found: dict[int, list[repeats.Window]],
            not_first: frozenset[str] = frozenset()) -> list[Block]:
    """Blocks (2 instances or more) in the order chosen, the one saving most lines first:
    families the names suggest, and groups of windows of the same shape (`found`, from
    specc.importer.repeats; a name wins a tie). `not_first`: families (their keys) not to
    take first."""
    used: set[int] = set()
    families = _candidates(layers)
    found = dict(found)
    exact: dict[tuple[int, ...], int] = {}
    blocks: list[Block] = []
    while True:
        skip = frozenset() if blocks else not_first
        named = _best_named(families, layers, reads, outputs, used, skip)
        shaped = _best_shape(found, layers, used, skip, exact)
        if shaped is not None and (named is None or shaped[0] > named[0]):
            family = _structural_family(shaped[1], shaped[2])
            names = repeats.local_names([layers[i.start:i.end] for i in family.instances])
            for inst in family.instances:
                inst.names = names
            _number(family, layers, "s")              # named for good by _name_shapes
            block = Block(family, layers, reads)
            if not all(_valid(i, layers, reads, outputs, used) for i in family.instances) \
                    or not block.build():
                del found[shaped[1]]
                continue
            key = (shaped[1], *(i.start for i in family.instances))
            if key not in exact:               # the estimate, made exact: rank it again
                exact[key] = _saving(block, layers)
                continue
            del found[shaped[1]]
        elif named is not None:
            block = named[1]
            del families[block.family.key]
        else:
            _name_shapes(blocks, layers, owners)
            return blocks
        blocks.append(block)
        for inst in block.family.instances:
            used.update(range(inst.start, inst.end))


def _saving(block: Block, layers: list[dict[str, Any]]) -> int:
    """Lines a block saves: its instances' entries less its own lines and its uses."""
    return block.family.size() - len(block.entries) - 3 - len(_use_runs(block, layers))


def _expression_length(value: Any) -> int:
    """The length of the expression in a `${...}` value (0 for a plain value)."""
    text = value if isinstance(value, str) else ""
    return len(text) - 3 if text.startswith("${") and text.endswith("}") else 0


def _use_runs(block: Block, layers: list[dict[str, Any]]) -> list[list[int]]:
    """The uses a block's instances are written as: its runs (_runs), a run whose values per
    copy would pass the 500-character limit of one `${...}` split into one use per copy."""
    out: list[list[int]] = []
    for run in _runs(block, layers):
        if len(run) > 1 and any(_expression_length(per_index([vals[j] for j in run])) > MAX_TEXT
                                for vals in block.params.values()):
            out += [[j] for j in run]
        else:
            out.append(run)
    return out


def _best_named(families: dict[str, Family], layers: list[dict[str, Any]], reads: list[Any],
                outputs: list[str], used: set[int],
                skip: frozenset[str]) -> tuple[int, Block] | None:
    best: tuple[int, Block] | None = None
    for family in families.values():
        if family.key in skip:
            continue
        kept = Family(family.key, [i for i in family.instances
                                   if _valid(i, layers, reads, outputs, used)])
        if len(kept.instances) < 2:
            continue
        block = Block(kept, layers, reads)
        if not block.build():
            continue
        saving = _saving(block, layers)
        if saving > 0 and (best is None or saving > best[0]):
            best = (saving, block)
    return best


def _best_shape(found: dict[int, list[repeats.Window]], layers: list[dict[str, Any]],
                used: set[int], skip: frozenset[str], exact: dict[tuple[int, ...], int]
                ) -> tuple[int, int, list[repeats.Window]] | None:
    """The group of windows saving most lines (the longer windows, then the first, on a tie):
    estimated from the windows, or `exact` (by shape and starts) once its block was built."""
    best: tuple[tuple[int, int, int], int, list[repeats.Window]] | None = None
    for shape, windows in found.items():
        if f"#{shape}" in skip:
            continue
        picked = repeats.spread(windows, used)
        if len(picked) < 2:
            continue
        size = picked[0].end - picked[0].start
        saving = exact.get((shape, *(w.start for w in picked)),
                           size * (len(picked) - 1) - 3 - len(repeats.chained(picked, layers)))
        rank = (saving, size, -picked[0].start)
        if saving > 0 and (best is None or rank > best[0]):
            best = (rank, shape, picked)
    return None if best is None else (best[0][0], best[1], best[2])


def _structural_family(shape: int, windows: list[repeats.Window]) -> Family:
    """The windows as the instances of one family (named later, by _name_shapes)."""
    return Family(f"#{shape}", [Instance("", "", "", w.start, w.end, w.x, y=w.y)
                                for w in windows])


def _name_shapes(blocks: list[Block], layers: list[dict[str, Any]],
                 owners: dict[str, Any]) -> None:
    """Blocks found by structure named in the order they first appear, after their main
    layer (the first with weights that is not a normalization): `conv2d_block`, then
    `conv2d_block_b` ...; instances `<block>1` .. `<block>K` for one run of chained ones,
    `<block>_<r>_1` .. for run r of several (`<block>_<r>` alone); entries after their
    types or given names (repeats.local_names)."""
    taken = {e["name"] for e in layers}
    for block in sorted(blocks, key=lambda b: b.family.instances[0].start):
        family = block.family
        if not family.key.startswith("#"):
            continue
        first = layers[family.instances[0].start:family.instances[0].end]
        main = next((e["type"] for e in first if getattr(owners.get(e["name"]), "weights", None)
                     and not e["type"].endswith("Normalization")), first[0]["type"])
        base, n = repeats.snake(main) + "_block", 0
        name = base
        while any(t.startswith(name) for t in taken):
            n += 1
            name = f"{base}_{_letters(n)}"
        family.name = name
        _number(family, layers, name)
        taken.update(inst.prefix for inst in family.instances)


def _number(family: Family, layers: list[dict[str, Any]], name: str) -> None:
    """Instance names of a family found by structure: `<name>1` .. `<name>K` for one run of
    chained instances, `<name>_<r>_1` .. for run r of several (`<name>_<r>` alone)."""
    windows = [repeats.Window(i.start, i.end, i.x, i.y) for i in family.instances]
    runs = repeats.chained(windows, layers)
    for r, run in enumerate(runs, 1):
        stem = name if len(runs) == 1 else f"{name}_{r}_"
        for index, j in enumerate(run, 1):
            inst = family.instances[j]
            inst.prefix = f"{stem}{index}" if len(run) > 1 else f"{name}_{r}"
            inst.stem, inst.index = stem, str(index)


def _letters(n: int) -> str:
    """1 -> b, 2 -> c, ..., 25 -> z, 26 -> ba: a suffix that no instance index looks like."""
    out = ""
    while True:
        n, r = divmod(n, 26)
        out = "abcdefghijklmnopqrstuvwxyz"[r] + out
        if not n:
            return out


def _runs(block: Block, layers: list[dict[str, Any]]) -> list[list[int]]:
    """The block's instances (by position) grouped into repeats: `<stem>1` .. `<stem>K`,
    consecutive, each reading the one before."""
    runs: list[list[int]] = []
    insts = block.family.instances
    for j, inst in enumerate(insts):
        if runs:
            prev = insts[runs[-1][-1]]
            if inst.stem == prev.stem and inst.index.isdigit() and prev.index.isdigit() and \
                    int(inst.index) == int(prev.index) + 1 and inst.start == prev.end and \
                    inst.x == layers[prev.end - 1]["name"] and insts[runs[-1][0]].index == "1" \
                    and inst.y is None:
                runs[-1].append(j)
                continue
        runs.append([j])
    out = []
    for run in runs:                  # a run not starting at 1 is written instance by instance
        if len(run) > 1 and insts[run[0]].index == "1" and NAME.fullmatch(insts[run[0]].stem):
            out.append(run)
        else:
            out += [[j] for j in run]
    return out


def fold(data: dict[str, Any], owners: dict[str, Any]) -> tuple[dict[str, Any],
                                                               dict[str, str]] | None:
    """The folded spec and the renaming of the flat names (None: nothing to fold, or the
    folded form would not expand to the same layers). Greedy choice is short-sighted (the
    block of Xception's middle flow holds a shorter block that saves more on its own), so
    the choice is made again with the first block of the previous try left out of the first
    step, up to TRIES times, and the one giving fewest lines is kept."""
    from specc.yaml_writer import dump

    layers = data["layers"]
    reads = explicit_reads(layers, list(data["inputs"]))
    found = {shape: windows for shape, windows in
             repeats.groups(layers, reads, data["outputs"], set(range(len(layers)))).items()
             if len(windows) > 1}
    best: tuple[int, dict[str, Any], dict[str, str]] | None = None
    not_first: frozenset[str] = frozenset()
    for _ in range(TRIES):
        blocks = _choose(layers, reads, data["outputs"], owners, found, not_first)
        if not blocks:
            break
        folded, rename = _written(data, reads, blocks)
        lines = dump(folded).count("\n")
        if (best is None or lines < best[0]) and _same_layers(folded, data, reads, rename):
            best = (lines, folded, rename)
        not_first |= {blocks[0].family.key}
    return None if best is None else (best[1], best[2])


def _written(data: dict[str, Any], reads: list[Any],
             blocks: list[Block]) -> tuple[dict[str, Any], dict[str, str]]:
    """The folded spec of the chosen blocks, and the renaming of the flat names."""
    layers, inputs = data["layers"], list(data["inputs"])
    rename: dict[str, str] = {}           # flat name -> its path in the folded spec
    outside: dict[str, str] = {}          # flat name -> how a top-level entry reads it
    starts: dict[int, tuple[Block, list[int]]] = {}
    names: dict[str, dict[str, Any]] = {}
    blocks = sorted(blocks, key=lambda b: b.family.instances[0].start)
    for block in blocks:
        bname = block.family.name or re.sub(r"\d+", "", block.family.instances[0].stem)
        bname = re.sub(r"_+", "_", bname.strip("_")) or "block"
        while bname in names:
            bname += "_"
        names[bname] = {}
        block.name = bname                 # type: ignore[attr-defined]
        for run in _use_runs(block, layers):
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
            if first.y is not None:
                entry["from"] = [outside.get(first.x, first.x), outside.get(first.y, first.y)]
            elif first.x != previous:
                entry["from"] = outside.get(first.x, first.x)
            with_ = {p: per_index([vals[j] for j in run]) for p, vals in block.params.items()}
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
    blocks_data: dict[str, Any] = {}
    for b in blocks:
        blocks_data[b.name] = {                        # type: ignore[attr-defined]
            **({"inputs": ["x", "y"]} if b.family.instances[0].y is not None else {}),
            **({"params": {p: type_word(v) for p, v in b.params.items()}} if b.params else {}),
            "layers": b.entries}
    folded = {"specc": 2, "name": data["name"], "inputs": data["inputs"],
              "blocks": blocks_data, "layers": new,
              "outputs": [outside.get(o, o) for o in data["outputs"]],
              **{k: v for k, v in data.items()
                 if k not in ("specc", "name", "inputs", "layers", "outputs")}}
    return folded, rename


def note(folded: dict[str, Any], rename: dict[str, str]) -> str:
    """The comment line saying what folding did, with one renamed layer as an example."""
    blocks = folded["blocks"]
    uses = [e for e in folded["layers"] if "use" in e]
    copies = sum(e.get("repeat", 1) for e in uses)
    flat, path = next(((n, p) for n, p in rename.items() if n != p), ("", ""))
    example = f"the model's layer {flat} is {path} here " if flat else ""
    return (f"folded: {len(blocks)} block{'s' * (len(blocks) != 1)} ({', '.join(blocks)}), "
            f"{copies} instances in {len(uses)} use{'s' * (len(uses) != 1)}; {example}"
            "(`specc import --flat` writes every layer)")


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
        flat = expand_document(load_text(dump(folded), "<fold>"))
    except SpecError:
        return False
    if getattr(flat, "problems", None):
        return False                      # expanded in part (a problem in one instance)
    expanded = flat.data["layers"]

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
            known, default = default_of(entry.get("type", ""), key)
            if known and _same(value, default):
                continue
        out[key] = value
    return out
