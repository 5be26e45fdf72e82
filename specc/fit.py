"""`specc fit`: train a spec on data, with the loss broken down by term, and keep the record.

Writes to the output folder: history.csv (CSVLogger, per epoch), history.json, tensorboard/,
model.keras, losses.png (every term per epoch, train and validation), and prints for each
activation clause its own measure of the tensor it penalizes: the kind's formula without the
rate (for l2, mean_i Σ_j a_ij²; for mean_abs, the mean |a_ij|), on the validation data.
A run whose loss or weights become NaN or infinite stops and writes nothing.
"""
from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np

from specc.artifacts import (
    WORK_PREFIX, clean_stale, cleanup_on_sigterm, save_model, write_atomic, write_with,
)
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
    import numpy as np

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


def plot(history: dict[str, list[float]], terms: list[str], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    keys = [k for k in ["loss", "task_loss", *terms] if history.get(k)]
    # a scheduled rate's curve (`<clause>_rate`, `_l1`, `_l2`), after the terms
    keys += [f"{t}_{p}" for t in terms for p in ("rate", "l1", "l2") if history.get(f"{t}_{p}")]
    keys += [k for k in history if k.endswith("_loss_weight") and not k.startswith("val_")]
    if not keys:
        return
    cols = min(3, len(keys))
    rows = -(-len(keys) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.2 * rows), squeeze=False)
    epochs = np.arange(1, len(history[keys[0]]) + 1)
    for ax, key in zip(axes.flat, keys):
        ax.plot(epochs, history[key], marker="o", label="train")
        if f"val_{key}" in history:
            ax.plot(epochs, history[f"val_{key}"], marker="s", label="validation")
        ax.set_title(key)
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small")
    for ax in list(axes.flat)[len(keys):]:
        ax.axis("off")
    fig.suptitle(title)
    fig.tight_layout()
    write_with(path, lambda tmp: fig.savefig(tmp, dpi=110, format="png"))
    plt.close(fig)


class Diverged(Exception):
    """Training produced a non-finite loss or weights; nothing was written."""


@dataclass(frozen=True)
class FitOptions:
    """How `specc fit` trains: the command's options, checked once (`check`)."""

    data: str | None = None              # a .npz file; None: synthetic data
    epochs: int = 5
    batch_size: int = 64
    samples: int = 2048                  # synthetic samples
    validation_split: float = 0.2
    verbose: int | str = "auto"
    allow_nonfinite: bool = False
    max_data_bytes: int | None = None    # None: specc.data.MAX_DATA_BYTES
    share: tuple[int, int] | None = None  # (process id, process count): data-parallel

    def check(self) -> None:
        from specc.errors import UsageError

        for what, value in (("--epochs", self.epochs), ("--batch-size", self.batch_size),
                            ("--samples", self.samples)):
            if value < 1:
                raise UsageError(f"{what} {value}: give a whole number of at least 1")
        if not 0.0 <= self.validation_split < 1.0:
            raise UsageError(f"validation split {self.validation_split}: give a fraction in "
                             "[0, 1)")


def fit(graph: Graph, out_dir: str | Path, options: FitOptions = FitOptions(),
        strategy: Any = None, arrays: tuple[Any, Any] | None = None) -> FitResult:
    """Train `graph` and write its records to `out_dir`: all of them, or none if it fails.

    `options.share=(process_id, num_processes)`: data-parallel training (a keras.distribution
    set by the caller): only whole global batches of `batch_size` are used, and this process
    feeds its share of each (see `process_share`). `strategy`: a tf.distribute strategy whose
    scope the model is built in. `arrays`: what `read_data(graph, options)` returned, when
    the caller read the data first (the CLI does, before Keras starts)."""
    from specc.errors import UsageError

    options.check()
    out = Path(out_dir)
    created = not out.exists()
    try:
        out.mkdir(parents=True, exist_ok=True)
        clean_stale(out)
        work = Path(tempfile.mkdtemp(prefix=f"{WORK_PREFIX}{os.getpid()}-", dir=out))
    except OSError as exc:
        raise UsageError(f"--out {out_dir}: cannot write there ({exc.strerror or exc})") from None
    try:
        with cleanup_on_sigterm():
            result = _fit(graph, work, options, strategy, arrays)
            _publish(work, out)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        if created and out.is_dir() and not any(out.iterdir()):
            out.rmdir()
        raise
    shutil.rmtree(work, ignore_errors=True)
    result.out_dir = out
    return result


