"""The source model against the spec's build: structure, parameters, outputs."""
from __future__ import annotations

from typing import Any, Sequence

from specc.importer.base import _CONTAINERS

def _texts(source: Any, rng: Any, shape: tuple[int, ...]) -> Any:
    """Strings for a string input: one to four words each, drawn from the vocabularies of
    the model's lookup layers and one word none holds (ids in and out of vocabulary)."""
    import numpy as np

    words = ["zzyzx"]
    for layer in source._flatten_layers(include_self=False):
        if hasattr(layer, "get_vocabulary"):
            words += [str(t) for t in layer.get_vocabulary(include_special_tokens=False)][:50]
    texts = [" ".join(rng.choice(words, rng.integers(1, 5))) for _ in range(int(np.prod(shape)))]
    return np.array(texts, dtype=object).reshape(shape)


def same_batch_outputs(source: Any, built: Any, seed: int = 0,
                       batch: int = 2) -> tuple[list[Any], list[Any]]:
    """The outputs (flattened, in the models' output order) of the source model and of the
    spec's build on one random batch; the build gets the inputs its spec kept, by name."""
    import keras
    import numpy as np

    rng = np.random.default_rng(seed)
    xs = [_texts(source, rng, (batch, *[d or 8 for d in t.shape[1:]])) if t.dtype == "string"
          else rng.standard_normal((batch, *[d or 8 for d in t.shape[1:]])).astype(str(t.dtype))
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
            batch: int = 2, renamed: dict[str, str] | None = None) -> dict[str, Any]:
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
        "structure": {(renamed or {}).get(k, k): v for k, v in owners(source).items()
                      if k not in in_spec}
                     == owners(built),
        "params": (source.count_params(), built.count_params()),
        "trainable": (sum(int(np.prod(w.shape)) for w in source.trainable_weights),
                      sum(int(np.prod(w.shape)) for w in built.trainable_weights)),
        "outputs": len(src) == len(spec) and all(a.shape == b.shape for a, b in zip(src, spec)),
        "max_rel_diff": worst,
    }

