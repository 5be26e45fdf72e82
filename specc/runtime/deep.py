"""Deep models: room for Keras's recursive graph code.

Keras's functional graph code (`_build_map_helper`, its tree helpers) recurses once per layer,
so a chain of ~1,000 layers raises RecursionError at build, save and load. `deep_call` runs
such a call in a thread with a large stack and a raised recursion limit, restoring both
afterwards; models of up to DEEP_LAYERS layers are called as they are, unchanged.

The worker thread starts with the caller's Keras global state (dtype policy, random seed,
distribution, custom-object scopes: Keras keeps them per thread) and the caller's
tf.distribute strategy scope, and hands its state back when it ends, so a deep call behaves
like a plain one. Its exception is raised in the caller with its traceback. Ctrl-C or SIGTERM
(signals reach only the main thread) is sent on into the worker, the caller waits for the
worker to unwind (a second interrupt stops the waiting), then the caller raises it.

Nothing here imports Keras or TensorFlow; they are looked up when already imported.
"""
from __future__ import annotations

import ctypes
import json
import sys
import threading
import zipfile
from typing import Any, Callable, Final, TypeVar

T = TypeVar("T")

#: Models with more layers than this run in the deep thread; smaller ones as they are.
DEEP_LAYERS: Final = 500
#: Recursion-limit frames allowed per layer, and for everything around the model (Keras,
#: TensorFlow, the caller). Measured on Keras 3.15 / Python 3.11: building or loading a
#: chain of N layers needs about N + 500 frames; 4 per layer leaves room.
FRAMES_PER_LAYER: Final = 4
BASE_FRAMES: Final = 5_000
#: Thread stack bytes per allowed frame, and the bounds of the stack size. Python 3.11 keeps
#: Python-to-Python calls off the C stack (a 3,000-layer load touched under 1 MB of it);
#: older interpreters use up to about 1 KB of C stack per frame.
STACK_PER_FRAME: Final = 2048
MIN_STACK: Final = 64 * 2**20
MAX_STACK: Final = 2**30

_lock = threading.Lock()
_active = 0                 # deep calls in flight (they share the raised limit)
_saved_limit = 0            # the recursion limit before the first of them
_local = threading.local()  # .inside: this thread is a deep worker


def is_deep(layers: int) -> bool:
    return layers > DEEP_LAYERS


def model_depth(model: Any) -> int:
    """The number of layers of a Keras model (its operations for a functional model)."""
    ops = getattr(model, "_operations", None)
    return len(ops) if ops is not None else len(getattr(model, "layers", ()))


def frames_for(layers: int) -> int:
    return BASE_FRAMES + FRAMES_PER_LAYER * layers


def deep_call(fn: Callable[..., T], *args: Any, layers: int, **kwargs: Any) -> T:
    """`fn(*args, **kwargs)`, in a deep thread when `layers` is over DEEP_LAYERS."""
    if not is_deep(layers) or getattr(_local, "inside", False):
        return fn(*args, **kwargs)
    frames = frames_for(layers)
    stack = max(MIN_STACK, min(MAX_STACK, frames * STACK_PER_FRAME))
    box: dict[str, Any] = {}
    go, cancel, done = threading.Event(), threading.Event(), threading.Event()
    state = _keras_state()
    strategy = _strategy()

    def work() -> None:
        go.wait()                      # until the caller waits (or gives up)
        if cancel.is_set():
            done.set()
            return
        _local.inside = True
        try:
            _set_keras_state(state)
            if strategy is not None:
                with strategy.scope():
                    box["value"] = fn(*args, **kwargs)
            else:
                box["value"] = fn(*args, **kwargs)
        except BaseException as exc:   # noqa: B902  (handed to the caller, raised there)
            box["error"] = exc
        finally:
            box["state"] = _keras_state()
            done.set()

    thread = threading.Thread(target=work, name="specc-deep", daemon=True)
    _enter(frames)
    try:
        try:
            with _lock:
                old_stack = threading.stack_size()
                try:
                    threading.stack_size(stack)
                    thread.start()
                finally:
                    threading.stack_size(old_stack)
        except BaseException:          # not started, or interrupted while starting
            cancel.set()
            go.set()
            raise
        _wait(thread, go, cancel, done)
    finally:
        _leave()
    if "state" in box:
        _set_keras_state(box["state"], replace=True)
    if "error" in box:
        error = box.pop("error")
        try:
            raise error.with_traceback(error.__traceback__)
        finally:
            del error
    return box["value"]


def _enter(frames: int) -> None:
    global _active, _saved_limit
    with _lock:
        if _active == 0:
            _saved_limit = sys.getrecursionlimit()
        _active += 1
        if sys.getrecursionlimit() < frames:
            sys.setrecursionlimit(frames)


def _leave() -> None:
    global _active
    with _lock:
        _active -= 1
        if _active == 0:
            sys.setrecursionlimit(_saved_limit)


def _wait(thread: threading.Thread, go: threading.Event, cancel: threading.Event,
          done: threading.Event) -> None:
    """Let `thread` run and wait for it; an interrupt in the caller is raised in it too, and
    waited for (a second interrupt stops the waiting: the thread is a daemon).

    On an Event, not `join`: Python 3.11's join, interrupted, marks the thread as stopped
    while it still runs (bpo-45274's fix releases its lock)."""
    try:
        go.set()
        done.wait()
    except BaseException as exc:   # KeyboardInterrupt, specc's Terminated, SystemExit
        if not go.is_set():
            cancel.set()
            go.set()
        elif not done.is_set() and thread.ident is not None:
            ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(thread.ident),
                                                       ctypes.py_object(type(exc)))
            try:
                while not done.wait(0.1) and thread.is_alive():
                    pass
            except BaseException:
                pass
        raise
    thread.join()


def _trackers() -> list[Any]:
    mod = sys.modules.get("keras.src.backend.common.global_state")
    if mod is None:
        return []
    return [t for t in (getattr(mod, "GLOBAL_STATE_TRACKER", None),
                        getattr(mod, "GLOBAL_SETTINGS_TRACKER", None)) if t is not None]


def _keras_state() -> list[dict[str, Any]]:
    return [dict(vars(t)) for t in _trackers()]


def _set_keras_state(state: list[dict[str, Any]], replace: bool = False) -> None:
    for tracker, values in zip(_trackers(), state):
        if replace:
            vars(tracker).clear()
        vars(tracker).update(values)


def _strategy() -> Any:
    """The caller's tf.distribute strategy, if it is inside one's scope."""
    tf = sys.modules.get("tensorflow")
    distribute = getattr(tf, "distribute", None)
    if distribute is None or not distribute.has_strategy():
        return None
    return distribute.get_strategy()


def saved_layers(path: Any) -> int:
    """The number of layers a .keras file's model lists at its top level (0 if unknown),
    read from its config.json without building anything."""
    try:
        with zipfile.ZipFile(path) as archive:
            with archive.open("config.json") as f:
                config = json.load(f)
        layers = config.get("config", {}).get("layers", [])
        return len(layers) if isinstance(layers, list) else 0
    except (OSError, ValueError, KeyError, AttributeError, zipfile.BadZipFile):
        return 0
