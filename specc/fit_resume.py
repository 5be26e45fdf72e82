"""`specc fit --resume` and the best checkpoint: each whole epoch's state kept atomically,
and read back (weights, optimizer, random generators, early stopping's count)."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from specc.artifacts import save_model, write_atomic


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
