"""Lowering: a validated Spec -> a backend-free plan of Keras layers, taps and loss terms.

Nothing here imports Keras. The plan decides every name the model will have (so summaries are
the same in every process) and where each penalty clause attaches for its strategy:

- `activity_regularizer`: on the node that computes the tensor (the spec layer, or the
  Activation split off it for `at: output` when the layer is split);
- `add_loss`: an identity PenaltyTap node placed in line after that tensor;
- `output`: an identity OutputTap node that becomes an extra model output.
"""
from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Final, Literal

from specc import penalties as catalog
from specc.errors import Diagnostic, Span, SpecError, quote
from specc.penalties import Via
from specc.spec.model import Spec
from specc.topology import resolve_deps, resolve_reads, split_port, topological_order

Position = Literal["pre_activation", "output"]

#: Names of the layers the compiler adds, derived from the spec layer's name.
SUFFIX: Final = {
    "activation": "{layer}_activation",
    "activity": "{layer}_activity",
    ("add_loss", "output"): "{layer}_penalty",
    ("add_loss", "pre_activation"): "{layer}_preact_penalty",
    ("output", "output"): "{layer}_penalty_out",
    ("output", "pre_activation"): "{layer}_preact_penalty_out",
    # pair clauses: from the layer of s (of t when s is an input) and the clause's name
    "pair": "{layer}_{clause}_pair",
    "pair_out": "{layer}_{clause}_pair_out",
}


@dataclass(frozen=True)
class Term:
    """One activation clause, lowered: what the runtime needs to compute it."""

    name: str
    kind: str
    params: dict[str, Any]
    via: Via
    layer: str
    at: Position
    batch_statistic: bool
    #: whether the term leaves masked steps out (the clause's `mask`, by default per format)
    masked: bool = True

    def config(self) -> dict[str, Any]:
        out = {"name": self.name, "kind": self.kind, "params": dict(self.params)}
        if not self.masked:   # only then: configs of clauses that read masks stay as they were
            out["mask"] = False
        return out


@dataclass(frozen=True)
class PairTerm:
    """One pair clause, lowered: the term of two tensors s, t (specc.penalties.PAIR_CATALOG)."""

    name: str
    kind: str
    params: dict[str, Any]
    via: Via
    layers: tuple[str, str]

    def config(self) -> dict[str, Any]:
        return {"name": self.name, "kind": self.kind, "params": dict(self.params), "pair": True}


@dataclass(frozen=True)
class WeightTerm:
    name: str
    kind: str
    params: dict[str, Any]
    targets: tuple[tuple[str, str], ...]   # (node name, constructor argument)

    def config(self) -> dict[str, Any]:
        return {"name": self.name, "kind": self.kind, "params": dict(self.params)}


@dataclass(frozen=True)
class Node:
    """One Keras layer to emit."""

    name: str
    op: str                                   # Keras class name, or PenaltyTap / OutputTap
    kwargs: dict[str, Any]
    reads: tuple[str, ...]
    origin: int                               # index of the spec layer it comes from
    role: Literal["layer", "activation", "activity", "tap", "output_tap", "pair_tap",
                  "pair_output_tap"] = "layer"
    activity: tuple[Term, ...] = ()           # clauses on this node's activity_regularizer
    taps: tuple[Any, ...] = ()                # clauses of a PenaltyTap / OutputTap (Term),
    #                                           of a PairTap / PairOutputTap (PairTerm)
    weight_regs: dict[str, tuple[WeightTerm, ...]] = field(default_factory=dict)
    shares: str | None = None                 # call the Keras layer of this node instead
    call: dict[str, Any] = field(default_factory=dict)   # call argument -> tensor key(s)
    ports: tuple[str, ...] = ()               # extra outputs, as tensors `<name>.<port>`


@dataclass(frozen=True)
class Compile:
    """What `model.compile` and the weights file get, lowered from the spec: emission reads
    this, never the Spec. Plain data (the spec's loss and optimizer entries as validated)."""

    losses: tuple[Any, ...]                  # one per declared output, in order
    output_weights: tuple[Any, ...]          # one per output: a float or a schedule's data
    weights_given: bool                      # the spec wrote `loss_weights:`
    metrics: tuple[tuple[str, ...], ...]     # one tuple of metric names per output
    metrics_by_output: bool                  # the spec wrote a mapping output -> metrics
    optimizer: Any
    weights_file: Path | None = None         # `weights:`, resolved against the spec's folder


