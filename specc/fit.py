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
from typing import Any, Callable, Final

import numpy as np

from specc.artifacts import (
    WORK_PREFIX, clean_stale, cleanup_on_sigterm, save_model, write_atomic, write_with,
)
from specc.fit_adapt import adapt_for_fit
from specc.fit_callbacks import epoch_tensorboard
from specc.fit_measures import (
    MEASURED, FitResult, Measure, _output_shapes, epoch_measures, measure_keys, measure_probe,
    measures, take_measures,
)
from specc.fit_options import Diverged, FitOptions, read_data, training_options
from specc.fit_resume import (
    _best_checkpoint, _mode, _plain, _restore, _restore_stopper, _Resume,
)
from specc.fit_sweep import compare_runs
from specc.graph import Graph

#: The names `specc.fit` has always offered, from the modules that now hold them.
__all__ = [
    "MEASURED", "Diverged", "FitOptions", "FitResult", "Measure", "compare_runs",
    "epoch_measures", "fit", "measure_keys", "measure_probe", "measures", "plot",
    "process_share", "read_data", "take_measures", "training_options",
]


def plot(history: dict[str, list[float]], terms: list[str], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    keys = [k for k in ["loss", "task_loss", *terms] if history.get(k)]
    # a scheduled rate's curve (`<clause>_rate`, `_l1`, `_l2`), after the terms
    keys += [f"{t}_{p}" for t in terms for p in ("rate", "l1", "l2") if history.get(f"{t}_{p}")]
    keys += [k for k in history if k.endswith("_loss_weight") and not k.startswith("val_")]
    keys += [k for k in history if k.endswith("_measure") and not k.startswith("val_")]
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

def fit(graph: Graph, out_dir: str | Path, options: FitOptions = FitOptions(),
        strategy: Any = None, arrays: Any = None) -> FitResult:
    """Train `graph` and write its records to `out_dir`: all of them, or none if it fails.

    `options.share=(process_id, num_processes)`: data-parallel training (a keras.distribution
    set by the caller): only whole global batches of `batch_size` are used, and this process
    feeds its share of each, reshuffled every epoch in the same global order as one process.
    `strategy`: a tf.distribute strategy whose scope the model is built in. `arrays`: what
    `read_data(graph, options)` returned, when the caller read the data first (the CLI does,
    before Keras starts).

    Each finished epoch's state (model, optimizer, history) is kept in `out_dir/.specc-resume/`,
    every file written atomically, and removed when the run succeeds; `options.resume`
    continues from it."""
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
            result = _fit(graph, work, options, strategy, arrays, out / RESUME_DIR)
            _publish(work, out)
            shutil.rmtree(out / RESUME_DIR, ignore_errors=True)
    except BaseException as exc:
        shutil.rmtree(work, ignore_errors=True)
        if not isinstance(exc, KeyboardInterrupt):   # Ctrl-C, SIGTERM: --resume continues
            shutil.rmtree(out / RESUME_DIR, ignore_errors=True)
        if created and out.is_dir() and not any(out.iterdir()):
            out.rmdir()
        raise
    shutil.rmtree(work, ignore_errors=True)
    result.out_dir = out
    return result


#: The folder of an unfinished run's last whole epoch, inside the output folder.
RESUME_DIR: Final = ".specc-resume"


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
            async_safe = True        # Keras calls it from a thread: training runs ahead

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

def _fit(graph: Graph, out: Path, options: FitOptions, strategy: Any,
         arrays: Any, resume_dir: Path) -> FitResult:
    """Train, writing every record into `out` (a temporary folder until the run succeeds)."""
    model, train_data, val_data = _model_and_data(graph, options, strategy, arrays)
    from specc.errors import UsageError
    from specc.runtime.deep import deep_call

    seed = options.seed if options.seed is not None else (graph.seed or 0)
    local_batch = _local_batch(options, train_data)
    feeds = _feeds(graph, options, train_data, val_data, seed)
    adapt_for_fit(model, graph, feeds, options)      # Normalization, lookups: before step 1
    fingerprint = {"spec": graph.name, "data": options.data, "validation": options.validation,
                   "batch_size": options.batch_size, "seed": seed,
                   "validation_split": options.validation_split, "samples": options.samples}
    resume = _Resume(resume_dir, fingerprint)
    history: dict[str, list[float]] = {}
    best_state: dict[str, Any] = {}
    state = _resumed(resume, options, model, feeds, history, best_state, out)
    initial_epoch = int(state["epoch"]) if state is not None else 0
    callbacks, watch = _callbacks(graph, model, options, feeds, out,
                                  (resume, history, best_state, state))
    try:
        # shuffle=False: specc's feed orders its own batches (Keras would shuffle a finite
        # PyDataset's batch indices with Python's global `random`, which no run can repeat)
        deep_call(model.fit, feeds.train, validation_data=feeds.val, epochs=options.epochs,
                  initial_epoch=initial_epoch, callbacks=callbacks, verbose=options.verbose,
                  shuffle=False, steps_per_epoch=feeds.steps, layers=len(graph.nodes))
    except (ValueError, TypeError) as exc:   # arrays that do not fit the model's shapes
        from specc.errors import keras_reason

        where = str(options.data or "the data")
        raise UsageError(f"{where} does not fit the model: {keras_reason(exc)}") from None
    finally:
        resume.wait(raise_error=False)       # the last epoch's state is whole on disk
    _check_finite(model, watch, local_batch)
    return _write_records(graph, out, history, model)


def _model_and_data(graph: Graph, options: FitOptions, strategy: Any,
                    arrays: Any) -> tuple[Any, Any, Any]:
    """The model (built in `strategy`'s scope when there is one) and the data sets (training,
    validation or None) checked against its outputs; the synthetic set when no data is given."""
    train_data, val_data = arrays if arrays is not None else read_data(graph, options)
    from specc import feed
    from specc.data import check_targets, synthetic
    from specc.runtime import emit

    if strategy is not None:
        with strategy.scope():
            model = emit(graph)
    else:
        model = emit(graph)
    shapes = None
    if train_data is None:
        shapes = _output_shapes(model)
        x, y = synthetic(graph, shapes, n=options.samples, seed=graph.seed or 0)
        train_data = feed.Data("arrays", "synthetic data", x, y)
    for d in (train_data, val_data):
        if d is None:
            continue
        if d.kind == "arrays":
            check_targets(d.y, graph, shapes or _output_shapes(model), d.where)
        elif d.kind in ("images", "texts"):
            feed.check_classes(d, graph, shapes or _output_shapes(model))
    return model, train_data, val_data


def _local_batch(options: FitOptions, train_data: Any) -> int:
    """The batch this process feeds: the whole batch, or its equal share of it when several
    processes train (which take arrays only)."""
    from specc.errors import UsageError

    batch_size, share = options.batch_size, options.share
    if share is None:
        return batch_size
    if train_data.kind != "arrays":
        raise UsageError("several processes take arrays (.npz, .npy, a table, synthetic data)")
    process, processes = share
    if batch_size % processes:
        raise UsageError(f"--batch-size {batch_size}: give a multiple of the process "
                         f"count {processes} (each process feeds an equal share)")
    return batch_size // processes


@dataclass
class _Feeds:
    """What a run reads: the training data model.fit takes, the validation data, the data
    the measures are taken on, and (for arrays) the training feed from a given epoch."""

    train: Any
    val: Any = None
    measure_train: Any = None
    measure_val: Any = None
    restart: Callable[[int], Any] | None = None
    steps: int | None = None          # batches per epoch of an endless feed; None: its end


def _feeds(graph: Graph, options: FitOptions, train_data: Any, val_data: Any,
           seed: int) -> _Feeds:
    """Arrays and class folders in specc's batches; what a module:function returned as it is
    (its validation set as it is too, or in specc's batches)."""
    from specc import feed

    if train_data.kind != "callable":
        return _data_feeds(graph, options, train_data, val_data, seed)
    fit_x = feed.call_user(train_data.where)
    feed.check_fed(fit_x, graph, train_data.where)
    val = None
    if val_data is not None:
        val = (feed.call_user(val_data.where) if val_data.kind == "callable" else
               feed.data_feed(val_data, graph, np.arange(val_data.n), options.batch_size,
                              shuffle=False, seed=seed)[0])
    return _Feeds(fit_x, val, None, val)


def _data_feeds(graph: Graph, options: FitOptions, train_data: Any, val_data: Any,
                seed: int) -> _Feeds:
    """Arrays or a class folder's files in batches: the validation set given, or split off
    with `seed` (the synthetic set's tail, its samples being drawn alike); with several
    processes, each its share. The training feed is endless, each epoch's order drawn from
    (seed, epoch): a resumed run is fed what an uninterrupted one was."""
    from specc import feed
    from specc.errors import UsageError

    batch_size, share = options.batch_size, options.share
    n = train_data.n
    if val_data is not None:
        rows, val_rows, held = np.arange(n), np.arange(val_data.n), val_data
    else:
        if options.data is None:        # synthetic samples are drawn alike: the tail
            cut = n - int(n * options.validation_split)
            rows, val_rows = np.arange(cut), np.arange(cut, n)
        else:
            rows, val_rows = feed.split(n, options.validation_split, seed)
        held = train_data
    if share is not None and len(rows) < batch_size:
        raise UsageError(f"{len(rows)} training samples: fewer than one global batch of "
                         f"{batch_size}")

    def make(data: Any, which: Any, **kw: Any) -> Any:
        return feed.data_feed(data, graph, which, batch_size, seed=seed, **kw)

    fit_x, steps = make(train_data, rows, shuffle=True, share=share, first_epoch=0)
    val = (make(held, val_rows, shuffle=False,
                share=share if share and len(val_rows) >= batch_size else None)[0]
           if len(val_rows) else None)
    # the measures: in order, each process its share of every global batch (as validation)
    measure_train = make(train_data, rows, shuffle=False, share=share)[0]
    measure_val = (make(held, val_rows, shuffle=False,
                        share=share if share and len(val_rows) >= batch_size else None)[0]
                   if len(val_rows) else None)
    return _Feeds(fit_x, val, measure_train, measure_val,
                  lambda e: make(train_data, rows, shuffle=True, share=share, first_epoch=e)[0],
                  steps)


def _resumed(resume: _Resume, options: FitOptions, model: Any, feeds: _Feeds,
             history: dict[str, list[float]], best_state: dict[str, Any],
             out: Path) -> dict[str, Any] | None:
    """With --resume, the unfinished run's state, put back into the model, `history`,
    `best_state`, the training feed and `out/best.keras`; None: the run starts over (an
    old run's state is removed)."""
    state = resume.load() if options.resume else None
    resume_dir = resume.folder
    if state is None:
        if resume_dir.exists():
            shutil.rmtree(resume_dir, ignore_errors=True)     # an old run's state: start over
        return None
    resume.check(state)
    initial_epoch = int(state["epoch"])
    history.update({k: list(v) for k, v in state["history"].items()})
    best_state.update(state.get("best", {}))
    _restore(model, resume_dir / f"epoch-{initial_epoch}.npz")
    if feeds.restart is not None:              # the stream starts at the resumed epoch
        feeds.train = feeds.restart(initial_epoch)
    if (resume_dir / "best.keras").is_file():
        shutil.copyfile(resume_dir / "best.keras", out / "best.keras")
    print(f"resuming from epoch {initial_epoch} of {options.epochs} ({resume_dir})", flush=True)
    return state


def _callbacks(graph: Graph, model: Any, options: FitOptions, feeds: _Feeds, out: Path,
               run: tuple[_Resume, dict[str, list[float]], dict[str, Any], Any]
               ) -> tuple[list[Any], Any]:
    """The run's callbacks (the NaN watch, the epoch's measures, early stopping, the best
    checkpoint, the resume state, TensorBoard) and the NaN watch. `run`: the resume state's
    keeper, the history, the best value so far and the resumed state (or None)."""
    import keras

    resume, history, best_state, state = run
    monitor = options.monitor or ("val_loss" if feeds.val is not None else "loss")
    watch = _StopOnNonFinite.make()
    callbacks: list[Any] = [watch]
    probe = measure_probe(model, graph)
    if probe is not None:
        callbacks.append(epoch_measures(probe, graph, feeds.measure_train, feeds.measure_val))
    stopper = None
    if options.patience is not None:
        stopper = keras.callbacks.EarlyStopping(monitor=monitor, patience=options.patience,
                                                mode=_mode(monitor))
        callbacks.append(stopper)
    if options.checkpoint:
        callbacks.append(_best_checkpoint(out / "best.keras", monitor, _mode(monitor),
                                          best_state))
    extra = _epoch_extra(model, options, out, resume.folder, best_state, stopper)
    callbacks.append(resume.callback(history, extra))
    callbacks.append(epoch_tensorboard(str(out / "tensorboard")))
    if stopper is not None and state is not None and "stopper" in state:
        _restore_stopper(stopper, state["stopper"])
    return callbacks, watch


def _epoch_extra(model: Any, options: FitOptions, out: Path, resume_dir: Path,
                 best_state: dict[str, Any], stopper: Any) -> Callable[[], dict[str, Any]]:
    """What each epoch's resume state keeps beside the model and the history: the best
    checkpoint (copied in), the best value and early stopping's count."""

    def extra() -> dict[str, Any]:
        if options.checkpoint and (out / "best.keras").is_file():
            shutil.copyfile(out / "best.keras", resume_dir / ".best.keras.part")
            os.replace(resume_dir / ".best.keras.part", resume_dir / "best.keras")
        got: dict[str, Any] = {"best": best_state}
        if stopper is not None:
            got["stopper"] = {"wait": stopper.wait, "best": _plain(stopper.best),
                              "best_epoch": stopper.best_epoch}
        return got

    return extra


def _check_finite(model: Any, watch: Any, local_batch: int) -> None:
    """Diverged if the loss became NaN or infinite during training, or a weight did."""
    import keras

    if watch.where is not None:
        epoch, batch, value = watch.where
        raise Diverged(f"the loss became {value} at epoch {epoch}, batch {batch} (batches of "
                       f"{local_batch}); training stopped and nothing was written")
    bad = [v.path for v in model.weights
           if not np.all(np.isfinite(keras.ops.convert_to_numpy(v)))]
    if bad:
        raise Diverged(f"after training, {len(bad)} weight variable(s) hold NaN or infinite "
                       f"values ({bad[0]}{', ...' if len(bad) > 1 else ''}); nothing was written")


def _write_records(graph: Graph, out: Path, history: dict[str, list[float]],
                   model: Any) -> FitResult:
    """history.json, history.csv, model.keras and losses.png into `out`; the result with each
    clause's last measure (with several processes, over the global data in every process)."""
    record = {k: [float(v) for v in vals] for k, vals in history.items()}
    write_atomic(out / "history.json", (json.dumps(record, indent=2) + "\n").encode())
    write_atomic(out / "history.csv", _csv(record, initial_epoch=0).encode())
    save_model(model, out / "model.keras")
    terms = graph.term_names
    plot(record, terms, out / "losses.png", f"{graph.name}: loss by term")
    found = []
    for key, term, what, _ in measure_keys(graph):
        for prefix, data in (("val_", "validation"), ("", "training")):
            if record.get(prefix + key):
                found.append(Measure(term.name, term.kind, term.layer, term.at, what,
                                     record[prefix + key][-1], data))
                break
    return FitResult(record, found, out)


def _csv(record: dict[str, list[float]], initial_epoch: int) -> str:
    """history.csv as keras.callbacks.CSVLogger writes it: `epoch` then the keys sorted."""
    import csv
    import io

    keys = sorted(record)
    buffer = io.StringIO()
    w = csv.writer(buffer, lineterminator="\n")
    w.writerow(["epoch", *keys])
    count = max((len(v) for v in record.values()), default=0)
    for e in range(count):
        w.writerow([initial_epoch + e, *(record[k][e] if e < len(record[k]) else ""
                                         for k in keys)])
    return buffer.getvalue()


def process_share(arrays: tuple[dict, dict], order: Any, batch_size: int, process: int,
                  processes: int) -> tuple[dict, dict]:
    """The rows of `arrays` (taken in `order`) that process `process` of `processes` feeds:
    of every whole global batch of `batch_size` rows, the `process`-th equal slice. A last
    partial batch is dropped, so every process runs the same number of steps."""
    rows = len(order) // batch_size * batch_size
    mine = np.asarray(order[:rows]).reshape(-1, processes, batch_size // processes)[:, process]
    mine = mine.reshape(-1)
    return tuple({k: v[mine] for k, v in part.items()} for part in arrays)  # type: ignore