def _publish(work: Path, out: Path) -> None:
    """Move a finished run's records into `out`, each replacing the previous one."""
    for item in work.iterdir():
        target = out / item.name
        if target.is_dir() and not target.is_symlink():
            shutil.rmtree(target)
        os.replace(item, target)


class _StopOnNonFinite:
    """Stops training at the first batch whose running loss is NaN or infinite and remembers
    where (1-based epoch and batch). A keras.callbacks.Callback, made when Keras is imported."""

    @staticmethod
    def make() -> Any:
        import keras

        class StopOnNonFinite(keras.callbacks.Callback):
            def __init__(self) -> None:
                super().__init__()
                self.epoch = 0
                self.where: tuple[int, int, float] | None = None

            def on_epoch_begin(self, epoch: int, logs: Any = None) -> None:
                self.epoch = epoch

            def on_train_batch_end(self, batch: int, logs: Any = None) -> None:
                loss = (logs or {}).get("loss")
                if loss is None or self.where is not None:
                    return
                value = float(loss)
                if not math.isfinite(value):
                    self.where = (self.epoch + 1, batch + 1, value)
                    self.model.stop_training = True

        return StopOnNonFinite()


def read_data(graph: Graph, options: FitOptions) -> tuple[Any, Any]:
    """The `--data` arrays (inputs, targets), checked against the plan; (None, None) for
    synthetic data. NumPy only: a command reads and checks its data before Keras starts."""
    from specc.data import MAX_DATA_BYTES, load_npz

    if options.data is None:
        return None, None
    limit = MAX_DATA_BYTES if options.max_data_bytes is None else options.max_data_bytes
    return load_npz(options.data, graph, allow_nonfinite=options.allow_nonfinite,
                    max_bytes=limit)


def _fit(graph: Graph, out: Path, options: FitOptions, strategy: Any,
         arrays: tuple[Any, Any] | None) -> FitResult:
    """Train, writing every record into `out` (a temporary folder until the run succeeds)."""
    data, epochs, batch_size, share = options.data, options.epochs, options.batch_size, options.share
    x, y = arrays if arrays is not None else read_data(graph, options)  # before Keras starts
    import keras

    from specc.data import check_targets, synthetic
    from specc.errors import UsageError
    from specc.runtime import emit
    from specc.runtime.deep import deep_call

    if strategy is not None:
        with strategy.scope():
            model = emit(graph)
    else:
        model = emit(graph)
    if x is None:
        x, y = synthetic(graph, _output_shapes(model), n=options.samples, seed=graph.seed or 0)
    else:
        check_targets(y, graph, _output_shapes(model), str(data))
    n = len(next(iter(x.values())))
    n_val = int(n * options.validation_split)
    split = n - n_val
    train = ({k: v[:split] for k, v in x.items()}, {k: v[:split] for k, v in y.items()})
    val = ({k: v[split:] for k, v in x.items()}, {k: v[split:] for k, v in y.items()})
    shuffle = True
    if share is not None:
        process, processes = share
        if batch_size % processes:
            raise UsageError(f"--batch-size {batch_size}: give a multiple of the process "
                             f"count {processes} (each process feeds an equal share)")
        order = np.random.default_rng(graph.seed or 0).permutation(split)
        train = process_share(train, order, batch_size, process, processes)
        val = process_share(val, np.arange(n_val), batch_size, process, processes)
        if not len(next(iter(train[1].values()))):
            raise UsageError(f"{split} training samples: fewer than one global batch of "
                             f"{batch_size}")
        n_val = len(next(iter(val[1].values())))
        batch_size //= processes
        shuffle = False       # every process feeds the same seeded order (the same each epoch)
    watch = _StopOnNonFinite.make()
    callbacks = [watch, keras.callbacks.CSVLogger(str(out / "history.csv")),
                 keras.callbacks.TensorBoard(log_dir=str(out / "tensorboard"))]
    single_in = len(x) == 1
    fit_x = next(iter(train[0].values())) if single_in else train[0]
    val_x = next(iter(val[0].values())) if single_in else val[0]
    try:
        history = deep_call(model.fit, fit_x, train[1],
                            validation_data=(val_x, val[1]) if n_val else None,
                            epochs=epochs, batch_size=batch_size, callbacks=callbacks,
                            verbose=options.verbose, shuffle=shuffle, layers=len(graph.nodes))
    except (ValueError, TypeError) as exc:   # arrays that do not fit the model's shapes
        from specc.errors import keras_reason

        raise UsageError(f"{data or 'the data'} does not fit the model: {keras_reason(exc)}") from None
    if watch.where is not None:
        epoch, batch, value = watch.where
        raise Diverged(f"the loss became {value} at epoch {epoch}, batch {batch} (batches of "
                       f"{batch_size}); training stopped and nothing was written")
    bad = [v.path for v in model.weights
           if not np.all(np.isfinite(keras.ops.convert_to_numpy(v)))]
    if bad:
        raise Diverged(f"after training, {len(bad)} weight variable(s) hold NaN or infinite "
                       f"values ({bad[0]}{', ...' if len(bad) > 1 else ''}); nothing was written")
    record = {k: [float(v) for v in vals] for k, vals in history.history.items()}
    write_atomic(out / "history.json", (json.dumps(record, indent=2) + "\n").encode())
    save_model(model, out / "model.keras")
    terms = graph.term_names
    plot(record, terms, out / "losses.png", f"{graph.name}: loss by term")
    if share is not None and share[1] > 1:     # each process holds a share of the data only
        return FitResult(record, [], out)
    return FitResult(record, deep_call(measures, model, graph, val_x if n_val else fit_x,
                                       "validation" if n_val else "training",
                                       layers=len(graph.nodes)), out)


