"""Shared pytest options, fixtures and the suite's tiers.

Tiers (markers registered in pyproject.toml):
- `keras`: the test needs Keras (and so TensorFlow). `python -m pytest -m "not keras"` is the
  fast tier: the loader, expansion, checks, schema and CLI validation, with no Keras imported.
  A module is a Keras module when it imports Keras (or TensorFlow, JAX, PyTorch) at its top
  level, or says `pytestmark = pytest.mark.keras`: every test in it gets the marker, and the fast
  tier does not even import it. In other modules a test is marked with `@pytest.mark.keras`,
  by asking for the `keras` fixture, or in KERAS_TESTS below.
- `slow`: subprocess re-runs on JAX or PyTorch, two-process checks, big models, many Hypothesis
  examples (SLOW_TESTS below, or `@pytest.mark.slow`).

The fast tier enforces its promise: a test after which Keras, TensorFlow, JAX or PyTorch is
found imported fails, naming the module to mark.
"""
from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

import pytest

HEAVY = ("keras", "tensorflow", "jax", "torch")

#: A line at the top level of a module that makes it a Keras module.
_KERAS_MODULE = re.compile(
    r"^(?:import (?:keras|tensorflow|jax|torch)\b|from (?:keras|tensorflow|jax|torch)\b"
    r"|\w+ = pytest\.importorskip\([\"'](?:keras|tensorflow)[\"']\)"
    r"|pytestmark = .*\bpytest\.mark\.keras\b)", re.MULTILINE)

#: Tests that need Keras in modules that mostly do not (module name -> test function names).
KERAS_TESTS: dict[str, set[str]] = {
}

#: The long tests (module name -> test function names; every parameter of each).
SLOW_TESTS: dict[str, set[str]] = {
}


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--update-golden", action="store_true", default=False,
                     help="rewrite the golden files under tests/golden instead of checking "
                          "them; review the diff before committing")


@pytest.fixture(scope="session")
def update_golden(request: pytest.FixtureRequest) -> bool:
    """True when the run should rewrite golden files (pytest --update-golden)."""
    return bool(request.config.getoption("--update-golden"))


@pytest.fixture(scope="module")
def keras() -> Any:
    """The keras module (asking for it marks the test `keras`)."""
    return pytest.importorskip("keras")


@pytest.fixture(scope="session")
def paths(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The reference's spec files (the examples and the kitchen sink), written once per run."""
    import reference as ref

    return ref.spec_paths(tmp_path_factory.mktemp("specs"))


# -- tiers --------------------------------------------------------------------------------------

def _is_keras_module(path: Path) -> bool:
    try:
        return bool(_KERAS_MODULE.search(path.read_text(encoding="utf-8")))
    except OSError:
        return False


def _keras_deselected(config: pytest.Config) -> bool:
    """True when -m deselects a test marked only `keras` (the fast tier)."""
    expr = config.getoption("markexpr", "") or ""
    if not expr:
        return False
    from _pytest.mark.expression import Expression

    return not Expression.compile(expr).evaluate(lambda name, **kwargs: name == "keras")


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    # the fast tier never imports a Keras module (its import alone would pull in TensorFlow)
    if (collection_path.suffix == ".py" and collection_path.name.startswith("test_")
            and _keras_deselected(config) and _is_keras_module(collection_path)):
        return True
    return None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    modules: dict[Path, bool] = {}
    for item in items:
        path = Path(str(item.fspath))
        if path not in modules:
            modules[path] = _is_keras_module(path)
        name = getattr(item, "originalname", item.name)
        if (modules[path] or name in KERAS_TESTS.get(path.stem, ())
                or "keras" in getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.keras)
        if name in SLOW_TESTS.get(path.stem, ()):
            item.add_marker(pytest.mark.slow)
    if _keras_deselected(config):
        config._specc_heavy = _heavy_imported()  # type: ignore[attr-defined]


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector: pytest.Collector) -> Any:
    before = _heavy_imported()
    outcome = yield
    if isinstance(collector, pytest.Module) and _keras_deselected(collector.config):
        new = _heavy_imported() - before
        if new:
            report = outcome.get_result()
            report.outcome = "failed"
            report.longrepr = (f"importing {collector.path.name} imported "
                               f"{', '.join(sorted(new))}: a module that needs Keras to import "
                               "says `pytestmark = pytest.mark.keras` at its top")


def _heavy_imported() -> set[str]:
    return {m for m in HEAVY if m in sys.modules}


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Any:
    outcome = yield
    seen = getattr(item.config, "_specc_heavy", None)
    if seen is None or call.when != "teardown":
        return
    new = _heavy_imported() - seen
    if new:
        seen |= new
        report = outcome.get_result()
        report.outcome = "failed"
        report.longrepr = (f"{item.nodeid} imported {', '.join(sorted(new))} in a run without "
                           "Keras tests (-m 'not keras'): mark it @pytest.mark.keras")
