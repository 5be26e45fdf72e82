"""`specc fit`'s measures: each activation clause's rate-free measure of the tensor it
penalizes, taken once over a data set or every epoch over the training and validation data."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np

from specc.graph import Graph, Term


@dataclass(frozen=True)
class Measure:
    """One clause's measure of the tensor it penalizes: `what` (a formula) = `value`."""

    clause: str
    kind: str
    layer: str
    at: str
    what: str
    value: float
    data: str                        # "validation" or "training": the samples it is taken on

    def __str__(self) -> str:
        return (f"{self.clause} ({self.kind}) on {self.layer} [{self.at}], without the rate: "
                f"{self.what} = {self.value:.6g} ({self.data} data)")


@dataclass
class FitResult:
    history: dict[str, list[float]]
    measures: list[Measure]         # each activation clause's measure (l1_l2: two)
    out_dir: Path


def _output_shapes(model: Any) -> dict[str, tuple[int, ...]]:
    """Each declared output's shape per sample. A variable axis (a sequence of any length)
    takes its size from one call on two synthetic samples, whose variable input axes are 8
    long, as in the synthetic data."""
    declared = model._specc["declared"]
    outs = model.outputs[: len(declared)]
    shapes = {name: tuple(t.shape[1:]) for name, t in zip(declared, outs)}
    if all(d is not None for shape in shapes.values() for d in shape):
        return {name: tuple(int(d) for d in shape) for name, shape in shapes.items()}

    probe = [np.zeros((2, *(d or 8 for d in t.shape[1:])), dtype=t.dtype) for t in model.inputs]
    results = model(probe if len(probe) > 1 else probe[0], training=False)
    results = results if isinstance(results, (list, tuple)) else [results]
    return {name: tuple(int(d) for d in r.shape[1:]) for name, r in zip(declared, results)}


#: What each built-in kind measures once its rate is taken out (catalog formulas, shortened).
MEASURED: Final[dict[str, str]] = {
    "l1": "mean_i Σ_j |a_ij|",
    "l2": "mean_i Σ_j a_ij²",
    "mean_abs": "mean over all i, j of |a_ij|",
    "kl_sparsity": "Σ_j KL(ρ ‖ ρ̂_j), ρ̂_j = mean_i a_ij",
    "decorrelation": "mean over pairs i ≠ k of cos(a_i, a_k)",
    "ar": "mean over i, t, u of a_itu²",
    "tar": "mean over i, t ≥ 1, u of (a_itu − a_i(t−1)u)²",
}


def _unit_measures(term: Term) -> list[tuple[str, dict[str, Any]]]:
    """(what it is, parameters) of each measure of a clause: its kind with the rate 1,
    averaged over the samples (`reduction: sum` aside); a plugin's own term as it is."""
    p = dict(term.params)
    if term.kind in ("l1", "l2"):
        return [(MEASURED[term.kind], {**p, "rate": 1.0, "reduction": "mean"})]
    if term.kind == "l1_l2":
        return [(MEASURED["l1"], {**p, "l1": 1.0, "l2": 0.0, "reduction": "mean"}),
                (MEASURED["l2"], {**p, "l1": 0.0, "l2": 1.0, "reduction": "mean"})]
    if term.kind in MEASURED:
        return [(MEASURED[term.kind], {**p, "rate": 1.0})]
    return [("the plugin's term, rate included, over all samples as one batch", p)]


def measures(model: Any, graph: Graph, x: Any, data: str = "validation") -> list[Measure]:
    """Each activation clause's measure of the tensor it looks at (spec layer, at), taken over
    all of `x` at once (batch statistics too)."""
    import keras

    from specc.runtime import terms

    taps = [model.get_layer(graph.sources[term.name]).output for term in graph.terms]
    if not taps:
        return []
    # a masked tensor's mask comes out beside it: every kind leaves masked steps out
    masks = [terms.mask_of(t) for t in taps]
    outputs = taps + [m for m in masks if m is not None]
    probe = keras.Model(model.inputs, outputs, name=f"{graph.name}_probe")
    values = probe.predict(x, verbose=0, batch_size=256)
    values = values if isinstance(values, list) else [values]
    found = iter(values[len(taps):])
    out = []
    for term, a, mask in zip(graph.terms, values, [None if m is None else next(found)
                                                   for m in masks]):
        for what, params in _unit_measures(term):
            clause = {**term.config(), "params": params}   # `mask: false` kept
            value = float(keras.ops.convert_to_numpy(terms.activity_term(clause, a, mask)))
            out.append(Measure(term.name, term.kind, term.layer, term.at, what, value, data))
    return out


