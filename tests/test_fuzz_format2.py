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


# -- several files: `imports:` and `extends:` (issue 21) -------------------------------------

#: What an `imports:` or `extends:` may name: the project's files, and hostile paths (out of
#: the project, a link out, a folder, a cycle, missing, not a string).
PATHS = ["lib.yaml", "base.yaml", "top.yaml", "sub/lib2.yaml", "../outside.yaml",
         "sub/../../outside.yaml", "/etc/passwd", "link.yaml", "sub", "missing.yaml", "", 7,
         ["lib.yaml"]]
DIRECTIVE_VALUES = st.sampled_from([True, False, "yes", None, "final", "s", "nope", 3, ["s"],
                                    {"s": 1}])


@st.composite
def overriding_entries(draw) -> dict:
    """An entry of a spec that extends another: a change by name, with directives."""
    entry: dict[str, Any] = {"name": draw(st.sampled_from(["s", "t", "final", "both", "new",
                                                           "nope", 5]))}
    for key in ("delete", "replace", "after", "before"):
        if draw(st.integers(0, 3)) == 0:
            entry[key] = draw(DIRECTIVE_VALUES)
    if draw(st.booleans()):
        entry.update(draw(st.sampled_from([{"units": 3}, {"type": "Dense", "units": 2},
                                           {"with": {"w": 2}}, {"use": "unit", "with": {}},
                                           {"activation": "tanh"}, {"share": "s"}])))
    return entry


@st.composite
def projects(draw) -> dict[str, Any]:
    """A project of several files: a drawn spec split into a library and a base, and a top
    spec that extends the base with overrides by name; paths drawn from PATHS."""
    spec = draw(st.one_of(valid_format2_specs(), valid_format2_specs(), format2_specs()))
    lib = {"specc": 2, "blocks": spec.pop("blocks", {})}
    if draw(st.integers(0, 3)) == 0:
        lib["imports"] = draw(st.lists(st.sampled_from(PATHS), max_size=2))
    spec["imports"] = draw(st.one_of(st.just(["lib.yaml"]), st.just(["lib.yaml"]),
                                     st.lists(st.sampled_from(PATHS), min_size=1, max_size=3)))
    top: dict[str, Any] = {"specc": 2, "extends": draw(st.one_of(
        st.just("base.yaml"), st.just("base.yaml"), st.sampled_from(PATHS)))}
    if draw(st.booleans()):
        top["layers"] = draw(st.lists(overriding_entries(), max_size=4))
    if draw(st.integers(0, 3)) == 0:
        top["blocks"] = {"unit": draw(st.sampled_from([None, {"params": {"w": 9}},
                                                       {"layers": [{"name": "h",
                                                                    "units": 1}]}]))}
    if draw(st.integers(0, 3)) == 0:
        top["inputs"] = {"x": draw(st.sampled_from([None, {"shape": [4]}, 3]))}
    return {"top.yaml": top, "base.yaml": spec, "lib.yaml": lib,
            "sub/lib2.yaml": {"specc": 2, "imports": ["../lib.yaml"], "blocks": {}}}


def _write_project(folder: str, files: dict[str, Any]) -> None:
    for name, data in files.items():
        path = os.path.join(folder, "project", name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as stream:
            yaml.safe_dump(data, stream, sort_keys=False)
    with open(os.path.join(folder, "outside.yaml"), "w") as stream:
        stream.write("specc: 2\nblocks: {}\n")
    os.symlink(os.path.join(folder, "outside.yaml"), os.path.join(folder, "project",
                                                                   "link.yaml"))


@settings(max_examples=max(EXAMPLES // 5, 10), deadline=None, database=None,
          suppress_health_check=list(HealthCheck))
@given(projects())
def test_projects_of_several_files_load_or_refuse_inside_the_project(files) -> None:
    """Whatever the files name, loading ends in a Spec or a SpecError whose every location
    (notes included) is one of the project's files, and a valid one's flat form is the same
    spec; nothing outside the project is ever read."""
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        _write_project(folder, files)
        project = os.path.join(folder, "project")
        top = os.path.join(project, "top.yaml")
        try:
            spec = specc.load(top)
        except SpecError as exc:
            for d in exc.diagnostics:
                for where in (d, *d.notes):
                    real = os.path.realpath(where.file)
                    assert real.startswith(os.path.realpath(project) + os.sep), where
                    assert where.line >= 1 and where.column >= 1
            return
        flat = specc.loads(to_yaml(spec.document.data), "flat.yaml")
        assert flat.model_dump(by_alias=True) == spec.model_dump(by_alias=True)


@settings(max_examples=max(EXAMPLES // 10, 5), deadline=None, database=None,
          suppress_health_check=list(HealthCheck))
@given(valid_format2_specs(), st.booleans())
def test_blocks_in_a_library_and_an_empty_extends_change_nothing(data, extend) -> None:
    """A valid spec whose blocks move to a library it imports, and a spec that extends it
    and overrides nothing, are the same spec (its name aside)."""
    import tempfile

    alone = specc.loads(yaml.safe_dump(data, sort_keys=False), "alone.yaml")
    lib = {"specc": 2, "blocks": data.pop("blocks")}
    data = {"specc": 2, "name": data.pop("name"), "imports": ["blocks/lib.yaml"], **data}
    files = {"spec.yaml": data, "blocks/lib.yaml": lib}
    if extend:
        files["child.yaml"] = {"specc": 2, "extends": "spec.yaml"}
    with tempfile.TemporaryDirectory() as folder:
        for name, value in files.items():
            os.makedirs(os.path.dirname(os.path.join(folder, name)), exist_ok=True)
            with open(os.path.join(folder, name), "w") as stream:
                yaml.safe_dump(value, stream, sort_keys=False)
        split = specc.load(os.path.join(folder, "child.yaml" if extend else "spec.yaml"))
    assert split.model_dump(by_alias=True) == alone.model_dump(by_alias=True)
