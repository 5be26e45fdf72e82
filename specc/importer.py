"""`specc import`: a Keras functional model -> a spec that rebuilds it.

The model's graph is walked call by call (nested functional and Sequential models are written
as their layers); each layer's `get_config()` becomes spec arguments the way a spec author
writes them (Keras defaults dropped, `{"class_name": ..., "config": ...}` objects as
`{type: ...}` or their short name, tuples as lists), validated against the layer catalog.
Raw `keras.ops` calls between layers (`x + 3.0`) become the catalog layer that computes the
same (`Rescaling`, `Add`, ...). A layer called twice becomes a format 2 `share:`. A class
registered with `specc.register_layer` (specc's own keras.applications layers, a plugin's) is
written as its registered type, its config checked against the registered spec model.

What cannot be written as a spec (a `Lambda`, an unregistered class, an argument the
catalog refuses, a nested model called twice) is collected, one line per layer, and nothing
is written: `ImportRefused` carries the lines.

This module imports Keras; `import specc` does not import it.
"""
from __future__ import annotations

import functools
import json
import math
import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Sequence

from specc.errors import UsageError, did_you_mean

#: The hook that would cover a layer class specc does not know (issue 12's custom layers).
PLUGIN_HOOK: Final = ("register it with specc.register_layer in a plugin (--plugin MODULE or "
                      "the entry-point group specc.layers)")
#: The longest config.json read from a .keras file (a model config is far smaller).
MAX_CONFIG_BYTES: Final = 64 * 1024 * 1024
#: Keys of a layer config that a spec never writes when they hold the value meaning "unused".
_REGULARIZERS: Final = ("kernel_regularizer", "bias_regularizer", "activity_regularizer",
                        "depthwise_regularizer", "pointwise_regularizer", "beta_regularizer",
                        "gamma_regularizer", "recurrent_regularizer", "embeddings_regularizer")
_OBJECT_NONE_KEYS: Final = ("seed", "input_axes", "output_axes")
#: Serialized classes of raw `keras.ops` calls that the importer rewrites as layers.
OPERATIONS: Final = ("Add", "Subtract", "Multiply", "Maximum", "Minimum")
_CONTAINERS: Final = ("Functional", "Sequential", "Model")
_NAME_OK: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
#: A call's recorded `training=` is not written: fit, evaluate and predict pass their own
#: training mode to every layer of a functional model, over the recorded one.
_TRAINING: Final = ("called with training={value}, not written (fit, evaluate and predict "
                    "set every layer's training mode)")


class ImportRefused(Exception):
    """The model has parts a spec cannot express: one line each."""

    def __init__(self, lines: Sequence[str]) -> None:
        super().__init__("\n".join(lines))
        self.lines = list(lines)


@dataclass
class Imported:
    """The spec as data, and what the weights file needs."""

    data: dict[str, Any]
    #: spec layer name -> the Keras layer whose weights it takes (owners only, not shares)
    owners: dict[str, Any] = field(default_factory=dict)
    #: layers whose statistics are written in the spec (no weights file entry); none today
    in_spec: set[str] = field(default_factory=set)
    notes: list[str] = field(default_factory=list)
    format: int = 1

    def weight_arrays(self) -> dict[str, list[Any]]:
        """{spec layer name: its arrays}, for specc.weights.write."""
        return {name: [w.numpy() if hasattr(w, "numpy") else w.value.numpy()
                       for w in layer.weights]
                for name, layer in self.owners.items()
                if layer.weights and name not in self.in_spec}


# --- sources ----------------------------------------------------------------------------------

def applications() -> list[str]:
    """The architectures of the installed keras.applications (capitalized constructors)."""
    import keras

    return sorted(n for n in dir(keras.applications)
                  if n[:1].isupper() and callable(getattr(keras.applications, n)))


