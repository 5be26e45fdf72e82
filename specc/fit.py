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
    batch (shape (B, 1)): `predict` over batches concatenates them, and their mean is the
    mean of the per-batch measures weighted by batch size, read in bounded memory. For the
    kinds averaged over samples (l1, l2, mean_abs, ar, tar without a mask) that is the measure
    over the whole set; for batch statistics (kl_sparsity, decorrelation) and masked
    sequences, the mean of the batch values, as training sees them."""
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

    outputs = Measures(name="specc_measures")(taps + [m for m in masks if m is not None])
    return keras.Model(model.inputs, outputs, name=f"{graph.name}_measures")


def take_measures(probe: Any, keys: list[str], data: Any) -> dict[str, float]:
    """Each measure over `data` (batches), summed batch by batch."""
    values = probe.predict(data, verbose=0)
    values = values if isinstance(values, list) else [values]
    return {k: float(np.mean(v)) for k, v in zip(keys, values)}


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


class Diverged(Exception):
    """Training produced a non-finite loss or weights; nothing was written."""


@dataclass(frozen=True)
class FitOptions:
    """How `specc fit` trains: the command's options, checked once (`check`)."""

    data: str | None = None              # see specc.feed.open_data; None: synthetic data
    epochs: int = 5
    batch_size: int = 64
    samples: int = 2048                  # synthetic samples
    validation_split: float = 0.2
    verbose: int | str = "auto"
    allow_nonfinite: bool = False
    max_data_bytes: int | None = None    # None: specc.data.MAX_DATA_BYTES
    share: tuple[int, int] | None = None  # (process id, process count): data-parallel
    validation: str | None = None        # a validation set (as `data`); else a split
    seed: int | None = None              # the split's and the order's; None: the spec's seed
    resume: bool = False                 # continue a killed run from its last whole epoch
    patience: int | None = None          # early stopping after this many epochs without gain
    monitor: str | None = None           # what early stopping and the best checkpoint watch
    checkpoint: bool = False             # keep the best epoch's model as best.keras
    spill: str | None = None             # a folder for tables read into mapped .npy files
    data_from_spec: bool = False         # `data` was named by the spec (no module:function)

    def check(self) -> None:
        from specc.errors import UsageError

        for what, value in (("--epochs", self.epochs), ("--batch-size", self.batch_size),
                            ("--samples", self.samples)):
            if value < 1:
                raise UsageError(f"{what} {value}: give a whole number of at least 1")
        if not 0.0 <= self.validation_split < 1.0:
            raise UsageError(f"validation split {self.validation_split}: give a fraction in "
                             "[0, 1)")
        if self.patience is not None and self.patience < 0:
            raise UsageError(f"--early-stopping {self.patience}: give a number of epochs >= 0")


