"""The top level of a spec, format version 1."""
# No `from __future__ import annotations`: Pydantic would eval every annotation string
# at import, which `specc validate` pays on each run.

import json
from typing import Annotated, Any, Literal, Optional, Union, get_args

from pydantic import (Discriminator, Field, PlainValidator, PrivateAttr, Tag, TypeAdapter,
                      ValidationInfo, WrapValidator, field_validator)
from pydantic_core import PydanticCustomError

from specc.custom_losses import registered as registered_objects
from specc.custom_losses import validate_entry
from specc.spec.base import DType, LayerRef, LayerSpec, Name, SharedCall, Strict
from specc.spec.catalog_names import LossName, MetricName
from specc.spec.clauses import ActivationClause, AnyPairClause, AnyWeightClause, Scheduled
from specc.spec.layers import LAYER_TYPES, AnyLayer
from specc.schedules import LearningRateSchedule

FORMAT_VERSION = 1
#: The format versions this specc reads.
FORMAT_VERSIONS = (1, 2)

PosFloat = Annotated[float, Field(gt=0.0, allow_inf_nan=False)]
NonNegFloat = Annotated[float, Field(ge=0.0, allow_inf_nan=False)]


def _validate_layer(value: Any, info: ValidationInfo) -> LayerSpec:
    return validate_layer(value, info.context)


def validate_layer(value: Any, context: Any = None) -> LayerSpec:
    """Dispatch on `type` to that layer's model, building only the models a spec uses.

    (A discriminated union would build all ~70 layer validators at import: ~0.35 s that
    `specc validate` would pay on every run. The JSON Schema still shows the full union.)
    """
    if isinstance(value, (LayerSpec, SharedCall)):
        return value
    if not isinstance(value, dict):
        raise PydanticCustomError("dict_type", "a layer is a mapping")
    if "share" in value and "type" not in value:
        return SharedCall.model_validate(value, context=context)
    kind = value.get("type")
    if kind is None:
        raise PydanticCustomError("union_tag_not_found", "missing key 'type'",
                                  {"discriminator": "'type'"})
    cls = LAYER_TYPES.get(kind) if isinstance(kind, str) else None
    if cls is None and isinstance(kind, str):          # a type registered by a plugin
        from specc.custom_layers import model_for

        cls = model_for(kind)
    if cls is None:
        raise PydanticCustomError("union_tag_invalid", "unknown layer type {tag}",
                                  {"tag": str(kind)[:40]})
    return cls.model_validate(value, context=context)   # the format travels along


LazyLayer = Annotated[Any, PlainValidator(_validate_layer)]


class InputSpec(Strict):
    shape: Annotated[list[Optional[Annotated[int, Field(gt=0)]]], Field(max_length=8)] = Field(
        description="Shape of one sample (no batch axis); null for a variable-length axis.")
    dtype: DType = "float32"


class LossSpec(Strict):
    """A loss with arguments, e.g. {type: categorical_crossentropy, from_logits: true}."""

    type: LossName
    from_logits: Optional[bool] = None
    label_smoothing: Optional[Annotated[float, Field(ge=0.0, le=1.0)]] = None
    delta: Optional[PosFloat] = Field(default=None, description="huber only")


def _plugin_loss(value: Any, handler: Any, info: ValidationInfo) -> Any:
    kind = value.get("type") if isinstance(value, dict) else value
    if isinstance(kind, str) and kind in _LOSS_NAMES:
        return handler(value)                       # a catalog loss: no plugin lookup
    return validate_entry("loss", value, handler, info)


def _plugin_metric(value: Any, handler: Any, info: ValidationInfo) -> Any:
    if isinstance(value, str) and value in _METRIC_NAMES:
        return handler(value)
    return validate_entry("metric", value, handler, info)


