"""Format 2 under hostile input: whatever blocks, repeats, shares, ports and `${...}` a spec
holds, loading it ends in a Spec or a SpecError -- never another exception -- and the flat form
that `specc expand` prints of a valid one is itself valid and the same spec.

The strategies build specs from parts, valid and broken: blocks with parameters (typed and
defaulted), nested uses, `repeat:` (literal or an expression), `if:`, `share:` of layers,
inputs, ports and instances, recurrent layers and their ports, and expressions drawn from a
small grammar that includes mistakes (unknown names, wrong types, huge numbers, deep lists).
`SPECC_FUZZ2_EXAMPLES` sets the size (default 150, a few seconds); the long run is
`python tests/fuzz_format2_long.py N`.
"""
from __future__ import annotations

import functools
import os
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import specc
from specc.errors import SpecError
from specc.expand import to_yaml
from specc.loader import load_text
from specc.validation import expand_document

EXAMPLES = int(os.environ.get("SPECC_FUZZ2_EXAMPLES", "150"))

NAMES = ["a", "b", "h", "conv", "out", "x", "left", "right", "enc", "tower", "lstm", "n"]
ACTIVATIONS = ["relu", "linear", "tanh", "rleu", 7]


def expressions(params: list[str]) -> st.SearchStrategy[str]:
    """A `${...}` over the names in scope, sometimes broken on purpose."""
    return _expressions(tuple(params))


@functools.lru_cache(maxsize=None)            # building a recursive strategy is costly
def _expressions(params: tuple[str, ...]) -> st.SearchStrategy[str]:
    leaf = st.one_of(st.integers(-3, 9).map(str), st.sampled_from([*params, "i", "nope"]),
                     st.sampled_from(["2**62", "10**10**10", "'s'", "[1, 2]", "true", "1.5"]))
    tree = st.recursive(leaf, lambda inner: st.one_of(
        st.tuples(inner, st.sampled_from(["+", "-", "*", "//", "/", "%", "**", "==", "<"]),
                  inner).map(lambda t: f"({t[0]} {t[1]} {t[2]})"),
        st.tuples(inner, inner, inner).map(lambda t: f"({t[0]} if {t[1]} else {t[2]})"),
        st.lists(inner, max_size=4).map(lambda xs: "[" + ", ".join(xs) + "]"),
        st.tuples(st.sampled_from(["min", "max", "abs", "int", "len", "str", "round"]),
                  st.lists(inner, min_size=1, max_size=2)).map(
            lambda t: f"{t[0]}({', '.join(t[1])})"),
        st.tuples(inner, inner).map(lambda t: f"{t[0]}[{t[1]}]"),
    ), max_leaves=8)
    return tree.map(lambda e: "${" + e + "}")


def scalar(params: list[str]) -> st.SearchStrategy[Any]:
    return _scalar(tuple(params))


@functools.lru_cache(maxsize=None)
def _scalar(params: tuple[str, ...]) -> st.SearchStrategy[Any]:
    return st.one_of(st.integers(1, 8), expressions(params), st.sampled_from([0, -1, "4", None]))


@st.composite
def layer_entry(draw, params: list[str], names: list[str], recurrent: bool) -> dict:
    name = draw(st.sampled_from(NAMES))
    kind = draw(st.sampled_from(["Dense", "Dense", "Dropout", "LSTM" if recurrent else "Dense",
                                 "Conv2D"]))
    entry: dict[str, Any] = {"name": name, "type": kind}
    if kind in ("Dense", "LSTM"):
        entry["units"] = draw(scalar(params))
    if kind == "Dense" and draw(st.booleans()):
        entry["activation"] = draw(st.one_of(st.sampled_from(ACTIVATIONS), expressions(params)))
    if kind == "Dropout":
        entry["rate"] = draw(st.one_of(st.just(0.1), expressions(params)))
    if kind == "Conv2D":
        entry.update(filters=2, kernel_size=draw(st.sampled_from([1, 3, 2**31 + 4])))
    if kind == "LSTM" and draw(st.booleans()):
        entry["return_state"] = True
    if names and draw(st.integers(0, 3)) == 0:
        entry["from"] = draw(st.sampled_from(names + ["nope", f"{names[-1]}.state_h"]))
    return entry


