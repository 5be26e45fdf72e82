"""What the checks share: the spec being checked and the views derived from it once.

Below both specc.checks (references, cycles, targets, names) and specc.rules (dtypes, ranks,
axes, the budget), so neither imports the other for it.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from specc.spec.model import Spec

Path = tuple
# (path in the document, message, code)
Problem = tuple[Path, str, str]


@dataclass
class Context:
    """The spec plus derived views the checks share."""

    spec: Spec
    graph_ok: bool = True
    # every name is unique and every reference resolves (a missing `from:` or a wrong number
    # of inputs still leaves the graph's edges known: reachability is judged anyway)
    refs_ok: bool = True
    reads: dict[str, list[str]] = field(default_factory=dict)     # what each layer reads
    deps: dict[str, list[str]] = field(default_factory=dict)      # ... and call args, by layer
    order: list[int] | None = None        # layer indices in graph order (check_shapes)
    limits: Any = None                    # specc.budget.Limits; None: the default budget
    shapes: dict = field(default_factory=dict)   # specc.shapes.output_shape's memo
    budget: Any = None                    # specc.budget.of_context's result, made once

    @cached_property
    def layers(self) -> dict[str, Any]:
        """Layer name -> layer."""
        return self.spec.layer_map()

    @cached_property
    def input_names(self) -> list[str]:
        return list(self.spec.inputs)

    @cached_property
    def layer_index(self) -> dict[str, int]:
        index: dict[str, int] = {}
        for i, layer in enumerate(self.spec.layers):
            index.setdefault(layer.name, i)
        return index

    @property
    def known(self) -> list[str]:
        return [*self.input_names, *self.layer_index]
