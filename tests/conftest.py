"""Shared pytest options: `--update-golden` rewrites golden files instead of checking them."""
from __future__ import annotations

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--update-golden", action="store_true", default=False,
                     help="rewrite the golden files under tests/golden instead of checking "
                          "them; review the diff before committing")


@pytest.fixture(scope="session")
def update_golden(request: pytest.FixtureRequest) -> bool:
    """True when the run should rewrite golden files (pytest --update-golden)."""
    return bool(request.config.getoption("--update-golden"))