def training_options(spec: Any, args: Any, spill: str | None = None) -> FitOptions:
    """FitOptions from the command line (`args`, argparse), each option left out taken from
    the spec's `training:` section (paths relative to the spec), then the defaults. A data
    source named by the spec is never code (module:function)."""
    t = spec.training
    doc = spec._document

    def given(name: str) -> Any:
        return getattr(args, name, None)

    def path(value: str | None) -> str | None:
        from specc.feed import CALLABLE

        if value is None or doc is None or Path(value).is_absolute() or CALLABLE.match(value):
            return value
        return str(Path(doc.file).parent / value)

    def pick(cli: Any, key: str, default: Any) -> Any:
        if cli is not None:
            return cli
        value = getattr(t, key, None) if t is not None else None
        return default if value is None else value

    data, from_spec = given("data"), False
    validation = given("validation")
    if data is None and t is not None and t.data is not None:
        data, from_spec = path(t.data), True
        if validation is None:
            validation = path(t.validation)
    stopping = t.early_stopping if t is not None else None
    return FitOptions(
        data=data, data_from_spec=from_spec, validation=validation,
        epochs=pick(given("epochs"), "epochs", 5),
        batch_size=pick(given("batch_size"), "batch_size", 64),
        samples=2048 if given("samples") is None else given("samples"),
        validation_split=pick(given("validation_split"), "validation_split", 0.2),
        seed=pick(given("seed"), "seed", None),
        allow_nonfinite=bool(given("allow_nonfinite")), max_data_bytes=given("max_data"),
        resume=bool(given("resume")),
        patience=(given("early_stopping") if given("early_stopping") is not None else
                  stopping.patience if stopping is not None else None),
        monitor=given("monitor") or (stopping.monitor if stopping is not None else None),
        checkpoint=bool(pick(given("checkpoint"), "checkpoint", False)), spill=spill)


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
    """The data sets (training, validation or None) as specc.feed.Data, checked against the
    plan; (None, None) for synthetic data. NumPy only: a command reads and checks its data
    before Keras starts."""
    from specc.data import MAX_DATA_BYTES
    from specc.errors import UsageError
    from specc.feed import open_data

    if options.data is None:
        if options.validation is not None:
            raise UsageError("--validation goes with --data (the synthetic set is split)")
        return None, None
    limit = MAX_DATA_BYTES if options.max_data_bytes is None else options.max_data_bytes
    spill = options.spill
    kw = dict(allow_nonfinite=options.allow_nonfinite, max_bytes=limit, spill=spill,
              from_spec=options.data_from_spec)
    train = open_data(options.data, graph, **kw)
    val = open_data(options.validation, graph, **kw) if options.validation else None
    if val is not None and val.kind != train.kind and "callable" not in (train.kind, val.kind):
        raise UsageError(f"--validation {options.validation}: a {val.kind} set; the training "
                         f"data is a {train.kind} set")
    return train, val


class _Resume:
    """The state of a run's last whole epoch in `folder`: `epoch-K.keras` (the model with its
    optimizer after K epochs) and `state.json` (K, the history so far, what the run was),
    each written to a temporary file and renamed; state.json is written after the model it
    names, so every state on disk is whole."""

    def __init__(self, folder: Path, fingerprint: dict[str, Any]) -> None:
        self.folder = folder
        self.fingerprint = fingerprint

    def load(self) -> dict[str, Any] | None:
        try:
            state = json.loads((self.folder / "state.json").read_text())
        except (OSError, ValueError):
            return None
        return state if (self.folder / f"epoch-{state.get('epoch')}.keras").is_file() else None

    def check(self, state: dict[str, Any]) -> None:
        from specc.errors import UsageError

        theirs = state.get("run", {})
        changed = [k for k in self.fingerprint if theirs.get(k) != self.fingerprint[k]]
        if changed:
            k = changed[0]
            raise UsageError(f"--resume: the unfinished run in {self.folder.parent} had "
                             f"{k}={theirs.get(k)!r}, this one {self.fingerprint[k]!r}; run "
                             "it with the same options, or without --resume to start over")

    def callback(self, history: dict[str, list[float]], extra: Any) -> Any:
        import keras

        resume = self

        class SaveEpoch(keras.callbacks.Callback):
            def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
                for k, v in (logs or {}).items():
                    history.setdefault(k, []).append(float(v))
                resume.folder.mkdir(exist_ok=True)
                save_model(self.model, resume.folder / f"epoch-{epoch + 1}.keras")
                state = {"epoch": epoch + 1, "history": history, "run": resume.fingerprint,
                         **extra()}
                write_atomic(resume.folder / "state.json",
                             (json.dumps(state, indent=1) + "\n").encode())
                for old in resume.folder.glob("epoch-*.keras"):
                    if old.name != f"epoch-{epoch + 1}.keras":
                        old.unlink(missing_ok=True)

        return SaveEpoch()


def _best_checkpoint(path: Path, monitor: str, mode: str, state: dict[str, Any]) -> Any:
    """Saves the model atomically to `path` whenever `monitor` improves (`state["best"]`
    carries the best value so far across a resume)."""
    import keras

    class BestCheckpoint(keras.callbacks.Callback):
        def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
            value = (logs or {}).get(monitor)
            if value is None:
                return
            value = float(value)
            best = state.get("best")
            if best is None or (value < best if mode == "min" else value > best):
                state["best"] = value
                state["best_epoch"] = epoch + 1
                save_model(self.model, path)

    return BestCheckpoint()


