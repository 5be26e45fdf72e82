"""The loss composition of a lowered model, as text (`specc build`, `specc explain`).

Backend-free: it reads the Graph and the catalog's formulas, never Keras.
"""
from __future__ import annotations

from typing import Any

from specc import penalties as catalog
from specc.graph import Graph


def _weight_label(arg: str) -> str:
    """The weight a regularizer argument hits: kernel_regularizer -> kernel, ..."""
    name = arg.removesuffix("_regularizer")
    return f"{name}_kernel" if name in ("recurrent", "depthwise", "pointwise") else name


def _num(x: Any) -> str:
    from specc.schedules import formula, is_schedule

    if is_schedule(x):                  # a rate that follows the optimizer step t
        return f"[{formula(x)}]"
    return f"{x:g}" if isinstance(x, float) else str(x)


def _params(params: dict[str, Any]) -> str:
    shown = {k: v for k, v in params.items() if not (k == "reduction" and v == "mean")}
    return ", ".join(f"{k}={_num(v)}" for k, v in shown.items())


def _loss_name(loss: Any) -> str:
    if isinstance(loss, str):
        return loss
    args = loss.model_dump(exclude_none=True, exclude={"type"})
    return f"{loss.type}({', '.join(f'{k}={_num(v)}' for k, v in args.items())})"


def composition(graph: Graph) -> list[str]:
    """One line per term of `loss = task_loss + Σ clauses`, with where and how each attaches."""
    spec = graph.spec
    names = graph.term_names
    lines = ["loss = " + " + ".join(["task_loss", *names]) + ("" if names else " (no penalties)")]
    task = " + ".join(f"{_num(w)} · {_loss_name(spec.loss_for(o))}({o})"
                      for o, w in zip(graph.outputs, spec.output_weights()))
    lines.append(f"  task_loss = {task}")
    for t in graph.terms:
        entry = catalog.lookup(t.kind)
        formula = entry.formula if entry else "?"
        if t.params.get("reduction") == "sum":
            formula = formula.replace("mean_i", "Σ_i")
        if t.params.get("axis") is not None:
            formula += (f"; rows i = the batch × the axes not in axis={t.params['axis']}, "
                        "features j = those in it")
        where = "before its activation" if t.at == "pre_activation" else "output"
        lines.append(f"  {t.name} = {t.kind}({_params(t.params)}) on {t.layer} [{where}], "
                     f"via {t.via}: {formula}")
    for p in graph.pair_terms:
        s, t = p.layers
        params = {k: v for k, v in p.params.items() if k != "stop_gradient"}
        grad = ("no gradient through t" if p.params.get("stop_gradient", True)
                else "gradient through both")
        lines.append(f"  {p.name} = {p.kind}({_params(params)}) of s = {s}, t = {t} [{grad}], "
                     f"via {p.via}: {catalog.PAIR_CATALOG[p.kind].formula}")
    for w in graph.weight_terms:
        targets = ", ".join(f"{node}.{_weight_label(arg)}" for node, arg in w.targets)
        lines.append(f"  {w.name} = weight {w.kind}({_params(w.params)}) on {targets}: "
                     f"{catalog.WEIGHT_FORMULAS[w.kind]}")
    if any(_scheduled(t.params) for t in [*graph.terms, *graph.pair_terms,
                                          *graph.weight_terms]) or \
            _scheduled(dict(enumerate(spec.output_weights()))):
        lines.append("  t = the optimizer step (optimizer.iterations: updates already applied, "
                     "0 during the first); clip(x, 0, 1) = min(max(x, 0), 1)")
    return lines


def _scheduled(params: dict[str, Any]) -> bool:
    from specc.schedules import is_schedule

    return any(is_schedule(v) for v in params.values())


