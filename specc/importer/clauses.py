"""Penalty clauses read back from a model specc built: its tap layers, its activity and weight
regularizers, and the activation it split off a layer, as the `penalties:`,
`pair_penalties:` and `weight_penalties:` a person writes.

How each strategy lowers a clause (specc.graph) decides how it is found here:

- `activity_regularizer`: an ActivityPenalty on the layer computing the tensor, or on an
  identity `Activation('linear')` named `<layer>_activity` right after it (a port, a shared
  layer, a layer Keras will not regularize);
- `add_loss`: an identity PenaltyTap after the tensor; `output`: an OutputTap, an extra model
  output (SpecModel's `tap_outputs`, left out of the spec's outputs);
- pair clauses: a PairTap (reads the first output, s and t; passes the output on) or a
  PairOutputTap (reads s and t, an extra model output);
- `at: pre_activation`: the layer was built with a linear activation and its activation
  follows as `Activation` named `<call>_activation`; the two are one spec layer again;
- weight clauses: a WeightPenalty as the layer's `kernel_regularizer`, `bias_regularizer`...

The strategy is written only where it is not the kind's default, `mask:` only where it
differs from the format's default on a tensor that carries a mask, and a parameter only where
it differs from its default. Nothing here runs code from the model: the clauses are data.
"""
from __future__ import annotations

from typing import Any, Final

from specc.importer.base import ImportRefused
from specc.importer.walk import inputs_of

#: specc's identity layers that carry clauses, and how each one's clauses reach the loss.
TAPS: Final = {"PenaltyTap": "add_loss", "OutputTap": "output", "PairTap": "add_loss",
               "PairOutputTap": "output"}
_HOMES: Final = ("specc.runtime.objects", "specc.runtime.pairs")


def _ours(obj: Any, names: Any) -> bool:
    return type(obj).__name__ in names and type(obj).__module__ in _HOMES


def _linear(layer: Any) -> bool:
    return getattr(getattr(layer, "activation", None), "__name__", None) == "linear"


def _without_ours(config: dict[str, Any]) -> dict[str, Any]:
    """A layer config less specc's regularizers (ActivityPenalty, WeightPenalty)."""
    return {k: v for k, v in config.items()
            if not (isinstance(v, dict) and v.get("class_name") in ("ActivityPenalty",
                                                                     "WeightPenalty")
                    and str(v.get("module", "")).startswith("specc."))}


