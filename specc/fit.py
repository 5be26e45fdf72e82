"""`specc fit`: train a spec on data, with the loss broken down by term, and keep the record.

Writes to the output folder: history.csv (CSVLogger, per epoch), history.json, tensorboard/,
model.keras, losses.png (every term per epoch, train and validation), and prints for each
activation clause the energy mean_i Σ_j a_ij² of the tensor it penalizes.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from specc.artifacts import save_model, write_atomic, write_with
from specc.graph import Graph


@dataclass
class FitResult:
    history: dict[str, list[float]]
    energies: dict[str, float]      # clause name -> mean_i Σ_j a_ij² on the validation data
    out_dir: Path


def _output_shapes(model: Any) -> dict[str, tuple[int, ...]]:
    declared = model._specc["declared"]
    outs = model.outputs[: len(declared)]
    return {name: tuple(int(d) for d in t.shape[1:]) for name, t in zip(declared, outs)}


def energies(model: Any, graph: Graph, x: Any) -> dict[str, float]:
    """mean_i Σ_j a_ij² of the tensor each activation clause looks at (spec layer, at)."""
    import keras

    taps = {term.name: model.get_layer(graph.sources[term.name]).output for term in graph.terms}
    if not taps:
        return {}
    probe = keras.Model(model.inputs, list(taps.values()), name=f"{graph.name}_probe")
    values = probe.predict(x, verbose=0, batch_size=256)
    values = values if isinstance(values, list) else [values]
    return {name: float(np.mean(np.sum(np.square(v.reshape(len(v), -1)), axis=1)))
            for name, v in zip(taps, values)}


def plot(history: dict[str, list[float]], terms: list[str], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    keys = [k for k in ["loss", "task_loss", *terms] if k in history]
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


def fit(graph: Graph, out_dir: str | Path, data: str | None = None, epochs: int = 5,
        batch_size: int = 64, samples: int = 2048, validation_split: float = 0.2,
        strategy: Any = None, verbose: int | str = "auto") -> FitResult:
    """Train `graph` and write its records to `out_dir`: all of them, or none if it fails."""
    out = Path(out_dir)
    created = not out.exists()
    out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".specc-fit-", dir=out))
    try:
        result = _fit(graph, work, data, epochs, batch_size, samples, validation_split,
                      strategy, verbose)
        _publish(work, out)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        if created and not any(out.iterdir()):
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


def _fit(graph: Graph, out: Path, data: str | None, epochs: int, batch_size: int,
         samples: int, validation_split: float, strategy: Any,
         verbose: int | str) -> FitResult:
    """Train, writing every record into `out` (a temporary folder until the run succeeds)."""
    import keras

    from specc.data import load_npz, synthetic
    from specc.runtime import emit

    if strategy is not None:
        with strategy.scope():
            model = emit(graph)
    else:
        model = emit(graph)
    if data is None:
        x, y = synthetic(graph, _output_shapes(model), n=samples, seed=graph.seed or 0)
    else:
        x, y = load_npz(data, graph)
    n_val = int(len(next(iter(x.values()))) * validation_split)
    split = len(next(iter(x.values()))) - n_val
    train = ({k: v[:split] for k, v in x.items()}, {k: v[:split] for k, v in y.items()})
    val = ({k: v[split:] for k, v in x.items()}, {k: v[split:] for k, v in y.items()})
    callbacks = [keras.callbacks.CSVLogger(str(out / "history.csv")),
                 keras.callbacks.TensorBoard(log_dir=str(out / "tensorboard"))]
    single_in = len(x) == 1
    fit_x = next(iter(train[0].values())) if single_in else train[0]
    val_x = next(iter(val[0].values())) if single_in else val[0]
    try:
        history = model.fit(fit_x, train[1], validation_data=(val_x, val[1]) if n_val else None,
                            epochs=epochs, batch_size=batch_size, callbacks=callbacks,
                            verbose=verbose, shuffle=True)
    except (ValueError, TypeError) as exc:   # arrays that do not fit the model's shapes
        from specc.errors import UsageError
        from specc.runtime.emit import _reason

        raise UsageError(f"{data or 'the data'} does not fit the model: {_reason(exc)}") from None
    record = {k: [float(v) for v in vals] for k, vals in history.history.items()}
    write_atomic(out / "history.json", (json.dumps(record, indent=2) + "\n").encode())
    save_model(model, out / "model.keras")
    terms = [t.name for t in graph.terms] + [w.name for w in graph.weight_terms]
    plot(record, terms, out / "losses.png", f"{graph.name}: loss by term")
    return FitResult(record, energies(model, graph, val_x if n_val else fit_x), out)
