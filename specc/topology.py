"""What each layer reads and the order of a spec's graph: below both the checks and lowering.
Also why a reference names no layer, input or port (the checks and the pair checks say it).

Plain functions of a validated (or being-checked) Spec; nothing here imports Keras, and
nothing here imports a later stage.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from specc.errors import quote

if TYPE_CHECKING:
    from specc.spec.model import Spec


def topological_order(spec: Spec, reads: dict[str, list[str]]) -> list[int]:
    """Spec layer indices so that every layer comes after what it reads (stable).

    The order of repeated passes over the pending layers in spec order, each pass taking every
    layer whose reads are done, computed in linear time: a layer's pass is the largest of its
    reads' passes, plus one for a read that comes after it in the spec (it is taken later in
    that pass); the order is by (pass, index)."""
    layers = spec.layers
    index: dict[str, int] = {}
    for i, layer in enumerate(layers):
        index.setdefault(layer.name, i)
    deps: list[list[int]] = []
    users: list[list[int]] = [[] for _ in layers]
    for i, layer in enumerate(layers):
        mine = []
        for r in dict.fromkeys(reads[layer.name]):
            if r in spec.inputs:
                continue
            if r not in index:           # unreachable after checks (references are resolved)
                raise AssertionError(f"unknown read {r!r} survived the checks")
            mine.append(index[r])
            users[index[r]].append(i)
        deps.append(mine)
    waiting = [len(d) for d in deps]
    ready = [i for i, w in enumerate(waiting) if w == 0]
    passes = [0] * len(layers)
    while ready:
        i = ready.pop()
        passes[i] = max([1, *(passes[j] + (j > i) for j in deps[i])])
        for u in users[i]:
            waiting[u] -= 1
            if waiting[u] == 0:
                ready.append(u)
    if any(waiting):                     # unreachable after checks (cycles are refused)
        raise AssertionError("cycle survived the checks")
    return sorted(range(len(layers)), key=lambda i: (passes[i], i))


def layer_reads(spec: Spec, i: int) -> list[str]:
    """What spec layer i reads: its `from:`, else the previous layer (for the first layer, the
    single input; [] when the spec has several inputs and the first layer does not say)."""
    src = spec.layers[i].from_
    if src is not None:
        return [src] if isinstance(src, str) else list(src)
    if i > 0:
        return [spec.layers[i - 1].name]
    return list(spec.inputs) if len(spec.inputs) == 1 else []


def resolve_reads(spec: Spec) -> dict[str, list[str]]:
    return {layer.name: layer_reads(spec, i) for i, layer in enumerate(spec.layers)}


def call_refs(layer: Any) -> list[tuple[str, int | None, str]]:
    """The tensors a layer takes as call arguments: (argument, index in its list, name)."""
    out: list[tuple[str, int | None, str]] = []
    for arg, value in (layer.call or {}).items():
        if isinstance(value, str):
            out.append((arg, None, value))
        elif isinstance(value, list):
            out.extend((arg, k, v) for k, v in enumerate(value))
    return out


def split_port(ref: str, layers: dict[str, Any]) -> tuple[str, str | None]:
    """`encoder.state_h` -> ("encoder", "state_h") when encoder has that port; a layer or
    input name -> (name, None)."""
    if ref in layers or "." not in ref:
        return ref, None
    base, port = ref.rsplit(".", 1)
    layer = layers.get(base)
    if layer is not None and port in layer.ports():
        return base, port
    return ref, None


def port_problem(ref: str, layers: dict) -> str | None:
    """Why `ref` names no layer, input or port; None if it does."""
    base, port = split_port(ref, layers)
    if port is not None or base in layers:
        return None
    if "." in ref:
        head, tail = ref.rsplit(".", 1)
        if head in layers:
            ports = layers[head].ports()
            have = (f"its outputs are: {', '.join(ports)}" if ports else
                    "it has one output" + ("; set `return_state: true` for its states"
                                           if hasattr(layers[head], "return_state") or
                                           layers[head].type == "Bidirectional" else ""))
            return f"layer {quote(head)} has no output {quote(tail)} ({have})"
    return ""


def resolve_deps(spec: Spec) -> dict[str, list[str]]:
    """Everything each layer needs computed first (inputs and call arguments), as the names
    of layers or inputs (ports mapped to their layer)."""
    layers = spec.layer_map()
    deps: dict[str, list[str]] = {}
    for i, layer in enumerate(spec.layers):
        refs = layer_reads(spec, i) + [name for _, _, name in call_refs(layer)]
        deps[layer.name] = list(dict.fromkeys(split_port(r, layers)[0] for r in refs))
    return deps