def _mode(monitor: str) -> str:
    name = monitor.removeprefix("val_")
    return "max" if any(w in name for w in ("accuracy", "auc", "precision", "recall")) else "min"


def _fit(graph: Graph, out: Path, options: FitOptions, strategy: Any,
         arrays: Any, resume_dir: Path) -> FitResult:
    """Train, writing every record into `out` (a temporary folder until the run succeeds)."""
    epochs, batch_size, share = options.epochs, options.batch_size, options.share
    train_data, val_data = arrays if arrays is not None else read_data(graph, options)
    import keras

    from specc import feed
    from specc.data import check_targets, synthetic
    from specc.errors import UsageError
    from specc.runtime import emit
    from specc.runtime.deep import deep_call

    if strategy is not None:
        with strategy.scope():
            model = emit(graph)
    else:
        model = emit(graph)
    seed = options.seed if options.seed is not None else (graph.seed or 0)
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
    where = str(options.data or "the data")
    measure_train = measure_val = None
    feeds: list[Any] = []
    if share is not None and train_data.kind != "arrays":
        raise UsageError("several processes take arrays (.npz, .npy, a table, synthetic data)")
    local_batch = batch_size
    if share is not None:
        process, processes = share
        if batch_size % processes:
            raise UsageError(f"--batch-size {batch_size}: give a multiple of the process "
                             f"count {processes} (each process feeds an equal share)")
        local_batch = batch_size // processes
    if train_data.kind == "arrays":
        n = train_data.n
        if val_data is not None:
            rows, val_rows = np.arange(n), np.arange(val_data.n)
            vx, vy = val_data.x, val_data.y
        else:
            if options.data is None:        # synthetic samples are drawn alike: the tail
                held = int(n * options.validation_split)
                rows, val_rows = np.arange(n - held), np.arange(n - held, n)
            else:
                rows, val_rows = feed.split(n, options.validation_split, seed)
            vx, vy = train_data.x, train_data.y
        if share is not None and len(rows) < batch_size:
            raise UsageError(f"{len(rows)} training samples: fewer than one global batch of "
                             f"{batch_size}")
        fit_x = feed.array_feed(train_data.x, train_data.y, rows, batch_size, shuffle=True,
                                seed=seed, share=share, first_epoch=0)
        feeds.append(fit_x)
        val = (feed.array_feed(vx, vy, val_rows, batch_size, shuffle=False, seed=seed,
                               share=share if share and len(val_rows) >= batch_size else None)
               if len(val_rows) else None)
        measure_train = feed.array_feed(train_data.x, train_data.y, rows, batch_size,
                                        shuffle=False, seed=seed)
        measure_val = (feed.array_feed(vx, vy, val_rows, batch_size, shuffle=False, seed=seed)
                       if len(val_rows) else None)
    elif train_data.kind in ("images", "texts"):
        fraction = 0.0 if val_data is not None else options.validation_split
        fit_x, val = feed.folder_datasets(train_data, graph, batch_size, fraction, seed)
        if val_data is not None:
            val, _ = feed.folder_datasets(val_data, graph, batch_size, 0.0, seed)
        measure_train, measure_val = fit_x, val
    else:
        fit_x = feed.call_user(train_data.where)
        feed.check_fed(fit_x, graph, train_data.where)
        val = None
        if val_data is not None:
            val = (feed.call_user(val_data.where) if val_data.kind == "callable" else
                   feed.array_feed(val_data.x, val_data.y, np.arange(val_data.n), batch_size,
                                   shuffle=False, seed=seed))
        measure_val = val
    history: dict[str, list[float]] = {}
    fingerprint = {"spec": graph.name, "data": options.data, "validation": options.validation,
                   "batch_size": batch_size, "seed": seed,
                   "validation_split": options.validation_split, "samples": options.samples}
    resume = _Resume(resume_dir, fingerprint)
    state = resume.load() if options.resume else None
    initial_epoch = 0
    best_state: dict[str, Any] = {}
    monitor = options.monitor or ("val_loss" if val is not None else "loss")
    if state is not None:
        resume.check(state)
        initial_epoch = int(state["epoch"])
        history.update({k: list(v) for k, v in state["history"].items()})
        best_state.update(state.get("best", {}))
        _restore(model, resume_dir / f"epoch-{initial_epoch}.keras", state.get("seeds"))
        if feeds:                              # the stream starts at the resumed epoch
            fit_x = feeds[0] = feed.array_feed(
                train_data.x, train_data.y, rows, batch_size, shuffle=True, seed=seed,
                share=share, first_epoch=initial_epoch)
        if (resume_dir / "best.keras").is_file():
            shutil.copyfile(resume_dir / "best.keras", out / "best.keras")
        print(f"resuming from epoch {initial_epoch} of {epochs} ({resume_dir})", flush=True)
    elif resume_dir.exists():
        shutil.rmtree(resume_dir, ignore_errors=True)     # an old run's state: start over
    watch = _StopOnNonFinite.make()
    callbacks: list[Any] = [watch]
    probe = measure_probe(model, graph) if (share is None or share[1] == 1) else None
    if probe is not None:
        callbacks.append(epoch_measures(probe, graph, measure_train, measure_val))
    stopper = None
    if options.patience is not None:
        stopper = keras.callbacks.EarlyStopping(monitor=monitor, patience=options.patience,
                                                mode=_mode(monitor))
        callbacks.append(stopper)
    if options.checkpoint:
        callbacks.append(_best_checkpoint(out / "best.keras", monitor, _mode(monitor),
                                          best_state))

    def extra() -> dict[str, Any]:
        if options.checkpoint and (out / "best.keras").is_file():
            shutil.copyfile(out / "best.keras", resume_dir / ".best.keras.part")
            os.replace(resume_dir / ".best.keras.part", resume_dir / "best.keras")
        got: dict[str, Any] = {"best": best_state, "seeds": [
            [int(v) for v in np.asarray(keras.ops.convert_to_numpy(g.state)).ravel()]
            for g in _seed_generators(model)]}
        if stopper is not None:
            got["stopper"] = {"wait": stopper.wait, "best": _plain(stopper.best),
                              "best_epoch": stopper.best_epoch}
        return got

    callbacks.append(resume.callback(history, extra))
    callbacks += [keras.callbacks.TensorBoard(log_dir=str(out / "tensorboard"))]
    if stopper is not None and state is not None and "stopper" in state:
        _restore_stopper(stopper, state["stopper"])
    try:
        # shuffle=False: an ArrayFeed orders its own batches (Keras would shuffle a finite
        # PyDataset's batch indices with Python's global `random`, which no run can repeat)
        deep_call(model.fit, fit_x, validation_data=val, epochs=epochs,
                  initial_epoch=initial_epoch, callbacks=callbacks, verbose=options.verbose,
                  shuffle=False, steps_per_epoch=feeds[0].steps if feeds else None,
                  layers=len(graph.nodes))
    except (ValueError, TypeError) as exc:   # arrays that do not fit the model's shapes
        from specc.errors import keras_reason

        raise UsageError(f"{where} does not fit the model: {keras_reason(exc)}") from None
    if watch.where is not None:
        epoch, batch, value = watch.where
        raise Diverged(f"the loss became {value} at epoch {epoch}, batch {batch} (batches of "
                       f"{local_batch}); training stopped and nothing was written")
    bad = [v.path for v in model.weights
           if not np.all(np.isfinite(keras.ops.convert_to_numpy(v)))]
    if bad:
        raise Diverged(f"after training, {len(bad)} weight variable(s) hold NaN or infinite "
                       f"values ({bad[0]}{', ...' if len(bad) > 1 else ''}); nothing was written")
    record = {k: [float(v) for v in vals] for k, vals in history.items()}
    write_atomic(out / "history.json", (json.dumps(record, indent=2) + "\n").encode())
    write_atomic(out / "history.csv", _csv(record, initial_epoch=0).encode())
    save_model(model, out / "model.keras")
    terms = graph.term_names
    plot(record, terms, out / "losses.png", f"{graph.name}: loss by term")
    if share is not None and share[1] > 1:     # each process holds a share of the data only
        return FitResult(record, [], out)
    found = []
    for key, term, what, _ in measure_keys(graph):
        for prefix, data in (("val_", "validation"), ("", "training")):
            if record.get(prefix + key):
                found.append(Measure(term.name, term.kind, term.layer, term.at, what,
                                     record[prefix + key][-1], data))
                break
    return FitResult(record, found, out)