_LOSS_NAMES = frozenset(get_args(LossName))
_METRIC_NAMES = frozenset(get_args(MetricName))
#: A catalog loss (a name, or a name with arguments), or one a plugin registered
#: (specc.register_loss): `contrastive`, `{type: contrastive, margin: 1.0}`.
Loss = Annotated[Union[LossName, LossSpec], WrapValidator(_plugin_loss)]
#: A catalog metric name, or one a plugin registered (specc.register_metric), with its
#: arguments as `{type: NAME, ...}`.
Metric = Annotated[MetricName, WrapValidator(_plugin_metric)]


LearningRate = Annotated[
    Union[Annotated[PosFloat, Tag("number")], Annotated[LearningRateSchedule, Tag("a schedule")]],
    Discriminator(lambda v: "a schedule" if isinstance(v, dict) or hasattr(v, "schedule")
                  else "number")]


class Optimizer(Strict):
    """Keras optimizer by name with its common arguments; unset ones keep Keras's defaults."""

    type: Literal["adam", "adamw", "sgd", "rmsprop", "adagrad", "adadelta", "adamax", "nadam",
                  "ftrl", "lion", "lamb"]
    learning_rate: "LearningRate" = Field(
        default=1.0e-3, description="A number, or one of keras.optimizers.schedules by class "
        "name with its arguments: {schedule: ExponentialDecay, initial_learning_rate: 0.01, "
        "decay_steps: 1000, decay_rate: 0.9}.")
    momentum: Optional[Annotated[float, Field(ge=0.0, le=1.0)]] = Field(
        default=None, description="sgd, rmsprop")
    nesterov: Optional[bool] = Field(default=None, description="sgd")
    beta_1: Optional[Annotated[float, Field(ge=0.0, lt=1.0)]] = None
    beta_2: Optional[Annotated[float, Field(ge=0.0, lt=1.0)]] = None
    epsilon: Optional[PosFloat] = None
    rho: Optional[Annotated[float, Field(ge=0.0, lt=1.0)]] = Field(default=None,
                                                                  description="rmsprop, adadelta")
    weight_decay: Optional[NonNegFloat] = None
    clipnorm: Optional[PosFloat] = None
    clipvalue: Optional[PosFloat] = None
    global_clipnorm: Optional[PosFloat] = None


_Path = Annotated[str, Field(min_length=1, max_length=4096)]


class EarlyStopping(Strict):
    """Stop when `monitor` has not improved for `patience` epochs."""

    patience: Annotated[int, Field(ge=0, lt=2**31)] = Field(
        description="Epochs without improvement before training stops.")
    monitor: Optional[Annotated[str, Field(min_length=1, max_length=200)]] = Field(
        default=None, description="A logged key; default val_loss (loss without validation).")


class Training(Strict):
    """How `specc fit` trains this spec by default; its command-line options override each.
    Paths are relative to the spec. Code is never named here: a `module:function` data
    source is taken from the command line only."""

    data: Optional[_Path] = Field(default=None, description=(
        "An .npz, a folder of NAME.npy files, a .csv/.parquet table with columns named after "
        "the inputs and outputs, or a folder of class folders (images, or texts for a string "
        "input)."))
    validation: Optional[_Path] = Field(default=None, description=(
        "The validation set, as `data`; without it, `validation_split` of `data` is held out."))
    validation_split: Optional[Annotated[float, Field(ge=0.0, lt=1.0)]] = None
    epochs: Optional[Annotated[int, Field(ge=1, lt=2**31)]] = None
    batch_size: Optional[Annotated[int, Field(ge=1, lt=2**31)]] = None
    seed: Optional[Annotated[int, Field(ge=0, lt=2**32)]] = Field(
        default=None, description="Seed of the validation split and of each epoch's order.")
    early_stopping: Optional[EarlyStopping] = None
    checkpoint: Optional[bool] = Field(
        default=None, description="Keep the best epoch's model as best.keras.")


def _weights_tag(value: Any) -> str:
    """A number, a list, one schedule (`schedule:` names its kind) or a mapping by output."""
    if isinstance(value, dict) or hasattr(value, "model_dump"):
        kind = value.get("schedule") if isinstance(value, dict) else getattr(value, "schedule", None)
        return "all_outputs" if isinstance(kind, str) else "mapping"
    return "list" if isinstance(value, list) else "number"


