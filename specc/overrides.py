"""Overrides by name (`--set PATH=VALUE`): a pure stage between loading and validation.

PATH names things by name, never by list index:

- a top-level key of the spec and the keys under it: `seed`, `loss`, `optimizer.learning_rate`,
  `loss_weights.probs`, `inputs.image.shape`;
- otherwise a layer, a penalty clause, a weight clause or an input by its `name`, then the keys
  under it: `dense4.units`, `dense4_energy.rate`, `image.shape`. A format 2 hierarchical name
  (`conv3.block2.conv1.filters`) is matched by its longest dotted prefix that names something.

VALUE is a YAML 1.2 scalar or flow value read by specc's own safe loader (`1e-2` is a number,
`[3, 3]` a list, `{type: sgd}` a mapping, `'a,b'` a string). A comma list outside brackets and
quotes (`1e-4,1e-3`) is a sweep, which only `specc fit` runs (`choices`, `sweep`).

When: in format 2, a PATH that names a top-level entry (a layer, a block use, a clause written
at the top level) and one of its keys is applied to the source, *before* expansion, so a
block use's arguments can be changed (`conv3.with.filters=64`); a PATH that names something only
expansion makes (a block instance's layer `conv3.block2.conv1`, a repeat's `block2`) is applied
to the flat spec *after* expansion. Either way the result is validated like a file.

Provenance: every value an override writes is located in the `--set` argument itself: a
diagnostic about it reads `--set dense4.units=abc:1:20: error: ...`, the column counting
within `PATH=VALUE`, with a note at the spec's own value that it replaced.
"""
from __future__ import annotations

import difflib
import itertools
import re
from dataclasses import dataclass
from typing import Any, Final, Sequence

from specc.errors import Diagnostic, Span, SpecError, quote
from specc.provenance import ExpandedDocument
from specc.loader import Document, load_text

Path = tuple

#: Longest `--set` argument shown whole as the file of a diagnostic.
MAX_SHOWN: Final = 60
#: Most runs a sweep may make (the product of its lists).
MAX_RUNS: Final = 256
#: Spec keys that are sections of named items, searched for a name.
_SECTIONS: Final = ("layers", "penalties", "weight_penalties")
_SEGMENT: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_PREFIX: Final = "v: "


@dataclass(frozen=True)
class Choice:
    """One value of an override: the text as written, its data, where it starts in the
    argument (0-based) and its located document (for spans inside a flow value)."""

    text: str
    value: Any
    start: int
    doc: Document


@dataclass(frozen=True)
class Override:
    """One `--set PATH=VALUE` argument: the path by names and its value(s)."""

    arg: str
    path: tuple[str, ...]
    choices: tuple[Choice, ...]

    @property
    def file(self) -> str:
        """How diagnostics name it: the argument itself, cut short when long."""
        shown = self.arg.replace("\n", " ")
        if len(shown) > MAX_SHOWN:
            shown = shown[: MAX_SHOWN - 3] + "..."
        return f"--set {shown}"

    @property
    def dotted(self) -> str:
        return ".".join(self.path)

    def span(self, column: int = 1) -> Span:
        return Span(self.file, 1, column)

    def key_span(self) -> Span:
        """The last segment of PATH: where a key that the override adds is written."""
        return self.span(len(self.dotted) - len(self.path[-1]) + 1)

    def value_span(self, choice: Choice, rest: Path = (), key: bool = False) -> Span:
        """Where `rest` inside the value of `choice` is written in the argument."""
        table = choice.doc.key_spans if key and rest else choice.doc.spans
        where = ("v", *rest)
        while where not in table and len(where) > 1:
            where = where[:-1]
        inner = table[where] if where in table else Span(choice.doc.file, 1, len(_PREFIX) + 1)
        if inner.line != 1:
            return self.span(choice.start + 1)
        return self.span(choice.start + inner.column - len(_PREFIX))

    def only(self, choice: Choice) -> Override:
        return Override(self.arg, self.path, (choice,))

    @property
    def value(self) -> Any:
        return self.choices[0].value


# ------------------------------------------------------------------------------ parsing


