"""`specc fit --resume` and the best checkpoint: each whole epoch's state kept atomically,
and read back (weights, optimizer, random generators, early stopping's count)."""
from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Any

import numpy as np

from specc.artifacts import save_model, write_atomic, write_with


class _Resume:
    """The state of a run's last whole epoch in `folder`: `epoch-K.npz` (the values of the
    model's variables, random generators' states included, and of its optimizer's, after K
    epochs) and `state.json` (K, the history so far, what the run was), each written to a
    temporary file and renamed; state.json is written after the values it names, so every
    state on disk is whole.

    The values are copied at the end of the epoch and written by a thread while the next
    epoch trains (a .keras file took ~60 ms an epoch, several % of a short epoch); `wait`
    waits for the last write (a write's error is raised there or at the next epoch's end)."""

    def __init__(self, folder: Path, fingerprint: dict[str, Any]) -> None:
        self.folder = folder
        self.fingerprint = fingerprint
        self._writer: threading.Thread | None = None
        self._error: BaseException | None = None

    def load(self) -> dict[str, Any] | None:
        try:
            state = json.loads((self.folder / "state.json").read_text())
        except (OSError, ValueError):
            return None
        return state if (self.folder / f"epoch-{state.get('epoch')}.npz").is_file() else None

    def check(self, state: dict[str, Any]) -> None:
        from specc.errors import UsageError

        theirs = state.get("run", {})
        changed = [k for k in self.fingerprint if theirs.get(k) != self.fingerprint[k]]
        if changed:
            k = changed[0]
            raise UsageError(f"--resume: the unfinished run in {self.folder.parent} had "
                             f"{k}={theirs.get(k)!r}, this one {self.fingerprint[k]!r}; run "
                             "it with the same options, or without --resume to start over")

    def wait(self, raise_error: bool = True) -> None:
        """Wait for the state being written; raise what failed in it (`raise_error`)."""
        if self._writer is not None:
            self._writer.join()
            self._writer = None
        error, self._error = self._error, None
        if error is not None and raise_error:
            raise error

    def _write(self, epoch: int, values: list[Any], state: bytes) -> None:
        try:
            name = f"epoch-{epoch}.npz"
            write_with(self.folder / name, lambda tmp: _save_values(tmp, values))
            write_atomic(self.folder / "state.json", state)
            for old in self.folder.glob("epoch-*.npz"):
                if old.name != name:
                    old.unlink(missing_ok=True)
        except BaseException as exc:        # raised in the main thread by `wait`
            self._error = exc

    def callback(self, history: dict[str, list[float]], extra: Any) -> Any:
        import keras

        resume = self

        class SaveEpoch(keras.callbacks.Callback):
            def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
                for k, v in (logs or {}).items():
                    history.setdefault(k, []).append(float(v))
                resume.wait()
                resume.folder.mkdir(exist_ok=True)
                values = _values(self.model)
                state = {"epoch": epoch + 1, "history": history, "run": resume.fingerprint,
                         **extra()}
                text = (json.dumps(state, indent=1) + "\n").encode()
                resume._writer = threading.Thread(target=resume._write,
                                                  args=(epoch + 1, values, text))
                resume._writer.start()

            def on_train_end(self, logs: Any = None) -> None:
                resume.wait()

        return SaveEpoch()


def _state_variables(model: Any) -> list[Any]:
    """What a resumed run needs back: the model's variables (its layers' random generators'
    states among them, which a .keras file leaves out) and the optimizer's (built first, so
    that its slots are there)."""
    if not model.optimizer.built:
        model.optimizer.build(model.trainable_variables)
    return [*model.variables, *model.optimizer.variables]


def _values(model: Any) -> list[Any]:
    import keras

    return [np.array(keras.ops.convert_to_numpy(v)) for v in _state_variables(model)]


def _save_values(path: str, values: list[Any]) -> None:
    with open(path, "wb") as f:
        np.savez(f, *values)
        f.flush()
        os.fsync(f.fileno())


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


def _restore(model: Any, path: Path) -> None:
    """The values saved after an epoch, back into the model's and its optimizer's variables
    (a run of another model is refused: the fingerprint names the spec, not its layers)."""
    from specc.errors import UsageError

    variables = _state_variables(model)
    with np.load(path) as saved:
        values = [saved[f"arr_{i}"] for i in range(len(saved.files))]
    if len(values) != len(variables) or any(
            tuple(v.shape) != a.shape for v, a in zip(variables, values)):
        raise UsageError(f"--resume: the state in {path.parent} is another model's (the spec "
                         "changed since); run without --resume to start over")
    for v, a in zip(variables, values):
        v.assign(a)
