"""specc: a declarative model-spec compiler for Keras 3.

    spec = specc.load("spec.yaml")         # read + validate (no TensorFlow imported)
    model = specc.build("spec.yaml")       # a compiled keras.Model
    model = specc.load_model("m.keras")    # keras.saving.load_model, deep models included

Importing specc never imports Keras. Its Keras objects (SpecModel, PenaltyTap, ...) are
registered as soon as Keras is imported, so `keras.saving.load_model(path, safe_mode=True)`
works after `import specc` in any order.
"""
from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import os
import sys
from typing import TYPE_CHECKING, Any, Sequence

from specc.errors import Diagnostic, Span, SpecError
from specc.penalties import VIAS, register_penalty

if TYPE_CHECKING:
    from specc.spec.model import Spec

__version__ = "0.1.0"
__all__ = ["load", "loads", "build", "lower", "load_model", "SpecError", "Diagnostic", "Span",
           "register_penalty", "register_layer", "register_loss", "register_metric", "VIAS",
           "__version__"]


def load(path: str | os.PathLike, *, overrides: Sequence[Any] = (),
         limits: Any = None) -> Spec:
    """Read and validate a spec file. Raises SpecError (file:line:col: message).

    `overrides`: `specc.overrides.parse_all(["seed=3", ...])`, as the CLI's `--set`;
    `limits`: the size budget, `specc.budget.Limits(max_params=..., max_activation=...)`."""
    from specc.validation import load as _load

    return _load(path, overrides, limits)


def loads(text: str | bytes, file: str = "<string>", *, overrides: Sequence[Any] = (),
          limits: Any = None) -> Spec:
    """Validate spec text; `file` names it in diagnostics. `overrides`, `limits`: as load."""
    from specc.validation import loads as _loads

    return _loads(text, file, overrides, limits)


def lower(source: Any, via: str | None = None) -> Any:
    """The backend-free plan of the model (specc.graph.Graph)."""
    from specc.graph import lower as _lower
    from specc.spec.model import Spec as _Spec

    if via is not None and via not in VIAS:
        raise ValueError(f"via must be one of {', '.join(VIAS)}, not {via!r}")
    spec = source if isinstance(source, _Spec) else load(source)
    return _lower(spec, via)


def build(source: Any, via: str | None = None, compile: bool = True) -> Any:
    """Compile a spec (a path or a loaded Spec) into a compiled keras.Model.

    `via` forces one strategy (activity_regularizer, add_loss, output) on every clause.
    """
    graph = lower(source, via)
    from specc.runtime import emit

    return emit(graph, compile=compile)


def load_model(path: str | os.PathLike, safe_mode: bool = True, **kwargs: Any) -> Any:
    """`keras.saving.load_model(path, safe_mode=safe_mode, **kwargs)`; a deep model (over
    500 layers, where Keras's recursive graph code would raise RecursionError) is loaded with
    room for that recursion (specc.runtime.deep)."""
    import keras

    from specc.runtime.deep import deep_call, saved_layers
    from specc.runtime.plugins import check_saved_classes, import_all

    from specc.plugin_source import realize_all

    realize_all()                      # one-file plugins read from their source: import them
    import_all()                       # the registered layer classes, lazily given by name
    check_saved_classes(path)          # one that no plugin registers: one line, no traceback
    return deep_call(keras.saving.load_model, path, safe_mode=safe_mode,
                     layers=saved_layers(path), **kwargs)


def register_layer(type: str, layer: Any = None, **options: Any) -> Any:
    """Register a custom Keras layer class under a spec type name (see
    specc.custom_layers.register_layer for the options: args, shape, params, weights, ...).
    Without `layer`, a class decorator (it returns the class unchanged)."""
    from specc.custom_layers import register_layer as _register

    caller = sys._getframe(1).f_globals.get("__name__", "?")
    if layer is None:
        def decorate(cls: Any) -> Any:
            _register(type, cls, _caller=caller, **options)
            return cls

        return decorate
    return _register(type, layer, _caller=caller, **options)


def register_loss(name: str, loss: Any = None, *, args: Any = None) -> Any:
    """Register a custom loss under a name a spec writes as `loss: NAME` or `loss: {type:
    NAME, ...}`: a function `fn(y_true, y_pred, **arguments)`, a keras.losses.Loss class, or
    "module:attr" (imported when a model is built); without `loss`, a decorator. `args`: a
    Pydantic model of its arguments (None: from the annotated signature). See
    specc.custom_losses.register."""
    from specc.custom_losses import register

    return register("loss", name, loss, args=args,
                    _caller=sys._getframe(1).f_globals.get("__name__", "?"))


def register_metric(name: str, metric: Any = None, *, args: Any = None) -> Any:
    """Register a custom metric (a function `fn(y_true, y_pred, **arguments)` averaged over
    the samples, a keras.metrics.Metric class, or "module:attr"); as register_loss."""
    from specc.custom_losses import register

    return register("metric", name, metric, args=args,
                    _caller=sys._getframe(1).f_globals.get("__name__", "?"))


def __getattr__(name: str) -> Any:
    """specc's submodules as attributes after a plain `import specc` (`specc.overrides.
    parse_all`, `specc.validation.load`, as the README writes them), each imported on first
    use so that `import specc` stays light (PEP 562)."""
    if not name.startswith("_") and name.isidentifier() and \
            importlib.util.find_spec(f"specc.{name}") is not None:
        return importlib.import_module(f"specc.{name}")
    raise AttributeError(f"module 'specc' has no attribute {name!r}")


def _register_keras_objects() -> None:
    import specc.runtime.objects  # noqa: F401  (registers the specc Keras classes)
    import specc.runtime.plugin_objects  # noqa: F401  (the plugin loss and metric wrappers)
    import specc.runtime.pairs  # noqa: F401  (and the pair penalties' layers)


class _AfterKeras(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Registers specc's Keras classes right after `keras` is imported, not before."""

    def __init__(self) -> None:
        self._inner: Any = None

    def find_spec(self, name: str, path: Any, target: Any = None) -> Any:
        if name != "keras":
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(name)
        if spec is None or spec.loader is None:
            return spec
        self._inner = spec.loader
        spec.loader = self
        return spec

    def create_module(self, spec: Any) -> Any:
        return self._inner.create_module(spec)

    def exec_module(self, module: Any) -> None:
        module.__spec__.loader = self._inner
        module.__loader__ = self._inner
        self._inner.exec_module(module)
        _register_keras_objects()


if "keras" in sys.modules:
    _register_keras_objects()
elif not any(isinstance(f, _AfterKeras) for f in sys.meta_path):
    sys.meta_path.insert(0, _AfterKeras())
