"""The registry of diagnostic codes (specc/codes.py) against what the sources, the golden
cases and the README say."""
from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import Iterator

from specc import codes

ROOT = Path(__file__).resolve().parents[1]
CODE = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$")


def _strings(node: ast.AST) -> Iterator[ast.Constant]:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        yield node
    elif isinstance(node, ast.IfExp):
        yield from _strings(node.body)
        yield from _strings(node.orelse)


def codes_in_sources() -> dict[str, str]:
    """Code literals where specc's sources make a diagnostic: a yielded (path, message, code)
    problem, an appended one, `Diagnostic(span, message, code)`, `SpecError.at(span, message,
    code)`, `diagnostic(doc, path, message, code)`, `graph.diagnose(path, message, code)`
    and `code=` keywords. Code -> the first place it is written."""
    found: dict[str, str] = {}
    for path in sorted((ROOT / "specc").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            places: list[ast.AST] = []
            if (isinstance(node, ast.Yield) and isinstance(node.value, ast.Tuple)
                    and len(node.value.elts) == 3):
                places.append(node.value.elts[2])
            if isinstance(node, ast.Call):
                name = getattr(node.func, "id", None) or getattr(node.func, "attr", None)
                position = {"Diagnostic": 2, "at": 2, "diagnose": 2, "diagnostic": 3}.get(name)
                if position is not None and len(node.args) > position:
                    places.append(node.args[position])
                if (name == "append" and node.args and isinstance(node.args[0], ast.Tuple)
                        and len(node.args[0].elts) == 3):
                    places.append(node.args[0].elts[2])
                places += [kw.value for kw in node.keywords if kw.arg == "code"]
            for place in places:
                for const in _strings(place):
                    if CODE.match(const.value):
                        found.setdefault(const.value, f"{path.relative_to(ROOT)}:{const.lineno}")
    return found


def test_the_registry_is_well_formed() -> None:
    names = [c.name for c in codes.CODES]
    assert len(names) == len(set(names))
    assert all(CODE.match(n) for n in names)
    assert all(c.description and c.severity in ("error", "warning") for c in codes.CODES)


def test_every_code_in_the_sources_is_declared() -> None:
    found = codes_in_sources()
    assert len(found) > 40            # the scan sees the sources' codes at all
    undeclared = {c: where for c, where in found.items() if c not in codes.BY_NAME}
    assert undeclared == {}


def test_every_code_in_the_golden_cases_is_declared() -> None:
    seen = set()
    for path in [*(ROOT / "tests/golden").rglob("*.errors.txt"),
                 *(ROOT / "tests/golden/warnings").glob("*.txt")]:
        for line in path.read_text(encoding="utf-8").splitlines():
            found = re.search(r"\[([a-z0-9-]+)\]$", line)
            if found and ": note: " not in line:
                seen.add(found.group(1))
    assert len(seen) > 30
    assert seen - set(codes.BY_NAME) == set()


def test_the_readme_lists_every_code() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert codes.table() in readme, "regenerate the README's table: python -c " \
        "'import specc.codes as c; print(c.table())'"
