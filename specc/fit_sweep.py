"""A `specc fit` sweep's runs side by side: sweep.csv and sweep.png."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from specc.artifacts import write_atomic, write_with
from specc.fit_measures import FitResult


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