def _plain(value: Any) -> Any:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _restore_stopper(stopper: Any, saved: dict[str, Any]) -> None:
    """EarlyStopping's count of epochs without gain, carried across a resume (its
    on_train_begin resets them, so they are set again at the first epoch's start)."""
    begin = stopper.on_train_begin

    def on_train_begin(logs: Any = None) -> None:
        begin(logs)
        stopper.wait = int(saved.get("wait", 0))
        if saved.get("best") is not None:
            stopper.best = float(saved["best"])
        stopper.best_epoch = int(saved.get("best_epoch", 0))
    stopper.on_train_begin = on_train_begin


def _restore(model: Any, path: Path, seeds: list[list[int]] | None = None) -> None:
    """The weights and optimizer state saved after an epoch (the optimizer built first, so
    that its slots are there to receive them), and the random generators' states."""
    if not model.optimizer.built:
        model.optimizer.build(model.trainable_variables)
    model.load_weights(str(path))
    for generator, state in zip(_seed_generators(model), seeds or []):
        generator.state.assign(np.asarray(state, dtype=generator.state.dtype))


def _seed_generators(model: Any) -> list[Any]:
    """Every layer's keras.random.SeedGenerator (Dropout's, say), in layer order. Their
    states are not among the weights a .keras file keeps, so a resumed run would draw
    other dropout masks without them."""
    out = []
    for layer in model._flatten_layers(include_self=False):
        out.extend(getattr(layer, "_seed_generators", None) or [])
    return out


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


