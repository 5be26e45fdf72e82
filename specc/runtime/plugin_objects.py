"""The Keras side of plugin losses and metrics (specc.custom_losses): one wrapper class each,
registered under the `specc` package, that saves as the plugin's name and arguments.

A saved model therefore names no plugin code: it loads with `safe_mode=True` once the plugin
that registers the name is imported (specc.load_model imports the configured ones), and the
plugin's function or class need not be registered with Keras itself.
"""
from __future__ import annotations

import importlib
from typing import Any

import keras

from specc import custom_losses
from specc.custom_losses import CustomObject

_register = keras.saving.register_keras_serializable(package="specc")


def resolve(kind: str, name: str) -> Any:
    """The function or Keras class registered under `name`, imported now if it was given as
    "module:attr" (or read from a one-file plugin's source: specc.plugin_source)."""
    from specc import plugin_source

    entry = custom_losses.lookup(kind, name)
    if entry is not None and plugin_source.is_light(entry.plugin):
        plugin_source.realize(entry.plugin)       # the module itself, imports and all
        entry = custom_losses.lookup(kind, name)
    if entry is None:
        raise ValueError(f"{kind} {name!r} is not registered: import the plugin that "
                         f"registers it first (`--plugin MODULE`, [tool.specc] plugins, or "
                         f"an installed `{custom_losses.ENTRY_POINT_GROUPS[kind]}` entry "
                         "point)")
    return _target(entry)


def _target(entry: CustomObject) -> Any:
    target = entry.target
    if isinstance(target, str):
        module, _, qualname = str(target).partition(":")
        try:
            found: Any = importlib.import_module(module)
            for part in qualname.split("."):
                found = getattr(found, part)
        except (ImportError, AttributeError) as exc:
            raise ImportError(f"the plugin {entry.plugin} registered {entry.kind} "
                              f"{entry.name!r} as {target}, which cannot be imported "
                              f"({type(exc).__name__}: {exc})") from None
        target = found
    base = keras.losses.Loss if entry.kind == "loss" else keras.metrics.Metric
    if isinstance(target, type) and not issubclass(target, base):
        raise TypeError(f"the plugin {entry.plugin} registered {entry.kind} {entry.name!r} as "
                        f"{entry.target_path}, a class that is not a {base.__module__}."
                        f"{base.__qualname__}")
    if not callable(target):
        raise TypeError(f"the plugin {entry.plugin} registered {entry.kind} {entry.name!r} as "
                        f"{entry.target_path}, which is not callable")
    return target


@_register
class PluginLoss(keras.losses.Loss):
    """A plugin's loss: its function, called as fn(y_true, y_pred, **args) and reduced as
    Keras reduces its own (the mean over the batch, sample weights applied), or its
    keras.losses.Loss class built with the arguments (its `call` and reduction)."""

    def __init__(self, loss: str, args: dict | None = None, name: str | None = None,
                 reduction: str | None = None, dtype: Any = None) -> None:
        target = resolve("loss", loss)
        self.loss_type, self.args = loss, dict(args or {})
        self._inner = target(**self.args) if isinstance(target, type) else None
        self._fn = None if self._inner is not None else target
        if reduction is None:
            reduction = (self._inner.reduction if self._inner is not None
                         else "sum_over_batch_size")
        super().__init__(name=name or loss, reduction=reduction, dtype=dtype)

    def call(self, y_true: Any, y_pred: Any) -> Any:
        if self._inner is not None:
            return self._inner.call(y_true, y_pred)
        return self._fn(y_true, y_pred, **self.args)

    def get_config(self) -> dict:
        return {"loss": self.loss_type, "args": self.args, "name": self.name,
                "reduction": self.reduction}


@_register
class PluginMetric(keras.metrics.Metric):
    """A plugin's metric: its function's values averaged over the samples (as Keras's
    MeanMetricWrapper does), or its keras.metrics.Metric class built with the arguments."""

    def __init__(self, metric: str, args: dict | None = None, name: str | None = None,
                 dtype: Any = None) -> None:
        super().__init__(name=name or metric, dtype=dtype)
        target = resolve("metric", metric)
        self.metric_type, self.args = metric, dict(args or {})
        if isinstance(target, type):
            self._inner = target(**self.args)
        else:
            arguments = self.args

            def fn(y_true: Any, y_pred: Any) -> Any:
                return target(y_true, y_pred, **arguments)

            self._inner = keras.metrics.MeanMetricWrapper(fn, name=self.name, dtype=dtype)

    def update_state(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> Any:
        return self._inner.update_state(y_true, y_pred, sample_weight=sample_weight)

    def result(self) -> Any:
        return self._inner.result()

    def reset_state(self) -> None:
        self._inner.reset_state()

    def get_config(self) -> dict:
        return {"metric": self.metric_type, "args": self.args, "name": self.name,
                "dtype": self.dtype}


def loss_object(entry: Any) -> Any:
    """A spec's loss entry for model.compile: a plugin's as a PluginLoss."""
    return PluginLoss(entry.type, entry.arguments())


def metric_object(entry: Any) -> Any:
    """A spec's metric entry for model.compile: a catalog name as it is, a plugin's as a
    PluginMetric."""
    if isinstance(entry, str):
        return entry
    return PluginMetric(entry.type, entry.arguments())