class ClauseReader:
    """What the graph walk hands over: the carriers it skips, the tensors' positions (the spec
    layer and `at` they stand for), and the clauses found, in the model's term order."""

    def __init__(self, model: Any) -> None:
        import keras

        self.keras = keras
        self.meta: dict[str, Any] = dict(getattr(model, "_specc", None) or {})
        self.position: dict[int, tuple[str, str]] = {}   # id(KerasTensor) -> (ref, at)
        self.activity: list[dict[str, Any]] = []
        self.pairs: list[dict[str, Any]] = []
        self.weights: dict[str, dict[str, Any]] = {}     # clause name -> its config
        self.weight_targets: dict[str, list[tuple[str, Any, set[str]]]] = {}
        self.masked: dict[str, bool] = {}                # clause name -> its tensor has a mask
        self.consumers = self._consumers(model) if self.meta else {}
        self.split: dict[int, str] = {}          # id(layer) -> the activation split off it
        self.split_acts: set[int] = set()        # id(Activation) merged back into its layer
        if self.meta:
            self._find_splits(model)

    # -- the graph, before the walk

    def _consumers(self, model: Any) -> dict[int, list[tuple[Any, Any]]]:
        out: dict[int, list[tuple[Any, Any]]] = {}
        for op in getattr(model, "operations", None) or model.layers:
            for node in op._inbound_nodes:
                for t in node.arguments.keras_tensors:
                    out.setdefault(id(t), []).append((op, node))
        return out

    def is_activity_carrier(self, layer: Any, node: Any) -> bool:
        """An identity `Activation('linear')` named `<layer>_activity` that specc put after a
        tensor whose producer cannot carry the clause itself."""
        if not (isinstance(layer, self.keras.layers.Activation) and _linear(layer)
                and _ours(layer.activity_regularizer, ("ActivityPenalty",))
                and layer.name.endswith("_activity") and self.meta):
            return False
        from specc.catalog import LAYER_TYPES

        t = next(iter(node.arguments.keras_tensors), None)
        if t is None or not hasattr(t, "_keras_history"):
            return False
        producer, index, _ = t._keras_history
        if isinstance(producer, self.keras.layers.InputLayer):
            return False
        calls = sum(1 for n in producer._inbound_nodes if n.arguments.keras_tensors)
        node_of = producer._inbound_nodes[index]
        cls = LAYER_TYPES.get(type(producer).__name__)
        return (calls > 1 or len(node_of.outputs) > 1
                or (cls is not None and not getattr(cls, "regularizes_own_output", True)))

    def _through(self, t: Any) -> list[tuple[Any, Any]]:
        """The layers reading tensor t, past specc's pass-through carriers."""
        out = []
        for op, node in self.consumers.get(id(t), ()):
            if _ours(op, ("PenaltyTap",)) or self.is_activity_carrier(op, node):
                out += self._through(node.outputs[0])
            elif _ours(op, ("OutputTap",)):
                continue
            else:
                out.append((op, node))
        return out

    def _find_splits(self, model: Any) -> None:
        """Layers built linear whose activation follows as `<call>_activation` at every call
        (specc split them for an `at: pre_activation` clause): one spec layer each."""
        from specc.catalog import LAYER_TYPES

        for layer in model.layers:
            cls = LAYER_TYPES.get(type(layer).__name__)
            if cls is None or "activation" not in cls.model_fields or not _linear(layer):
                continue
            calls = [n for n in layer._inbound_nodes if n.arguments.keras_tensors]
            acts = []
            for k, node in enumerate(calls):
                readers = self._through(node.outputs[0])
                if len(readers) != 1:
                    break
                op, _ = readers[0]
                wanted = f"{layer.name}_activation" if k == 0 else None
                if not (type(op) is self.keras.layers.Activation and not _linear(op)
                        and (op.name == wanted if wanted else op.name.endswith("_activation"))
                        and op.get_config().get("activation") ==
                        (acts[0].get_config().get("activation") if acts else
                         op.get_config().get("activation"))):
                    break
                acts.append(op)
            else:
                if acts:
                    self.split[id(layer)] = acts[0].get_config()["activation"]
                    self.split_acts.update(id(a) for a in acts)

    # -- during the walk

    def config(self, layer: Any) -> dict[str, Any]:
        """The layer's config with specc's regularizers taken out (their clauses are read in
        `after`), and the activation specc split off it put back."""
        config = _without_ours(layer.get_config())
        for key in ("layer", "backward_layer"):          # Bidirectional's recurrent layers
            inner = config.get(key)
            if isinstance(inner, dict) and isinstance(inner.get("config"), dict):
                config[key] = {**inner, "config": _without_ours(inner["config"])}
        if id(layer) in self.split:
            config["activation"] = self.split[id(layer)]
        return config

    def at(self, t: Any, ref: str) -> tuple[str, str]:
        return self.position.get(id(t), (ref, "output"))

    def carrier(self, walk: Any, layer: Any, node: Any) -> bool:
        """Handle a layer specc added for a clause (or a split activation); True when it is one
        (the walk then writes nothing for it)."""
        tensors = inputs_of(node)
        if _ours(layer, TAPS) or self.is_activity_carrier(layer, node) or \
                id(layer) in self.split_acts:
            name = type(layer).__name__
            if name in ("PairTap", "PairOutputTap"):
                s, t = tensors[-2:]
                for clause in layer.clauses:
                    self.pairs.append(self._pair(clause, walk.refs[id(s)], walk.refs[id(t)],
                                                 TAPS[name]))
            elif id(layer) in self.split_acts:        # clauses at the output: on it
                ref, _ = self.at(tensors[0], walk.refs[id(tensors[0])])
                self.position[id(node.outputs[0])] = (ref, "output")
                reg = layer.activity_regularizer
                for clause in reg.clauses if _ours(reg, ("ActivityPenalty",)) else ():
                    self._activity(clause, ref, "output", "activity_regularizer",
                                   node.outputs[0])
            else:
                via = TAPS.get(name, "activity_regularizer")
                clauses = layer.clauses if name in TAPS else layer.activity_regularizer.clauses
                ref, at = self.at(tensors[0], walk.refs[id(tensors[0])])
                for clause in clauses:
                    self._activity(clause, ref, at, via, tensors[0])
                self.position[id(node.outputs[0])] = (ref, at)
            if node.outputs:
                walk.refs[id(node.outputs[0])] = walk.refs[id(tensors[0])]
            return True
        return False

    def after(self, layer: Any, node: Any, name: str, owner: str | None) -> None:
        """A layer call was written as spec entry `name` (a share of `owner`): its
        position, its activity clauses, and (first call) its weight clauses."""
        out = node.outputs[0] if node.outputs else None
        if out is None:
            return
        if id(layer) in self.split:
            self.position[id(out)] = (name, "pre_activation")
        reg = getattr(layer, "activity_regularizer", None)
        if _ours(reg, ("ActivityPenalty",)):
            ref, at = self.at(out, name)
            for clause in reg.clauses:
                self._activity(clause, ref, at, "activity_regularizer", out)
        if owner is None:
            self._weights(layer, name)

    def _weights(self, layer: Any, name: str) -> None:
        """The weight clauses in the layer's config (Bidirectional: in its recurrent layer's),
        by the regularizer arguments that carry them."""
        config = layer.get_config()
        inner = config.get("layer") if type(layer).__name__ == "Bidirectional" else None
        if isinstance(inner, dict) and isinstance(inner.get("config"), dict):
            config = {**config, **inner["config"]}
        found: dict[str, set[str]] = {}
        for key, value in config.items():
            if key.endswith("_regularizer") and isinstance(value, dict) and \
                    value.get("class_name") == "WeightPenalty" and \
                    str(value.get("module", "")).startswith("specc."):
                for clause in (value.get("config") or {}).get("clauses", ()):
                    self.weights.setdefault(clause["name"], clause)
                    found.setdefault(clause["name"], set()).add(key)
        for clause_name, args in found.items():
            self.weight_targets.setdefault(clause_name, []).append((name, layer, args))

    def _activity(self, clause: dict[str, Any], ref: str, at: str, via: str, t: Any) -> None:
        params = {k: tidy_schedule(v) for k, v in clause["params"].items()}
        entry = {"name": clause["name"], "layer": ref, **({"at": at} if at != "output" else {}),
                 "kind": clause["kind"], **params, "_via": via,
                 "_masked": "mask" not in clause}
        self.masked[clause["name"]] = getattr(t, "_keras_mask", None) is not None
        self.activity.append(entry)

    def _pair(self, clause: dict[str, Any], s: str, t: str, via: str) -> dict[str, Any]:
        return {"name": clause["name"], "layers": [s, t], "kind": clause["kind"],
                **{k: tidy_schedule(v) for k, v in clause["params"].items()}, "_via": via}

    # -- after the walk

    def sections(self, data: dict[str, Any], renamed: dict[str, str]) -> dict[str, Any]:
        """`penalties`, `pair_penalties`, `weight_penalties` for the spec `data` (its format
        decides the `mask:` default), layer names through `renamed` (folding's paths)."""
        order = {n: k for k, n in enumerate(self.meta.get("order", ()))}

        def path(ref: str) -> str:
            base, dot, port = ref.partition(".")
            if ref in renamed:
                return renamed[ref]
            return renamed.get(base, base) + dot + port if dot and base in renamed else ref

        out: dict[str, Any] = {}
        activity = []
        for entry in sorted(self.activity, key=lambda e: order.get(e["name"], len(order))):
            entry = dict(entry, layer=path(entry["layer"]))
            activity.append(self._written(entry, data, "activity"))
        pairs = [self._written(dict(e, layers=[path(r) for r in e["layers"]]), data, "pair")
                 for e in sorted(self.pairs, key=lambda e: order.get(e["name"], len(order)))]
        weights = [self._weight_clause(n, path) for n in
                   sorted(self.weights, key=lambda n: order.get(n, len(order)))]
        for key, clauses in (("penalties", activity), ("pair_penalties", pairs),
                             ("weight_penalties", weights)):
            if clauses:
                out[key] = clauses
        return out

    def _written(self, entry: dict[str, Any], data: dict[str, Any], what: str) -> dict[str, Any]:
        """Parameters at their default, the default strategy and an unneeded `mask:` left
        out (checked against the clause models, so a plugin kind's defaults count too)."""
        from specc import penalties as catalog

        via, masked = entry.pop("_via"), entry.pop("_masked", None)
        kind = catalog.lookup(entry["kind"]) if what == "activity" else None
        if what == "activity" and kind is None:
            raise ImportRefused([f"penalty clause {entry['name']!r}: its kind "
                                 f"{entry['kind']!r} is not registered; give the plugin that "
                                 "registers it (--plugin MODULE)"])
        default_via = kind.default_via if kind is not None else "add_loss"
        for key, value in list(entry.items()):
            if key in ("name", "layer", "layers", "kind", "at"):
                continue
            known, default = _default(entry["kind"], key, what)
            if known and value == default:
                del entry[key]
        if via != default_via:
            entry["via"] = via
        if masked is not None and masked != (data.get("specc", 1) >= 2) and \
                self.masked.get(entry["name"]):
            entry["mask"] = masked
        return entry

    def _weight_clause(self, name: str, path: Any) -> dict[str, Any]:
        """One weight clause: the layers it reached, and the weights (`kernel`, `bias`) it
        reached in any of them (a layer lacking one is skipped, as a glob skips it)."""
        from specc.catalog import LAYER_TYPES

        clause = self.weights[name]
        layers, kinds = [], []
        for spec_name, layer, args in self.weight_targets[name]:
            cls = LAYER_TYPES.get(type(layer).__name__)
            by_kind = dict(getattr(cls, "weight_args", {}) or {})
            mine = [k for k, a in by_kind.items() if a and set(a) <= args]
            if not mine or set().union(*(by_kind[k] for k in mine)) != args:
                raise ImportRefused([f"weight penalty {name!r}: it regularizes "
                                     f"{', '.join(sorted(args))} of layer {layer.name!r}, "
                                     "which no `weights:` of a clause names together"])
            layers.append(path(spec_name))
            kinds += [k for k in mine if k not in kinds]
        kinds = [k for k in ("kernel", "bias") if k in kinds] + \
            [k for k in kinds if k not in ("kernel", "bias")]
        entry: dict[str, Any] = {"name": name, "layers": layers[0] if len(layers) == 1 else layers}
        if kinds != ["kernel"]:
            entry["weights"] = kinds[0] if len(kinds) == 1 else kinds
        entry["kind"] = clause["kind"]
        for key, value in clause["params"].items():
            known, default = _default(clause["kind"], key, "weight")
            if not (known and value == default):
                entry[key] = tidy_schedule(value)
        return entry


