"""Golden warnings: each tests/golden/warnings/NAME.yaml is a valid spec whose warnings
(`specc validate` prints them; `--strict` fails on them) are exactly NAME.warnings.txt,
organised as the invalid cases of tests/golden/invalid (pytest --update-golden rewrites them).

No TensorFlow here.
"""
from __future__ import annotations

from pathlib import Path

import pytest

import specc
from specc.rules import spec_warnings

ROOT = Path(__file__).resolve().parent.parent
WARNED = sorted((ROOT / "tests" / "golden" / "warnings").glob("*.yaml"))


def warnings_of(path: Path) -> str:
    spec = specc.loads(path.read_bytes(), file=path.name)       # valid: no SpecError
    return "".join(d.render() + "\n" for d in spec_warnings(spec)) or "(no warnings)\n"


@pytest.mark.parametrize("case", WARNED, ids=lambda p: p.stem)
def test_warning_diagnostics(case: Path, update_golden: bool) -> None:
    got = warnings_of(case)
    expected_file = case.with_suffix(".warnings.txt")
    if update_golden:
        expected_file.write_text(got, encoding="utf-8")
    assert got != "(no warnings)\n", f"{case.name} should warn"
    assert expected_file.exists(), f"no {expected_file.name}: run pytest --update-golden"
    assert got == expected_file.read_text(encoding="utf-8")


def test_every_warned_case_has_expected_text() -> None:
    assert WARNED and not [c.name for c in WARNED if not c.with_suffix(".warnings.txt").exists()]
