"""Plain YAML scalars as specc reads them: the YAML 1.2 core schema (`on`/`no` stay strings,
`0o17` and `0x1f` are integers), with numbers too long or out of range refused, and the
wording of the problems a value can have. Resolved words and numbers are cached: specs repeat
them (specc.loader's hot loop asks here for every plain scalar).
"""
from __future__ import annotations

import math
import re
from typing import Any, Final

from specc.errors import quote

MAX_DIGITS: Final = 100  # longest integer literal


MISSING: Final = object()
CONSTANTS: Final[dict[str, Any]] = {
    "": None, "~": None, "null": None, "Null": None, "NULL": None,
    "true": True, "True": True, "TRUE": True,
    "false": False, "False": False, "FALSE": False,
    **{sign + inf: sign_value * math.inf
       for sign, sign_value in (("", 1), ("+", 1), ("-", -1))
       for inf in (".inf", ".Inf", ".INF")},
    ".nan": math.nan, ".NaN": math.nan, ".NAN": math.nan,
}  # fmt: skip
_NUMBER_START: Final = frozenset("0123456789+-.")
_INT: Final = re.compile(r"[-+]?[0-9]+")
_FLOAT: Final = re.compile(r"[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?")
_OCT_HEX: Final = re.compile(r"0o[0-7]+|0x[0-9a-fA-F]+")


class BadNumber(Exception):
    pass


# Plain scalars already resolved (specs repeat their words and numbers), seeded with the
# constants; bounded, and never holding a refused number.
PLAIN: Final[dict[str, Any]] = dict(CONSTANTS)
_PLAIN_CACHE: Final = 4096  # entries
_PLAIN_CACHED: Final = 64  # longest text worth caching


def resolve_plain(text: str) -> Any:
    """A plain scalar's value (YAML 1.2 core schema); raises BadNumber for an absurd number."""
    if text.isdigit() and text.isascii() and len(text) <= MAX_DIGITS:
        value: Any = int(text)
    elif text[0] in _NUMBER_START:
        value = number(text)
    else:
        value = text
    if len(text) <= _PLAIN_CACHED and len(PLAIN) < _PLAIN_CACHE:
        PLAIN[text] = value
    return value


def number(text: str) -> Any:
    """A plain scalar that starts like a number: int, float, or the string itself."""
    if _INT.fullmatch(text):
        if len(text.lstrip("+-")) > MAX_DIGITS:
            raise BadNumber
        return int(text)
    if _FLOAT.fullmatch(text):
        value = float(text)
        if math.isinf(value):
            raise BadNumber
        return value
    if _OCT_HEX.fullmatch(text):
        if len(text) - 2 > MAX_DIGITS:
            raise BadNumber
        return int(text[2:], 8 if text[1] == "o" else 16)
    return text


def kind_of(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return "a string"


def tag_problem(tag: str) -> str:
    if tag.startswith("tag:yaml.org,2002:"):
        tag = "!!" + tag[18:]  # as it was most likely written
    return f"tags are not allowed in a spec ({quote(tag)})"


def number_problem(text: str) -> str:
    return f"number out of range: {quote(text)} (quote it if it is text)"


MERGE_KEY: Final = "merge keys ('<<') are not part of YAML 1.2; write the keys out"
