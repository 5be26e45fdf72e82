"""The spec text, validated like any spec file, and its weights file, written atomically."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from specc.importer.base import Imported, ImportRefused
from specc.weights import finalized
from specc.yaml_writer import dump as to_yaml

def weights_path(spec_path: str | Path) -> Path:
    """`model.yaml` -> `model.weights.h5`, beside it."""
    p = Path(spec_path)
    return p.with_name(p.name.rsplit(".", 1)[0] + ".weights.h5")


def validated_text(imported: Imported, header: Sequence[str] = (),
                   file: str = "<import>", limits: Any = None) -> str:
    """The spec text, validated like any spec file (the size budget `limits`, a
    specc.budget.Limits -- --max-params -- applies too); a problem is an ImportRefused line."""
    from specc.errors import SpecError
    from specc.validation import loads

    text = to_yaml(imported.data, header)
    try:
        loads(text, file, limits=limits)
    except SpecError as exc:
        raise ImportRefused([f"the spec would not validate: {d.message}"
                             for d in exc.diagnostics]) from None
    return text


def write(imported: Imported, output: str | Path, header: Sequence[str] = (),
          with_weights: bool = False, limits: Any = None) -> list[Path]:
    """Validate the spec text, then write it (and its weights) atomically; returns the paths
    written. Nothing is written when anything fails."""
    from specc.artifacts import write_with
    from specc.weights import write as write_weights

    data = dict(imported.data)
    text = validated_text(imported, header, str(output), limits)
    if not with_weights:
        write_with(output, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))
        return [Path(output)]
    target = weights_path(output)
    data["weights"] = target.name
    text = to_yaml(data, header)
    arrays = imported.weight_arrays()

    def write_spec(tmp: str) -> None:
        Path(tmp).write_text(text, encoding="utf-8")
        write_with(target, lambda tmp_w: write_weights(tmp_w, arrays))   # renamed first

    write_with(output, write_spec)
    return [Path(output), target]


def assign(built: Any, imported: Imported) -> None:
    """Give a model built from the imported spec the source model's weights (in memory)."""
    for name, arrays in imported.weight_arrays().items():
        built.get_layer(name).set_weights(arrays)
        finalized(built.get_layer(name))