@dataclass(frozen=True)
class Graph:
    name: str
    seed: int | None
    inputs: tuple[tuple[str, tuple[int | None, ...], str], ...]
    nodes: tuple[Node, ...]
    outputs: tuple[str, ...]                  # spec output names, in order
    output_nodes: tuple[str, ...]             # the node whose tensor is each spec output
    tap_outputs: tuple[str, ...]              # OutputTap node names: extra model outputs
    terms: tuple[Term, ...]                   # every activation clause, in spec order
    weight_terms: tuple[WeightTerm, ...]
    spec: Spec
    sources: dict[str, str] = field(default_factory=dict)   # clause -> node whose output it sees
    compile: Compile | None = None
    origins: tuple[tuple[str, str], ...] = ()   # (name, type) of each spec layer, by index
    pair_terms: tuple[PairTerm, ...] = ()     # every pair clause, in spec order

    @property
    def term_names(self) -> list[str]:
        """Every clause's name, in the order the terms are summed (and logged)."""
        return [*(t.name for t in self.terms), *(t.name for t in self.pair_terms),
                *(w.name for w in self.weight_terms)]

    def diagnose(self, path: tuple, message: str, code: str) -> Diagnostic:
        """A problem found while building, located at `path` in the spec (in a block instance:
        at the use, with notes down to the definition)."""
        doc = self.spec._document
        if doc is None:
            return Diagnostic(Span("<spec>"), message, code)
        from specc.provenance import diagnostic

        return diagnostic(doc, path, message, code)

    def node(self, name: str) -> Node:
        return self._by_name[name]

    @cached_property
    def _by_name(self) -> dict[str, Node]:
        """Nodes by name (the first of a name), built once: deep graphs look names up often."""
        by_name: dict[str, Node] = {}
        for n in self.nodes:
            by_name.setdefault(n.name, n)
        return by_name


def lower(spec: Spec, via: Via | None = None) -> Graph:
    """Plan the model; `via` forces one strategy on every activation clause."""
    return _Lowering(spec, via).run()