LossWeights = Annotated[
    Union[Annotated[NonNegFloat, Tag("number")],
          Annotated[Scheduled, Tag("all_outputs")],
          Annotated[list[Scheduled], Tag("list")],
          Annotated[dict[LayerRef, Scheduled], Tag("mapping")]],
    Discriminator(_weights_tag)]


class Spec(Strict):
    """A specc model spec: format version 1, or the flat form of format 2 (after expansion)."""

    specc: Literal[1, 2] = Field(description="Format version: 1, or 2 for blocks, repeats, "
                                             "shared layers and call arguments.")
    name: Name = Field(description="The Keras model's name.")
    description: Optional[Annotated[str, Field(max_length=10_000)]] = None
    seed: Optional[Annotated[int, Field(ge=0, lt=2**32)]] = Field(
        default=None, description="Makes initial weights reproducible.")
    inputs: Annotated[dict[Name, InputSpec], Field(min_length=1)]
    layers: Annotated[list[LazyLayer], Field(min_length=1)]
    outputs: Annotated[list[LayerRef], Field(min_length=1)]
    loss: Union[Loss, dict[LayerRef, Loss]]
    loss_weights: Optional["LossWeights"] = Field(
        default=None, description="One weight for every output, a list (one per output) or a "
        "mapping output -> weight; each a number or a schedule of the optimizer step.")
    penalties: list[ActivationClause] = Field(default_factory=list)
    weight_penalties: list[AnyWeightClause] = Field(default_factory=list)
    pair_penalties: list[AnyPairClause] = Field(
        default_factory=list, description="Penalties between two layers' outputs (feature "
        "matching, distillation), each `layers: [s, t]`.")
    optimizer: Union[Literal["adam", "adamw", "sgd", "rmsprop", "adagrad", "adadelta", "adamax",
                             "nadam", "ftrl", "lion", "lamb"], Optimizer] = "adam"
    metrics: Union[list[Metric], dict[LayerRef, list[Metric]]] = Field(default_factory=list)
    training: Optional[Training] = Field(
        default=None, description="`specc fit`'s defaults for this spec: data, validation, "
        "epochs, batch size, early stopping, best checkpoint.")
    weights: Optional[Annotated[str, Field(min_length=1, max_length=4096)]] = Field(
        default=None, description="A `.weights.h5` file (relative to the spec) whose arrays "
        "the built model starts from, layer by layer: `specc import --weights` writes it.")
    freeze: Optional[Annotated[list[Annotated[str, Field(min_length=1, max_length=200)]],
                               Field(min_length=1)]] = Field(
        default=None, description="Layer names or globs (`*` crosses the dots of format 2 "
        "paths) whose weights are frozen: the same as `trainable: false` on each.")

    #: The located document this spec was read from (for errors at build time).
    _document: Any = PrivateAttr(default=None)

    @field_validator("loss", mode="wrap")
    @classmethod
    def _one_loss_or_a_mapping(cls, value: Any, handler: Any, info: ValidationInfo) -> Any:
        """A mapping with a `type` is one loss, any other mapping one by output: the errors
        are those of the one it is (not also those of reading it as the other)."""
        if isinstance(value, dict):
            kind = "loss" if "type" in value else "mapping"
            return _adapter(kind).validate_python(value, context=info.context)
        return handler(value)

    # Convenience views used by checks and lowering.
    @property
    def document(self) -> Any:
        """The located document this spec was validated from (for format 2, the flat one
        expansion made: its data is the flat spec); None for a spec made in Python."""
        return self._document

    def layer_map(self) -> dict[str, object]:
        return {layer.name: layer for layer in self.layers}

    def loss_for(self, output: str) -> Loss | None:
        return self.loss.get(output) if isinstance(self.loss, dict) else self.loss

    def output_weights(self) -> list[Any]:
        """Each output's loss weight, in `outputs` order (1.0 where none is given): a float,
        or a schedule's plain data (specc.schedules)."""
        w = self.loss_weights
        if w is None:
            return [1.0] * len(self.outputs)
        if isinstance(w, dict):
            return [_weight(w.get(o, 1.0)) for o in self.outputs]
        if isinstance(w, list):
            return [_weight(x) for x in w]
        return [_weight(w)] * len(self.outputs)


