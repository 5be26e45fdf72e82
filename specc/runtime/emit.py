"""Emission: a lowered Graph -> a compiled SpecModel. The only stage that calls Keras layers."""
from __future__ import annotations

from typing import Any, Final

import keras

from specc.custom_losses import PluginObject
from specc.errors import SpecError, keras_reason
from specc.graph import Graph, Node
from specc.runtime.deep import deep_call
from specc.runtime.objects import (ActivityPenalty, OutputTap, PenaltyTap, SpecModel, TaskLoss,
                                   WeightPenalty)
from specc.runtime.plugin_objects import loss_object, metric_object
from specc.runtime.plugins import layer_class
from specc.schedules import is_schedule
from specc.spec.layers import LAYER_TYPES

_LOSS_CLASSES: Final = {
    "categorical_crossentropy": "CategoricalCrossentropy",
    "sparse_categorical_crossentropy": "SparseCategoricalCrossentropy",
    "binary_crossentropy": "BinaryCrossentropy",
    "binary_focal_crossentropy": "BinaryFocalCrossentropy",
    "categorical_focal_crossentropy": "CategoricalFocalCrossentropy",
    "mean_squared_error": "MeanSquaredError", "mse": "MeanSquaredError",
    "mean_absolute_error": "MeanAbsoluteError", "mae": "MeanAbsoluteError",
    "mean_absolute_percentage_error": "MeanAbsolutePercentageError",
    "mape": "MeanAbsolutePercentageError",
    "mean_squared_logarithmic_error": "MeanSquaredLogarithmicError",
    "msle": "MeanSquaredLogarithmicError",
    "huber": "Huber", "log_cosh": "LogCosh", "kl_divergence": "KLDivergence",
    "poisson": "Poisson", "cosine_similarity": "CosineSimilarity", "hinge": "Hinge",
    "squared_hinge": "SquaredHinge", "categorical_hinge": "CategoricalHinge",
}
_OPTIMIZERS: Final = {
    "adam": "Adam", "adamw": "AdamW", "sgd": "SGD", "rmsprop": "RMSprop", "adagrad": "Adagrad",
    "adadelta": "Adadelta", "adamax": "Adamax", "nadam": "Nadam", "ftrl": "Ftrl",
    "lion": "Lion", "lamb": "Lamb",
}


def _objects(kwargs: dict[str, Any]) -> dict[str, Any]:
    """Format 2 `{type: VarianceScaling, ...}` initializer and constraint arguments -> objects."""
    out = dict(kwargs)
    for key, value in kwargs.items():
        if isinstance(value, dict) and (key.endswith("_initializer") or key == "initializer"):
            args = {k: v for k, v in value.items() if k != "type"}
            out[key] = getattr(keras.initializers, value["type"])(**args)
        elif isinstance(value, dict) and key.endswith("_constraint"):
            args = {k: v for k, v in value.items() if k != "type"}
            out[key] = getattr(keras.constraints, value["type"])(**args)
    return out


def _make_layer(node: Node) -> keras.layers.Layer:
    if node.op == "PenaltyTap":
        return PenaltyTap([t.config() for t in node.taps], name=node.name)
    if node.op == "OutputTap":
        return OutputTap([t.config() for t in node.taps], name=node.name)
    if node.op in ("PairTap", "PairOutputTap"):
        from specc.runtime import pairs

        return getattr(pairs, node.op)([t.config() for t in node.taps], name=node.name)
    kwargs = _objects(node.kwargs)
    regs = {arg: WeightPenalty([t.config() for t in ts]) for arg, ts in node.weight_regs.items()}
    if node.op == "Bidirectional":
        inner = _objects(kwargs.pop("layer"))
        inner_type = inner.pop("type")
        inner_layer = getattr(keras.layers, inner_type)(
            name=f"{node.name}_{inner_type.lower()}", **inner, **regs)
        kwargs["layer"] = inner_layer
        regs = {}
    if node.activity:
        kwargs["activity_regularizer"] = ActivityPenalty([t.config() for t in node.activity])
    cls = getattr(keras.layers, node.op) if node.op in LAYER_TYPES else layer_class(node.op)
    return cls(name=node.name, **kwargs, **regs)


def _call(layer: keras.layers.Layer, node: Node, args: list[Any],
          tensors: dict[str, Any]) -> Any:
    kwargs = {arg: value if isinstance(value, bool) else tensors[value]
              if isinstance(value, str) else [tensors[v] for v in value]
              for arg, value in node.call.items()}
    if node.op == "MultiHeadAttention":
        query, value, key = (args + [None, None])[:3] if len(args) > 1 else (args[0], args[0], None)
        if key is not None:
            kwargs["key"] = key
        return layer(query, value, **kwargs)
    return layer(args if len(args) > 1 else args[0], **kwargs)


def _loss(spec_loss: Any) -> Any:
    if isinstance(spec_loss, str):
        return spec_loss
    if isinstance(spec_loss, PluginObject):
        return loss_object(spec_loss)
    cfg = spec_loss.model_dump(exclude_none=True, exclude={"type"})
    return getattr(keras.losses, _LOSS_CLASSES[spec_loss.type])(**cfg)


