"""Semantic checks on a validated spec: references, cycles, reachability, targets, names.

Each check is a small function `(ctx) -> Iterator[Problem]`; CHECKS runs them in order and
every problem is reported (located through the document's span table).
"""
from __future__ import annotations

import fnmatch
from typing import Any, Callable, Final, Iterator

from specc import catalog
from specc.catalog import BOOLEAN_CALL_ARGS
from specc.context import Context, Problem
from specc.errors import a_, did_you_mean, quote
from specc.pairs import check_pair_shapes, check_pair_targets, pair_layers
from specc.topology import call_refs, layer_reads, port_problem, split_port, topological_order
from specc.rules import RULES
from specc.spec.model import Spec


def _names(names: list[str], limit: int = 12) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f", ... ({len(names)} in all)" if len(names) > limit else "")


def _unknown(kind: str, name: str, known: list[str]) -> str:
    return f"unknown {kind} {quote(name)}{did_you_mean(name, known)} (known: {_names(known)})"


def check_shares(ctx: Context) -> Iterator[Problem]:
    """Format 2 `share:` entries become copies of the layer they call (its type and
    arguments, `_shares` naming the layer that owns the weights)."""
    from specc.spec.base import SharedCall

    layers = ctx.spec.layers
    calls = [i for i, layer in enumerate(layers) if type(layer) is SharedCall]
    if not calls:
        return
    index = {layer.name: i for i, layer in enumerate(layers)}
    for i in calls:
        layer = layers[i]
        seen, target = {layer.name}, layer
        while isinstance(target, SharedCall) and target.share in index \
                and target.share not in seen:
            seen.add(target.share)
            target = layers[index[target.share]]
        if isinstance(target, SharedCall):
            ctx.graph_ok = ctx.refs_ok = False
            if target.share in seen:
                yield (("layers", i, "share"), f"{quote(layer.name)} shares itself through "
                       f"{' -> '.join(seen)}", "cycle")
            else:
                yield (("layers", i, "share"), _unknown("layer", target.share, list(index))
                       + " to share", "unknown-ref")
            continue
        call = target.model_copy(update={"name": layer.name, "from_": layer.from_,
                                         "call": layer.call})
        object.__setattr__(call, "_shares", target.name)     # see LayerSpec._shares
        layers[i] = call


def check_duplicate_names(ctx: Context) -> Iterator[Problem]:
    seen: dict[str, str] = {name: "an input" for name in ctx.input_names}
    for i, layer in enumerate(ctx.spec.layers):
        if layer.name in seen:
            ctx.graph_ok = ctx.refs_ok = False
            yield (("layers", i, "name"),
                   f"duplicate name {quote(layer.name)}: already used by {seen[layer.name]}",
                   "duplicate-name")
        else:
            seen[layer.name] = f"layers[{i}]"
    clauses: dict[str, str] = {}
    for section in ("penalties", "weight_penalties", "pair_penalties"):
        for i, clause in enumerate(getattr(ctx.spec, section)):
            if clause.name in clauses:
                yield ((section, i, "name"),
                       f"duplicate clause name {quote(clause.name)}: already used in "
                       f"{clauses[clause.name]}", "duplicate-name")
            else:
                clauses[clause.name] = f"{section}[{i}]"