@st.composite
def entry_of(draw, params: list[str], names: list[str], blocks: list[str],
             recurrent: bool) -> dict:
    pick = draw(st.integers(0, 9))
    if pick <= 4 or not (blocks or names):
        entry = draw(layer_entry(params, names, recurrent))
    elif pick <= 7 and blocks:
        entry = {"name": draw(st.sampled_from(NAMES)), "use": draw(st.sampled_from(blocks))}
        if draw(st.booleans()):
            entry["with"] = draw(st.dictionaries(st.sampled_from(["w", "act", "k", "wx"]),
                                                 scalar(params), max_size=2))
    else:
        target = draw(st.sampled_from(names + ["x", "nope", f"{(names or ['a'])[0]}.state_h"]))
        entry = {"name": draw(st.sampled_from(NAMES)), "share": target}
        if draw(st.booleans()):
            entry["from"] = "x"
    if draw(st.integers(0, 4)) == 0:
        entry["repeat"] = draw(st.one_of(st.integers(1, 3), expressions(params),
                                         st.sampled_from([0, 20000])))
    if draw(st.integers(0, 5)) == 0:
        entry["if"] = draw(st.one_of(st.booleans(), expressions(params),
                                     st.sampled_from(params + ["nope"])))
    if draw(st.integers(0, 30)) == 0:
        entry = draw(st.sampled_from(["just_a_string", 3, None, [entry]]))
    return entry


@st.composite
def format2_specs(draw) -> dict:
    recurrent = draw(st.booleans())
    blocks: dict[str, Any] = {}
    for k in range(draw(st.integers(0, 3))):
        params = draw(st.lists(st.sampled_from(["w", "act", "k"]), unique=True, max_size=2))
        names: list[str] = []
        layers = []
        for _ in range(draw(st.integers(1, 3))):
            entry = draw(entry_of(params, names, list(blocks), recurrent))
            layers.append(entry)
            if isinstance(entry, dict) and isinstance(entry.get("name"), str):
                names.append(entry["name"])
        block: dict[str, Any] = {"layers": layers}
        if params:
            block["params"] = {p: draw(st.sampled_from(["int", 2, "str", "any", "list"]))
                               for p in params}
        if draw(st.integers(0, 4)) == 0 and names:
            block["outputs"] = [draw(st.sampled_from(names + [f"{names[0]}.state_h"]))]
        blocks[f"blk{k}"] = block
    layers, names = [], []
    for _ in range(draw(st.integers(1, 4))):
        entry = draw(entry_of([], names, list(blocks), recurrent))
        layers.append(entry)
        if isinstance(entry, dict) and isinstance(entry.get("name"), str):
            names.append(entry["name"])
    layers.append({"name": "final", "type": "Dense", "units": 1})
    spec: dict[str, Any] = {"specc": 2, "name": "fuzz",
                            "inputs": {"x": {"shape": [5, 4] if recurrent else [4]}}}
    if blocks:
        spec["blocks"] = blocks
    spec.update(layers=layers, outputs=["final"], loss="mse")
    if draw(st.integers(0, 3)) == 0 and names:
        spec["weight_penalties"] = [{"name": "wd", "layers": [draw(st.sampled_from(names))],
                                     "kind": "l2", "rate": 0.1}]
    return spec