def _split_values(text: str) -> list[tuple[int, str]]:
    """(start, text) of each comma-separated value; commas inside quotes, brackets or
    braces do not split, and a value that starts with `[` or `{` is one value."""
    if text.lstrip().startswith(("[", "{")):
        return [(0, text)]
    parts, depth, quote_char, start = [], 0, "", 0
    for i, c in enumerate(text):
        if quote_char:
            if c == quote_char:
                quote_char = ""
        elif c in "'\"" and (i == start or text[start:i].strip() == ""):
            quote_char = c
        elif c in "[{":
            depth += 1
        elif c in "]}":
            depth -= 1
        elif c == "," and depth == 0:
            parts.append((start, text[start:i]))
            start = i + 1
    parts.append((start, text[start:]))
    return parts


def parse(arg: str) -> Override:
    """One `PATH=VALUE` argument -> Override; a bad one raises SpecError located in it."""
    probe = Override(arg, ("?",), ())
    if "=" not in arg:
        raise SpecError.at(probe.span(), f"--set {quote(arg)}: expected PATH=VALUE, for "
                           "example --set dense4.units=128 or --set dense4_energy.rate=1e-3",
                           "bad-override")
    dotted, text = arg.split("=", 1)
    path = tuple(dotted.split("."))
    for i, seg in enumerate(path):
        if not _SEGMENT.fullmatch(seg):
            column = len(".".join(path[:i])) + (i > 0) + 1
            what = "an empty name" if not seg else f"{quote(seg)}"
            hint = (" (PATH names things by name, never by list index)"
                    if seg.isdigit() else "")
            raise SpecError.at(probe.span(column), f"--set: {what} in PATH {quote(dotted)}: "
                               f"each part is a name (letters, digits, '_'){hint}",
                               "bad-override")
    over = Override(arg, path, ())
    offset = len(dotted) + 1
    choices, problems = [], []
    for start, part in _split_values(text):
        try:
            doc = load_text(_PREFIX + part, over.file)
        except SpecError as exc:
            for d in exc.diagnostics:
                column = offset + start + max(d.column - len(_PREFIX), 1)
                problems.append(Diagnostic(over.span(column), f"--set {dotted}: the value "
                                           f"is not valid YAML: {d.message}", "bad-override"))
            continue
        lead = len(part) - len(part.lstrip())
        choices.append(Choice(part.strip(), doc.data.get("v"), offset + start + lead, doc))
    if problems:
        raise SpecError(problems)
    return Override(arg, path, tuple(choices))


def parse_all(args: Sequence[str], sweep: bool = False) -> tuple[Override, ...]:
    """Every `--set` argument parsed, all problems in one SpecError. Without `sweep`, a comma
    list is refused (only `specc fit` runs sweeps)."""
    out, problems = [], []
    for arg in args:
        try:
            over = parse(arg)
        except SpecError as exc:
            problems.extend(exc.diagnostics)
            continue
        if len(over.choices) > 1 and not sweep:
            problems.append(Diagnostic(over.span(len(over.dotted) + 2), (
                f"--set {over.dotted}: {len(over.choices)} comma-separated values make a "
                "sweep, which only `specc fit` runs; quote the value ('a,b') for one string "
                "with commas"), "bad-override"))
            continue
        out.append(over)
    if problems:
        raise SpecError(problems)
    return tuple(out)


def sweep(overrides: Sequence[Override]) -> list[tuple[str, tuple[Override, ...]]]:
    """The runs of a sweep: the product of every override's values, each run named after the
    values that vary (`dense4_energy.rate=1e-4,seed=3`), with one value per override."""
    varying = [o for o in overrides if len(o.choices) > 1]
    runs = []
    for combo in itertools.product(*(o.choices for o in overrides)):
        name = ",".join(f"{o.dotted}={_safe(c.text)}" for o, c in zip(overrides, combo)
                        if o in varying)
        runs.append((name or "run", tuple(o.only(c) for o, c in zip(overrides, combo))))
    if len(runs) > MAX_RUNS:
        raise SpecError.at(overrides[0].span(), f"the sweep makes {len(runs)} runs; at most "
                           f"{MAX_RUNS} are allowed", "bad-override")
    names = [n for n, _ in runs]
    if len(set(names)) != len(names):          # two texts that read the same once made safe
        runs = [(f"{i + 1:02d}-{n}", r) for i, (n, r) in enumerate(runs)]
    return runs


def _safe(text: str) -> str:
    """A value's text as part of a folder name."""
    return re.sub(r"[^A-Za-z0-9._+-]", "_", text)[:40] or "empty"