def weight_targets(graph: Graph) -> list[str]:
    """Each weight clause's globs expanded to the layers and weights they hit."""
    lines = []
    spec_layers = {layer.name: layer for layer in graph.spec.layers}
    for clause, wt in zip(graph.spec.weight_penalties, graph.weight_terms):
        lines.append(f"{wt.name}: layers {', '.join(map(repr, clause.patterns))}, "
                     f"weights {', '.join(clause.weight_kinds)}")
        for node, arg in wt.targets:
            kind = spec_layers[node].type
            lines.append(f"  {node} ({kind}): {_weight_label(arg)}")
    return lines


def explain(graph: Graph, limits: Any = None) -> str:
    """The whole objective, then where every penalty attaches (`specc explain`); the sizes
    against `limits` (specc.budget.Limits; None: the default budget)."""
    out = [f"model {graph.name!r}: {len(graph.spec.layers)} spec layers, "
           f"{len(graph.nodes) - len(graph.spec.layers)} added by specc", "",
           *composition(graph)]
    added = [n for n in graph.nodes if n.role != "layer"]
    if added:
        out += ["", "layers specc adds:"]
        for n in added:
            what = {"activation": "the activation split off for pre_activation",
                    "activity": "identity carrying the activity_regularizer of "
                                + ", ".join(t.name for t in n.activity),
                    "tap": "add_loss of " + ", ".join(t.name for t in n.taps),
                    "output_tap": "extra output for " + ", ".join(t.name for t in n.taps),
                    "pair_tap": "add_loss of " + ", ".join(t.name for t in n.taps)
                                + " from " + " and ".join(n.reads[1:]),
                    "pair_output_tap": "extra output for " + ", ".join(t.name for t in n.taps)
                                       + " (both tensors, stacked on axis 1)"}
            where = (f"after {n.reads[0]}" if n.role != "pair_output_tap"
                     else f"reading {n.reads[0]} and {n.reads[1]}")
            out.append(f"  {n.name} ({n.op}) {where}: {what[n.role]}")
    targets = weight_targets(graph)
    if targets:
        out += ["", "weight penalties hit:", *("  " + line for line in targets)]
    out += ["", *sizes(graph, limits)]
    from specc.rules import spec_warnings

    warned = spec_warnings(graph.spec)
    if warned:
        out += ["", "warnings:", *(f"  {d.span.line}:{d.span.column}: {d.message}  [{d.code}]"
                                   for d in warned)]
    return "\n".join(out)


def _shape(shape: tuple | None) -> str:
    if shape is None:
        return "?"
    return "(" + ", ".join(["batch", *("None" if d is None else str(d) for d in shape)]) + ")"


def sizes(graph: Graph, limits: Any = None) -> list[str]:
    """Per spec layer: output shape and parameters; the total and the largest tensor per
    sample, against the budget (specc.budget; computed without Keras)."""
    from specc.budget import Limits, count, measure_spec

    budget = measure_spec(graph.spec)
    lim = limits or Limits()
    rows = [(s.name, s.type, _shape(s.shape),
             "?" if s.params is None else f"shared with {s.shared}" if s.shared else
             count(s.params)) for s in budget.sizes]
    widths = [max(len(r[k]) for r in rows + [("layer", "type", "output shape", "params")])
              for k in range(4)]
    line = "  {:<{}}  {:<{}}  {:<{}}  {:>{}}"
    out = ["sizes (static, per sample):",
           line.format("layer", widths[0], "type", widths[1], "output shape", widths[2],
                       "params", widths[3])]
    out += [line.format(a, widths[0], b, widths[1], c, widths[2], d, widths[3])
            for a, b, c, d in rows]
    unknown = f" (and unknown for {', '.join(budget.unknown)})" if budget.unknown else ""
    out.append(f"  total params: {count(budget.total_params)}{unknown}; budget "
               f"{count(lim.max_params)}")
    big = budget.largest
    if big is not None:
        least = "" if big.exact else "at least "
        out.append(f"  largest tensor: {least}{count(big.largest)} values per sample "
                   f"({big.name}, {big.what}); budget {count(lim.max_activation)}")
    return out