def process_share(arrays: tuple[dict, dict], order: Any, batch_size: int, process: int,
                  processes: int) -> tuple[dict, dict]:
    """The rows of `arrays` (taken in `order`) that process `process` of `processes` feeds:
    of every whole global batch of `batch_size` rows, the `process`-th equal slice. A last
    partial batch is dropped, so every process runs the same number of steps."""
    rows = len(order) // batch_size * batch_size
    mine = np.asarray(order[:rows]).reshape(-1, processes, batch_size // processes)[:, process]
    mine = mine.reshape(-1)
    return tuple({k: v[mine] for k, v in part.items()} for part in arrays)  # type: ignore


# ------------------------------------------------------------------------------ sweeps


def compare_runs(out: Path, varying: list[str], runs: list[tuple[dict[str, str], FitResult,
                                                                  list[str]]]) -> str:
    """The runs of a sweep side by side: one row per run (the values of the `varying` paths,
    the run's folder, then each logged key's final-epoch value: loss, task_loss, every term,
    and their `val_` twins), written to `out/sweep.csv` and drawn in `out/sweep.png` (final
    task loss and each term per run). Returns the table as text."""
    import csv
    import io

    terms = list(dict.fromkeys(t for _, _, names in runs for t in names))
    first = ["loss", "task_loss", *terms]
    keys = [k for k in [*first, *(f"val_{k}" for k in first)]
            if any(k in r.history for _, r, _ in runs)]
    header = [*varying, "run", *keys]
    rows = []
    for values, result, _ in runs:
        final = {k: result.history[k][-1] for k in keys if result.history.get(k)}
        rows.append([*(values[p] for p in varying), result.out_dir.name,
                     *(f"{final[k]:.6g}" if k in final else "" for k in keys)])
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows([header, *rows])
    write_atomic(out / "sweep.csv", buffer.getvalue().encode())
    _plot_sweep(out / "sweep.png", [", ".join(f"{p}={v[p]}" for p in varying)
                                     for v, _, _ in runs],
                [{k: r.history[k][-1] for k in ["task_loss", *terms] if r.history.get(k)}
                 for _, r, _ in runs], ["task_loss", *terms])
    widths = [max(len(str(c)) for c in col) for col in zip(header, *rows)]
    return "\n".join("  ".join(str(c).ljust(w) for c, w in zip(line, widths)).rstrip()
                     for line in [header, *rows])


def _plot_sweep(path: Path, labels: list[str], finals: list[dict[str, float]],
                keys: list[str]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = [k for k in keys if any(k in f for f in finals)]
    if not keys:
        return
    cols = min(3, len(keys))
    rows = -(-len(keys) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.4 * rows), squeeze=False)
    x = np.arange(len(labels))
    for ax, key in zip(axes.flat, keys):
        ax.plot(x, [f.get(key, np.nan) for f in finals], marker="o")
        ax.set_title(f"final {key}")
        ax.set_xticks(x, labels, rotation=30, ha="right", fontsize="small")
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(keys):]:
        ax.axis("off")
    fig.suptitle("sweep: final epoch per run")
    fig.tight_layout()
    write_with(path, lambda tmp: fig.savefig(tmp, dpi=110, format="png"))
    plt.close(fig)
