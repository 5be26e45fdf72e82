"""The one YAML writer: a spec as the text a person writes (`specc expand`, `specc import`).

Top-level keys in block style; `layers` and the clause lists one flow mapping
per line; other mappings (`inputs`, `blocks`) one key per line, nested mappings in block
style down to `nest` levels. Scalars are written so that both YAML 1.2 (specc's reader) and
YAML 1.1 (PyYAML) read them back as the same value: floats always with a `.` and a signed
exponent, strings plain only when no reader could take them for anything else.
"""
from __future__ import annotations

import math
import re
from typing import Any, Final, Sequence

#: Sections written one flow mapping per entry, like the example specs.
ENTRY_LISTS: Final = ("layers", "penalties", "weight_penalties", "pair_penalties")
_PLAIN: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_.]*")
#: A flow list whose one-line form is longer is written over lines of about WIDTH characters
#: (an imported vocabulary, long statistics), far from the reader's line limit.
WRAP: Final = 2000
WIDTH: Final = 90
#: Plain words some YAML reader takes for a boolean or null (YAML 1.1 and 1.2, any case).
_RESERVED: Final = re.compile(r"(?i:y|n|yes|no|on|off|true|false|null)")


def _float(value: float) -> str:
    if math.isnan(value):
        return ".nan"
    if math.isinf(value):
        return ".inf" if value > 0 else "-.inf"
    text = repr(value)
    mantissa, e, exponent = text.partition("e")
    if "." not in mantissa:
        mantissa += ".0"
    if e and exponent[:1] not in "+-":
        exponent = "+" + exponent
    return mantissa + (f"e{exponent}" if e else "")


def scalar(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return _float(value)
    text = str(value)
    if _PLAIN.fullmatch(text) and not _RESERVED.fullmatch(text):
        return text
    return _quoted(text)


def _quoted(text: str) -> str:
    """A double-quoted scalar: printable characters as they are, the others as YAML escapes
    (`\\x07`, `\\u2028`, `\\U0001342f`: one escape per character, no surrogate pairs)."""
    out = []
    for ch in text:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ch.isprintable():
            out.append(ch)
        else:
            code = ord(ch)
            out.append(f"\\x{code:02x}" if code < 0x100 else
                       f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}")
    return '"' + "".join(out) + '"'


def flow(value: Any, indent: str = "") -> str:
    """A value in YAML flow style; with `indent` (deeper than the line's block), a list
    longer than WRAP characters goes on over lines starting with it."""
    if isinstance(value, dict):
        return "{" + ", ".join(f"{scalar(k)}: {flow(v, indent)}"
                               for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        items = [flow(v, indent) for v in value]
        if not indent or sum(len(t) + 2 for t in items) <= WRAP:
            return "[" + ", ".join(items) + "]"
        rows: list[list[str]] = [[]]
        for item in items:
            if rows[-1] and sum(len(t) + 2 for t in rows[-1]) + len(item) > WIDTH:
                rows.append([])
            rows[-1].append(item)
        return "[" + (",\n" + indent).join(", ".join(row) for row in rows) + "]"
    return scalar(value)


def _mapping(value: dict[str, Any], indent: str, nest: int) -> list[str]:
    lines = []
    for k, v in value.items():
        if isinstance(v, dict) and v and nest > 0:
            lines.append(f"{indent}{scalar(k)}:")
            lines += _mapping(v, indent + "  ", nest - 1)
        elif k in ENTRY_LISTS and isinstance(v, list) and v:
            lines.append(f"{indent}{scalar(k)}:")
            lines += [f"{indent}  - {flow(item, indent + '      ')}" for item in v]
        else:
            lines.append(f"{indent}{scalar(k)}: {flow(v, indent + '    ')}")
    return lines


def dump(data: dict[str, Any], header: Sequence[str] = (),
         flow_keys: Sequence[str] = ("optimizer",)) -> str:
    """The spec as text, `# header` lines first. A top-level mapping is one key per line
    (`blocks:` two levels: each block's `params`, `layers`, ... on their own lines), except
    those in `flow_keys`, written on one line."""
    lines = [f"# {h}" for h in header]
    for key, value in data.items():
        if key in ENTRY_LISTS and isinstance(value, list) and value:
            lines.append(f"{scalar(key)}:")
            lines += [f"  - {flow(item, '      ')}" for item in value]
        elif isinstance(value, dict) and value and key not in flow_keys:
            lines.append(f"{scalar(key)}:")
            lines += _mapping(value, "  ", 1 if key == "blocks" else 0)
        else:
            lines.append(f"{scalar(key)}: {flow(value, '    ')}")
    return "\n".join(lines) + "\n"
