"""What every part of format 2's expansion shares: the scope of names where entries are
expanded, the two stops (one entry, the whole expansion), and diagnostics and values read in
a scope (`${...}` evaluated, names resolved). specc.blockdefs reads block definitions on it,
specc.expand walks the entries.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Final

from specc import expr
from specc.errors import Diagnostic, did_you_mean, quote
from specc.loader import Document
from specc.provenance import MAX_ERRORS, Origin, Use, in_chain

Path = tuple


class Problem(Exception):
    """Stops the expansion of one entry; the diagnostic is already recorded."""


class TooLarge(Exception):
    """Stops the whole expansion: a bound is passed (the diagnostic is recorded)."""

    def __init__(self, keep_all: bool = False) -> None:
        super().__init__()
        self.keep_all = keep_all            # too many errors: report them, not only the bound


@dataclass
class Scope:
    """Names visible where entries are expanded: top level, or inside one block instance."""

    prefix: str                                        # "" or "conv3.block2."
    values: dict[str, Any]                             # parameters and `i`, for `${}`
    chain: tuple[Use, ...] = ()
    refs: dict[str, str] = field(default_factory=dict)        # local name -> full reference
    instances: dict[str, "Scope"] = field(default_factory=dict)
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


_NAME: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
_PATH: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}(\.[A-Za-z_][A-Za-z0-9_]{0,63}){0,15}")


def is_name(name: str, dotted: bool = False) -> bool:
    return (_PATH if dotted else _NAME).fullmatch(name) is not None


class ExpanderBase:
    """The expansion's state, its diagnostics and the values read in a scope."""

    def __init__(self, doc: Document) -> None:
        self.doc = doc
        self.problems: list[Diagnostic] = []
        self.layers: list[dict] = []
        self.penalties: list[tuple[Any, Origin]] = []       # made by block instances
        self.weight_penalties: list[tuple[Any, Origin]] = []
        self.origins: dict[Path, Origin] = {}
        self.blocks: dict[str, dict] = {}
        self.used: set[str] = set()                         # blocks some entry expanded
        self.top_names: set[str] = set()
        self.work = expr.Work()             # expression steps, for the whole expansion
        self.expanded = 0                   # entries expanded, against specc.expand.MAX_ENTRIES
        self.groups: set[Any] = set()       # problems counted against MAX_ERRORS
        self.distinct = 0

    # --- diagnostics -------------------------------------------------------------------

    def error(self, path: Path, scope: Scope, message: str, code: str, key: bool = False) -> None:
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
                raise TooLarge(keep_all=True)
        self.problems.append(problem)

    def bound(self, path: Path, scope: Scope, message: str) -> TooLarge:
        """A bound is passed: the one error, and the exception that stops the expansion."""
        self.problems.append(in_chain(self.doc, path, scope.chain, message, "too-large")
                             if scope.chain else Diagnostic(self.doc.span(path), message,
                                                            "too-large"))
        return TooLarge()

    def fail(self, path: Path, scope: Scope, message: str, code: str, key: bool = False):
        self.error(path, scope, message, code, key)
        return Problem()

    # --- values ------------------------------------------------------------------------

    def value(self, raw: Any, path: Path, scope: Scope) -> Any:
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
            except Problem:
                failed = True
        if failed:
            raise Problem()
        return out if isinstance(raw, dict) else list(out.values())

    def ref(self, name: Any, path: Path, scope: Scope) -> str:
        if not isinstance(name, str):
            raise self.fail(path, scope, f"expected a layer name, got {quote(name)}", "bad-type")
        try:
            return scope.resolve(name)
        except KeyError:
            pass
        if name in scope.left_out:
            if scope.left_out[name] is None:    # its own entry was reported: no second error
                raise Problem()
            raise self.fail(path, scope, f"{quote(name)} does not exist here: "
                            f"{scope.left_out[name]}", "unknown-ref")
        hint = _block_ref_hint(path) if scope.block else ""
        own = scope.block is not None and _key_of(path) == "layer"    # a penalty's `layer:`
        known = [*(r for r in scope.refs if not (own and r in scope.inputs)),
                 *(f"{i}.<name>" for i in scope.instances)]
        where = f" in block '{scope.block}'" if scope.block else ""
        raise self.fail(path, scope, f"unknown name {quote(name)}{where}"
                        f"{did_you_mean(name, scope.refs)} (known: "
                        f"{', '.join(known[:12]) or 'none'}{', ...' if len(known) > 12 else ''})"
                        f"{hint}", "unknown-ref")

    def refs(self, raw: Any, path: Path, scope: Scope) -> Any:
        """A `from`-like value (a name or a list of names) resolved to full names."""
        if isinstance(raw, list):
            return [self.ref(r, path + (i,), scope) for i, r in enumerate(raw)]
        return self.ref(raw, path, scope)


def _key_of(path: Path) -> str:
    """The key that holds a reference: `from`, `share`, `layer` (a penalty's) or a call argument."""
    return next((p for p in reversed(path) if isinstance(p, str)), "from")


def _block_ref_hint(path: Path) -> str:
    """What the key holding an unknown name inside a block may name."""
    key = _key_of(path)
    if key == "share":
        return (" (inside a block, `share:` names a layer or a use of a block defined in "
                "this block)")
    if key == "layer":
        return " (inside a block, a penalty's `layer:` names one of the block's own layers)"
    if key != "from":                   # a call argument (`initial_state:`, `mask:`, ...)
        return (f" (inside a block, `call: {{{key}: ...}}` reads the block's inputs and its "
                "own layers)")
    return " (inside a block, `from:` reads the block's inputs and its own layers)"
