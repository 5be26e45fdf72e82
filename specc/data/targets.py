"""What a target looks like for each loss, and a seeded synthetic set shaped like the spec.

The synthetic set needs no download and is learnable: every sample belongs to one of K
classes (K from the first classification output), inputs are the class's prototype plus
noise, and each output's target follows from the class (one-hot, class id, parity) or, for a
regression output, from a fixed random teacher of the first input.
"""
from __future__ import annotations

from typing import Any, Final, Literal

from specc.errors import UsageError
from specc.graph import Graph

#: What a target looks like for each loss: one-hot rows, class ids, 0/1, positive values;
#: any other loss is a regression ("real").
TargetKind = Literal["one_hot", "class_ids", "binary", "positive", "real"]
_TARGET_KINDS: Final[dict[str, TargetKind]] = {
    **dict.fromkeys(("categorical_crossentropy", "categorical_focal_crossentropy",
                     "categorical_hinge", "kl_divergence"), "one_hot"),
    "sparse_categorical_crossentropy": "class_ids",
    **dict.fromkeys(("binary_crossentropy", "binary_focal_crossentropy", "hinge",
                     "squared_hinge"), "binary"),
    **dict.fromkeys(("poisson", "mean_squared_logarithmic_error", "msle",
                     "mean_absolute_percentage_error", "mape"), "positive"),
}

Arrays = dict[str, Any]


def loss_name(loss: Any) -> str:
    """A spec loss (a name or a LossSpec; None for an output without one) as its name."""
    if loss is None:
        return ""
    return loss if isinstance(loss, str) else str(loss.type)


def target_kind(graph: Graph, output: str) -> TargetKind:
    return _TARGET_KINDS.get(loss_name(graph.spec.loss_for(output)), "real")


def int_bound(graph: Graph, input_name: str, default: int) -> int:
    """Exclusive upper bound for an integer input: the smallest Embedding it reaches."""
    reached, dims = {input_name}, []
    for node in graph.nodes:                       # nodes are in topological order
        if reached.intersection(node.reads):
            reached.add(node.name)
            if node.op == "Embedding":
                dims.append(int(node.kwargs["input_dim"]))
    return min(dims) if dims else default


def synthetic(graph: Graph, output_shapes: dict[str, tuple[int, ...]], n: int = 2048,
              seed: int = 0) -> tuple[Arrays, Arrays]:
    """(inputs, targets) keyed by the spec's input and output names."""
    import numpy as np

    rng = np.random.RandomState(seed)
    k = 2
    for out in graph.outputs:
        if target_kind(graph, out) in ("one_hot", "class_ids"):
            k = int(output_shapes[out][-1])
            break
    labels = rng.randint(0, k, n)
    x: Arrays = {}
    for name, shape, dtype in graph.inputs:
        if dtype == "string":
            raise UsageError(f"input {name!r} is a string input, and specc makes no synthetic "
                             "text: give --data (a folder of .txt files by class, or "
                             "module:function)")
        shape = tuple(s or 8 for s in shape)
        # float or bool ids reaching an Embedding (Keras casts them): whole numbers it reads
        ids_bound = None if dtype.startswith("int") else embedding_bound(graph, name)
        if dtype.startswith("int") or ids_bound:
            vocab = (int_bound(graph, name, default=10) if ids_bound is None else
                     min(ids_bound, _EXACT_IDS.get(dtype, ids_bound)))
            offsets = rng.randint(0, max(1, vocab // 4), (n, *shape))
            x[name] = ((labels.reshape((n,) + (1,) * len(shape)) * 7 + offsets) % vocab).astype(dtype)
        else:
            prototypes = rng.randn(k, *shape).astype("float32")
            x[name] = (0.2 * prototypes[labels] + rng.randn(n, *shape)).astype(dtype)
    first = next(iter(x.values())).reshape(n, -1).astype("float32")
    y: Arrays = {}
    for out in graph.outputs:
        shape = tuple(output_shapes[out])
        kind = target_kind(graph, out)
        # a class per sample, the same at every position of a sequence output
        ids = np.broadcast_to((labels % shape[-1]).reshape((n,) + (1,) * (len(shape) - 1)),
                              (n, *shape[:-1]))
        if kind == "class_ids":
            y[out] = ids.astype("int32")
        elif kind == "one_hot":
            y[out] = np.eye(shape[-1], dtype="float32")[ids]
        elif kind == "binary":
            y[out] = np.broadcast_to((labels % 2).reshape((n,) + (1,) * len(shape)),
                                     (n, *shape)).astype("float32")
        else:
            teacher = rng.randn(first.shape[1], int(np.prod(shape))).astype("float32")
            y[out] = np.tanh(first @ teacher / np.sqrt(first.shape[1])).reshape((n, *shape))
    return x, y


#: Ids a float or bool input holds exactly: past these, float16/bfloat16 round (maybe up to


#: the Embedding's input_dim); bool holds 0 and 1.
_EXACT_IDS: Final = {"bool": 2, "float16": 2048, "bfloat16": 256}


def embedding_bound(graph: Graph, input_name: str) -> int | None:
    """The exclusive bound on an integer input's ids, if it reaches an Embedding."""
    bound = int_bound(graph, input_name, default=0)
    return bound or None
