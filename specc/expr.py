"""`${...}` expressions of format 2: a small, safe, bounded calculator over block parameters.

An expression is parsed with Python's own grammar (`ast.parse`, which runs nothing) and then
walked by this module, which knows a closed set of node types: literals, names (the block's
parameters and the repeat index `i`), arithmetic, comparisons, `and`/`or`/`not`, `x if c else
y`, list literals with indexing, and the pure functions in FUNCTIONS. Anything else (attribute
access, calls of anything else, comprehensions, lambdas) is refused before evaluation. Sizes
are bounded: the text, the number of nodes and their nesting, every integer's magnitude, every
string's length, every list's size counted through its nested lists, and the work: each node
evaluated and each part of a list measured is one step of a `Work` counter that one expansion
shares, so no expression, and no number of them, can take long or allocate much.
"""
from __future__ import annotations

import ast
import functools
import math
import operator
import re
from typing import Any, Callable, Final, Mapping

#: Longest expression text, number of syntax nodes, largest |int|, longest string or list.
MAX_TEXT: Final = 500
MAX_NODES: Final = 200
MAX_INT: Final = 2**62
MAX_LENGTH: Final = 1000
#: Nesting of the syntax (`[[[...]]]`, `-(-(...))`) and of a list value.
MAX_SYNTAX_DEPTH: Final = 64
MAX_DEPTH: Final = 16
#: Size of one value: list items at every depth, plus string characters inside lists.
MAX_SIZE: Final = 10_000
#: Evaluation steps of one expansion (every expression of every instance together).
MAX_STEPS: Final = 200_000
#: Largest |ndigits| of round(): Python computes 10**|ndigits| for an integer.
MAX_ROUND: Final = 64

#: `${...}` anywhere in a string; a string that is exactly one of them keeps the value's type.
PATTERN: Final = re.compile(r"\$\{([^{}]*)\}")


class ExprError(Exception):
    """A bad expression; the message says why, without a traceback."""


class TooMuchWork(ExprError):
    """The expressions of one expansion together passed MAX_STEPS: the expansion stops."""


class Work:
    """Steps spent evaluating expressions; `charge` raises TooMuchWork past the limit."""

    __slots__ = ("steps", "limit")

    def __init__(self, limit: int | None = None) -> None:
        self.steps = 0
        self.limit = MAX_STEPS if limit is None else limit

    def charge(self, n: int = 1) -> None:
        self.steps += n
        if self.steps > self.limit:
            raise TooMuchWork(f"expressions take more than {self.limit:,} evaluation steps "
                              "in all (the limit of one expansion)")


def _measure(value: list, work: Work) -> int:
    """A list's size (items at every depth, characters of strings in it), checked against
    MAX_SIZE and MAX_DEPTH; the walk is charged to `work` and stops at the first excess."""
    size, stack = 0, [(value, 1)]
    while stack:
        items, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise ExprError(f"the result nests lists deeper than {MAX_DEPTH} levels")
        size += len(items)
        work.charge(len(items) + 1)
        for item in items:
            if isinstance(item, list):
                stack.append((item, depth + 1))
            elif isinstance(item, str):
                size += len(item)
        if size > MAX_SIZE:
            raise ExprError(f"the result is too large (a list of over {MAX_SIZE:,} parts, "
                            "counting nested lists and their strings)")
    return size


def _check_value(value: Any, work: Work | None = None) -> Any:
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int):
        if abs(value) > MAX_INT:
            raise ExprError("the result is too large (|x| > 2**62)")
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ExprError("the result is not a finite number")
        return value
    if isinstance(value, (str, list)):
        if len(value) > MAX_LENGTH:
            raise ExprError(f"the result is too long (over {MAX_LENGTH} elements)")
        if isinstance(value, list):
            _measure(value, work or Work())
        return value
    raise ExprError(f"values of type {type(value).__name__} are not allowed")


def _number(x: Any, op: str) -> Any:
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        raise ExprError(f"{op} needs numbers, got {_kind(x)}")
    return x


def _kind(x: Any) -> str:
    return {bool: "a boolean", int: "an integer", float: "a number", str: "a string",
            list: "a list", type(None): "null"}.get(type(x), type(x).__name__)


def _pow(a: Any, b: Any) -> Any:
    _number(a, "**"), _number(b, "**")
    if abs(b) > 64 or (isinstance(b, int) and abs(a) > 2**16 and b > 4):
        raise ExprError("the power is too large")
    return a ** b


def _div(a: Any, b: Any) -> Any:
    if _number(b, "/") == 0:
        raise ExprError("division by zero")
    return _number(a, "/") / b


def _floordiv(a: Any, b: Any) -> Any:
    if _number(b, "//") == 0:
        raise ExprError("division by zero")
    return _number(a, "//") // b