def check_references(ctx: Context) -> Iterator[Problem]:
    """Resolve every layer's inputs and call arguments; unknown names, self-reads, arity."""
    spec = ctx.spec
    known = ctx.known
    layers = spec.layer_map()
    for i, layer in enumerate(spec.layers):
        src = layer.from_
        reads = layer_reads(spec, i)
        if src is None and not reads:
            ctx.graph_ok = False
            yield (("layers", i),
                   f"layer {quote(layer.name)} has no `from:` and the spec has several "
                   f"inputs ({_names(ctx.input_names)}): say which one it reads",
                   "missing-from")
        refs = [(("layers", i, "from") if isinstance(src, str) else ("layers", i, "from", k),
                 ref) for k, ref in enumerate(reads)] if src is not None else []
        refs += [(("layers", i, "call", arg) + (() if k is None else (k,)), ref)
                 for arg, k, ref in call_refs(layer)]
        for where, ref in refs:
            base = split_port(ref, layers)[0]
            if base == layer.name:
                ctx.graph_ok = ctx.refs_ok = False
                yield where, f"layer {quote(layer.name)} reads itself", "cycle"
            elif base not in ctx.layer_index and base not in spec.inputs:
                ctx.graph_ok = ctx.refs_ok = False
                why = port_problem(ref, layers)
                yield where, why or _unknown("input or layer", ref, known), "unknown-ref"
        yield from _check_call_args(ctx, i, layer)
        n = len(reads)
        if reads and not (layer.min_inputs <= n <= layer.max_inputs):
            want = (f"exactly {layer.min_inputs}" if layer.min_inputs == layer.max_inputs
                    else f"at least {layer.min_inputs}" if n < layer.min_inputs
                    else f"at most {layer.max_inputs}")
            ctx.graph_ok = False
            yield (("layers", i, "from") if src is not None else ("layers", i),
                   f"{layer.type} layer {quote(layer.name)} reads {want} "
                   f"input{'s' if layer.max_inputs > 1 else ''}, got {n}"
                   + _initial_state_hint(ctx, layer, reads), "arity")
        ctx.reads[layer.name] = reads
        ctx.deps[layer.name] = list(dict.fromkeys(
            split_port(r, layers)[0] for r in [*reads, *(r for _, _, r in call_refs(layer))]))


def _initial_state_hint(ctx: Context, layer, reads: list[str]) -> str:
    """For a recurrent layer given its initial states in `from:`: where they go instead."""
    if "initial_state" not in getattr(catalog.get(layer.type), "call_args", ()) or len(reads) < 2:
        return ""
    states = reads[1:]
    shown = states[0] if len(states) == 1 else f"[{', '.join(states)}]"
    version = ("; `call:` is format 2: start the file with `specc: 2`"
               if ctx.spec.specc == 1 else "")
    return (f"; initial states are not inputs: write `from: {reads[0]}` and "
            f"`call: {{initial_state: {shown}}}`{version}")


def _check_call_args(ctx: Context, i: int, layer) -> Iterator[Problem]:
    allowed = getattr(catalog.get(layer.type), "call_args", ())      # its definition's
    for arg, value in (layer.call or {}).items():
        where = ("layers", i, "call", arg)
        if arg not in allowed:
            yield (where, f"{a_(layer.type)} layer takes no call argument {quote(arg)}"
                   + (f" (it takes: {', '.join(allowed)})" if allowed else ""), "call-arg")
        elif (arg in BOOLEAN_CALL_ARGS) != isinstance(value, bool):
            yield (where, f"call argument {quote(arg)} is "
                   + ("true or false" if arg in BOOLEAN_CALL_ARGS else "a tensor name"),
                   "call-arg")
        elif arg == "initial_state":
            n = len(value) if isinstance(value, list) else 1
            want = len(layer.state_ports) if layer.type != "Bidirectional" else \
                2 * len(layer.layer.state_ports)
            if n != want:
                yield (where, f"{layer.type} {quote(layer.name)} takes {want} initial state "
                       f"tensor{'s' * (want != 1)}, got {n}", "call-arg")


def check_outputs(ctx: Context) -> Iterator[Problem]:
    seen: set[str] = set()
    layers = list(ctx.layer_index)
    for i, out in enumerate(ctx.spec.outputs):
        if out in seen:
            yield ("outputs", i), f"output {quote(out)} is listed twice", "duplicate-name"
        elif out in ctx.spec.inputs:
            yield (("outputs", i), f"output {quote(out)} is an input; outputs are layer names",
                   "bad-output")
        elif split_port(out, ctx.spec.layer_map())[0] not in ctx.layer_index:
            ctx.graph_ok = ctx.refs_ok = False
            why = port_problem(out, ctx.spec.layer_map())
            yield ("outputs", i), why or _unknown("layer", out, layers), "unknown-ref"
        seen.add(out)


def check_cycles(ctx: Context) -> Iterator[Problem]:
    if not ctx.graph_ok:
        return
    state: dict[str, int] = {}  # 1 = on the stack, 2 = done
    for start in ctx.layer_index:
        if start in state:
            continue
        stack = [(start, iter(ctx.deps.get(start, ())))]
        state[start] = 1
        while stack:
            node, it = stack[-1]
            nxt = next(it, None)
            if nxt is None:
                state[node] = 2
                stack.pop()
            elif nxt in ctx.layer_index:
                if state.get(nxt) == 1:
                    cycle = [n for n, _ in stack][[n for n, _ in stack].index(nxt):]
                    ctx.graph_ok = ctx.refs_ok = False
                    yield (("layers", ctx.layer_index[node], "from"),
                           "cycle: " + " -> ".join([*cycle, nxt]) + " (a layer cannot read "
                           "its own result)", "cycle")
                    return
                if nxt not in state:
                    state[nxt] = 1
                    stack.append((nxt, iter(ctx.deps.get(nxt, ()))))


