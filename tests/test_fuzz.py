"""Fuzzing: whatever a spec holds, the only outcomes are a Spec / model or a SpecError.

Mutated example specs (deleted keys, swapped types, renamed references, shuffled layers,
random unicode) go through load + validate; a smaller share also through build, where
shapes that validation cannot see must become located SpecErrors too. For longer runs:
`SPECC_FUZZ_EXAMPLES=50000 python -m pytest tests/test_fuzz.py`.
"""
from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import specc
from specc.errors import SpecError

ROOT = Path(__file__).resolve().parent.parent
BASES = [d for d in (yaml.safe_load(p.read_text()) for p in sorted((ROOT / "specs").glob("*.yaml")))
         if d.get("specc") == 1]
EXAMPLES = int(os.environ.get("SPECC_FUZZ_EXAMPLES", "2000"))
BUILD_EXAMPLES = int(os.environ.get("SPECC_FUZZ_BUILD_EXAMPLES", "40"))

ODD_VALUES = st.one_of(
    st.none(), st.booleans(), st.integers(-10**6, 10**6), st.floats(allow_nan=True),
    st.text(max_size=30), st.lists(st.integers(-3, 100), max_size=4),
    st.dictionaries(st.text(max_size=8), st.integers(), max_size=3),
    st.sampled_from(["Dense", "h1", "relu", "kernel", "output", "l2", "-1", "∞", "\u202e"]),
)


def _paths(node: Any, prefix: tuple = ()) -> list[tuple]:
    out = [prefix]
    if isinstance(node, dict):
        for k, v in node.items():
            out += _paths(v, prefix + (k,))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out += _paths(v, prefix + (i,))
    return out


def _get(node: Any, path: tuple) -> Any:
    for p in path:
        node = node[p]
    return node


@st.composite
def mutated_specs(draw) -> Any:
    data = copy.deepcopy(draw(st.sampled_from(BASES)))
    for _ in range(draw(st.integers(1, 4))):
        paths = _paths(data)
        path = draw(st.sampled_from(paths))
        op = draw(st.sampled_from(["delete", "replace", "rename", "shuffle", "duplicate",
                                   "unicode"]))
        if not path:
            if op == "replace":
                return draw(ODD_VALUES)
            continue
        parent, key = _get(data, path[:-1]), path[-1]
        if op == "delete":
            del parent[key]
        elif op == "replace":
            parent[key] = draw(ODD_VALUES)
        elif op == "rename" and isinstance(parent[key], str):
            names = [v for p in paths if p and isinstance(v := _get(data, p), str)]
            parent[key] = draw(st.sampled_from(names))
        elif op == "shuffle" and isinstance(parent[key], list):
            parent[key] = draw(st.permutations(parent[key]))
        elif op == "duplicate" and isinstance(parent, list):
            parent.append(copy.deepcopy(parent[key]))
        elif op == "unicode" and isinstance(parent, dict):
            parent[draw(st.text(min_size=1, max_size=12))] = draw(ODD_VALUES)
    return data


def _dump(data: Any) -> str:
    return yaml.safe_dump(data, allow_unicode=True, sort_keys=False)


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
    _validate(_dump(data))


@settings(max_examples=EXAMPLES // 5, deadline=None)
@given(st.one_of(st.binary(max_size=300), st.text(max_size=300)))
def test_random_bytes_and_text(blob: bytes | str) -> None:
    _validate(blob)


@st.composite
def resized_specs(draw) -> Any:
    """Valid structure, arbitrary sizes: what only Keras can judge (shapes, ranks)."""
    data = copy.deepcopy(draw(st.sampled_from(BASES)))
    for name, inp in data["inputs"].items():
        if draw(st.booleans()):
            inp["shape"] = draw(st.lists(st.integers(1, 12), min_size=1, max_size=4))
    for layer in data["layers"]:
        for key in ("units", "filters", "kernel_size", "pool_size", "output_dim", "input_dim"):
            if key in layer and draw(st.booleans()):
                layer[key] = draw(st.integers(1, 40))
    return data


@pytest.mark.filterwarnings("ignore")
@settings(max_examples=BUILD_EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
@given(resized_specs())
def test_resized_specs_build_or_raise_spec_error(data: Any) -> None:
    spec = _validate(_dump(data))
    if spec is None:
        return
    try:
        specc.build(spec)
    except SpecError as exc:
        assert exc.code == "build"
        assert exc.line > 1
