"""Static shapes agree with Keras: a shape error at validation is one Keras would raise, and a
shape validation infers is the shape Keras builds."""
from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import specc
from specc.checks import Context, check_references
from specc.errors import SpecError
from specc.graph import lower
from specc.topology import topological_order
from specc.shapes import ShapeProblem, output_shape
from specc.spec.model import Spec

ROOT = Path(__file__).resolve().parent.parent
SPECS = sorted((ROOT / "specs").glob("*.yaml"))

GRID = """\
specc: 1
name: grid
inputs:
  img: {shape: [H, W, 3]}
layers:
  - {name: conv, type: Conv2D, filters: 4, kernel_size: K, strides: S, padding: P}
  - {name: pool, type: MaxPooling2D, pool_size: Q, padding: R}
  - {name: flat, type: Flatten}
  - {name: out, type: Dense, units: 2}
outputs: [out]
loss: mse
"""


def static_shapes(spec: Spec) -> dict[str, Any]:
    """Layer name -> inferred shape, or the ShapeProblem raised (no Keras involved)."""
    ctx = Context(spec)
    list(check_references(ctx))
    known: dict[str, Any] = {n: tuple(s.shape) for n, s in spec.inputs.items()}
    for i in topological_order(spec, ctx.reads):
        layer = spec.layers[i]
        shapes = [known.get(r) for r in ctx.reads[layer.name]]
        if any(s is None or isinstance(s, ShapeProblem) for s in shapes):
            known[layer.name] = None
            continue
        try:
            known[layer.name] = output_shape(layer, shapes)
        except ShapeProblem as problem:
            known[layer.name] = problem
    return known


def keras_shapes(spec: Spec) -> dict[str, Any] | SpecError:
    from specc.runtime import emit

    try:
        model = emit(lower(spec), compile=False)
    except SpecError as exc:
        return exc
    shapes, calls = {}, {}
    for layer in spec.layers:            # a shared layer's k-th call is its k-th node
        owner = layer._shares or layer.name
        calls[owner] = calls.get(owner, -1) + 1
        node = model.get_layer(owner)._inbound_nodes[calls[owner]]
        shapes[layer.name] = tuple(node.outputs[0].shape[1:])   # the first of several outputs
    return shapes


def agree(spec: Spec) -> None:
    static = static_shapes(spec)
    built = keras_shapes(spec)
    problems = [s for s in static.values() if isinstance(s, ShapeProblem)]
    if problems:
        assert isinstance(built, SpecError), f"static said {problems[0]}, Keras built it"
        return
    if isinstance(built, SpecError):
        return                       # a problem outside the static rules: Keras's to report
    for name, shape in static.items():
        if name in built and shape is not None:
            assert shape == built[name], (name, shape, built[name])


@pytest.mark.parametrize("path", SPECS, ids=lambda p: p.stem)
def test_examples_static_shapes_match_keras(path: Path) -> None:
    agree(specc.load(path))


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(h=st.integers(1, 12), w=st.integers(1, 12), k=st.integers(1, 5), s=st.integers(1, 3),
       q=st.integers(1, 4), p=st.sampled_from(["valid", "same"]),
       r=st.sampled_from(["valid", "same"]))
def test_conv_pool_grid_matches_keras(h, w, k, s, q, p, r) -> None:
    text = GRID
    for key, value in {"H": h, "W": w, "K": k, "S": s, "P": p, "Q": q, "R": r}.items():
        text = text.replace(f" {key}", f" {value}").replace(f"[{key},", f"[{value},")
    agree(Spec.model_validate(yaml.safe_load(text)))


MERGES = """\
specc: 1
name: merges
inputs:
  a: {shape: A}
  b: {shape: B}
layers:
  - {name: m, type: T, from: [a, b]}
  - {name: flat, type: Flatten}
  - {name: out, type: Dense, units: 1}
outputs: [out]
loss: mse
"""


@settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))
@given(a=st.lists(st.integers(1, 4), min_size=1, max_size=3),
       b=st.lists(st.integers(1, 4), min_size=1, max_size=3),
       t=st.sampled_from(["Add", "Multiply", "Maximum", "Concatenate", "Subtract"]))
def test_merges_match_keras(a, b, t) -> None:
    text = MERGES.replace("A}", f"{a}}}").replace("B}", f"{b}}}").replace(" T,", f" {t},")
    agree(Spec.model_validate(yaml.safe_load(copy.deepcopy(text))))
