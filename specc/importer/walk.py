"""The graph walk: a functional model's calls, in order, as spec entries (nested models as
their layers, a second call of a layer as a `share:`, raw keras.ops calls as the catalog layer
computing the same floats, a registered class as its registered type)."""
from __future__ import annotations

import math
import re
from typing import Any, Final, Sequence

from specc.importer.arguments import _call_defaults, arguments, input_keyword, keras_defaults
from specc.importer.base import OPERATIONS, PLUGIN_HOOK, Imported
from specc.importer.sources import layer_refusal, registered_classes

#: A call's recorded `training=` is not written: fit, evaluate and predict pass their own
#: training mode to every layer of a functional model, over the recorded one.
_TRAINING: Final = ("called with training={value}, not written (fit, evaluate and predict "
                    "set every layer's training mode)")



def _implicit_mask(node: Any) -> list[Any]:
    """The `mask=` Keras passed to a call by itself, its input carrying a mask (from an
    Embedding with mask_zero or a Masking layer): a spec's layers pass it on by themselves,
    so it is not written, and the `not_equal` computing it is not a layer."""
    mask = node.arguments.kwargs.get("mask")
    if mask is None:
        return []
    masks = [m for m in ([*mask] if isinstance(mask, (list, tuple)) else [mask]) if m is not None]
    inputs = [t for a in node.arguments.args
              for t in ([*a] if isinstance(a, (list, tuple)) else [a])]
    carried = any(getattr(t, "_keras_mask", None) is not None for t in inputs)
    return masks if carried else []


def inputs_of(node: Any) -> list[Any]:
    """The tensors a call reads, less the masks Keras passed along by itself."""
    implicit = {id(m) for m in _implicit_mask(node)}
    return [t for t in node.arguments.keras_tensors if id(t) not in implicit]


