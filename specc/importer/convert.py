"""A Keras model -> Imported: the walk, the outputs and inputs, the loss, the notes."""
from __future__ import annotations

import re
from typing import Any, Final

from specc.importer.base import Imported, ImportRefused
from specc.importer.walk import GraphWalk

_NAME_OK: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")


def _loss(model: Any, outputs: list[str], layers: dict[str, dict[str, Any]],
          notes: list[str]) -> str:
    """The compiled loss when it is one catalog name, else one chosen from the outputs'
    activation (softmax: categorical crossentropy, sigmoid: binary, else mean squared error)."""
    from typing import get_args

    from specc.spec.model import LossName

    loss = getattr(model, "_specc_loss", None) or getattr(model, "loss", None)
    if isinstance(loss, str) and loss in get_args(LossName):
        notes.append(f"loss: {loss}, the model's compiled loss")
        return loss
    acts = {layers.get(o, {}).get("activation") for o in outputs}
    chosen = ("categorical_crossentropy" if acts == {"softmax"} else
              "binary_crossentropy" if acts == {"sigmoid"} else "mean_squared_error")
    notes.append(f"loss: {chosen}, chosen from the outputs' activation (the model carries no "
                 "compiled loss)")
    return chosen


def convert(model: Any, name: str | None = None, fold: bool = False) -> Imported:
    """A Keras functional model -> Imported (raises ImportRefused, listing every problem);
    `fold`: repeated sub-graphs as format 2 blocks (specc.importer.fold), when any."""
    import keras

    if not isinstance(model, keras.Model) or not hasattr(model, "_inbound_nodes") or \
            not getattr(model, "inputs", None) or not getattr(model, "outputs", None):
        raise ImportRefused([f"model {getattr(model, 'name', '?')!r} ({type(model).__name__}): "
                             "only functional and Sequential models have a graph to import "
                             "(a subclassed model's call() is Python code)"])
    w = GraphWalk()
    w.graph(model, top=True)
    if w.refused:
        raise ImportRefused(w.refused)
    outputs = _outputs(w, model)
    _drop_unread_inputs(w, outputs)
    by_name = {e["name"]: e for e in w.layers}
    data: dict[str, Any] = {
        "specc": w.result.format,
        "name": _model_name(name or model.name),
        "inputs": w.inputs,
        "layers": w.layers,
        "outputs": outputs,
        "loss": _loss(model, outputs, by_name, w.result.notes),
    }
    for note, names in w.grouped.items():
        shown = ", ".join(names[:3]) + (f", ... ({len(names)} in all)" if len(names) > 3 else "")
        w.result.notes.append(f"{note}: {shown}")
    w.result.data = data
    if fold:
        fold_imported(w.result)
    return w.result


def fold_imported(result: Imported) -> None:
    """Fold the spec of `result` in place (blocks, uses, repeats) when anything repeats."""
    from specc.importer.fold import fold, note

    folded = fold(result.data, result.owners)
    if folded is None:
        return
    data, rename = folded
    result.data = data
    result.format = 2
    result.owners = {rename.get(n, n): layer for n, layer in result.owners.items()}
    result.renamed = {n: path for n, path in rename.items() if n != path}
    result.notes.insert(0, note(data, rename))


def _outputs(w: GraphWalk, model: Any) -> list[str]:
    """The spec's outputs: a layer, or a port (format 2); an input or a tensor returned twice
    is passed through an Identity layer, which a spec can name as an output."""
    outputs: list[str] = []
    for t in model.outputs:
        ref = w.refs[id(t)]
        if ref in w.inputs or ref in outputs:
            name = w.name(f"{ref.replace('.', '_')}_output")
            w.layers.append({"name": name, "type": "Identity", "from": ref})
            w.result.notes.append(f"output {ref!r}: returned through the Identity layer "
                                  f"{name!r}")
            ref = name
        elif "." in ref:
            w.result.format = 2                    # a port as an output
        outputs.append(ref)
    return outputs


def _drop_unread_inputs(w: GraphWalk, outputs: list[str]) -> None:
    """An input no layer reads has no spec form (a spec's inputs are all read): left out,
    with a note (the spec's model then takes the other inputs)."""
    read: set[str] = set(outputs)

    def collect(value: Any) -> None:
        if isinstance(value, str):
            read.add(value)
        elif isinstance(value, (list, tuple)):
            for v in value:
                collect(v)
        elif isinstance(value, dict):
            for v in value.values():
                collect(v)

    for entry in w.layers:
        collect(entry.get("from"))
        collect(entry.get("call"))
    if w.layers and "from" not in w.layers[0] and len(w.inputs) == 1:
        read.update(w.inputs)
    for name in [n for n in w.inputs if n not in read]:
        del w.inputs[name]
        w.result.notes.append(f"input {name!r}: no layer reads it, so the spec leaves it out "
                              "(its model takes the other inputs)")


def _model_name(name: str) -> str:
    fixed = re.sub(r"[^A-Za-z0-9_]", "_", name)[:64] or "model"
    return fixed if _NAME_OK.fullmatch(fixed) else ("_" + fixed)[:64]

