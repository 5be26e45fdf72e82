"""A Keras model -> Imported: the walk, the outputs and inputs, the loss, the notes."""
from __future__ import annotations

import re
from typing import Any, Final

from specc.importer.base import Imported, ImportRefused
from specc.importer.clauses import ClauseReader, into_blocks
from specc.importer.compiled import compile_config, loss_sections, metric_section, \
    optimizer_section
from specc.importer.walk import GraphWalk

_NAME_OK: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")


def convert(model: Any, name: str | None = None, fold: bool = False) -> Imported:
    """A Keras functional model -> Imported (raises ImportRefused, listing every problem);
    `fold`: repeated sub-graphs as format 2 blocks (specc.importer.fold), when any."""
    import keras

    if not isinstance(model, keras.Model) or not hasattr(model, "_inbound_nodes") or \
            not getattr(model, "inputs", None) or not getattr(model, "outputs", None):
        raise ImportRefused([f"model {getattr(model, 'name', '?')!r} ({type(model).__name__}): "
                             "only functional and Sequential models have a graph to import "
                             "(a subclassed model's call() is Python code)"])
    reader = ClauseReader(model)
    w = GraphWalk(reader)
    w.graph(model, top=True)
    if w.refused:
        raise ImportRefused(w.refused)
    outputs = _outputs(w, model, len(reader.meta.get("declared", ())) or None)
    _drop_unread_inputs(w, outputs + [r for p in reader.pairs for r in p["layers"]])
    data: dict[str, Any] = {
        "specc": w.result.format,
        "name": _model_name(name or model.name),
        "inputs": w.inputs,
        "layers": w.layers,
        "outputs": outputs,
        "loss": "mean_squared_error",           # a placeholder while folding: see `finish`
    }
    for note, names in w.grouped.items():
        shown = ", ".join(names[:3]) + (f", ... ({len(names)} in all)" if len(names) > 3 else "")
        w.result.notes.append(f"{note}: {shown}")
    w.result.data = data
    by_name = {e["name"]: e for e in w.layers}
    rename = fold_imported(w.result) if fold else {}
    finish(w.result, model, reader, [by_name.get(o, {}) for o in outputs], rename)
    return w.result


def finish(result: Imported, model: Any, reader: ClauseReader,
           produced: list[dict[str, Any]], rename: dict[str, str]) -> None:
    """The sections after the layers, once folding has named them (`rename`: flat name ->
    its path): loss and loss weights, the penalty clauses specc's layers carry, optimizer,
    metrics (the compile config)."""
    data = result.data
    if any("." in c["name"] for c in reader.activity + reader.pairs) or \
            any("." in n for n in reader.weights):
        data["specc"] = result.format = 2        # a clause named by a path keeps its name
    config = compile_config(model)
    outputs = list(data["outputs"])
    keras_names = list(getattr(model, "output_names", None) or [])[:len(outputs)]
    keras_names += [f"output_{k}" for k in range(len(keras_names), len(outputs))]
    flat = dict(zip(outputs, produced))       # each output's flat entry (its activation)
    for key in ("loss", "loss_weights", "penalties", "pair_penalties", "weight_penalties",
                "optimizer", "metrics"):
        data.pop(key, None)
    data.update(loss_sections(config, reader.meta, outputs, keras_names, flat, result.notes))
    data.update(reader.sections(data, rename))
    if into_blocks(data):
        result.notes.append("the penalty clauses every instance of a block has alike are "
                            "written in the block")
    data.update(optimizer_section(config, result.notes))
    data.update(metric_section(config, outputs, keras_names, result.notes))
    told = [k for k in ("penalties", "pair_penalties", "weight_penalties") if k in data]
    if told:
        count = sum(len(data[k]) for k in told)
        result.notes.append(f"{count} penalty clause{'s' * (count != 1)} read back from "
                            f"specc's layers and regularizers ({', '.join(told)})")


def fold_imported(result: Imported) -> dict[str, str]:
    """Fold the spec of `result` in place (blocks, uses, repeats) when anything repeats;
    returns how the flat names were renamed ({} when nothing folded)."""
    from specc.importer.fold import fold, note

    folded = fold(result.data, result.owners)
    if folded is None:
        return {}
    data, rename = folded
    result.data = data
    result.format = 2
    result.owners = {rename.get(n, n): layer for n, layer in result.owners.items()}
    result.renamed = {**{n: rename.get(flat, flat) for n, flat in result.renamed.items()},
                      **{n: path for n, path in rename.items() if n != path}}
    result.notes.insert(0, note(data, rename))
    return rename


def _outputs(w: GraphWalk, model: Any, declared: int | None = None) -> list[str]:
    """The spec's outputs: a layer, or a port (format 2); an input or a tensor returned twice
    is passed through an Identity layer, which a spec can name as an output. `declared`: how
    many of the model's outputs are the spec's (the rest: specc's OutputTap outputs)."""
    outputs: list[str] = []
    for t in model.outputs[:declared]:
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

