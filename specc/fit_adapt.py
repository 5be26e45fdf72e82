"""Preprocessing that learns from data: `specc fit` adapts, before the first step, every
`Normalization` without `mean`/`variance` (and no weights file to give them), and every
`StringLookup` and `TextVectorization` without a `vocabulary`, on the training data (Keras's
`adapt`, fed batch by batch: memory is one batch, plus what the layer learns).

A layer on a model input reads that input's batches; a layer deeper in the model reads what
the model computes up to it (a sub-model from the inputs to the layer's input, run batch by
batch on the layers already adapted). Layers are adapted in graph order, so a Normalization
after a TextVectorization sees the adapted ids. The state is part of the model: Normalization's
mean, variance and count are its weights; the lookups' vocabularies go into the `.keras`
file's assets.
"""
from __future__ import annotations

from dataclasses import replace
from typing import Any, Callable, Final, Iterator

from specc.errors import Diagnostic, SpecError, UsageError, keras_reason, quote
from specc.graph import Graph, Node

#: The layer types `adapt` learns a state for.
ADAPTABLE: Final = ("Normalization", "StringLookup", "TextVectorization")


def to_adapt(graph: Graph) -> list[Node]:
    """The nodes whose layer learns its state from the data, in graph order: a Normalization
    without statistics (unless the spec's weights file gives them), a StringLookup or
    TextVectorization without a vocabulary."""
    out = []
    for node in graph.nodes:
        if node.op not in ADAPTABLE or node.shares is not None:
            continue
        if node.op == "Normalization":
            if "mean" not in node.kwargs and graph.compile.weights_file is None:
                out.append(node)
        elif "vocabulary" not in node.kwargs:
            out.append(node)
    return out


def unadapted_warnings(graph: Graph) -> list[Diagnostic]:
    """What `specc build` says of a model whose layers are not adapted yet: a located warning
    for each (Keras's initial state: a Normalization's mean 0 and variance 1; a lookup without
    a vocabulary fails at its first call, 'Table not initialized')."""
    out = []
    for node in to_adapt(graph):
        name, type_ = graph.origins[node.origin]
        state = "mean and variance" if node.op == "Normalization" else "vocabulary"
        message = (f"layer {quote(name)} ({type_}) has no {state}: `specc fit` adapts it on "
                   "the training data; the model built here needs layer.adapt before use")
        out.append(replace(graph.diagnose(("layers", node.origin), message, "unadapted"),
                           severity="warning"))
    return out


def adapt(model: Any, graph: Graph, data: Any, where: str,
          processes: int = 1) -> list[str]:
    """Adapt the model's layers listed by `to_adapt` on `data` (the training batches: an
    ArrayFeed, a tf.data.Dataset, a PyDataset or another iterable that can be read twice);
    one line per layer saying what it learned. `where`: the data as the user named it."""
    nodes = to_adapt(graph)
    if not nodes:
        return []
    _check_adaptable(graph, nodes, processes)
    import keras

    inputs = [name for name, _, _ in graph.inputs]
    lines = []
    for node in nodes:
        layer = model.get_layer(node.name)
        source = node.reads[0]
        if source in inputs:
            def take(x: dict[str, Any], source: str = source) -> Any:
                return x[source]
        else:                       # what the model computes up to the layer's input
            sub = keras.Model(model.inputs, layer.input)

            def take(x: dict[str, Any], sub: Any = sub) -> Any:
                return sub.predict_on_batch(x if len(inputs) > 1 else x[inputs[0]])
        counter = [0]
        try:
            layer.adapt(_batches(data, inputs, take, counter, where))
        except (UsageError, SpecError):
            raise
        except Exception as exc:        # Keras refused the values (dtype, shape)
            name, type_ = graph.origins[node.origin]
            raise UsageError(f"{where}: cannot adapt layer {quote(name)} ({type_}) on it: "
                             f"{keras_reason(exc)}") from None
        lines.append(_learned(graph, node, layer, counter[0]))
    return lines


def _check_adaptable(graph: Graph, nodes: list[Node], processes: int) -> None:
    """What adapt cannot do, as located errors: a shared layer (which of its inputs?), a
    string layer off the TensorFlow backend; several processes, as a usage error."""
    import keras

    shared = {n.shares for n in graph.nodes if n.shares is not None}
    problems = []
    for node in nodes:
        name, type_ = graph.origins[node.origin]
        if node.name in shared:
            problems.append(graph.diagnose(("layers", node.origin), (
                f"layer {quote(name)} ({type_}) is called more than once (share): adapt would "
                "learn from one of its inputs only; give its statistics or vocabulary"),
                "build"))
        elif node.op != "Normalization" and keras.backend.backend() != "tensorflow":
            problems.append(graph.diagnose(("layers", node.origin), (
                f"layer {quote(name)} ({type_}) computes on strings, which only the tensorflow "
                f"backend runs in a model (this is {keras.backend.backend()})"), "build"))
    if problems:
        raise SpecError(problems)
    if processes > 1:
        raise UsageError("several processes: the layers to adapt ("
                         + ", ".join(quote(graph.origins[n.origin][0]) for n in nodes)
                         + ") would each learn from one process's share; give their "
                         "statistics or vocabulary in the spec, or train in one process")


def _batches(data: Any, inputs: list[str], take: Callable[[dict[str, Any]], Any],
             counter: list[int], where: str) -> Iterator[Any]:
    """`take(x)` of each batch's inputs `x` (by input name), counting the samples."""
    for x in _input_batches(data, where):
        if not isinstance(x, dict):
            x = dict(zip(inputs, x)) if isinstance(x, (list, tuple)) else {inputs[0]: x}
        values = take(x)
        counter[0] += int(values.shape[0])
        yield values


def _input_batches(data: Any, where: str) -> Iterator[Any]:
    """The inputs of each batch of `data`, read once from the start."""
    import keras

    if isinstance(data, keras.utils.PyDataset):
        count = data.num_batches
        if count is None:
            raise UsageError(f"{where}: an endless PyDataset cannot be read once through to "
                             "adapt the preprocessing layers; give it a num_batches")
        batches: Any = (data[i] for i in range(count))
    elif hasattr(data, "element_spec") or (hasattr(data, "__iter__") and iter(data) is not data):
        batches = iter(data)           # a tf.data.Dataset, a torch DataLoader: read anew
    else:
        raise UsageError(f"{where}: gives a {type(data).__name__}, which can be read only "
                         "once, and adapting the preprocessing layers reads it before training; "
                         "return a tf.data.Dataset or a keras.utils.PyDataset")
    for batch in batches:
        yield batch[0] if isinstance(batch, (tuple, list)) else batch


def _learned(graph: Graph, node: Node, layer: Any, samples: int) -> str:
    name, type_ = graph.origins[node.origin]
    if node.op == "Normalization":
        what = "mean and variance"
    else:
        what = f"a vocabulary of {layer.vocabulary_size():,} entries"
    return f"adapted layer {quote(name)} ({type_}) on {samples:,} training samples: {what}"


def adapt_for_fit(model: Any, graph: Graph, feeds: Any, options: Any) -> None:
    """`specc fit`'s hook: adapt on the run's training data (never the validation set),
    in order, before the first step; print what each layer learned."""
    from specc.runtime.deep import deep_call

    data = feeds.measure_train if feeds.measure_train is not None else feeds.train
    processes = options.share[1] if options.share else 1
    where = str(options.data or "the synthetic data")
    for line in deep_call(adapt, model, graph, data, where, processes,
                          layers=len(graph.nodes)):
        print(line, flush=True)