def _mod(a: Any, b: Any) -> Any:
    if _number(b, "%") == 0:
        raise ExprError("division by zero")
    return _number(a, "%") % b


def _add(a: Any, b: Any) -> Any:
    if isinstance(a, str) and isinstance(b, str):
        return a + b
    if isinstance(a, list) and isinstance(b, list):
        return a + b
    return _number(a, "+") + _number(b, "+")


def _mul(a: Any, b: Any) -> Any:
    return _number(a, "*") * _number(b, "*")


_BINARY: Final[Mapping[type, Callable[[Any, Any], Any]]] = {
    ast.Add: _add, ast.Sub: lambda a, b: _number(a, "-") - _number(b, "-"), ast.Mult: _mul,
    ast.Div: _div, ast.FloorDiv: _floordiv, ast.Mod: _mod, ast.Pow: _pow,
}
_COMPARE: Final[Mapping[type, Callable[[Any, Any], bool]]] = {
    ast.Eq: operator.eq, ast.NotEq: operator.ne, ast.Lt: operator.lt, ast.LtE: operator.le,
    ast.Gt: operator.gt, ast.GtE: operator.ge,
    ast.In: lambda a, b: a in b, ast.NotIn: lambda a, b: a not in b,
}


def _int(x: Any) -> int:
    if isinstance(x, str) or isinstance(x, list):
        raise ExprError(f"int() needs a number, got {_kind(x)}")
    return int(x)


def _round(x: Any, ndigits: Any = None) -> Any:
    if ndigits is None:
        return round(_number(x, "round()"))
    if isinstance(ndigits, bool) or not isinstance(ndigits, int):
        raise ExprError(f"round() needs an integer number of digits, got {_kind(ndigits)}")
    if abs(ndigits) > MAX_ROUND:
        raise ExprError(f"round(): the number of digits must be from -{MAX_ROUND} to "
                        f"{MAX_ROUND}, got {ndigits}")
    return round(_number(x, "round()"), ndigits)


#: The only functions an expression may call: pure, cheap, bounded.
FUNCTIONS: Final[Mapping[str, Callable[..., Any]]] = {
    "min": min, "max": max, "abs": abs, "int": _int, "float": float, "round": _round,
    "len": len, "str": str,
}


def parse(text: str) -> ast.Expression:
    """Parse and vet an expression's syntax; raises ExprError. Cached, refusals included: a
    block used many times evaluates the same texts again (the tree is never changed)."""
    tree = _parse(text)
    if isinstance(tree, str):
        raise ExprError(tree)
    return tree


@functools.lru_cache(maxsize=4096)
def _parse(text: str) -> ast.Expression | str:
    try:
        return _vetted(text)
    except ExprError as exc:
        return str(exc)


def _vetted(text: str) -> ast.Expression:
    if len(text) > MAX_TEXT:
        raise ExprError(f"the expression is too long (over {MAX_TEXT} characters)")
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as exc:
        raise ExprError(f"invalid expression: {exc.msg}") from None
    nodes = list(ast.walk(tree))
    if len(nodes) > MAX_NODES:
        raise ExprError(f"the expression is too complex (over {MAX_NODES} parts)")
    if _depth(tree) > MAX_SYNTAX_DEPTH:
        raise ExprError(f"the expression nests deeper than {MAX_SYNTAX_DEPTH} levels")
    for node in nodes:
        if isinstance(node, ast.Call):
            if not (isinstance(node.func, ast.Name) and node.func.id in FUNCTIONS) or node.keywords:
                raise ExprError("only these functions can be called: " + ", ".join(FUNCTIONS))
        elif not isinstance(node, _ALLOWED):
            raise ExprError(f"{type(node).__name__.lower()} is not allowed in an expression")
    return tree


def _depth(tree: ast.AST) -> int:
    deepest, stack = 0, [(tree, 1)]
    while stack:
        node, depth = stack.pop()
        deepest = max(deepest, depth)
        stack.extend((child, depth + 1) for child in ast.iter_child_nodes(node))
    return deepest


_ALLOWED: Final = (
    ast.Expression, ast.Constant, ast.Name, ast.Load, ast.BinOp, ast.UnaryOp, ast.BoolOp,
    ast.Compare, ast.IfExp, ast.List, ast.Tuple, ast.Subscript, ast.Slice, *_BINARY, *_COMPARE,
    ast.USub, ast.UAdd, ast.Not, ast.And, ast.Or,
)


