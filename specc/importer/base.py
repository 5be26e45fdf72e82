"""What the importer's stages share: the refusal, the result, the names of Keras's containers
and of the raw operations it rewrites."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final, Sequence

#: The hook that would cover a layer class specc does not know (issue 12's custom layers).
PLUGIN_HOOK: Final = ("register it with specc.register_layer in a plugin (--plugin MODULE or "
                      "the entry-point group specc.layers; README: \"Plugins: custom layers\")")
#: The longest config.json read from a .keras file (a model config is far smaller).
MAX_CONFIG_BYTES: Final = 64 * 1024 * 1024
#: Keys of a layer config that a spec never writes when they hold the value meaning "unused".
#: Serialized classes of raw `keras.ops` calls that the importer rewrites as layers.
OPERATIONS: Final = ("Add", "Subtract", "Multiply", "Maximum", "Minimum")
_CONTAINERS: Final = ("Functional", "Sequential", "Model")


class ImportRefused(Exception):
    """The model has parts a spec cannot express: one line each."""

    def __init__(self, lines: Sequence[str]) -> None:
        super().__init__("\n".join(lines))
        self.lines = list(lines)


@dataclass
class Imported:
    """The spec as data, and what the weights file needs."""

    data: dict[str, Any]
    #: spec layer name -> the Keras layer whose weights it takes (owners only, not shares)
    owners: dict[str, Any] = field(default_factory=dict)
    #: layers whose statistics are written in the spec (no weights file entry); none today
    in_spec: set[str] = field(default_factory=set)
    notes: list[str] = field(default_factory=list)
    #: a model layer's name -> its name in the spec, where folding changed it
    renamed: dict[str, str] = field(default_factory=dict)
    format: int = 1

    def weight_arrays(self) -> dict[str, list[Any]]:
        """{spec layer name: its arrays}, for specc.weights.write."""
        return {name: [w.numpy() if hasattr(w, "numpy") else w.value.numpy()
                       for w in layer.weights]
                for name, layer in self.owners.items()
                if layer.weights and name not in self.in_spec}

