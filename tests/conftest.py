"""Shared pytest options, fixtures and the suite's tiers.

Tiers (markers registered in pyproject.toml):
- `keras`: the test needs Keras (and so TensorFlow). `python -m pytest -m "not keras"` is the
  fast tier: the loader, expansion, checks, schema and CLI validation, with no Keras imported.
  A module is a Keras module when it imports Keras (or TensorFlow, JAX, PyTorch) at its top
  level, or says `pytestmark = pytest.mark.keras`: every test in it gets the marker, and the fast
  tier does not even import it. In other modules a test is marked with `@pytest.mark.keras`,
  by asking for the `keras` fixture, or in KERAS_TESTS below.
- `jax`: runs on Keras's JAX backend (so it is a `keras` test too).
- `slow`: subprocess re-runs on JAX or PyTorch, two-process checks, big models, many Hypothesis
  examples (SLOW_TESTS below, or `@pytest.mark.slow`).

The fast tier runs the format 1 fuzz test with 500 examples instead of 2,000
(FAST_TIER_EXAMPLES); the full suite runs them all. The fast tier enforces its promise: a test after which Keras, TensorFlow, JAX or PyTorch is
found imported fails, naming the module to mark.

Workers: pyproject's addopts run the suite with pytest-xdist (`-n auto --dist loadfile`): a
module runs whole in one worker, so its module-scoped fixtures (a built model, a TensorFlow
run, processes started once) are built once; `-n 0` runs everything in this process.
"""
from __future__ import annotations

import os
import re
import sys
from pathlib import Path
from typing import Any, Final

import pytest

HEAVY = ("keras", "tensorflow", "jax", "torch")

#: A line at the top level of a module that makes it a Keras module.
_KERAS_MODULE = re.compile(
    r"^(?:import (?:keras|tensorflow|jax|torch)\b|from (?:keras|tensorflow|jax|torch)\b"
    r"|(?:\w+ = )?pytest\.importorskip\([\"'](?:keras|tensorflow)[\"']\)"
    r"|pytestmark = .*\bpytest\.mark\.keras\b)", re.MULTILINE)

#: Tests that need Keras (in this process or in one they start) in modules that mostly do not:
#: module name -> test function names (every parameter of each). Found by running those modules
#: with Keras, TensorFlow, JAX and PyTorch made unimportable, plus the tests whose subprocesses
#: build or fit. A test missing here fails the fast tier the moment it imports Keras.
KERAS_TESTS: dict[str, set[str]] = {
    "test_applications_catalog": {
        "test_activation_words_are_keras_activations", "test_closed_gaps_build_in_keras",
        "test_inventory_is_current"},
    "test_backends": {
        "test_a_strategy_of_another_backend_is_refused",
        "test_another_backend_than_the_running_keras_is_refused", "test_fit_strategy_usage_errors",
        "test_an_unknown_keras_backend_variable_is_refused"},
    "test_budget": {
        "test_example_counts_equal_keras", "test_fuzzed_counts_equal_keras",
        "test_layer_zoo_counts_and_shapes_equal_keras"},
    "test_cli": {
        "test_build_error_in_keras_is_located", "test_build_prints_summary_and_loss_composition",
        "test_build_writes_atomically_and_keeps_the_old_file",
        "test_build_refuses_to_overwrite_its_spec",
        "test_interrupted_save_leaves_no_stray_file"},
    "test_data": {"test_cli_exit_2_one_line_nothing_written"},
    "test_distribute": {
        "test_two_replicas_equal_one_device", "test_masked_sequences_two_replicas_equal_one_device"},
    "test_custom_layers": {
        "test_a_custom_layer_in_blocks_repeat_and_share",
        "test_a_layer_without_rules_is_a_warning_that_says_what_is_not_checked",
        "test_keras_applications_custom_layers_are_specc_types",
        "test_own_activity_puts_the_clause_on_the_layer_itself",
        "test_penalties_attach_to_a_custom_layer", "test_signature_derived_arguments",
        "test_transformer_saves_and_loads_in_safe_mode",
        "test_transformer_spec_equals_the_keras_io_model",
        "test_without_a_shape_rule_nothing_after_it_is_shape_checked",
        "test_an_installed_entry_point_registers_layers"},
    "test_fit": {
        "test_a_loss_that_becomes_nan_stops_and_publishes_nothing", "test_fit_on_npz",
        "test_fit_on_sequences_of_any_length", "test_fit_reports_each_clause_measure",
        "test_fit_writes_every_record", "test_measures_are_each_kinds_own_formula",
        "test_plot_marks_penalties"},
    "test_layers_catalog": {
        "test_catalog_matches_keras_signatures", "test_keras_accepts_every_default_written_out",
        "test_keras_builds_every_minimal_spec", "test_keras_runs_list_valued_arguments"},
    "test_outputs": {
        "test_activity_clauses_on_layers_keras_will_not_regularize",
        "test_every_layer_that_keeps_its_activity_regularizer_saves_it",
        "test_sigterm_during_fit_writes_no_record_and_keeps_the_last_whole_epoch"},
    "test_overrides": {"test_fit_sweep_writes_one_run_per_value_and_a_comparison"},
    "test_plugins": {"test_plugin_term_matches_numpy"},
    "test_readme": {
        "test_worked_example_output_is_real", "test_build_shows_no_tensorflow_start_up_lines"},
    "test_rules": {"test_keras_fails_on_what_the_rules_refuse"},
    "test_schedules": {
        "test_fit_logs_a_scheduled_loss_weight_each_epoch",
        "test_fit_logs_the_rate_each_epoch_and_plots_it",
        "test_one_step_at_0_500_and_2000_against_numpy",
        "test_scheduled_loss_weight_at_0_500_and_2000_against_numpy",
        "test_the_step_equals_keras_with_that_fixed_weight"},
    "test_sequence_penalties": {
        "test_a_mask_that_does_not_fit_the_leading_axes_is_not_applied",
        "test_a_step_masked_in_every_sample_is_left_out_of_the_features",
        "test_embedding_mask_zero_and_a_recurrent_layer",
        "test_every_kind_against_numpy_and_the_strategies_agree",
        "test_fit_measures_leave_masked_steps_out",
        "test_format_1_reads_every_step_unless_a_clause_says_mask_true",
        "test_saved_and_loaded_with_safe_mode", "test_the_mask_matters_for_every_kind"},
    "test_shapes": {
        "test_conv_pool_grid_matches_keras", "test_examples_static_shapes_match_keras",
        "test_merges_match_keras"},
    "test_validation": {"test_import_specc_is_light_and_registers_later"},
}