class GraphWalk:
    """Walks a functional model's calls and makes the spec's entries."""

    def __init__(self, reader: Any = None) -> None:
        import keras

        self.keras = keras
        self.reader = reader          # specc.importer.clauses.ClauseReader: specc's own layers
        self.layers: list[dict[str, Any]] = []
        self.refused: list[str] = []
        self.names: set[str] = set()
        self.refs: dict[int, str] = {}           # id(KerasTensor) -> spec reference
        self.made: dict[int, str] = {}           # id(layer) -> its first call's spec name
        self.calls: dict[int, int] = {}          # id(layer) -> calls written so far
        self.inputs: dict[str, dict[str, Any]] = {}
        self.result = Imported({})
        self.grouped: dict[str, list[str]] = {}     # a note -> the layers it concerns
        self.plugged = registered_classes()         # Keras class -> its registration

    def name(self, wanted: str) -> str:
        base = re.sub(r"[^A-Za-z0-9_]", "_", wanted)[:60] or "layer"
        if not base[0].isalpha() and base[0] != "_":
            base = "_" + base[:59]
        name, k = base, 1
        while name in self.names:
            k += 1
            name = f"{base[:60 - len(str(k))]}_{k}"
        self.names.add(name)
        if name != wanted:
            self.result.notes.append(f"{wanted!r} is named {name!r}")
            self.result.renamed.setdefault(wanted, name)     # --check finds it by this
        return name

    # -- traversal

    def nodes(self, fn: Any) -> list[tuple[Any, Any]]:
        """(operation, node) of every call from fn's inputs to its outputs, in an order where
        each comes after what it reads (Keras's own order where it has a choice)."""
        import heapq

        inputs = {id(t) for t in fn.inputs}
        ops = getattr(fn, "operations", None) or fn.layers        # Sequential: its layers
        rank = {id(op): k for k, op in enumerate(ops)}
        found: dict[tuple[int, int], tuple[Any, Any, int]] = {}
        stack = list(fn.outputs)
        while stack:
            t = stack.pop()
            if id(t) in inputs:
                continue
            op, node_index, _ = t._keras_history
            key = (id(op), node_index)
            if key in found:
                continue
            node = op._inbound_nodes[node_index]
            found[key] = (op, node, rank.get(id(op), len(rank)))
            stack.extend(inputs_of(node))
        produced_by = {}
        for key, (op, node, _) in found.items():
            for t in node.outputs:
                produced_by[id(t)] = key
        needs = {key: {produced_by[id(t)] for t in inputs_of(node)
                       if id(t) in produced_by} for key, (op, node, _) in found.items()}
        users: dict[tuple[int, int], list[tuple[int, int]]] = {}
        for key, deps in needs.items():
            for d in deps:
                users.setdefault(d, []).append(key)
        waiting = {key: len(deps) for key, deps in needs.items()}
        heap = [(found[k][2], k[1], k) for k, n in waiting.items() if n == 0]
        heapq.heapify(heap)
        order = []
        while heap:
            _, _, key = heapq.heappop(heap)
            order.append(found[key][:2])
            for user in users.get(key, ()):
                waiting[user] -= 1
                if waiting[user] == 0:
                    heapq.heappush(heap, (found[user][2], user[1], user))
        return order

    def graph(self, fn: Any, top: bool) -> None:
        """Write fn's calls; at top level its inputs become the spec's inputs."""
        if top:
            for t in fn.inputs:
                layer = t._keras_history[0]
                name = self.name(layer.name)
                self.refs[id(t)] = name
                self.inputs[name] = self.input_spec(t, layer)
        for op, node in self.nodes(fn):
            if isinstance(op, self.keras.layers.InputLayer):
                continue
            if isinstance(op, self.keras.Model):
                self.nested(op, node)
            elif isinstance(op, self.keras.layers.Layer):
                self.call(op, node)
            else:
                self.operation(op, node)
            for t in node.outputs:                 # a refused call: keep walking, to list all
                self.refs.setdefault(id(t), op.name)

    def input_spec(self, t: Any, layer: Any) -> dict[str, Any]:
        config = layer.get_config()
        if config.get("sparse") or config.get("ragged"):
            self.refused.append(f"input {layer.name!r}: a sparse or ragged input has no spec form")
        spec: dict[str, Any] = {"shape": [None if d is None else int(d) for d in t.shape[1:]]}
        if t.dtype != "float32":
            spec["dtype"] = str(t.dtype)
        return spec

    def nested(self, model: Any, node: Any) -> None:
        """A model used as a layer: its layers are written in its place."""
        extra = {k: v for k, v in node.arguments.kwargs.items() if v is not None
                 and not (k == "mask" and _implicit_mask(node))}
        if isinstance(extra.get("training"), bool):
            self.grouped.setdefault(_TRAINING.format(value=extra["training"]),
                                    []).append(model.name)
            del extra["training"]
        if extra:
            self.refused.append(f"layer {model.name!r} ({type(model).__name__}): called with "
                                f"{', '.join(sorted(extra))}, which a spec cannot fix")
            return
        outer = inputs_of(node)
        if len(outer) != len(model.inputs):
            self.refused.append(f"layer {model.name!r} ({type(model).__name__}): its inputs "
                                "do not map to the call's tensors")
            return
        for inner, t in zip(model.inputs, outer):
            self.refs[id(inner)] = self.refs[id(t)]
        self.graph(model, top=False)
        for inner, t in zip(model.outputs, node.outputs):
            self.refs[id(t)] = self.refs[id(inner)]
        calls = sum(1 for n in model._inbound_nodes if n.arguments.keras_tensors)
        note = f"nested {type(model).__name__} {model.name!r}: written as its layers"
        if calls > 1:
            note += (f" (called {calls} times: the later calls are `share:`s of its layers, "
                     "<layer>_call2, ...)")
        if note not in self.result.notes:
            self.result.notes.append(note)

    def reads(self, node: Any) -> Any:
        """The spec `from:` of a call: one reference or a list, in the call's order."""
        args = node.arguments.args
        first = args[0] if args else None
        tensors = ([*first] if isinstance(first, (list, tuple)) else
                   [a for a in args if isinstance(a, self.keras.KerasTensor)])
        refs = [self.refs[id(t)] for t in tensors]
        return refs[0] if len(refs) == 1 else refs

    def call(self, layer: Any, node: Any) -> None:
        from specc.catalog import LAYER_TYPES

        if self.reader is not None and self.reader.carrier(self, layer, node):
            return                                     # a layer specc added for a clause
        cls_name = type(layer).__name__
        cls = LAYER_TYPES.get(cls_name)
        if (cls_name, type(layer).__module__) in REWRITTEN:
            REWRITTEN[(cls_name, type(layer).__module__)](self, layer, node)
            return
        type_name = cls_name
        if cls is None or not type(layer).__module__.startswith("keras.src.layers"):
            entry_of = self.plugged.get(type(layer))
            if entry_of is None:
                self.refused.append(layer_refusal(layer))
                return
            cls, type_name = entry_of.model, entry_of.type
            self.grouped.setdefault(_plugin_note(entry_of), []).append(layer.name)
        keyword = input_keyword(type(layer), node)       # `layer(decoder_sequence=x)`
        call = self.call_arguments(layer, node, keyword)
        if call is None:
            return
        reads = self.refs[id(node.arguments.kwargs[keyword])] if keyword else self.reads(node)
        if cls_name == "MultiHeadAttention" and isinstance(node.arguments.kwargs.get("key"),
                                                           self.keras.KerasTensor):
            reads = [*([reads] if isinstance(reads, str) else reads),
                     self.refs[id(node.arguments.kwargs["key"])]]
        if call:
            self.result.format = 2
        if id(layer) in self.made:                     # another call: the same weights
            self.calls[id(layer)] += 1
            owner = self.made[id(layer)]
            entry: dict[str, Any] | None = {
                "name": self.name(f"{owner}_call{self.calls[id(layer)]}"), "share": owner,
                "from": reads}
            self.result.format = 2
        else:
            entry = self.first_call(layer, cls, type_name, reads)
        if entry is None:
            return
        if call:
            entry["call"] = call
        self.emit(entry, node.outputs, layer)
        if self.reader is not None:
            self.reader.after(layer, node, entry["name"], entry.get("share"))

    def call_arguments(self, layer: Any, node: Any,
                       keyword: str | None = None) -> dict[str, Any] | None:
        """The call's keyword arguments a spec writes (`call:`), or None when one has no spec
        form (refused); `training=` is noted, not written."""
        from specc import catalog
        from specc.catalog import BOOLEAN_CALL_ARGS

        cls_name = type(layer).__name__
        plugged = self.plugged.get(type(layer))        # a registered class: its call_args
        definition = plugged.definition if plugged else catalog.BUILTIN.get(cls_name)
        takes = definition.call_args if definition is not None else ()
        call: dict[str, Any] = {}
        defaults = _call_defaults(type(layer))
        implicit = bool(_implicit_mask(node))
        for key, value in node.arguments.kwargs.items():
            if key == keyword:
                continue                                   # its input, written as from:
            if key == "mask" and implicit:
                continue                                   # Keras passes it by itself
            if value is None or (not isinstance(value, self.keras.KerasTensor) and
                                 key in defaults and value is defaults[key]):
                continue                                   # the call's own default
            if key in BOOLEAN_CALL_ARGS and key in takes and isinstance(value, bool):
                call[key] = value
            elif key == "training" and isinstance(value, bool):
                self.grouped.setdefault(_TRAINING.format(value=value), []).append(layer.name)
            elif key in takes and isinstance(value, self.keras.KerasTensor):
                call[key] = self.refs[id(value)]
            elif key in takes and isinstance(value, (list, tuple)) and \
                    value and all(isinstance(v, self.keras.KerasTensor) for v in value):
                call[key] = [self.refs[id(v)] for v in value]
            elif not (key == "key" and cls_name == "MultiHeadAttention"):  # a third input
                self.refused.append(f"layer {layer.name!r} ({cls_name}): called with "
                                    f"{key}={str(value)[:60]}, which a spec cannot write")
                return None
        return call

    def first_call(self, layer: Any, cls: Any, type_name: str,
                   reads: Any) -> dict[str, Any] | None:
        """The entry of a layer's first call: its type and arguments, checked against the
        catalog (None when refused)."""
        from specc import catalog

        cls_name = type(layer).__name__
        definition = catalog.BUILTIN.get(cls_name)
        name = self.name(layer.name)
        config = layer.get_config() if self.reader is None else self.reader.config(layer)
        args, problems = arguments(cls, config, keras_defaults(type(layer)),
                                   getattr(cls, "weight_args", {}))
        if definition is not None and definition.importer is not None:
            problems += definition.importer(self, name, args, layer)  # its special case
        try:
            cls.model_validate({"name": "x", "type": type_name, **args},
                               context={"format": 2})
        except Exception as exc:          # pydantic's ValidationError: each refused value
            errors = getattr(exc, "errors", lambda: [])()
            problems += [f"{'.'.join(map(str, e['loc'])) or 'arguments'}: {e['msg']}"
                         for e in errors] or [str(exc)[:200]]
        if problems:
            self.refused.append(f"layer {layer.name!r} ({cls_name}): {'; '.join(problems)}")
            return None
        if any(isinstance(v, dict) for v in args.values()):
            self.result.format = 2          # an initializer or constraint with arguments
        self.made[id(layer)] = name
        self.calls[id(layer)] = 1
        self.result.owners[name] = layer
        return {"name": name, "type": type_name, "from": reads, **args}

    def bidirectional(self, args: dict[str, Any], layer: Any) -> tuple[dict[str, Any], list[str]]:
        """The nested recurrent layer as `layer: {type, ...}`; Keras's backward copy of it
        (the same config, run backwards) is what Bidirectional makes by itself."""
        from specc.spec.layers import LAYER_TYPES

        problems = []
        backward = args.pop("backward_layer", None)

        def same(config: Any) -> dict[str, Any]:
            inner = dict((config or {}).get("config") or {})
            return {k: v for k, v in inner.items() if k not in ("name", "go_backwards")}

        if backward is not None and (backward.get("class_name") != args["layer"].get("class_name")
                                     or same(backward) != same(args["layer"])):
            problems.append("a backward_layer of its own has no spec form")
        inner = args.get("layer")
        if isinstance(inner, dict) and "class_name" in inner:
            cls_name = inner["class_name"]
            cls = LAYER_TYPES.get(cls_name)
            if cls is None:
                return args, [f"its layer {cls_name!r} is not a catalog recurrent layer"]
            config = {k: v for k, v in (inner.get("config") or {}).items()
                      if k not in ("name", "trainable", "dtype")}
            if config.get("zero_output_for_mask") == config.get("return_sequences", False):
                del config["zero_output_for_mask"]     # Bidirectional sets it so itself
            inner_args, more = arguments(cls, config,
                                         keras_defaults(type(layer.forward_layer)))
            args["layer"] = {"type": cls_name, **inner_args}
            problems += more
        return args, problems

    def operation(self, op: Any, node: Any) -> None:
        """A raw keras.ops call between layers -> the catalog layer computing the same."""
        cls_name = type(op).__name__
        args = list(node.arguments.args)
        tensors = [a for a in args if isinstance(a, self.keras.KerasTensor)]
        consts = [a for a in args if not isinstance(a, self.keras.KerasTensor)]
        shown = f"{cls_name}({', '.join('tensor' if isinstance(a, self.keras.KerasTensor) else repr(a) for a in args)})"
        entry: dict[str, Any] | None = None
        if cls_name in OPERATIONS and len(tensors) == 2 and not consts and \
                not node.arguments.kwargs:
            entry = {"type": cls_name, "from": [self.refs[id(t)] for t in tensors]}
        elif len(tensors) == 1 and len(consts) == 1 and len(args) == 2 and \
                not node.arguments.kwargs and isinstance(consts[0], (int, float)) and \
                not isinstance(consts[0], bool) and math.isfinite(consts[0]):
            c, first = float(consts[0]), args[0] is tensors[0]
            rescale = {"Add": (1.0, c), "Multiply": (c, 0.0),
                       "Subtract": (1.0, -c) if first else (-1.0, c)}.get(cls_name)
            if rescale is not None:
                entry = {"type": "Rescaling", "from": self.refs[id(tensors[0])],
                         "scale": rescale[0], "offset": rescale[1]}
                if entry["offset"] == 0.0:
                    del entry["offset"]
        if entry is None:
            self.refused.append(f"operation {op.name!r} (keras.ops {shown}): no catalog layer "
                                "computes it; write it as a layer and " + PLUGIN_HOOK)
            return
        name = self.name(op.name)
        self.grouped.setdefault(f"keras.ops {shown}: written as {entry['type']}",
                                []).append(name)
        self.emit({"name": name, **entry}, node.outputs, op)

    def emit(self, entry: dict[str, Any], outputs: Sequence[Any], op: Any) -> None:
        name = entry["name"]
        ports = self.ports(entry, op)
        if len(outputs) > 1 + len(ports):
            self.refused.append(f"layer {op.name!r} ({type(op).__name__}): {len(outputs)} "
                                "outputs, which a spec cannot name")
            return
        for k, t in enumerate(outputs):
            self.refs[id(t)] = name if k == 0 else f"{name}.{ports[k - 1]}"
        if ports and len(outputs) > 1:
            self.result.format = 2
        previous = (self.layers[-1]["name"] if self.layers else
                    next(iter(self.inputs)) if len(self.inputs) == 1 else None)
        if "from" in entry and entry["from"] == previous and previous is not None:
            del entry["from"]                  # it reads the previous entry (or the input)
        self.layers.append(entry)

    def ports(self, entry: dict[str, Any], op: Any) -> tuple[str, ...]:
        from specc.spec.layers import LAYER_TYPES

        source = entry
        if "share" in entry:
            source = next(e for e in self.layers if e["name"] == entry["share"])
        cls = LAYER_TYPES.get(source.get("type", ""))
        if cls is None:
            return ()
        try:
            layer = cls.model_validate({k: v for k, v in source.items() if k != "share"},
                                       context={"format": 2})
        except Exception:
            return ()
        return layer.ports()