def check_reachability(ctx: Context) -> Iterator[Problem]:
    if not ctx.refs_ok:
        return
    needed: set[str] = set()
    layers = ctx.spec.layer_map()
    todo = [split_port(o, layers)[0] for o in ctx.spec.outputs]
    # a pair penalty reads its layers: a teacher branch that only feeds one is used
    todo += [split_port(r, layers)[0] for r in pair_layers(ctx.spec)]
    while todo:
        name = todo.pop()
        if name in needed:
            continue
        needed.add(name)
        todo.extend(ctx.deps.get(name, ()))
        if name in layers and layers[name]._shares:    # a call needs its layer's weights
            todo.append(layers[name]._shares)
    for i, layer in enumerate(ctx.spec.layers):
        if layer.name not in needed:
            yield (("layers", i, "name"),
                   f"layer {quote(layer.name)} does not reach any output "
                   f"(outputs are: {_names(list(ctx.spec.outputs))})", "unreachable")
    for name in ctx.input_names:
        if name in needed:
            continue
        readers = [layer.name for layer in ctx.spec.layers if name in ctx.deps.get(layer.name, ())]
        yield ("inputs", name), (
            f"input {quote(name)} is read only by layers that reach no output "
            f"({_names(readers)})" if readers else
            f"input {quote(name)} is not read by any layer"), "unused-input"


def check_penalty_targets(ctx: Context) -> Iterator[Problem]:
    layers = ctx.spec.layer_map()
    for i, clause in enumerate(ctx.spec.penalties):
        base, port = split_port(clause.layer, layers)
        target = layers.get(base)
        if target is None:
            why = port_problem(clause.layer, layers)
            if why:
                yield ("penalties", i, "layer"), f"penalty {quote(clause.name)}: {why}", \
                    "unknown-ref"
                continue
            hint = (" (it is an input; penalties attach to layers)" if clause.layer in ctx.spec.inputs
                    else "")
            msg = (f"penalty {quote(clause.name)} targets {_unknown('layer', clause.layer, list(layers))}"
                   if not hint else f"penalty {quote(clause.name)} targets {quote(clause.layer)}{hint}")
            yield ("penalties", i, "layer"), msg, "unknown-ref"
        elif clause.at == "pre_activation" and (port or not target.splittable_activation):
            yield (("penalties", i, "at"),
                   f"`at: pre_activation` needs a layer with a separable activation (Dense, "
                   f"convolutions); {quote(target.name)} is a {target.type}", "no-activation")


def _output_keyed(ctx: Context, section: str, mapping: object) -> Iterator[Problem]:
    if not isinstance(mapping, dict):
        return
    outputs = list(ctx.spec.outputs)
    for key in mapping:
        if key not in outputs:
            yield ((section, key), f"{section} key {quote(key)} is not an output"
                   f"{did_you_mean(key, outputs)} (outputs are: {_names(outputs)})",
                   "unknown-output")


def check_losses(ctx: Context) -> Iterator[Problem]:
    spec = ctx.spec
    yield from _output_keyed(ctx, "loss", spec.loss)
    if isinstance(spec.loss, dict):
        for out in spec.outputs:
            if out not in spec.loss:
                yield ("loss",), f"output {quote(out)} has no loss in `loss:`", "missing-loss"
    yield from _output_keyed(ctx, "loss_weights", spec.loss_weights)
    if isinstance(spec.loss_weights, list) and len(spec.loss_weights) != len(spec.outputs):
        yield (("loss_weights",), f"loss_weights lists {len(spec.loss_weights)} weights for "
               f"{len(spec.outputs)} outputs", "loss-weights")
    yield from _output_keyed(ctx, "metrics", spec.metrics)


