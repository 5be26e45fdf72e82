"""Hypothesis strategies for specs, shared by the fuzz tests, the budget tests and the long
fuzz run (tests/fuzz_long.py): mutated example specs (anything may be wrong) and resized ones
(valid structure, arbitrary sizes)."""
from __future__ import annotations

import copy
from typing import Any

import yaml
from hypothesis import strategies as st

from helpers import SPECS

#: The format 1 example specs, parsed.
BASES = [d for d in (yaml.safe_load(p.read_text()) for p in sorted(SPECS.glob("*.yaml")))
         if d.get("specc") == 1]

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


def dump(data: Any) -> str:
    # libyaml's emitter where PyYAML has it: the pure-Python one took a third of a fuzz example
    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
    return yaml.dump(data, Dumper=dumper, allow_unicode=True, sort_keys=False)


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
