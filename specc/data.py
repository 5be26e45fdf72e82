"""Data for `specc fit`: a user's .npz file, or a seeded synthetic set shaped like the spec.

The synthetic set needs no download and is learnable: every sample belongs to one of K
classes (K from the first classification output), inputs are the class's prototype plus
noise, and each output's target follows from the class (one-hot, class id, parity) or, for a
regression output, from a fixed random teacher of the first input.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Final

import numpy as np

from specc.graph import Graph

CLASSIFICATION: Final = ("categorical_crossentropy", "categorical_focal_crossentropy",
                         "categorical_hinge", "kl_divergence")
SPARSE: Final = ("sparse_categorical_crossentropy",)
BINARY: Final = ("binary_crossentropy", "binary_focal_crossentropy", "hinge", "squared_hinge")

Arrays = dict[str, np.ndarray]


def _loss_name(graph: Graph, output: str) -> str:
    loss = graph.spec.loss_for(output)
    return loss if isinstance(loss, str) else loss.type


def _vocabulary(graph: Graph, input_name: str) -> int:
    for layer in graph.spec.layers:
        src = layer.from_
        reads = [src] if isinstance(src, str) else (src or [])
        if layer.type == "Embedding" and (input_name in reads or (
                src is None and graph.spec.layers[0] is layer)):
            return int(layer.input_dim)
    return 10


def synthetic(graph: Graph, output_shapes: dict[str, tuple[int, ...]], n: int = 2048,
              seed: int = 0) -> tuple[Arrays, Arrays]:
    """(inputs, targets) keyed by the spec's input and output names."""
    rng = np.random.RandomState(seed)
    k = 2
    for out in graph.outputs:
        if _loss_name(graph, out) in CLASSIFICATION + SPARSE:
            k = int(output_shapes[out][-1])
            break
    labels = rng.randint(0, k, n)
    x: Arrays = {}
    for name, shape, dtype in graph.inputs:
        shape = tuple(s or 8 for s in shape)
        if dtype.startswith("int"):
            vocab = _vocabulary(graph, name)
            offsets = rng.randint(0, max(1, vocab // 4), (n, *shape))
            x[name] = ((labels.reshape((n,) + (1,) * len(shape)) * 7 + offsets) % vocab).astype(dtype)
        else:
            prototypes = rng.randn(k, *shape).astype("float32")
            x[name] = (0.2 * prototypes[labels] + rng.randn(n, *shape)).astype(dtype)
    first = next(iter(x.values())).reshape(n, -1).astype("float32")
    y: Arrays = {}
    for out in graph.outputs:
        shape = tuple(output_shapes[out])
        loss = _loss_name(graph, out)
        if loss in SPARSE:
            y[out] = (labels % shape[-1]).astype("int32")
        elif loss in CLASSIFICATION:
            y[out] = np.eye(shape[-1], dtype="float32")[labels % shape[-1]]
            y[out] = y[out].reshape((n, *shape))
        elif loss in BINARY:
            y[out] = np.broadcast_to((labels % 2).reshape((n,) + (1,) * len(shape)),
                                     (n, *shape)).astype("float32")
        else:
            teacher = rng.randn(first.shape[1], int(np.prod(shape))).astype("float32")
            y[out] = np.tanh(first @ teacher / np.sqrt(first.shape[1])).reshape((n, *shape))
    return x, y


def load_npz(path: str | Path, graph: Graph) -> tuple[Arrays, Arrays]:
    """Arrays named after the spec's inputs and outputs; a clear error names what is missing."""
    from specc.errors import UsageError

    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {k: archive[k] for k in archive.files}
    except (OSError, ValueError) as exc:
        raise UsageError(f"{path}: cannot read it as .npz ({exc})") from None
    names = [n for n, _, _ in graph.inputs] + list(graph.outputs)
    missing = [n for n in names if n not in arrays]
    if missing:
        raise UsageError(f"{path}: no array named {', '.join(missing)} "
                         f"(it has: {', '.join(sorted(arrays)) or 'none'})")
    sizes = {len(arrays[n]) for n in names}
    if len(sizes) != 1:
        raise UsageError(f"{path}: the arrays have different numbers of samples {sorted(sizes)}")
    return ({n: arrays[n] for n, _, _ in graph.inputs}, {o: arrays[o] for o in graph.outputs})