def evaluate(text: str, names: Mapping[str, Any], work: Work | None = None) -> Any:
    """The value of one expression (the text inside `${}`), given the names in scope; its
    steps are charged to `work` (one expansion's counter; a fresh one if not given)."""
    tree = parse(text)
    work = Work() if work is None else work
    try:
        return _check_value(_eval(tree.body, names, work), work)
    except ExprError:
        raise
    except (TypeError, ValueError, IndexError, OverflowError, ZeroDivisionError) as exc:
        raise ExprError(str(exc)) from None


def _eval(node: ast.AST, names: Mapping[str, Any], work: Work) -> Any:
    work.charge()
    if isinstance(node, ast.Constant):
        if not isinstance(node.value, (int, float, str, bool, type(None))):
            raise ExprError("only numbers, strings, true/false and null are literals")
        return _check_value(node.value)
    if isinstance(node, ast.Name):
        if node.id in ("true", "True"):
            return True
        if node.id in ("false", "False"):
            return False
        if node.id in ("null", "None"):
            return None
        if node.id not in names:
            from specc.errors import did_you_mean
            known = ", ".join(sorted(names)) or "none"
            raise ExprError(f"unknown name {node.id!r}{did_you_mean(node.id, names)} "
                            f"(names here: {known})")
        return names[node.id]
    if isinstance(node, ast.BinOp):
        return _check_value(_BINARY[type(node.op)](_eval(node.left, names, work),
                                                    _eval(node.right, names, work)), work)
    if isinstance(node, ast.UnaryOp):
        value = _eval(node.operand, names, work)
        if isinstance(node.op, ast.Not):
            return not value
        value = _number(value, "-")
        return -value if isinstance(node.op, ast.USub) else value
    if isinstance(node, ast.BoolOp):
        value = _eval(node.values[0], names, work)
        for item in node.values[1:]:
            if isinstance(node.op, ast.And) and not value:
                return value
            if isinstance(node.op, ast.Or) and value:
                return value
            value = _eval(item, names, work)
        return value
    if isinstance(node, ast.Compare):
        left = _eval(node.left, names, work)
        for op, right_node in zip(node.ops, node.comparators):
            right = _eval(right_node, names, work)
            for side in (left, right):
                if isinstance(side, list):
                    _measure(side, work)
            if not _COMPARE[type(op)](left, right):
                return False
            left = right
        return True
    if isinstance(node, ast.IfExp):
        return _eval(node.body if _eval(node.test, names, work) else node.orelse, names, work)
    if isinstance(node, (ast.List, ast.Tuple)):
        return _check_value([_eval(e, names, work) for e in node.elts], work)
    if isinstance(node, ast.Subscript):
        seq = _eval(node.value, names, work)
        if not isinstance(seq, (list, str)):
            raise ExprError(f"only lists and strings can be indexed, got {_kind(seq)}")
        if isinstance(node.slice, ast.Slice):
            parts = [None if p is None else _eval(p, names, work)
                     for p in (node.slice.lower, node.slice.upper, node.slice.step)]
            return seq[slice(*parts)]
        index = _eval(node.slice, names, work)
        if isinstance(index, bool) or not isinstance(index, int):
            raise ExprError(f"an index must be an integer, got {_kind(index)}")
        if not -len(seq) <= index < len(seq):
            raise ExprError(f"index {index} is out of range for a list of {len(seq)}")
        return seq[index]
    if isinstance(node, ast.Call):
        args = [_eval(a, names, work) for a in node.args]
        for arg in args:                        # min, max, str, `in` walk their lists
            if isinstance(arg, list):
                _measure(arg, work)
        return _check_value(FUNCTIONS[node.func.id](*args), work)
    raise ExprError(f"{type(node).__name__.lower()} is not allowed in an expression")


def has_expression(value: Any) -> bool:
    return isinstance(value, str) and "${" in value


def substitute(value: str, names: Mapping[str, Any], work: Work | None = None) -> Any:
    """A string with `${...}`: exactly one expression keeps its value's type (`${2 * f}` is an
    int); expressions inside other text are formatted into the string (`conv${i}`)."""
    whole = PATTERN.fullmatch(value.strip())
    if whole:
        return evaluate(whole.group(1), names, work)
    if "${" in PATTERN.sub("", value):
        raise ExprError("an unclosed `${`: write `${expression}`")

    work = Work() if work is None else work
    room = [MAX_LENGTH * 10 - len(value)]

    def text(match: re.Match) -> str:
        result = evaluate(match.group(1), names, work)
        if isinstance(result, bool):
            return "true" if result else "false"
        if isinstance(result, list) and _measure(result, work) > room[0]:
            raise ExprError("the resulting string is too long")
        out = str(result)
        room[0] -= len(out)
        if room[0] < 0:
            raise ExprError("the resulting string is too long")
        return out

    out = PATTERN.sub(text, value)
    if len(out) > MAX_LENGTH * 10:
        raise ExprError("the resulting string is too long")
    return out