def _optimizer(spec_opt: Any) -> keras.optimizers.Optimizer:
    if isinstance(spec_opt, str):
        return getattr(keras.optimizers, _OPTIMIZERS[spec_opt])()
    from specc.schedules import keras_learning_rate

    kwargs = spec_opt.model_dump(exclude_unset=True, exclude={"type", "learning_rate"})
    kwargs["learning_rate"] = keras_learning_rate(spec_opt.learning_rate)
    return getattr(keras.optimizers, _OPTIMIZERS[spec_opt.type])(**kwargs)


def compile_args(graph: Graph) -> dict[str, Any]:
    """loss / loss_weights / metrics / optimizer in the declared outputs' order.

    An output whose weight is scheduled gets Keras weight 0 and a TaskLoss, which records
    its (unweighted) loss: SpecModel adds r(t) times it (meta `loss_weights`)."""
    plan = graph.compile
    outs = list(graph.outputs)
    single = len(outs) == 1
    losses = [_loss(loss) for loss in plan.losses]
    weights = list(plan.output_weights) if plan.weights_given else None
    if weights is not None and any(is_schedule(w) for w in weights):
        losses = [TaskLoss(loss, o) if is_schedule(w) else loss
                  for loss, o, w in zip(losses, outs, weights)]
        weights = [0.0 if is_schedule(w) else w for w in weights]
    metrics: Any = [[metric_object(m) for m in ms] for ms in plan.metrics]
    if single and not plan.metrics_by_output:
        metrics = metrics[0]
    return {
        "optimizer": _optimizer(plan.optimizer),
        "loss": losses[0] if single else losses,
        "loss_weights": None if weights is None else (weights[0] if single else weights),
        "metrics": metrics or None,
    }


def meta(graph: Graph) -> dict[str, Any]:
    """The SpecModel's plain-data description of where each term is found."""
    activity, taps = [], []
    for node in graph.nodes:
        if node.activity:
            activity.append([node.name, [t.name for t in node.activity]])
        if node.op in ("PenaltyTap", "PairTap"):     # each records its values (one a clause)
            taps.append([node.name, [t.name for t in node.taps]])
    outputs = []
    for index, tap in enumerate(graph.tap_outputs):
        for t in graph.node(tap).taps:
            outputs.append([index, t.config()])
    scheduled = [[o, w] for o, w in zip(graph.outputs, graph.compile.output_weights)
                 if is_schedule(w)]
    return {
        "declared": list(graph.outputs),
        "tap_outputs": list(graph.tap_outputs),
        "activity": activity,
        "taps": taps,
        "outputs": outputs,
        "weights": [w.name for w in graph.weight_terms],
        "order": graph.term_names,
        **({"loss_weights": scheduled} if scheduled else {}),
    }


def _load_weights(graph: Graph, model: SpecModel) -> None:
    """The spec's `weights:` file into the built model; a mismatch is a located error."""
    from specc.weights import WeightsError, load_into

    path = graph.compile.weights_file
    try:
        load_into(model, path)
    except (WeightsError, OSError) as exc:
        raise SpecError([graph.diagnose(("weights",), f"weights file {str(path)!r}: {exc}",
                                        "weights")]) from None


def emit(graph: Graph, compile: bool = True) -> SpecModel:
    """Build (and compile) the Keras model; Keras build errors become located SpecErrors.

    A deep graph (over specc.runtime.deep.DEEP_LAYERS nodes) is built in a thread with room
    for Keras's recursion (specc.runtime.deep)."""
    return deep_call(_emit, graph, compile, layers=len(graph.nodes))


def _emit(graph: Graph, compile: bool) -> SpecModel:
    from specc.plugin_source import realize_all

    realize_all()           # one-file plugins read from their source: imported for real now
    if graph.seed is not None:
        keras.utils.set_random_seed(graph.seed)
    tensors: dict[str, Any] = {}
    inputs = []
    for name, shape, dtype in graph.inputs:
        tensors[name] = keras.Input(shape=shape, dtype=dtype, name=name)
        inputs.append(tensors[name])
    made: dict[str, keras.layers.Layer] = {}
    for node in graph.nodes:
        try:
            layer = made[node.shares] if node.shares else _make_layer(node)
            made[node.name] = layer
            result = _call(layer, node, [tensors[r] for r in node.reads], tensors)
            if node.ports:       # [output, state, ...]: the first by the name, the rest by port
                tensors[node.name] = result[0]
                tensors.update((f"{node.name}.{p}", t) for p, t in zip(node.ports, result[1:]))
            else:
                tensors[node.name] = result
        except Exception as exc:   # Keras or its backend refused the layer: locate it
            name, type_ = graph.origins[node.origin]
            message = f"layer {name!r} ({type_}) cannot be built: {keras_reason(exc)}"
            raise SpecError([graph.diagnose(("layers", node.origin), message, "build")]) from None
    outputs = [tensors[n] for n in (*graph.output_nodes, *graph.tap_outputs)]
    model = SpecModel(inputs=inputs[0] if len(inputs) == 1 else inputs,
                      outputs=outputs[0] if len(outputs) == 1 else outputs,
                      name=graph.name, specc=meta(graph))
    if graph.compile.weights_file is not None:
        _load_weights(graph, model)
    if compile:
        try:
            model.compile(**compile_args(graph))
        except (ValueError, TypeError) as exc:
            raise SpecError([graph.diagnose(("loss",), "the model cannot be compiled: "
                                            f"{keras_reason(exc)}", "build")]) from None
    return model
