"""specc.yaml_writer: the one writer of spec text (`specc expand`, `specc import`). What it
writes reads back as the same data with PyYAML (YAML 1.1) and with specc's loader."""
from __future__ import annotations

from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from specc.loader import load_text
from specc.yaml_writer import dump, flow, scalar

AWKWARD = ["y", "n", "No", "ON", "null", "True", "3", "1e5", "0x1F", "a b", "${4 * filters}",
           "*", "&a", "- x", "x: y", "#c", "two\nlines ", "é", "tab\there", "", " lead",
           "conv2_block1._1_conv", "'q'", '"dq"', "\u2028", "\x07"]


@pytest.mark.parametrize("value", [1e-05, 1e20, 0.1, 3.0, -2.5e-300, 1.001e-05, 7, -1, True,
                                   False, None, *AWKWARD])
def test_a_scalar_reads_back_alike(value: Any) -> None:
    text = dump({"name": "m", "v": value, "layers": [{"name": "d", "x": [value, {"k": value}]}]})
    want = {"name": "m", "v": value, "layers": [{"name": "d", "x": [value, {"k": value}]}]}
    assert yaml.safe_load(text) == want
    assert load_text(text, "t.yaml").data == want


def test_layout() -> None:
    data = {"specc": 2, "name": "m", "inputs": {"x": {"shape": [4]}},
            "blocks": {"b": {"params": {"u": "int"}, "layers": [{"name": "d", "units": "${u}"}]}},
            "layers": [{"name": "a", "use": "b", "with": {"u": 3}}], "outputs": ["a"],
            "optimizer": {"type": "adam", "learning_rate": 0.001}}
    assert dump(data, ["top"]).splitlines() == [
        "# top", "specc: 2", "name: m", "inputs:", "  x: {shape: [4]}", "blocks:", "  b:",
        "    params: {u: int}", "    layers:", '      - {name: d, units: "${u}"}', "layers:",
        "  - {name: a, use: b, with: {u: 3}}", "outputs: [a]",
        "optimizer: {type: adam, learning_rate: 0.001}"]
    assert flow([1.0, "y", None]) == '[1.0, "y", null]' and scalar(1e-5) == "1.0e-05"


@settings(max_examples=200, deadline=None)
@given(st.recursive(st.none() | st.booleans() | st.integers(-2**62, 2**62)
                    | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=12),
                    lambda inner: st.lists(inner, max_size=3)
                    | st.dictionaries(st.text(max_size=6), inner, max_size=3), max_leaves=10))
def test_any_value_reads_back_alike(value: Any) -> None:
    text = dump({"v": value, "layers": [{"name": "d", "v": value}]})
    assert yaml.safe_load(text) == {"v": value, "layers": [{"name": "d", "v": value}]}


def test_a_long_list_goes_on_over_lines() -> None:
    """An imported vocabulary of 20,000 tokens: over lines of about WIDTH characters (the
    reader refuses lines over 20,000), read back alike at every level it can appear."""
    tokens = [f"w{i}" for i in range(20_000)] + ["a b", "two\nlines"]
    data = {"name": "m", "v": tokens, "inputs": {"x": {"vocabulary": tokens}},
            "blocks": {"b": {"layers": [{"name": "d", "vocabulary": tokens}]}},
            "layers": [{"name": "d", "vocabulary": tokens, "idf": [0.5] * 3000}]}
    text = dump(data)
    assert max(len(line) for line in text.splitlines()) <= 150     # the key, then WIDTH
    assert yaml.safe_load(text) == data
    assert load_text(text, "t.yaml").data == data
    assert dump({"v": tokens[:100]}) == f"v: {flow(tokens[:100])}\n"    # short: one line