def _plugin_note(entry: Any) -> str:
    """What a spec with a registered layer type needs to be read again."""
    from specc.custom_layers import BUNDLED

    if entry.plugin in BUNDLED:
        return f"{entry.class_path}: written as type {entry.type} (registered by specc)"
    return (f"{entry.class_path}: written as type {entry.type}, which the plugin "
            f"{entry.plugin} registers (give --plugin {entry.plugin} to the commands that "
            "read this spec, unless it is an installed entry point)")


def _custom_scale(w: GraphWalk, layer: Any, node: Any) -> None:
    """InceptionResNetV2's CustomScaleLayer computes inputs[0] + inputs[1] * scale: written as
    Rescaling(scale) of inputs[1] and an Add, the same floats (x * s + 0.0, then a + that)."""
    reads = w.reads(node)
    if not isinstance(reads, list) or len(reads) != 2 or not isinstance(layer.scale, (int, float)):
        w.refused.append(layer_refusal(layer))
        return
    scaled = w.name(f"{layer.name}_scaled")
    name = w.name(layer.name)
    w.emit({"name": scaled, "type": "Rescaling", "from": reads[1],
            "scale": float(layer.scale)}, [], layer)
    w.emit({"name": name, "type": "Add", "from": [reads[0], scaled]}, node.outputs, layer)
    w.result.notes.append(f"CustomScaleLayer {layer.name!r} (a + b * scale): written as "
                          "Rescaling and Add")


#: Layer classes of keras.applications written as catalog layers computing the same floats.
REWRITTEN: Final = {
    ("CustomScaleLayer", "keras.src.applications.inception_resnet_v2"): _custom_scale,
}