# -------------------------------------------------------------------------- resolution


def _names(data: dict) -> dict[str, list[Path]]:
    """Every name in the spec -> the paths of the items it names."""
    found: dict[str, list[Path]] = {}
    for section in _SECTIONS:
        items = data.get(section)
        if isinstance(items, list):
            for i, item in enumerate(items):
                name = item.get("name") if isinstance(item, dict) else None
                if isinstance(name, str):
                    found.setdefault(name, []).append((section, i))
    inputs = data.get("inputs")
    if isinstance(inputs, dict):
        for name in inputs:
            if isinstance(name, str):
                found.setdefault(name, []).append(("inputs", name))
    return found


def _top_keys() -> tuple[str, ...]:
    from specc.spec.model import Spec

    return tuple(f.alias or n for n, f in Spec.model_fields.items())


def _navigable(data: Any, path: Path) -> bool:
    """Whether every container on `path` but the last key exists as a mapping."""
    return _exists(data, path[:-1]) and isinstance(_at(data, path[:-1]), dict)


def _new_with(data: Any, path: Path) -> bool:
    """Whether `path` sets one parameter of a block use that has no `with:` yet
    (`--set left.with.rate=0.5`): the mapping is made."""
    if len(path) != 4 or path[2] != "with" or not _exists(data, path[:2]):
        return False
    entry = _at(data, path[:2])
    return isinstance(entry, dict) and "use" in entry and entry.get("with") is None


def _at(data: Any, path: Path) -> Any:
    for part in path:
        data = data[part]
    return data


def _resolve(data: dict, over: Override, strict: bool) -> Path | str | None:
    """The data path the override sets; a message when it cannot be set; None when nothing
    here has that name (and, unless `strict`, another stage may have it)."""
    path = over.path
    if path[0] in _top_keys():
        return path
    names = _names(data)
    for n in range(len(path) - 1, 0, -1):
        name = ".".join(path[:n])
        if name not in names:
            continue
        hits = names[name]
        if len(hits) > 1:
            where = ", ".join(f"{s}" if s == "inputs" else f"{s}" for s, _ in hits)
            return f"--set {over.dotted}: {quote(name)} names several things ({where})"
        target = hits[0] + path[n:]
        if strict or len(path) - n == 1 or _navigable(data, target) or _new_with(data, target):
            return target
        return None
    return None


def _unknown(over: Override, data: dict, more: Sequence[str] = ()) -> Diagnostic:
    names = sorted({*_names(data), *more, *_top_keys()})
    asked = ".".join(over.path[:-1]) or over.path[0]
    close = difflib.get_close_matches(asked[:100], names, n=1, cutoff=0.6)
    if not close and len(over.path) > 1:
        close = difflib.get_close_matches(over.path[0][:100], names, n=1, cutoff=0.6)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    if len(over.path) == 1:
        what = (f"no top-level key {quote(over.dotted)}{hint}; a layer, clause or input is "
                "changed by one of its keys (NAME.KEY=VALUE)")
    else:
        what = (f"nothing is named {quote(asked)}{hint} (PATH starts with a top-level key or "
                "a layer, clause or input name)")
    return Diagnostic(over.span(1), f"--set {over.dotted}: {what}", "unknown-override")


def _assign(node: Any, path: Path, value: Any, where: Path = ()) -> Any:
    """`node` with `value` at `path`: containers on the path copied, nothing else touched
    (the loaded data, aliases included, is never changed)."""
    if not path:
        return value
    head, rest = path[0], path[1:]
    if isinstance(node, list) and isinstance(head, int):
        new = list(node)
        new[head] = _assign(node[head], rest, value, where + (head,))
        return new
    if node is None:
        node = {}
    elif where == ("optimizer",) and isinstance(node, str):
        node = {"type": node}             # `optimizer: adam` + optimizer.learning_rate=...
    if not isinstance(node, dict):
        raise _NotMapping(where)
    new = dict(node)
    new[head] = _assign(node.get(head), rest, value, where + (head,))
    return new


class _NotMapping(Exception):
    def __init__(self, where: Path) -> None:
        super().__init__(where)
        self.where = where


