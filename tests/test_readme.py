"""The README stays true: its commands, formulas and example outputs are checked here."""
from __future__ import annotations

import re
from pathlib import Path

from specc import penalties
from specc.cli import main, make_parser

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")


def _block_after(marker: str) -> str:
    """The first fenced block after `marker`."""
    rest = README[README.index(marker):]
    match = re.search(r"```[a-z]*\n(.*?)```", rest, re.S)
    assert match, marker
    return match.group(1)


def test_ci_runs_the_readme_test_command() -> None:
    ci = (ROOT / ".ci" / "run").read_text().strip().splitlines()[-1]
    assert ci == "python -m pip install -e '.[test]' && python -m pytest"
    assert f"```console\n{ci}\n```" in README


def test_every_formula_of_the_catalog_is_in_the_readme() -> None:
    for kind in penalties.CATALOG.values():
        assert kind.formula.replace("|", "\\|") in README, kind.name
        assert f"| `{kind.default_via}` |" in README
    for formula in penalties.WEIGHT_FORMULAS.values():
        assert formula in README


def test_every_command_is_documented() -> None:
    commands = make_parser()._subparsers._group_actions[0].choices
    for name in commands:
        assert f"`specc {name}" in README, name


def test_worked_example_output_is_real(capsys) -> None:
    assert main(["build", "specs/mnist_cnn.yaml"]) == 0
    got = capsys.readouterr().out
    shown = _block_after("`specc build specs/mnist_cnn.yaml -o mnist_cnn.keras` prints")
    assert shown.replace("\nwrote mnist_cnn.keras\n", "") == got


def test_diagnostics_example_is_real(capsys) -> None:
    shown = _block_after("A bad spec reads like this")
    files = sorted({line.split(":")[0] for line in shown.splitlines()})
    assert main(["validate", *files]) == 1
    assert capsys.readouterr().out == shown
