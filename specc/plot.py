"""`specc plot`: the layer graph (keras.utils.model_to_dot: pydot + Graphviz), penalty taps marked.

Penalized layers are filled orange, the layers specc adds for penalties (taps, an activation
split off for pre_activation) yellow, and each penalized node's label names its clauses.
"""
from __future__ import annotations

import html
import shutil
from pathlib import Path
from typing import Any

from specc.graph import Graph

PENALIZED = "#f4a261"
ADDED = "#ffe8a3"


def missing_tools() -> str | None:
    """Why plotting cannot work here, naming what to install; None when it can."""
    try:
        import pydot  # noqa: F401
    except ImportError:
        return "plotting needs the Python package pydot: pip install pydot"
    if shutil.which("dot") is None:
        return ("plotting needs Graphviz's `dot` program, which is not installed: "
                "apt-get install graphviz (Debian/Ubuntu), brew install graphviz (macOS)")
    return None


def plot(model: Any, graph: Graph, path: str | Path) -> None:
    import keras

    from specc.artifacts import write_with

    marks: dict[str, tuple[str, list[str]]] = {}
    for term in graph.terms:
        marks.setdefault(graph.sources[term.name], (PENALIZED, []))[1].append(
            f"{term.name}: {term.kind} via {term.via}")
    for n in graph.nodes:
        if n.role != "layer":
            marks.setdefault(n.name, (ADDED, []))
    dot = keras.utils.model_to_dot(model, show_shapes=True, show_layer_names=True, dpi=96)
    for node in dot.get_nodes():
        label = node.get_label() or ""
        for name, (color, clauses) in marks.items():
            if f"<b>{name}</b> (" not in label:
                continue
            # Keras draws an HTML table with a black header cell: recolour it, add the clauses.
            label = label.replace('colspan="2" bgcolor="black"', f'colspan="2" bgcolor="{color}"', 1)
            label = label.replace('<font point-size="16" color="white">',
                                  '<font point-size="16" color="black">', 1)
            if clauses:
                rows = "".join(f'<tr><td colspan="2" bgcolor="white"><font point-size="13">'
                               f'penalty {html.escape(c)}</font></td></tr>' for c in clauses)
                label = label.replace("</table>>", rows + "</table>>", 1)
            node.set_label(label)
            break
    suffix = Path(path).suffix.lstrip(".") or "png"
    write_with(path, lambda tmp: dot.write(tmp, format=suffix))