def application(name: str, input_shape: Sequence[int] | None = None,
                classes: int | None = None) -> Any:
    """keras.applications.NAME(weights=None, ...): nothing is downloaded."""
    import keras

    names = applications()
    if name not in names:
        raise UsageError(f"--application {name}: not in keras.applications"
                         f"{did_you_mean(name, names)} (see `specc import --list`)")
    kwargs: dict[str, Any] = {"weights": None}
    if input_shape is not None:
        kwargs["input_shape"] = tuple(input_shape)
    if classes is not None:
        kwargs["classes"] = classes
    try:
        return getattr(keras.applications, name)(**kwargs)
    except (ValueError, TypeError) as exc:
        raise UsageError(f"--application {name}: {str(exc).splitlines()[0][:300]}") from None


def _config_layers(config: dict[str, Any], where: str = "") -> list[tuple[str, str, str]]:
    """(name, class, module) of every layer in a saved model config, nested models included."""
    out = []
    for layer in config.get("config", {}).get("layers", []) or []:
        if not isinstance(layer, dict):
            continue
        cls = str(layer.get("class_name", "?"))
        inner = layer.get("config", {}) if isinstance(layer.get("config"), dict) else {}
        name = str(inner.get("name", "?"))
        out.append((where + name, cls, str(layer.get("module") or "")))
        if cls in _CONTAINERS:
            out += _config_layers(layer, where + name + "/")
    return out


def registered_classes() -> dict[type, Any]:
    """The Keras class of every registered layer type (specc.register_layer: specc's own and
    the imported plugins') -> its registration; a class that cannot be imported is left out."""
    from specc.custom_layers import registered
    from specc.runtime.plugins import layer_class

    out: dict[type, Any] = {}
    for type_name, entry in registered().items():
        try:
            out.setdefault(layer_class(type_name), entry)
        except (ImportError, TypeError):
            continue
    return out


