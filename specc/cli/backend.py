"""Starting Keras for the commands that need it: which backend, whether its packages are
installed (checked without importing them), and its start-up lines kept off standard error."""
from __future__ import annotations

import argparse
import importlib
import os
import sys
from typing import Final

from specc.config import Options
from specc.errors import UsageError

def import_quietly(name: str) -> None:
    """Import a module with file descriptor 2 sent to a temporary file.

    TensorFlow writes its start-up lines (`cudart_stub`, `cuInit`, the oneDNN notice, absl's
    "before InitializeLog") straight to fd 2 while it loads, before TF_CPP_MIN_LOG_LEVEL
    applies. What was written is shown only if the import fails; the command that needs the
    module then reports the failure itself.
    """
    import tempfile

    sys.stderr.flush()
    try:
        saved = os.dup(2)
    except OSError:                       # no standard error to protect
        return
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        failed = False
        try:
            importlib.import_module(name)
            tf = sys.modules.get("tensorflow")
            if tf is not None:            # device discovery logs too (cuInit); do it here
                tf.config.list_physical_devices()
        except Exception:                 # an ImportError, or a backend that fails to start
            failed = True
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
        if failed:
            captured.seek(0)
            sys.stderr.write(captured.read().decode("utf-8", "replace"))


#: Keras's backends and the module each needs.
BACKENDS: Final = {"tensorflow": "tensorflow", "jax": "jax", "torch": "torch"}
#: What each Keras command needs installed besides Keras, NumPy and the backend's package
#: (module, the extra or package that brings it).
_NEEDS: Final = {"fit": ("matplotlib",), "plot": ("pydot",)}


def _extra_for(backend: str) -> str:
    return f"specc-keras[{backend}]"


def backend_name(args: argparse.Namespace, options: Options) -> str | None:
    """The Keras backend a command runs on: --backend, else KERAS_BACKEND, else the
    configuration's `backend`; None leaves Keras's own setting (tensorflow unless changed).
    Refused in one line when unknown or when Keras already runs on another in this process."""
    name = getattr(args, "backend", None)
    if name is None:
        name = os.environ.get("KERAS_BACKEND")
        if name is not None and name not in BACKENDS:
            raise UsageError(f"KERAS_BACKEND={name}: not a backend specc runs on "
                             f"(choose from {', '.join(BACKENDS)})")
    if name is None:
        name = options.backend
    if name is not None and not findable(BACKENDS[name]):
        cpu = (" (for a CPU-only torch, first: pip install torch --index-url "
               "https://download.pytorch.org/whl/cpu)" if name == "torch" else "")
        raise UsageError(f"backend {name}: the {BACKENDS[name]} package is not installed "
                         f"(pip install \"{_extra_for(name)}\"{cpu})")
    running = sys.modules.get("keras")
    if name is not None and running is not None and running.backend.backend() != name:
        raise UsageError(f"backend {name}: Keras already runs on {running.backend.backend()} "
                         "in this process (the backend is chosen once, before Keras starts)")
    return name


def check_installed(command: str, backend: str | None) -> None:
    """Refuse in one line, naming the extra to install, when a command needs a package this
    install lacks (the plain install is validation only: no Keras, no NumPy). Nothing is
    imported: importlib.util.find_spec only looks."""
    if "keras" in sys.modules:            # already running (a test, a notebook)
        return
    extra = _extra_for(backend or "tensorflow")
    needs = ["keras", "numpy", *(("tensorflow",) if backend in (None, "tensorflow") else ()),
             *_NEEDS.get(command, ())]
    for module in needs:
        if not findable(module):
            raise UsageError(f"specc {command} needs {module}, which this install lacks "
                             f"(the plain install is validation only): pip install \"{extra}\"")


def start_backend(options: Options) -> None:
    """Import Keras (and its backend) now that the command has checked everything it can
    without it; unless --verbose, what TensorFlow, JAX or PyTorch write to standard error
    while starting (absl, oneDNN, cudart, cuInit lines) is kept away, on every backend."""
    if options.verbose or "keras" in sys.modules:
        if "keras" not in sys.modules:
            importlib.import_module("keras")
        return
    backend = os.environ.get("KERAS_BACKEND", "tensorflow")
    # TensorFlow is imported by Keras on any backend sooner or later (data adapters,
    # TensorBoard): start it in the quiet window too, then the backend, then Keras.
    for module in ("tensorflow", *(() if backend == "tensorflow" else (BACKENDS.get(backend,
                                                                                   backend),)),
                   "keras"):
        if module == "keras" or findable(module):
            import_quietly(module)


def findable(module: str) -> bool:
    import importlib.util  # noqa: the submodule

    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def select_backend(args: argparse.Namespace, options: Options) -> str | None:
    """Set KERAS_BACKEND for a command that builds (before Keras is imported); the
    backend's name."""
    name = backend_name(args, options)
    if name is not None:
        os.environ["KERAS_BACKEND"] = name
    return name


def quiet_tensorflow(args: argparse.Namespace) -> None:
    """Unless --verbose: log levels that keep TensorFlow's and XLA's C++ logging and
    Python warnings (retracing) quiet; the start-up lines are handled by start_backend."""
    if getattr(args, "verbose", False):
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import logging

    for name in ("tensorflow", "absl", "jax._src.xla_bridge"):
        logging.getLogger(name).setLevel(logging.ERROR)