def _apply(data: dict, placed: list, overrides: Sequence[Override], strict: bool,
           more: Sequence[str] = ()) -> tuple[dict, list[Override], list[Diagnostic]]:
    """Apply what resolves in `data`; (new data, overrides left for later, problems)."""
    left, problems = [], []
    for over in overrides:
        target = _resolve(data, over, strict)
        if target is None:
            if strict:
                problems.append(_unknown(over, data, more))
            else:
                left.append(over)
            continue
        if isinstance(target, str):
            problems.append(Diagnostic(over.span(1), target, "unknown-override"))
            continue
        try:
            data = _assign(data, target, over.value)
        except _NotMapping as exc:
            shown = over.path[: len(over.path) - (len(target) - len(exc.where))]
            problems.append(Diagnostic(over.span(1), (
                f"--set {over.dotted}: {'.'.join(shown)} is not a mapping here; set it whole "
                f"(--set {'.'.join(shown)}=...)"), "bad-override"))
            continue
        placed.append((target, over))
    return data, left, problems


class Overridden(ExpandedDocument):
    """A document with overrides applied: the new data, every overridden value located in its
    `--set` argument, everything else where the inner document says."""

    def __init__(self, inner: Any, data: dict, placed: list[tuple[Path, Override]]) -> None:
        super().__init__(getattr(inner, "source", inner), data,
                         getattr(inner, "origins", {}), getattr(inner, "problems", ()))
        self.inner = inner
        self.placed = tuple(placed)

    def _hit(self, path: Sequence[str | int]) -> tuple[Override, Path] | None:
        path = tuple(path)
        for target, over in reversed(self.placed):
            if path[: len(target)] == target:
                return over, path[len(target):]
        return None

    def span(self, path: Sequence[str | int]) -> Span:
        hit = self._hit(path)
        return self.inner.span(path) if hit is None else hit[0].value_span(
            hit[0].choices[0], hit[1])

    def key_span(self, path: Sequence[str | int]) -> Span:
        hit = self._hit(path)
        if hit is None:
            return self.inner.key_span(path)
        over, rest = hit
        return over.key_span() if not rest else over.value_span(over.choices[0], rest, True)

    def diagnostic(self, path: Sequence[str | int], message: str, code: str,
                   key: bool = False, severity: str = "error") -> Diagnostic:
        from specc.provenance import diagnostic

        hit = self._hit(path)
        if hit is None:
            return diagnostic(self.inner, path, message, code, key, severity)
        span = self.key_span(path) if key else self.span(path)
        target = tuple(path)[: len(path) - len(hit[1])]
        if _exists(self.inner.data, target):
            note = Diagnostic(self.inner.span(target), "the spec's value, replaced by "
                              f"--set {hit[0].dotted}", code, "note")
        else:                           # a key the override adds: where it goes
            note = Diagnostic(self.inner.span(target), f"--set {hit[0].dotted} adds it here",
                              code, "note")
        return Diagnostic(span, message, code, severity, (note,))


def _exists(data: Any, path: Path) -> bool:
    node = data
    for part in path:
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            node = node[part]
        else:
            return False
    return True


def _in_spec(problems: list[Diagnostic], doc: Any) -> list[Diagnostic]:
    """Each problem with a note naming the spec it was applied to (for several files)."""
    return [Diagnostic(d.span, d.message, d.code, d.severity,
                       (Diagnostic(doc.span(()), "while applying --set to this spec", d.code,
                                   "note"),)) for d in problems]


def apply_source(doc: Any, overrides: Sequence[Override]) -> tuple[Any, list[Override]]:
    """The overrides applied to the loaded document (before expansion). In format 2, those
    whose names only expansion makes are returned for `apply_flat`; in format 1 an unknown
    name is an error. Raises SpecError with every problem."""
    if not overrides:
        return doc, []
    strict = doc.data.get("specc") != 2
    placed: list = []
    data, left, problems = _apply(doc.data, placed, overrides, strict)
    if problems:
        raise SpecError(_in_spec(problems, doc))
    return (Overridden(doc, data, placed) if placed else doc), left


def apply_flat(flat: Any, overrides: Sequence[Override], source: Any = None) -> Any:
    """The remaining overrides applied to the flat (expanded) spec; unknown names are errors,
    with did-you-mean over the names of both the source and the flat spec."""
    if not overrides:
        return flat
    more = list(_names(source.data)) if source is not None else []
    placed: list = []
    data, _, problems = _apply(flat.data, placed, overrides, True, more)
    if problems:
        raise SpecError(_in_spec(problems, flat))
    return Overridden(flat, data, placed)