def keras_file(path: str | Path) -> Any:
    """Load a .keras file with safe_mode=True, after refusing, from its config alone, every
    layer class a spec cannot express (so that no code from the file can run)."""
    import keras

    from specc.spec.layers import LAYER_TYPES

    path = Path(path)
    if path.suffix != ".keras":
        raise UsageError(f"{path}: `specc import` reads a .keras model file")
    try:
        with zipfile.ZipFile(path) as archive:
            info = archive.getinfo("config.json")
            if info.file_size > MAX_CONFIG_BYTES:
                raise UsageError(f"{path}: config.json is {info.file_size:,} bytes, over "
                                 f"{MAX_CONFIG_BYTES:,}")
            config = json.loads(archive.read(info))
    except (zipfile.BadZipFile, KeyError, json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise UsageError(f"{path}: not a .keras model file ({exc})") from None
    top = config.get("class_name") if isinstance(config, dict) else None
    if top not in _CONTAINERS or not isinstance((config.get("config") or {}).get("layers"),
                                                list):
        name = ((config.get("config") or {}) if isinstance(config, dict) else {}).get("name", "?")
        raise ImportRefused([f"model {name!r} ({top}): a subclassed model has no graph to "
                             "import (its call() is Python code); build it as a functional or "
                             "Sequential model, or write its spec"])
    known = {*LAYER_TYPES, "InputLayer", *_CONTAINERS, *OPERATIONS}
    plugged = {(c.__module__, c.__name__) for c in registered_classes()}
    lines = [_refusal(name, cls, module) for name, cls, module in _config_layers(config)
             if (module, cls) not in plugged
             and (cls not in known or (module and not module.startswith("keras")))]
    if lines:
        raise ImportRefused(lines)
    try:
        model = keras.saving.load_model(path, safe_mode=True, compile=False)
    except Exception as exc:   # Keras refused the file: say why in one line
        raise UsageError(f"{path}: Keras cannot load it ({str(exc).splitlines()[0][:300]})") \
            from None
    compiled = config.get("compile_config") or {}
    model._specc_loss = compiled.get("loss") if isinstance(compiled, dict) else None
    return model


def _refusal(name: str, cls: str, module: str = "") -> str:
    if module.startswith(("keras.src.ops", "keras.ops")):
        return (f"operation {name!r} (keras.ops {cls}): no catalog layer computes it; write "
                f"it as a layer and {PLUGIN_HOOK}")
    keras_own = not module or module == "keras.layers" or module.startswith("keras.src.layers")
    where = cls if keras_own else f"{module}.{cls}"
    if cls == "Lambda":
        return (f"layer {name!r} ({where}): a Lambda runs Python code, which a spec never "
                f"does; rewrite it as a layer class and {PLUGIN_HOOK}")
    return f"layer {name!r} ({where}): specc does not know this class; {PLUGIN_HOOK}"


# --- values -----------------------------------------------------------------------------------

def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def plain(value: Any) -> Any:
    """Tuples as lists, numpy scalars and arrays as numbers and lists."""
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if hasattr(value, "tolist"):
        return plain(value.tolist())
    return value


def _object(value: dict[str, Any], kind: str) -> Any:
    """A serialized initializer or constraint: its short name when it has no arguments and
    the catalog knows the name, else `{type: Class, ...arguments}` (format 2)."""
    from typing import get_args

    from specc.spec import base

    import keras

    cls = value.get("registered_name") or value["class_name"]
    home = keras.initializers if kind == "initializer" else keras.constraints
    defaults = keras_defaults(getattr(home, cls)) if isinstance(getattr(home, cls, None),
                                                                 type) else {}
    config = {k: plain(v) for k, v in (value.get("config") or {}).items()
              if not (k in _OBJECT_NONE_KEYS and v is None)
              and not (k in defaults and plain(v) == defaults[k])}
    words = get_args(base.Initializer) if kind == "initializer" else get_args(base.ConstraintName)
    if not config and _snake(cls) in words:
        return _snake(cls)
    return {"type": cls, **config}


def _argument(key: str, value: Any) -> Any:
    if isinstance(value, dict) and {"class_name", "config"} <= set(value):
        if value["class_name"] in ("DTypePolicy", "FloatDTypePolicy"):
            return (value.get("config") or {}).get("name")
        if key.endswith("_initializer"):
            return _object(value, "initializer")
        if key.endswith("_constraint"):
            return _object(value, "constraint")
    return plain(value)


def _same(value: Any, default: Any) -> bool:
    """A config value that means the catalog default (`(1, 1)` for 1, "linear" for null)."""
    if value == default:
        return True
    if default is None and value == "linear":
        return True
    if isinstance(value, list) and value and not isinstance(default, list):
        return all(v == default for v in value)
    if isinstance(value, list) and isinstance(default, list) and len(value) == len(default):
        return all(_same(v, d) for v, d in zip(value, default))
    return False


@functools.lru_cache(maxsize=None)
def _call_defaults(layer_class: type) -> dict[str, Any]:
    """The defaults of a layer class's call() arguments (False, True, 0: recorded as given)."""
    import inspect

    try:
        params = inspect.signature(layer_class.call).parameters.values()
    except (TypeError, ValueError):
        return {}
    return {p.name: p.default for p in params if p.default is not inspect.Parameter.empty}


@functools.lru_cache(maxsize=None)
def keras_defaults(layer_class: type) -> dict[str, Any]:
    """The constructor defaults of a Keras layer class and its bases (plain values)."""
    import inspect

    out: dict[str, Any] = {}
    for klass in reversed(layer_class.__mro__):
        init = klass.__dict__.get("__init__")
        if init is None:
            continue
        try:
            params = inspect.signature(init).parameters.values()
        except (TypeError, ValueError):
            continue
        out.update((p.name, plain(p.default)) for p in params
                   if p.default is not inspect.Parameter.empty)
    return out


def arguments(cls: type, config: dict[str, Any], defaults: dict[str, Any] | None = None,
              weight_args: Any = None) -> tuple[dict[str, Any], list[str]]:
    """A layer config -> (spec arguments, problems): defaults dropped, objects converted.

    `defaults` (the Keras class's constructor defaults): a key the catalog does not know
    is dropped when it holds Keras's default, so it changes nothing. `weight_args` (a
    registered layer's `weights=`): its regularizer arguments, which penalty clauses fill."""
    fields = cls.model_fields
    defaults = defaults or {}
    regularizers = {*_REGULARIZERS, *(a for names in (weight_args or {}).values()
                                      for a in names)}
    args: dict[str, Any] = {}
    problems = []
    for key, raw in config.items():
        if key == "name":
            continue
        value = _argument(key, raw)
        if key in regularizers:
            if value is not None:
                problems.append(f"it has a {key} (write it as a penalty clause: "
                                f"{'penalties' if key == 'activity_regularizer' else 'weight_penalties'})")
            continue
        if key == "quantization_config" and value is None:
            continue
        if key == "rms_scaling" and value is False:
            continue
        if key == "trainable":
            if value is False and "trainable" in fields:
                args[key] = False
            continue
        if key == "dtype" and value in (None, "float32"):
            continue
        if key == "data_format" and value == "channels_last":
            continue
        if key in fields:
            info = fields[key]
            if not info.is_required() and _same(value, info.get_default(call_default_factory=True)):
                continue
        elif key in defaults and value == defaults[key]:
            continue
        args[key] = value
    return args, problems


# --- the graph --------------------------------------------------------------------------------

class _Writer:
    """Walks a functional model's calls and makes the spec's entries."""

    def __init__(self) -> None:
        import keras

        self.keras = keras
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
            stack.extend(node.arguments.keras_tensors)
        produced_by = {}
        for key, (op, node, _) in found.items():
            for t in node.outputs:
                produced_by[id(t)] = key
        needs = {key: {produced_by[id(t)] for t in node.arguments.keras_tensors
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
        extra = {k: v for k, v in node.arguments.kwargs.items() if v is not None}
        if isinstance(extra.get("training"), bool):
            self.grouped.setdefault(_TRAINING.format(value=extra["training"]),
                                    []).append(model.name)
            del extra["training"]
        if extra:
            self.refused.append(f"layer {model.name!r} ({type(model).__name__}): called with "
                                f"{', '.join(sorted(extra))}, which a spec cannot fix")
            return
        outer = node.arguments.keras_tensors
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
        from specc import catalog
        from specc.catalog import BOOLEAN_CALL_ARGS, LAYER_TYPES

        cls_name = type(layer).__name__
        cls = LAYER_TYPES.get(cls_name)
        definition = catalog.BUILTIN.get(cls_name)
        takes = definition.call_args if definition is not None else ()
        if (cls_name, type(layer).__module__) in REWRITTEN:
            REWRITTEN[(cls_name, type(layer).__module__)](self, layer, node)
            return
        type_name = cls_name
        if cls is None or not type(layer).__module__.startswith("keras.src.layers"):
            entry_of = self.plugged.get(type(layer))
            if entry_of is None:
                self.refused.append(_refusal(layer.name, cls_name, type(layer).__module__))
                return
            cls, type_name = entry_of.model, entry_of.type
            self.grouped.setdefault(_plugin_note(entry_of), []).append(layer.name)
        call: dict[str, Any] = {}
        defaults = _call_defaults(type(layer))
        for key, value in node.arguments.kwargs.items():
            if value is None or (not isinstance(value, self.keras.KerasTensor) and
                                 key in defaults and value is defaults[key]):
                continue                                   # the call's own default
            if key in BOOLEAN_CALL_ARGS and key in takes and \
                    isinstance(value, bool):
                call[key] = value
                continue
            if key == "training" and isinstance(value, bool):
                self.grouped.setdefault(_TRAINING.format(value=value), []).append(layer.name)
                continue
            if key in takes and isinstance(value, self.keras.KerasTensor):
                call[key] = self.refs[id(value)]
            elif key in takes and isinstance(value, (list, tuple)) and \
                    value and all(isinstance(v, self.keras.KerasTensor) for v in value):
                call[key] = [self.refs[id(v)] for v in value]
            elif key == "key" and cls_name == "MultiHeadAttention":
                continue                                   # read as the third input below
            else:
                self.refused.append(f"layer {layer.name!r} ({cls_name}): called with "
                                    f"{key}={str(value)[:60]}, which a spec cannot write")
                return
        reads = self.reads(node)
        if cls_name == "MultiHeadAttention" and isinstance(node.arguments.kwargs.get("key"),
                                                           self.keras.KerasTensor):
            reads = [*([reads] if isinstance(reads, str) else reads),
                     self.refs[id(node.arguments.kwargs["key"])]]
        if call:
            self.result.format = 2
        entry: dict[str, Any]
        if id(layer) in self.made:                     # another call: the same weights
            self.calls[id(layer)] += 1
            owner = self.made[id(layer)]
            name = self.name(f"{owner}_call{self.calls[id(layer)]}")
            entry = {"name": name, "share": owner, "from": reads}
            self.result.format = 2
        else:
            name = self.name(layer.name)
            args, problems = arguments(cls, layer.get_config(), keras_defaults(type(layer)),
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
                self.refused.append(f"layer {layer.name!r} ({cls_name}): "
                                    f"{'; '.join(problems)}")
                return
            if any(isinstance(v, dict) for v in args.values()):
                self.result.format = 2          # an initializer or constraint with arguments
            entry = {"name": name, "type": type_name, "from": reads, **args}
            self.made[id(layer)] = name
            self.calls[id(layer)] = 1
            self.result.owners[name] = layer
        if call:
            entry["call"] = call
        self.emit(entry, node.outputs, layer)

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


def _custom_scale(w: _Writer, layer: Any, node: Any) -> None:
    """InceptionResNetV2's CustomScaleLayer computes inputs[0] + inputs[1] * scale: written as
    Rescaling(scale) of inputs[1] and an Add, the same floats (x * s + 0.0, then a + that)."""
    reads = w.reads(node)
    if not isinstance(reads, list) or len(reads) != 2 or not isinstance(layer.scale, (int, float)):
        w.refused.append(_refusal(layer.name, type(layer).__name__, type(layer).__module__))
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


def convert(model: Any, name: str | None = None) -> Imported:
    """A Keras functional model -> Imported (raises ImportRefused, listing every problem)."""
    import keras

    if not isinstance(model, keras.Model) or not hasattr(model, "_inbound_nodes") or \
            not getattr(model, "inputs", None) or not getattr(model, "outputs", None):
        raise ImportRefused([f"model {getattr(model, 'name', '?')!r} ({type(model).__name__}): "
                             "only functional and Sequential models have a graph to import "
                             "(a subclassed model's call() is Python code)"])
    w = _Writer()
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
    return w.result


def _outputs(w: _Writer, model: Any) -> list[str]:
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


def _drop_unread_inputs(w: _Writer, outputs: list[str]) -> None:
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


# --- YAML -------------------------------------------------------------------------------------

_PLAIN: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_.]*")
_RESERVED: Final = {"true", "false", "null", "True", "False", "Null", "TRUE", "FALSE", "NULL",
                    "y", "n", "yes", "no", "on", "off", "Yes", "No", "On", "Off"}


def _scalar(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"a non-finite number ({value}) has no spec form")
        text = repr(value)
        return text if ("." in text or "e" in text) else text + ".0"
    text = str(value)
    if _PLAIN.fullmatch(text) and text not in _RESERVED:
        return text
    return json.dumps(text)


def flow(value: Any) -> str:
    """A value in YAML flow style (specc reads it with YAML 1.2 rules)."""
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_scalar(k)}: {flow(v)}" for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(flow(v) for v in value) + "]"
    return _scalar(value)


def to_yaml(data: dict[str, Any], header: Sequence[str] = ()) -> str:
    """The spec as text: top-level keys in block style, one flow mapping per layer."""
    lines = [f"# {h}" for h in header]
    for key, value in data.items():
        if key == "inputs":
            lines.append("inputs:")
            lines += [f"  {_scalar(k)}: {flow(v)}" for k, v in value.items()]
        elif key in ("layers", "penalties", "weight_penalties") and value:
            lines.append(f"{key}:")
            lines += [f"  - {flow(item)}" for item in value]
        else:
            lines.append(f"{key}: {flow(value)}")
    return "\n".join(lines) + "\n"


# --- the command ------------------------------------------------------------------------------

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


def same_batch_outputs(source: Any, built: Any, seed: int = 0,
                       batch: int = 2) -> tuple[list[Any], list[Any]]:
    """The outputs (flattened, in the models' output order) of the source model and of the
    spec's build on one random batch; the build gets the inputs its spec kept, by name."""
    import keras
    import numpy as np

    rng = np.random.default_rng(seed)
    xs = [rng.standard_normal((batch, *[d or 8 for d in t.shape[1:]])).astype(str(t.dtype))
          for t in source.inputs]
    struct = getattr(source, "_inputs_struct", None)
    fed = keras.tree.pack_sequence_as(struct, xs) if isinstance(struct, dict) else \
        (xs if len(xs) > 1 else xs[0])
    by_name = {t.name: x for t, x in zip(source.inputs, xs)}
    wanted = [by_name.get(t.name) for t in built.inputs]
    if any(x is None for x in wanted):             # renamed inputs: in order
        wanted = xs[:len(built.inputs)]
    got_src = keras.tree.flatten(source(fed, training=False))
    got_spec = keras.tree.flatten(built(wanted if len(wanted) > 1 else wanted[0],
                                        training=False))          # eager: no tracing
    src = [np.asarray(a) for a in got_src]
    return src, [np.asarray(a) for a in got_spec][:len(src)]    # declared outputs


def compare(source: Any, built: Any, in_spec: Sequence[str] = (), seed: int = 0,
            batch: int = 2) -> dict[str, Any]:
    """Structure, parameter counts and outputs of the source model against the spec's build
    (with the same weights): what `specc import --check` and the coverage script report."""
    import numpy as np

    def owners(model: Any) -> dict[str, tuple[str, list[tuple[int, ...]]]]:
        out = {}
        stack = list(model.layers)
        while stack:
            layer = stack.pop(0)
            if hasattr(layer, "layers") and hasattr(layer, "_inbound_nodes") and \
                    type(layer).__name__ in _CONTAINERS:
                stack[:0] = list(layer.layers)
                continue
            if layer.weights:
                out[layer.name] = (type(layer).__name__,
                                   [tuple(int(d) for d in w.shape) for w in layer.weights])
        return out

    src, spec = same_batch_outputs(source, built, seed, batch)
    worst = 0.0
    for a, b in zip(src, spec):
        scale = max(float(np.max(np.abs(a))), 1e-30)
        worst = max(worst, float(np.max(np.abs(a - b))) / scale)
    return {
        "structure": {k: v for k, v in owners(source).items() if k not in in_spec}
                     == owners(built),
        "params": (source.count_params(), built.count_params()),
        "trainable": (sum(int(np.prod(w.shape)) for w in source.trainable_weights),
                      sum(int(np.prod(w.shape)) for w in built.trainable_weights)),
        "outputs": len(src) == len(spec) and all(a.shape == b.shape for a, b in zip(src, spec)),
        "max_rel_diff": worst,
    }