_ADAPTERS: dict[str, TypeAdapter] = {}


def _adapter(kind: str) -> TypeAdapter:
    """The validator of one loss entry ("loss") or of a mapping by output, built on first
    use."""
    if kind not in _ADAPTERS:
        _ADAPTERS[kind] = TypeAdapter(Loss if kind == "loss" else dict[LayerRef, Loss])
    return _ADAPTERS[kind]


def _weight(w: Any) -> Any:
    return w.model_dump() if hasattr(w, "model_dump") else float(w)


def _compact(schema: dict[str, Any]) -> dict[str, Any]:
    """Hoist the closed word lists that many fields share (activations, initializers, ...)
    into named $defs, and drop Pydantic's per-property titles: the same schema, much smaller,
    easier for editors to load."""
    hoisted: dict[tuple, tuple[str, dict]] = {}
    taken = set(schema.get("$defs", {}))

    def hoist(node: Any, key: str | None = None) -> Any:
        if isinstance(node, list):
            return [hoist(item, key) for item in node]
        if not isinstance(node, dict):
            return node
        if isinstance(node.get("enum"), list) and len(node["enum"]) >= 4:
            words = tuple(node["enum"])
            if words not in hoisted:
                name = "".join(part.title() for part in (key or "choice").split("_")) + "Choice"
                while name in taken:
                    name += "_"
                taken.add(name)
                hoisted[words] = (name, {k: node[k] for k in ("type", "enum") if k in node})
            rest = {k: v for k, v in node.items() if k not in ("type", "enum")}
            return {"$ref": f"#/$defs/{hoisted[words][0]}", **rest}
        out: dict[str, Any] = {}
        for k, v in node.items():
            if k == "properties":
                out[k] = {name: hoist({kk: vv for kk, vv in sub.items() if kk != "title"}, name)
                          for name, sub in v.items()}
            elif k == "$defs":
                out[k] = {name: hoist(sub) for name, sub in v.items()}
            else:
                out[k] = hoist(v, key)
        return out

    compact = hoist(schema)
    defs = compact.setdefault("$defs", {})
    defs.update(dict(hoisted.values()))
    # Property schemas that many layers repeat word for word (name, from, kernel_initializer,
    # ...) become one $def each.
    seen: dict[str, int] = {}
    for model in defs.values():
        for sub in model.get("properties", {}).values():
            text = json.dumps(sub, sort_keys=True)
            seen[text] = seen.get(text, 0) + 1
    shared: dict[str, str] = {}
    for model in list(defs.values()):
        props = model.get("properties", {})
        for prop, sub in props.items():
            text = json.dumps(sub, sort_keys=True)
            if seen[text] < 3 or len(text) < 80:
                continue
            if text not in shared:
                name = "".join(part.title() for part in prop.split("_")) + "Arg"
                while name in taken:
                    name += "_"
                taken.add(name)
                shared[text] = name
                defs[name] = sub
            props[prop] = {"$ref": f"#/$defs/{shared[text]}"}
    return compact