def measure_keys(graph: Graph) -> list[tuple[str, Any, str, dict[str, Any]]]:
    """(history key, term, formula, parameters) of each rate-free measure: `<clause>_measure`
    (`l1_l2`: `<clause>_l1_measure` and `<clause>_l2_measure`)."""
    out = []
    for term in graph.terms:
        units = _unit_measures(term)
        for i, (what, params) in enumerate(units):
            part = "" if len(units) == 1 else f"_{'l1' if i == 0 else 'l2'}"
            out.append((f"{term.name}{part}_measure", term, what, params))
    return out


def measure_probe(model: Any, graph: Graph) -> Any:
    """A model from the inputs to every rate-free measure, each repeated per sample of the
    batch (shape (B, 1)), whose `evaluate` averages them over the samples (a keras.metrics.Mean
    per measure, named by its history key): the mean of the per-batch measures weighted by
    batch size, read in bounded memory. For the kinds averaged over samples (l1, l2, mean_abs,
    ar, tar without a mask) that is the measure over the whole set; for batch statistics
    (kl_sparsity, decorrelation) and masked sequences, the mean of the batch values, as
    training sees them. Being Keras's evaluate, it runs wherever training does: with several
    processes (a keras.distribution), every process feeds its share of each global batch and
    all of them get the measures over the global data."""
    import keras
    from keras import ops

    from specc.runtime import terms

    keys = measure_keys(graph)
    if not keys:
        return None
    taps = [model.get_layer(graph.sources[term.name]).output for term in graph.terms]
    masks = [terms.mask_of(t) for t in taps]
    clauses = [({**term.config(), "params": params}, graph.terms.index(term))
               for _, term, _, params in keys]

    class Measures(keras.layers.Layer):
        def call(self, inputs: Any) -> Any:
            found = iter(inputs[len(taps):])
            given = [None if m is None else next(found) for m in masks]
            batch = ops.shape(inputs[0])[0]
            out = []
            for clause, i in clauses:
                value = terms.activity_term(clause, inputs[i], given[i])
                out.append(ops.broadcast_to(ops.reshape(ops.cast(value, "float32"), (1, 1)),
                                            (batch, 1)))
            return out

        def compute_output_shape(self, shapes: Any) -> Any:
            return [(shapes[0][0], 1) for _ in clauses]

    class MeasureProbe(keras.Model):
        """Its loss is 0; its metrics are the measures' means (Keras's hooks, on every
        backend: compute_loss, compute_metrics)."""

        def __init__(self, inputs: Any, outputs: Any) -> None:
            super().__init__(inputs, outputs, name=f"{graph.name}_measures")
            self.means = [keras.metrics.Mean(name=key) for key, _, _, _ in keys]

        def compute_loss(self, x: Any = None, y: Any = None, y_pred: Any = None,
                         sample_weight: Any = None, training: bool = True) -> Any:
            return ops.zeros((), dtype="float32")

        def compute_metrics(self, x: Any, y: Any, y_pred: Any, sample_weight: Any = None
                            ) -> Any:
            for mean, value in zip(self.means, keras.tree.flatten(y_pred)):
                mean.update_state(value)
            return self.get_metrics_result()

    outputs = Measures(name="specc_measures")(taps + [m for m in masks if m is not None])
    probe = MeasureProbe(model.inputs, outputs)
    probe.compile()
    return probe


def take_measures(probe: Any, keys: list[str], data: Any) -> dict[str, float]:
    """Each measure over `data` (batches), summed batch by batch."""
    logs = probe.evaluate(data, verbose=0, return_dict=True)
    return {k: float(logs[k]) for k in keys}


def epoch_measures(probe: Any, graph: Graph, train: Any, val: Any) -> Any:
    """A callback adding each measure on the training data (`<key>`) and the validation data
    (`val_<key>`) to the epoch's logs, before the CSV, TensorBoard and History see them."""
    import keras

    keys = [k for k, _, _, _ in measure_keys(graph)]

    class EpochMeasures(keras.callbacks.Callback):
        def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
            if logs is None:
                return
            if train is not None:
                logs.update(take_measures(probe, keys, train))
            if val is not None:
                logs.update({f"val_{k}": v for k, v in take_measures(probe, keys, val).items()})

    return EpochMeasures()
