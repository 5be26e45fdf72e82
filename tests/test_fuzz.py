"""Fuzzing: whatever a spec holds, the only outcomes are a Spec / model or a SpecError.

Mutated example specs (deleted keys, swapped types, renamed references, shuffled layers,
random unicode) go through load + validate; a smaller share also through build, where
shapes that validation cannot see must become located SpecErrors too. For longer runs:
`SPECC_FUZZ_EXAMPLES=50000 python -m pytest tests/test_fuzz.py`.
"""
from __future__ import annotations

import os
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from strategies import dump, mutated_specs, resized_specs

import specc
from specc.errors import SpecError

EXAMPLES = int(os.environ.get("SPECC_FUZZ_EXAMPLES", "2000"))
BUILD_EXAMPLES = int(os.environ.get("SPECC_FUZZ_BUILD_EXAMPLES", "40"))


def _validate(text: str | bytes) -> Any:
    try:
        return specc.loads(text, "fuzz.yaml")
    except SpecError as exc:
        assert exc.diagnostics and all(d.line >= 1 and d.column >= 1 for d in exc.diagnostics)
        assert all(len(d.message) < 1_000 for d in exc.diagnostics)
        return None


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
@given(mutated_specs())
def test_mutated_specs_validate_or_raise_spec_error(data: Any) -> None:
    _validate(dump(data))


@settings(max_examples=EXAMPLES // 5, deadline=None)
@given(st.one_of(st.binary(max_size=300), st.text(max_size=300)))
def test_random_bytes_and_text(blob: bytes | str) -> None:
    _validate(blob)


@pytest.mark.keras
@pytest.mark.filterwarnings("ignore")
@settings(max_examples=BUILD_EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
@given(resized_specs())
def test_resized_specs_build_or_raise_spec_error(data: Any) -> None:
    spec = _validate(dump(data))
    if spec is None:
        return
    try:
        specc.build(spec)
    except SpecError as exc:
        assert exc.code == "build"
        assert exc.line > 1