def tidy_schedule(value: Any) -> Any:
    """A rate or loss weight: a schedule's data with `schedule:` first and its keys at their
    default left out (`start: 0`); anything else as it is."""
    from specc import schedules

    if not isinstance(value, dict) or "schedule" not in value:
        return value
    model = schedules.MODELS.get(value["schedule"])
    fields = {(f.alias or k): f for k, f in (model.model_fields if model else {}).items()}
    return {"schedule": value["schedule"],
            **{k: v for k, v in value.items() if k != "schedule" and not (
                k in fields and not fields[k].is_required()
                and fields[k].get_default(call_default_factory=True) == v)}}


def _default(kind: str, key: str, what: str) -> tuple[bool, Any]:
    """Whether the clause model of `kind` gives `key` a default, and which."""
    from specc import penalties as catalog
    from specc.spec import clauses

    unions = {"activity": clauses.ActivationClause, "pair": clauses.AnyPairClause,
              "weight": clauses.AnyWeightClause}
    model = clauses.models_by_kind(unions[what]).get(kind)
    if model is None and what == "activity":             # a plugin's kind: its own model
        entry = catalog.lookup(kind)
        model = getattr(entry, "params", None)
    info = getattr(model, "model_fields", {}).get(key)
    if info is None or info.is_required():
        return False, None
    return True, info.get_default(call_default_factory=True)