# ------------------------------------------------------------------------------ sweeps


def compare_runs(out: Path, varying: list[str], runs: list[tuple[dict[str, str], FitResult,
                                                                  list[str]]]) -> str:
    """The runs of a sweep side by side: one row per run (the values of the `varying` paths,
    the run's folder, then each logged key's final-epoch value: loss, task_loss, every term,
    every metric and measure, and their `val_` twins), written to `out/sweep.csv` and drawn
    in `out/sweep.png` (the final validation value of the task loss, each term, metric and
    measure per run; the training value without validation data). Returns the table."""
    import csv
    import io

    terms = list(dict.fromkeys(t for _, _, names in runs for t in names))
    first = ["loss", "task_loss", *terms]
    logged = [k for _, r, _ in runs for k in r.history if not k.startswith("val_")]
    # then every other logged key (metrics, each clause's measure, scheduled rates), once
    first += [k for k in dict.fromkeys(logged) if k not in first]
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
    # the picture compares the runs on validation data where they have it: the task loss,
    # each term, each metric and each clause's rate-free measure (which falls when a rising
    # rate pushes the activation down, while the rate-scaled term may rise)
    shown = [k for k in first if k != "loss" and not k.endswith(("_rate", "_l1", "_l2",
                                                                 "_loss_weight"))]
    pick = [f"val_{k}" if any(f"val_{k}" in r.history for _, r, _ in runs) else k
            for k in shown]
    _plot_sweep(out / "sweep.png", [", ".join(f"{p}={v[p]}" for p in varying)
                                     for v, _, _ in runs],
                [{k: r.history[k][-1] for k in pick if r.history.get(k)} for _, r, _ in runs],
                pick)
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