def json_schema() -> dict[str, Any]:
    """The JSON Schema of the format (versions 1 and 2), generated from these models."""
    from specc.spec.blocks import BlockDef, ShareEntry, UseEntry

    class SchemaSpec(Spec):
        __doc__ = Spec.__doc__
        layers: Annotated[list[Union[AnyLayer, UseEntry, ShareEntry]], Field(min_length=1)]
        blocks: Optional[dict[Name, BlockDef]] = Field(
            None, description="Format 2: named, parameterized sub-graphs.")
        imports: Optional[Union[str, list[str]]] = Field(
            None, description="Format 2: block library files whose blocks this spec uses "
                              "(paths relative to this file, inside the project).")
        extends: Optional[str] = Field(
            None, description="Format 2: a base spec this one overrides by name (a path "
                              "relative to this file, inside the project).")

    from specc.custom_layers import registered

    plugged = [entry.model for _, entry in sorted(registered().items())]   # any load order
    if plugged:                     # layers registered by the plugins imported (--plugin)
        every = Annotated[Union[(*get_args(get_args(AnyLayer)[0]), *plugged)],
                          Field(discriminator="type")]

        class SchemaSpec(SchemaSpec):  # type: ignore[no-redef]
            __doc__ = Spec.__doc__
            layers: Annotated[list[Union[every, UseEntry, ShareEntry]], Field(min_length=1)]

    losses = [e.model for _, e in sorted(registered_objects("loss").items())]
    metrics = [e.model for _, e in sorted(registered_objects("metric").items())]
    if losses or metrics:           # losses and metrics registered by the plugins imported
        loss_entry = Union[(LossName, LossSpec, *losses)]
        metric_entry = Union[(MetricName, *metrics)]

        class SchemaSpec(SchemaSpec):  # type: ignore[no-redef]
            __doc__ = Spec.__doc__
            loss: Union[loss_entry, dict[LayerRef, loss_entry]]
            metrics: Union[list[metric_entry], dict[LayerRef, list[metric_entry]]] = Field(
                default_factory=list)

    schema = _compact(SchemaSpec.model_json_schema(by_alias=True))
    _allow_expressions(schema)
    schema["title"] = "specc spec, format versions 1 and 2"
    return {"$schema": "https://json-schema.org/draft/2020-12/schema",
            "$id": "https://specc.dev/schemas/specc.schema.json", **schema}


def _allow_expressions(schema: dict[str, Any]) -> None:
    """Format 2: any argument of a layer or clause may be a `${...}` expression, and any
    entry may carry `repeat:` and `if:`; block layers reuse the top-level entry schemas."""
    defs = schema["$defs"]
    defs["Expression"] = {"type": "string", "pattern": r"\$\{.*\}",
                          "description": "Format 2: `${...}`, computed from block parameters"}
    expr = {"$ref": "#/$defs/Expression"}

    wrapped: dict[str, dict] = {}

    def wrap(node: dict) -> dict:
        """`node`, or an expression; inside lists and unions too (`from: [x, "${...}"]`)."""
        ref = node.get("$ref", "")
        if ref.startswith("#/$defs/") and ref.endswith("Arg") and len(node) == 1:
            name = ref.rsplit("/", 1)[1]          # a shared argument schema: wrap it once
            if name not in wrapped:
                wrapped[name] = {}
                wrapped[name] = wrap(defs[name])
            return {"$ref": f"#/$defs/{name}OrExpression"}
        node = dict(node)
        if isinstance(node.get("items"), dict):
            node["items"] = wrap(node["items"])
        if isinstance(node.get("anyOf"), list):
            node["anyOf"] = [wrap(n) if isinstance(n, dict) else n for n in node["anyOf"]]
        return {"anyOf": [node, expr]}

    for model in list(defs.values()):
        props = model.get("properties", {})
        if "type" in props and "name" in props or "kind" in props:
            for key, sub in props.items():
                if key not in ("type", "kind", "name"):
                    props[key] = wrap(sub)
            if "type" in props:
                props.setdefault("repeat", defs["UseEntry"]["properties"]["repeat"])
                props.setdefault("if", defs["UseEntry"]["properties"]["if"])
    defs.update((f"{name}OrExpression", wrapped_schema)
                for name, wrapped_schema in wrapped.items())
    entries = schema["properties"]["layers"]["items"]
    defs["BlockDef"]["properties"]["layers"]["items"] = entries
    for key in ("penalties", "weight_penalties"):
        defs["BlockDef"]["properties"][key]["items"] = schema["properties"][key]["items"]