def log_keys(spec: Spec) -> dict[str, str]:
    """The keys Keras itself puts in the logs, with what each is."""
    keys = {"loss": "the total loss", "task_loss": "the loss without penalties"}
    multi = len(spec.outputs) > 1
    for out in spec.outputs:
        keys[out] = "an output"
        keys[f"{out}_loss"] = f"the loss of output {out!r}"
    metrics = spec.metrics
    per_output = metrics if isinstance(metrics, dict) else {o: metrics for o in spec.outputs}
    for out, names in per_output.items():
        for m in names:
            m = m if isinstance(m, str) else m.type      # a plugin's metric: by its name
            keys[f"{out}_{m}" if multi else m] = "a metric"
    for out, weight in zip(spec.outputs, spec.output_weights()):
        if isinstance(weight, dict):
            keys[f"{out}_loss_weight"] = f"the scheduled loss weight of output {out!r}"
    return keys


def rate_keys(clause: object) -> list[tuple[str, str]]:
    """(field, log key) of each scheduled rate of a clause: `<clause>_rate` (`_l1`, `_l2`)."""
    fields = clause.__dict__
    return [(k, f"{clause.name}_{k}") for k in ("rate", "l1", "l2")  # type: ignore[attr-defined]
            if hasattr(fields.get(k), "schedule")]


def check_clause_names(ctx: Context) -> Iterator[Problem]:
    keys = log_keys(ctx.spec)
    clauses = [(section, i, clause)
               for section in ("penalties", "weight_penalties", "pair_penalties")
               for i, clause in enumerate(getattr(ctx.spec, section))]
    rates = {key: (field, clause.name) for _, _, clause in clauses
             for field, key in rate_keys(clause)}
    for section, i, clause in clauses:
        if clause.name in keys:
            yield ((section, i, "name"),
                   f"clause name {quote(clause.name)} collides with {keys[clause.name]} in "
                   "the training logs; pick another name", "name-collision")
        elif clause.name.startswith("val_"):
            yield ((section, i, "name"),
                   f"clause name {quote(clause.name)} starts with 'val_', which Keras "
                   "reserves for validation logs", "name-collision")
        elif clause.name in rates:
            field, owner = rates[clause.name]
            yield ((section, i, "name"),
                   f"clause name {quote(clause.name)} collides with the logged value of the "
                   f"scheduled {field} of clause {quote(owner)} in the training logs; pick "
                   "another name", "name-collision")
        for field, key in rate_keys(clause):
            if key in keys:
                yield ((section, i, field),
                       f"the scheduled {field} of clause {quote(clause.name)} is logged as "
                       f"{quote(key)}, which is also {keys[key]}; rename the clause",
                       "name-collision")


def check_weight_globs(ctx: Context) -> Iterator[Problem]:
    layers = ctx.spec.layers
    for i, clause in enumerate(ctx.spec.weight_penalties):
        for k, pattern in enumerate(clause.patterns):
            path = ("weight_penalties", i, "layers") + ((k,) if isinstance(clause.layers, list) else ())
            matched = [l for l in layers if fnmatch.fnmatchcase(l.name, pattern)]
            if not matched:
                yield path, (f"{quote(pattern)} matches no layer"
                             f"{did_you_mean(pattern, [l.name for l in layers])}"), "no-match"
                continue
            for kind in clause.weight_kinds:
                if not any(kind in l.weight_kinds() for l in matched):
                    have = [l.name for l in layers if kind in l.weight_kinds()]
                    yield path, (f"{quote(pattern)} matches no layer with a {kind} "
                                 f"(layers with one: {_names(have) or 'none'})"), "no-match"


def check_freeze(ctx: Context) -> Iterator[Problem]:
    """`freeze:` globs: every layer with weights they match gets `trainable: false` (the
    rules after this one see it, like a frozen layer written out)."""
    layers = ctx.spec.layers
    frozen = [l for l in layers if "trainable" in type(l).model_fields and l._shares is None]
    for k, pattern in enumerate(ctx.spec.freeze or ()):
        matched = [l for l in frozen if fnmatch.fnmatchcase(l.name, pattern)]
        if not matched:
            weightless = [l.name for l in layers if fnmatch.fnmatchcase(l.name, pattern)]
            hint = (f" (only layers without weights: {_names(weightless)})" if weightless else
                    did_you_mean(pattern, [l.name for l in frozen]))
            yield ("freeze", k), (f"{quote(pattern)} matches no layer with weights{hint} "
                                  f"(layers with weights: {_names([l.name for l in frozen]) or 'none'})"
                                  ), "no-match"
        for layer in matched:
            layer.trainable = False