#: Tests on Keras's JAX backend, in subprocesses (module name -> test function names).
JAX_TESTS: dict[str, set[str]] = {
    "test_backends": {
        "test_same_weights_and_batch_give_the_same_loss_terms_and_step",
        "test_equivalence_suites_on_jax", "test_golden_files_on_jax",
        "test_backend_flag_builds_and_fits_on_jax", "test_two_host_devices_equal_one_device",
        "test_two_processes_equal_one_device", "test_specc_fit_on_two_processes_equals_one_process",
        "test_scheduled_rates_follow_the_step_in_evaluate_on_jax"},
    "test_siamese_contrastive": {"test_other_backends_give_the_same_loss"},
}

#: The long tests (module name -> test function names; every parameter of each).
SLOW_TESTS: dict[str, set[str]] = {
    **JAX_TESTS,
    "test_distribute": KERAS_TESTS["test_distribute"],
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
    """True when -m deselects every test marked `keras`, whatever its other markers (the fast
    tier: -m "not keras", -m "not keras and not slow", ...)."""
    expr = config.getoption("markexpr", "") or ""
    if not expr:
        return False
    from itertools import product

    from _pytest.mark.expression import Expression

    compiled = Expression.compile(expr)
    others = sorted(set(re.findall(r"[A-Za-z_]\w*", expr)) - {"and", "or", "not", "keras"})
    for values in product((False, True), repeat=len(others)):
        marks = {"keras", *(n for n, v in zip(others, values) if v)}
        if compiled.evaluate(lambda name, **kwargs: name in marks):
            return False
    return True


#: The fast tier's size for the Hypothesis runs whose size an environment variable sets (the
#: full suite keeps each file's own default; a value set by the user is kept).
FAST_TIER_EXAMPLES: Final = {"SPECC_FUZZ_EXAMPLES": "500"}


def pytest_configure(config: pytest.Config) -> None:
    if _keras_deselected(config):
        for name, value in FAST_TIER_EXAMPLES.items():
            os.environ.setdefault(name, value)


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
                or "keras" in getattr(item, "fixturenames", ())
                or item.get_closest_marker("jax")):
            item.add_marker(pytest.mark.keras)
        if name in JAX_TESTS.get(path.stem, ()):
            item.add_marker(pytest.mark.jax)
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
