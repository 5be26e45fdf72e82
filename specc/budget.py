"""The size budget: parameters and activations known before Keras runs.

From the static shapes (specc.shapes) this module counts, for every spec layer, the weights
Keras will create (`layer.count_params()`, non-trainable ones such as BatchNormalization's
moving statistics included) and the largest tensor it holds per sample (its output, or an
internal one such as attention scores). A spec over the budget is refused at validation,
naming the layer that dominates, so that no spec makes specc ask Keras for memory it was
not allowed. No TensorFlow here; `tests/test_budget.py` checks the counts against Keras.

Defaults (change them with `--max-params` / `--max-activation`, or `with limits(...)`):

- MAX_PARAMS: 100,000,000 parameters in all (400 MB of float32 weights, 1.2 GB with Adam's
  two slots), about ImageNet-scale models;
- MAX_ACTIVATION: 100,000,000 values in one tensor of one sample (400 MB in float32; a
  batch multiplies it).

Sizes are per sample and exact where the shapes are known; an unknown (None) axis counts as
1, so a size with unknown axes is a lower bound and only refused when even that is over.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Final, Iterator, NamedTuple, Optional

from specc import catalog
from specc.shapes import Shape, ShapeProblem, output_shape

MAX_PARAMS: Final = 100_000_000
MAX_ACTIVATION: Final = 100_000_000

# (path in the document, message, code), as in specc.checks
Problem = tuple[tuple, str, str]


@dataclass(frozen=True)
class Limits:
    """The budget a spec must fit: parameters in all, values per tensor per sample."""

    max_params: int = MAX_PARAMS
    max_activation: int = MAX_ACTIVATION




_SUFFIXES: Final = {"k": 10**3, "m": 10**6, "g": 10**9, "b": 10**9, "t": 10**12}


def parse_count(text: str) -> int:
    """A budget from the command line: 250000000, 250_000_000, 2.5e8, 250M, 1G, 10k."""
    import argparse

    raw = text.strip().lower().replace("_", "").replace(",", "")
    scale = _SUFFIXES.get(raw[-1:], 1)
    number = raw[:-1] if scale != 1 else raw
    try:
        value = float(number) * scale if any(c in number for c in ".e") else int(number) * scale
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a count (write e.g. 250000000, 2.5e8 or 250M)") from None
    if not value >= 1 or value != value or value == float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r}: give a positive count")
    return int(value)


# --------------------------------------------------------------------------- parameters

_WEIGHTED: dict[type, bool] = {}


def has_weights(layer: Any) -> bool:
    """Whether the layer's class is one of the catalog's layers with weights."""
    cls = type(layer)
    found = _WEIGHTED.get(cls)
    if found is None:
        found = _WEIGHTED[cls] = any(b.__name__ == "WeightedLayer" for b in cls.__mro__)
    return found


def params(layer: Any, shapes: list[Shape]) -> Optional[int]:
    """How many weights Keras creates for `layer` given its input shapes; None if unknown
    (its definition's `params` rule, specc.catalog)."""
    definition = catalog.get(layer.type)
    if definition is None:                         # a shared call or an unknown type
        return None if has_weights(layer) else 0
    return None if definition.params is None else definition.params(layer, shapes)


# -------------------------------------------------------------------------- activations

def elements(shape: Shape) -> int:
    """Values in one sample of a tensor of this shape (an unknown axis counts as 1)."""
    return math.prod(1 if d is None else d for d in shape)


def _internal(layer: Any, shapes: list[Shape]) -> tuple[int, str]:
    """The largest tensor a layer computes inside, per sample, and what it is (0 if none)."""
    definition = catalog.get(layer.type)
    if definition is None or definition.internal is None:
        return 0, ""
    return definition.internal(layer, shapes)


# ------------------------------------------------------------------------------ the walk

class Size(NamedTuple):
    """One input or spec layer: its output shape, weights and largest tensor per sample."""

    name: str
    type: str                      # the layer type, or "Input"
    path: tuple                    # where it is written in the document
    shape: Optional[Shape]         # None: unknown
    params: Optional[int]          # None: unknown; 0 for inputs and weightless layers
    largest: Optional[int]         # values per sample of its largest tensor; None: unknown
    what: str = "its output"       # which tensor `largest` is
    exact: bool = True             # False: an unknown axis was counted as 1
    shared: Optional[str] = None   # a format 2 call of another layer: its weights are there


@dataclass(frozen=True)
class Budget:
    """Every input and spec layer's size, in graph order."""

    sizes: tuple[Size, ...]

    @property
    def layers(self) -> tuple[Size, ...]:
        return tuple(s for s in self.sizes if s.type != "Input")

    @property
    def shapes(self) -> dict[str, Optional[Shape]]:
        """Input or layer name -> its static shape (None: unknown)."""
        found = self.__dict__.get("_shapes")
        if found is None:
            found = {s.name: s.shape for s in self.sizes}
            object.__setattr__(self, "_shapes", found)
        return found

    @property
    def total_params(self) -> int:
        """The known part of the parameter count (exact when `unknown` is empty)."""
        return sum(s.params or 0 for s in self.sizes if s.shared is None)

    @property
    def unknown(self) -> list[str]:
        return [s.name for s in self.sizes if s.params is None and s.shared is None]

    @property
    def largest(self) -> Optional[Size]:
        known = [s for s in self.sizes if s.largest is not None]
        return max(known, key=lambda s: s.largest) if known else None

    def of(self, name: str) -> Size:
        return next(s for s in self.sizes if s.name == name)


def measure(spec: Any, reads: dict[str, list[str]], deps: dict[str, list[str]] | None = None,
            order: list[int] | None = None, memo: dict | None = None) -> Budget:
    """Sizes of a spec whose references and cycles are checked (`reads` from check_references;
    `deps` adds call arguments, format 2; `memo`: shapes already computed, see output_shape)."""
    from specc.topology import topological_order

    sizes: list[Size] = []
    known: dict[str, Optional[Shape]] = {}
    for name, inp in spec.inputs.items():
        shape = tuple(inp.shape)
        known[name] = shape
        sizes.append(Size(name, "Input", ("inputs", name, "shape"), shape, 0, elements(shape),
                          "the input", None not in shape))
    for i in order if order is not None else topological_order(spec, deps or reads):
        layer = spec.layers[i]
        shapes = [known.get(r) for r in reads.get(layer.name, ())]
        shape = count = None
        largest, what, exact = None, "its output", True
        if shapes and all(s is not None for s in shapes):
            try:
                shape = output_shape(layer, shapes, memo)
            except ShapeProblem:
                shape = None                        # check_shapes reports it
            count = params(layer, shapes)
            inner, inner_what = _internal(layer, shapes)
            if shape is not None:
                largest, exact = elements(shape), None not in shape
            if inner and (largest is None or inner > largest):
                largest, what, exact = inner, inner_what, False
        elif layer.type == "Embedding":
            count = params(layer, [])
        known[layer.name] = shape
        for port in _ports(layer):
            known[f"{layer.name}.{port}"] = (_units(layer),) if shape is not None else None
        sizes.append(Size(layer.name, layer.type, ("layers", i), shape, count, largest, what,
                          exact, _shares(layer)))
    return Budget(tuple(sizes))


def _shares(layer: Any) -> Optional[str]:
    """The layer whose weights a format 2 shared call uses (None: its own)."""
    return layer._shares               # a class attribute: no pydantic __getattr__


def _ports(layer: Any) -> tuple[str, ...]:
    if not layer.__dict__.get("return_state"):
        return ()
    ports = getattr(layer, "ports", None)
    return tuple(ports()) if callable(ports) else ()


def _units(layer: Any) -> int:
    return layer.layer.units if layer.type == "Bidirectional" else layer.units


def measure_spec(spec: Any) -> Budget:
    """The budget of a validated spec (`specc explain`)."""
    from specc.topology import resolve_deps, resolve_reads

    return measure(spec, resolve_reads(spec), resolve_deps(spec))


def of_context(ctx: Any) -> Budget:
    """The budget of a checked spec, computed once per checks run (rules share it)."""
    if ctx.budget is None:       # check_shapes' graph order and shapes
        ctx.budget = measure(ctx.spec, ctx.reads, ctx.deps, ctx.order, ctx.shapes)
    return ctx.budget


# ---------------------------------------------------------------------------- the check

def count(n: int) -> str:
    """1,234,567 for a count a person reads; 1.2e+21 past a quadrillion."""
    return f"{n:,}" if n < 10**15 else f"{float(n):.3g}"


def _shape_text(shape: Shape) -> str:
    text = "(" + ", ".join(["batch", *("None" if d is None else count(d) for d in shape)]) + ")"
    return text if len(text) <= 80 else text[:77] + "..."


def check_budget(ctx: Any) -> Iterator[Problem]:
    """Refuse a spec over the budget, at the layer (or input) that dominates."""
    if not ctx.graph_ok:
        return
    budget = of_context(ctx)
    lim = ctx.limits or Limits()
    total = budget.total_params
    if total > lim.max_params:
        top = max((s for s in budget.sizes if s.params and s.shared is None),
                  key=lambda s: s.params)
        share = "all" if top.params == total else f"{top.params * 100 // total}%"
        yield (top.path,
               f"the model has {count(total)} parameters, over the budget of "
               f"{count(lim.max_params)} (--max-params); layer {top.name!r} ({top.type}) "
               f"holds {count(top.params)} of them ({share})", "budget")
    big = budget.largest
    if big is not None and big.largest > lim.max_activation:
        who = f"input {big.name!r}" if big.type == "Input" else \
            f"layer {big.name!r} ({big.type})"
        shape = (f", shape {_shape_text(big.shape)}" if big.what in ("its output", "the input")
                 and big.shape is not None else "")
        least = "" if big.exact else "at least "
        yield (big.path,
               f"{who}: {big.what} holds {least}{count(big.largest)} values per sample{shape}, "
               f"over the budget of {count(lim.max_activation)} (--max-activation)", "budget")
