"""Format 2's block definitions: `blocks:` read and checked (keys, `params:`, `inputs:`),
and a use's `with:` checked against the parameters of its block.
"""
from __future__ import annotations

import copy
import difflib
from typing import Any, Final

from specc.errors import did_you_mean, quote
from specc.expand_base import ExpanderBase, Path, Problem, Scope, is_name

PARAM_TYPES: Final = {"int": (int,), "float": (int, float), "bool": (bool,), "str": (str,),
                      "list": (list,), "any": (object,)}
BLOCK_KEYS: Final = ("description", "params", "inputs", "outputs", "layers", "penalties",
                     "weight_penalties")


class BlockDefinitions(ExpanderBase):
    """Reads `blocks:` into `self.blocks`, and the arguments of a use."""

    def read_blocks(self, raw: Any) -> None:
        top = Scope("", {})
        if not isinstance(raw, dict):
            self.error(("blocks",), top, "`blocks:` is a mapping of block name -> definition",
                       "bad-type")
            return
        for name, block in raw.items():
            path = ("blocks", name)
            if not isinstance(name, str) or not is_name(name):
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
            except Problem:
                continue
            if not bad:
                self.blocks[name] = {**block, "params": params, "inputs": inputs}

    def read_names(self, raw: Any, path: Path, scope: Scope) -> tuple[str, ...]:
        names = [raw] if isinstance(raw, str) else raw
        if not isinstance(names, list) or not names or not all(
                isinstance(n, str) and is_name(n) for n in names):
            raise self.fail(path, scope, "expected a name or a non-empty list of names",
                            "bad-type")
        return tuple(names)

    def read_params(self, raw: Any, path: Path, scope: Scope) -> dict[str, tuple[str, Any, bool]]:
        """name -> (type, default, required). `f: int` is required; `s: 1` has a default."""
        if not isinstance(raw, dict):
            raise self.fail(path, scope, "`params:` is a mapping of parameter name -> type "
                            "(`filters: int`), default (`stride: 1`) or "
                            "`{type: int, default: 1}`", "bad-type")
        out: dict[str, tuple[str, Any, bool]] = {}
        for name, spec in raw.items():
            where = path + (name,)
            if not isinstance(name, str) or not is_name(name) or name == "i":
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

    def arguments(self, block_name: str, raw: Any, path: Path, scope: Scope) -> dict[str, Any]:
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
            except Problem:
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
            raise Problem()
        return out


def _fits(value: Any, kind: str) -> bool:
    if kind in ("int", "float") and isinstance(value, bool):
        return False
    return isinstance(value, PARAM_TYPES[kind])


def _type_of(value: Any) -> str:
    """The parameter type a default value gives (`stride: 1` is an int parameter)."""
    return {bool: "bool", int: "int", float: "float", str: "str", list: "list"}.get(
        type(value), "any")
