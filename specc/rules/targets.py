"""Losses and metrics: each metric reads the targets its output's loss reads; a sparse loss
needs classes to tell apart."""
from __future__ import annotations

from typing import Final, Iterator, Optional

from specc.budget import of_context
from specc.context import Context, Problem
from specc.errors import quote
from specc.rules.common import loss_name
from specc.spec.model import LossSpec


#: What a target (y) looks like. "ids": a class id per sample, shape (batch,) or (batch, 1);
#: "like": the prediction's own shape (one-hot rows, 0/1 labels, real values).
SPARSE: Final = "ids"


DENSE: Final = "like"


#: Losses that take class ids; every other loss takes targets shaped like the prediction.
LOSS_TARGETS: Final[dict[str, str]] = {"sparse_categorical_crossentropy": SPARSE}


#: Metrics that take class ids; `accuracy` adapts to the targets (Keras picks binary,
#: categorical or sparse_categorical accuracy); every other metric takes targets shaped
#: like the prediction.
METRIC_TARGETS: Final[dict[str, Optional[str]]] = {
    "sparse_categorical_accuracy": SPARSE, "sparse_top_k_categorical_accuracy": SPARSE,
    "sparse_categorical_crossentropy": SPARSE, "accuracy": None,
}


_WORDS: Final = {SPARSE: "class ids", DENSE: "targets shaped like the prediction (one-hot "
                 "rows, 0/1 labels or values)"}


def check_class_counts(ctx: Context) -> Iterator[Problem]:
    """A sparse (class-id) loss reads the output's last axis as the classes: it needs two."""
    if not ctx.graph_ok:
        return
    shapes = {size.name: size.shape for size in of_context(ctx).sizes}
    for out in ctx.spec.outputs:
        loss = loss_name(ctx.spec.loss_for(out))
        shape = shapes.get(out)
        if LOSS_TARGETS.get(loss) == SPARSE and shape and shape[-1] is not None \
                and shape[-1] < 2:
            path = ("loss", out) if isinstance(ctx.spec.loss, dict) else ("loss",)
            yield (path, f"loss {quote(loss)} reads the last axis of output {quote(out)} as "
                   f"the classes, but it has {shape[-1]}: give the output one unit per class "
                   "(at least 2), or use binary_crossentropy for one yes/no output", "loss")


def check_loss_metrics(ctx: Context) -> Iterator[Problem]:
    """Each metric must read the targets its output's loss reads (LOSS_TARGETS,
    METRIC_TARGETS): a sparse loss with a one-hot metric fails or measures nothing."""
    spec = ctx.spec
    metrics = spec.metrics
    keyed = isinstance(metrics, dict)
    per_output = metrics if keyed else {o: metrics for o in spec.outputs}
    reported: set[tuple] = set()
    for out, names in per_output.items():
        loss = loss_name(spec.loss_for(out))
        if loss is None or not isinstance(spec.loss_for(out), (str, LossSpec)):
            continue                        # a plugin's loss: the targets it reads are its own
        wants = LOSS_TARGETS.get(loss, DENSE)
        for k, metric in enumerate(names):
            if not isinstance(metric, str):
                continue                    # a plugin's metric, likewise
            takes = METRIC_TARGETS.get(metric, DENSE)
            path = ("metrics", out, k) if keyed else ("metrics", k)
            if takes is None or takes == wants or path in reported:
                continue
            reported.add(path)
            alt = ("sparse_categorical_accuracy" if wants == SPARSE else
                   "categorical_accuracy" if metric.startswith("sparse_categorical") else
                   "accuracy")
            yield (path, f"metric {quote(metric)} reads {_WORDS[takes]}, but the loss "
                   f"{quote(loss)} of output {quote(out)} reads {_WORDS[wants]}; use a metric "
                   f"that reads the same targets (e.g. {alt!r})", "metric")