class _Lowering:
    """The state of one lowering: the nodes planned so far and the names they took.

    A layer called more than once (format 2 `share:`): its activation is split off at every
    call when any call is penalized before it, and its clauses sit on identity layers after
    each call (an activity_regularizer would sum over all calls)."""

    def __init__(self, spec: Spec, via: Via | None) -> None:
        self.spec = spec
        self.via = via
        self.layers = layers = spec.layer_map()
        self.terms = tuple(
            Term(c.name, c.kind, c.params, via or c.via or catalog.lookup(c.kind).default_via,
                 c.layer,
                 # on a layer whose activation is linear, pre_activation equals output
                 "pre_activation" if c.at == "pre_activation" and layers[c.layer].activation_name()
                 else "output",
                 catalog.lookup(c.kind).batch_statistic,
                 # format 1's formulas read every step; format 2 leaves masked steps out
                 c.mask if c.mask is not None else spec.specc >= 2)
            for c in spec.penalties)
        self.by_target: dict[tuple[str, str], list[Term]] = {}  # (layer, at) -> its clauses
        for t in self.terms:
            self.by_target.setdefault((t.layer, t.at), []).append(t)
        self.owner = {l.name: l._shares or l.name for l in spec.layers}
        self.shared = {o for n, o in self.owner.items() if n != o}
        self.split_owners = {self.owner[t.layer] for t in self.terms if t.at == "pre_activation"}
        self.taken = set(spec.inputs) | {l.name for l in spec.layers}
        self.nodes: list[Node] = []
        self.current: dict[str, str] = {name: name for name in spec.inputs}  # name -> tensor
        self.tap_outputs: list[str] = []
        self.sources: dict[str, str] = {}
        self.problems: list[Diagnostic] = []

    def run(self) -> Graph:
        spec = self.spec
        weight_terms = _weight_terms(spec)
        regs_by_node: dict[str, dict[str, list[WeightTerm]]] = {}
        for wt in weight_terms:
            for node, arg in wt.targets:
                regs_by_node.setdefault(node, {}).setdefault(arg, []).append(wt)
        reads = resolve_reads(spec)
        for i in topological_order(spec, resolve_deps(spec)):
            name = spec.layers[i].name
            regs = {arg: tuple(ts) for arg, ts in regs_by_node.get(name, {}).items()}
            self.layer(i, reads[name], regs)
        pair_terms, first = self.pairs()
        if self.problems:
            raise SpecError(self.problems)
        current = self.current
        output_nodes = [current[o] for o in spec.outputs]
        output_nodes[0] = first
        return Graph(spec.name, spec.seed,
                     tuple((n, tuple(s.shape), s.dtype) for n, s in spec.inputs.items()),
                     tuple(self.nodes), tuple(spec.outputs), tuple(output_nodes),
                     tuple(self.tap_outputs), self.terms, weight_terms, spec, self.sources,
                     _compile(spec), tuple((layer.name, layer.type) for layer in spec.layers),
                     pair_terms)

    def pairs(self) -> tuple[tuple[PairTerm, ...], str]:
        """Plan the pair clauses, once every tensor is planned: `add_loss` ones on a PairTap
        that reads (the first output, s, t) and passes the output on, so that it lies on the
        way to an output whatever s and t are; `output` ones on a PairOutputTap reading (s, t),
        an extra model output. Returns the terms and the tensor of the first output."""
        spec, current = self.spec, self.current
        first = current[spec.outputs[0]]
        terms = []
        index = {layer.name: i for i, layer in enumerate(spec.layers)}
        for i, clause in enumerate(spec.pair_penalties):
            # `via=` forces add_loss or output on pair clauses too; activity_regularizer
            # cannot carry two tensors, so there they keep their own strategy
            forced = self.via if self.via in catalog.PAIR_VIAS else None
            term = PairTerm(clause.name, clause.kind, clause.params,
                            forced or clause.via or "add_loss", tuple(clause.layers))
            terms.append(term)
            s, t = (current[r] for r in clause.layers)
            origin = index.get(split_port(clause.layers[0], self.layers)[0], 0)
            layer = next((split_port(r, self.layers)[0] for r in clause.layers
                          if split_port(r, self.layers)[0] in index), clause.layers[0])
            name = SUFFIX["pair" if term.via == "add_loss" else "pair_out"].format(
                layer=layer, clause=clause.name)
            if name in self.taken:
                doc = spec._document
                self.problems.append(Diagnostic(
                    doc.span(("pair_penalties", i, "name")) if doc else Span("<spec>"),
                    f"specc needs the name {quote(name)} for the layer that carries pair "
                    f"penalty {quote(clause.name)}; rename that spec layer or the clause",
                    "name-collision"))
            self.taken.add(name)
            if term.via == "add_loss":
                self.nodes.append(Node(name, "PairTap", {}, (first, s, t), origin,
                                       role="pair_tap", taps=(term,)))
                first = name
            else:
                self.nodes.append(Node(name, "PairOutputTap", {}, (s, t), origin,
                                       role="pair_output_tap", taps=(term,)))
                self.tap_outputs.append(name)
        return tuple(terms), first

    def layer(self, i: int, reads: list[str], regs: dict[str, tuple[WeightTerm, ...]]) -> None:
        """Plan spec layer i (its node, a split-off activation, its clauses' nodes)."""
        layer = self.spec.layers[i]
        mine = self.owner[layer.name]
        current = self.current
        kwargs = self.layers[mine].keras_kwargs()
        if layer.type == "Bidirectional":   # the nested recurrent layer, built by the runtime
            kwargs["layer"] = {"type": layer.layer.type, **layer.layer.keras_kwargs()}
        src = tuple(current[r] for r in reads)
        call = {arg: (value if isinstance(value, bool) else current[value]
                      if isinstance(value, str) else [current[v] for v in value])
                for arg, value in (layer.call or {}).items()}
        own = layer.regularizes_own_output and mine not in self.shared and not layer.ports()
        extra = {"shares": layer._shares, "call": call, "ports": layer.ports()}
        if mine in self.split_owners:
            act = kwargs.pop("activation")
            self.nodes.append(Node(layer.name, layer.type, kwargs, src, i, weight_regs=regs,
                                   **extra))
            last = self.attach(layer.name, "pre_activation", i, mine not in self.shared,
                               layer.name, mine not in self.shared)
            act_name = self.derived("activation", layer.name, i)
            self.nodes.append(Node(act_name, "Activation", {"activation": act}, (last,), i,
                                   role="activation"))
            last = self.attach(layer.name, "output", i, True, act_name)
        else:
            self.nodes.append(Node(layer.name, layer.type, kwargs, src, i, weight_regs=regs,
                                   **extra))
            last = self.attach(layer.name, "output", i, own, layer.name,
                               mine not in self.shared and not layer.ports())
        current[layer.name] = last
        for port in layer.ports():
            ref = f"{layer.name}.{port}"
            current[ref] = self.attach(ref, "output", i, False, ref, False)

    def derived(self, key: Any, layer: str, origin: int) -> str:
        """The name of a layer specc adds after `layer`; a spec layer already named so is a
        located error."""
        name = SUFFIX[key].format(layer=layer)
        if name in self.taken:
            doc = self.spec._document
            self.problems.append(Diagnostic(
                doc.span(("layers", origin, "name")) if doc else Span("<spec>"),
                f"specc needs the name {quote(name)} for a layer it adds after "
                f"{quote(layer)}; rename that spec layer", "name-collision"))
        self.taken.add(name)
        return name

    def attach(self, layer: str, at: Position, origin: int, own_output: bool, source: str,
               unique: bool = True) -> str:
        """Attach the clauses at (layer, at), in spec order, to the tensor `source` (the node
        just planned, or one of its ports); return the tensor to read next.

        `own_output` False: the clauses cannot go on the producing layer's
        activity_regularizer (Keras hands it to sublayers, applies it to every output, or to
        every call of a shared layer), so they go on an identity Activation('linear') right
        after the tensor, named from the layer."""
        here = self.by_target.get((layer, at), [])
        if not here:
            return source
        nodes = self.nodes
        last = source
        first_added = len(nodes)
        activity = tuple(t for t in here if t.via == "activity_regularizer")
        if activity and own_output:
            producer = nodes[-1]
            nodes[-1] = Node(**{**producer.__dict__, "activity": activity})
        elif activity:
            name = self.derived("activity", layer, origin)
            nodes.append(Node(name, "Activation", {"activation": "linear"}, (last,), origin,
                              role="activity", activity=activity))
            last = name
        added = tuple(t for t in here if t.via == "add_loss")
        if added:
            name = self.derived(("add_loss", at), layer, origin)
            nodes.append(Node(name, "PenaltyTap", {}, (last,), origin, role="tap", taps=added))
            last = name
        exposed = tuple(t for t in here if t.via == "output")
        if exposed:
            name = self.derived(("output", at), layer, origin)
            nodes.append(Node(name, "OutputTap", {}, (last,), origin, role="output_tap",
                              taps=exposed))
            self.tap_outputs.append(name)
        # The layer whose output is the penalized tensor: the producer when the tensor is its
        # only output, else the first identity layer specc added after it.
        seen = source if unique else nodes[first_added].name
        self.sources.update((t.name, seen) for t in here)
        return last


def _compile(spec: Spec) -> Compile:
    from specc.weights import resolve

    outs = list(spec.outputs)
    metrics = spec.metrics
    per_output = ([tuple(metrics.get(o, [])) for o in outs] if isinstance(metrics, dict)
                  else [tuple(metrics) for _ in outs])
    doc = spec._document
    weights = (None if spec.weights is None
               else resolve(spec.weights, doc.file if doc is not None else None))
    return Compile(tuple(spec.loss_for(o) for o in outs), tuple(spec.output_weights()),
                   spec.loss_weights is not None, tuple(per_output), isinstance(metrics, dict),
                   spec.optimizer, weights)


def _weight_terms(spec: Spec) -> tuple[WeightTerm, ...]:
    out = []
    for clause in spec.weight_penalties:
        targets: list[tuple[str, str]] = []
        for layer in spec.layers:
            if not any(fnmatch.fnmatchcase(layer.name, p) for p in clause.patterns):
                continue
            args = layer.weight_args
            for kind in clause.weight_kinds:
                if kind in layer.weight_kinds():
                    targets.extend((layer.name, arg) for arg in args[kind])
        out.append(WeightTerm(clause.name, clause.kind, clause.params,
                              tuple(dict.fromkeys(targets))))
    return tuple(out)