def into_blocks(data: dict[str, Any]) -> bool:
    """Move the activation clauses that every instance of a folded block has alike (named
    `<instance>.<clause>`, on `<instance>.<layer>`) into the block's `penalties:`, where
    expanding the spec names and orders them as before; True when any moved."""
    import json

    blocks, clauses = data.get("blocks") or {}, data.get("penalties") or []
    instances: list[tuple[str, str]] = []          # (block, instance), in expansion order
    for entry in data.get("layers", ()):
        if "use" in entry:
            count = entry.get("repeat")
            if count is not None and not isinstance(count, int):
                return False
            names = [f"{entry['name']}{k + 1}" for k in range(count)] if count else \
                [entry["name"]]
            instances += [(entry["use"], name) for name in names]
    groups: dict[tuple[str, str], dict[str, dict[str, Any]]] = {}
    for clause in clauses:
        for block, inst in instances:
            if clause["name"].startswith(inst + ".") and clause["layer"].startswith(inst + "."):
                local = {**clause, "name": clause["name"][len(inst) + 1:],
                         "layer": clause["layer"][len(inst) + 1:]}
                groups.setdefault((block, json.dumps(local)), {})[inst] = clause
                break
    moving = {key: found for key, found in groups.items()
              if sorted(found) == sorted(i for b, i in instances if b == key[0])}
    if not moving:
        return False
    moved = {id(c) for found in moving.values() for c in found.values()}
    kept = [c for c in clauses if id(c) not in moved]
    inside: dict[str, list[dict[str, Any]]] = {}
    for (block, local), _ in moving.items():
        inside.setdefault(block, []).append(json.loads(local))
    order = [c["name"] for c in kept] + [f"{inst}.{c['name']}" for block, inst in instances
                                          for c in inside.get(block, ())]
    if order != [c["name"] for c in clauses]:
        return False                  # expansion would sum the terms in another order
    for block, local in inside.items():
        blocks[block]["penalties"] = local
    if kept:
        data["penalties"] = kept
    else:
        del data["penalties"]
    return True