@st.composite
def valid_format2_specs(draw) -> dict:
    """Specs built to be valid: nested blocks, a repeat with `i`, `if:` on a parameter, a
    `from:` computed by an expression, and maybe a share of a whole instance."""
    width, depth = draw(st.integers(1, 6)), draw(st.integers(1, 3))
    blocks = {
        "unit": {"params": {"w": "int", "act": "relu", "gate": False},
                 "layers": [
                     {"name": "h", "type": "Dense", "units": "${w * 2}", "activation": "${act}"},
                     {"name": "p", "type": "Dense", "units": "${w}", "if": "gate"},
                     {"name": "o", "type": "Dense", "units": "${w}",
                      "from": "${'p' if gate else 'h'}"}]},
        "stage": {"params": {"w": "int", "n": 1, "act": "relu"},
                  "layers": [{"name": "u", "use": "unit", "repeat": "${n}",
                              "with": {"w": "${w + i}", "gate": "${i == 0}", "act": "${act}"}}]},
    }
    act = draw(st.sampled_from(["relu", "tanh", "linear"]))
    layers: list[dict] = [{"name": "s", "use": "stage",
                           "with": {"w": width, "n": depth, "act": act}}]
    if draw(st.booleans()):
        layers += [{"name": "t", "share": "s", "from": "x"},
                   {"name": "both", "type": "Concatenate", "from": ["s", "t"]}]
    layers.append({"name": "final", "type": "Dense", "units": 1})
    return {"specc": 2, "name": "valid", "inputs": {"x": {"shape": [4]}}, "blocks": blocks,
            "layers": layers, "outputs": ["final"], "loss": "mse"}


def specs() -> st.SearchStrategy[dict]:
    """Mostly hostile specs, and some built to be valid."""
    return st.one_of(format2_specs(), format2_specs(), format2_specs(), valid_format2_specs())


def check(text: str) -> specc.Spec | None:
    """Load `text`: a Spec or None (a SpecError); for a valid spec, its flat form is valid
    and validates to the same spec. Any other exception propagates (a bug)."""
    try:
        spec = specc.loads(text, "fuzz.yaml")
    except SpecError:
        return None
    flat = expand_document(load_text(text, "fuzz.yaml"))
    again = specc.loads(to_yaml(flat.data), "flat.yaml")
    assert again.model_dump(by_alias=True) == spec.model_dump(by_alias=True)
    return spec


@settings(max_examples=EXAMPLES, deadline=None, database=None,
          suppress_health_check=list(HealthCheck))
@given(specs())
def test_format2_specs_load_or_refuse_with_a_located_error(data) -> None:
    check(yaml.safe_dump(data, sort_keys=False, allow_unicode=True))


def test_the_strategies_make_valid_specs_too() -> None:
    # Not only refusals: a share of a block, a port and an `if:` from a parameter are valid.
    text = yaml.safe_dump({
        "specc": 2, "name": "ok", "inputs": {"x": {"shape": [5, 4]}},
        "blocks": {"enc": {"params": {"w": 3, "gate": False},
                           "layers": [{"name": "lstm", "type": "LSTM", "units": "${w}",
                                       "return_state": True},
                                      {"name": "extra", "type": "Dense", "units": 2,
                                       "from": "lstm", "if": "gate"}],
                           "outputs": ["lstm.state_h"]}},
        "layers": [{"name": "left", "use": "enc"}, {"name": "right", "share": "left",
                                                      "from": "x"},
                   {"name": "both", "type": "Concatenate", "from": ["left", "right"]},
                   {"name": "final", "type": "Dense", "units": 1}],
        "outputs": ["final"], "loss": "mse"}, sort_keys=False)
    spec = check(text)
    assert spec is not None and "right.lstm" in [layer.name for layer in spec.layers]


@pytest.mark.keras
@settings(max_examples=4, deadline=None, database=None, derandomize=True,
          suppress_health_check=list(HealthCheck))
@given(valid_format2_specs())
def test_the_flat_form_builds_the_same_model(data: dict) -> None:
    """A few valid drawn specs: the spec and its flat form build the same Keras model (the
    same layer names and weight shapes, in order)."""
    text = yaml.safe_dump(data, sort_keys=False)
    spec = specc.loads(text, "f.yaml")
    flat = specc.loads(to_yaml(expand_document(load_text(text, "f.yaml")).data), "flat.yaml")
    a, b = specc.build(spec), specc.build(flat)
    assert [layer.name for layer in a.layers] == [layer.name for layer in b.layers]
    assert [tuple(w.shape) for w in a.weights] == [tuple(w.shape) for w in b.weights]