def check_shapes(ctx: Context) -> Iterator[Problem]:
    """Shapes Keras would certainly reject, in graph order (specc.shapes has the rules)."""
    if not ctx.graph_ok:
        return
    from specc.shapes import ShapeProblem, output_shape

    known: dict[str, tuple | None] = {n: tuple(s.shape) for n, s in ctx.spec.inputs.items()}
    built_for: dict[str, list] = {}          # a shared layer: the input shapes of its first call
    ctx.order = topological_order(ctx.spec, ctx.deps)
    for i in ctx.order:
        layer = ctx.spec.layers[i]
        shapes = [known.get(r) for r in ctx.reads[layer.name]]
        known[layer.name] = None
        if any(s is None for s in shapes):
            continue
        owner = layer._shares or layer.name
        first = built_for.setdefault(owner, shapes)
        if first is not shapes and not _same_shapes(first, shapes):
            yield (("layers", i), f"{quote(layer.name)} calls the shared layer {quote(owner)} "
                   f"on shape {_shapes(shapes)}, but its weights are made for "
                   f"{_shapes(first)}", "shape")
            continue
        try:
            known[layer.name] = output_shape(layer, shapes, ctx.shapes)
        except ShapeProblem as problem:
            yield (("layers", i), f"layer {quote(layer.name)} ({layer.type}): {problem}",
                   "shape")
            continue
        yield from _initial_state_shapes(layer, i, known)
        for port in layer.ports():               # final states: (units,) each
            units = layer.layer.units if layer.type == "Bidirectional" else layer.units
            known[f"{layer.name}.{port}"] = (units,)


def _initial_state_shapes(layer, i: int, known: dict) -> Iterator[Problem]:
    """Each initial state of a recurrent layer is one vector of its size (units)."""
    states = (layer.call or {}).get("initial_state")
    if states is None:
        return
    units = layer.layer.units if layer.type == "Bidirectional" else getattr(layer, "units", None)
    for k, ref in enumerate([states] if isinstance(states, str) else states):
        shape = known.get(ref)
        if shape is not None and units is not None and tuple(shape) != (units,):
            where = ("layers", i, "call", "initial_state") + (() if isinstance(states, str)
                                                               else (k,))
            yield (where, f"{quote(ref)} has shape {_shapes([shape])}, but the initial states "
                   f"of {quote(layer.name)} are vectors of its {units} units", "shape")


def _same_shapes(a: list, b: list) -> bool:
    return len(a) == len(b) and all(
        len(x) == len(y) and all(p is None or q is None or p == q for p, q in zip(x, y))
        for x, y in zip(a, b))


def _shapes(shapes: list) -> str:
    text = ", ".join("(" + ", ".join("None" if d is None else str(d) for d in s) + ")"
                     for s in shapes)
    return text if len(shapes) == 1 else f"[{text}]"


CHECKS: Final[tuple[Callable[[Context], Iterator[Problem]], ...]] = (
    check_shares,
    check_duplicate_names,
    check_references,
    check_outputs,
    check_cycles,
    check_reachability,
    check_penalty_targets,
    check_pair_targets,
    check_losses,
    check_clause_names,
    check_weight_globs,
    check_freeze,
    check_shapes,
    *RULES,             # specc.rules: dtypes, ranks, axes, losses/metrics, the budget
    check_pair_shapes,
)


def run_checks(spec: Spec, limits: Any = None) -> list[Problem]:
    """Every problem of a validated spec; `limits` (specc.budget.Limits) is the size budget."""
    from specc.spec.base import SharedCall

    ctx = Context(spec, limits=limits)
    found = list(check_shares(ctx))
    if any(type(layer) is SharedCall for layer in spec.layers):
        # A share that names no layer: its type and arguments are unknown, so only the
        # checks of names and references apply (the others read every layer's arguments).
        return found + [p for check in CROSS_CHECKS if check is not check_shares
                        for p in check(ctx)]
    return found + [p for check in CHECKS if check is not check_shares for p in check(ctx)]


#: The checks that need names and references only: they also run on a spec whose layers'
#: own arguments have errors (`partial_spec`), so that one run reports every problem.
CROSS_CHECKS: Final = (check_shares, check_duplicate_names, check_references, check_outputs,
                       check_cycles, check_penalty_targets, check_pair_targets,
                       check_clause_names)


def run_cross_checks(spec: Spec) -> list[Problem]:
    ctx = Context(spec)
    return [p for check in CROSS_CHECKS for p in check(ctx)]
