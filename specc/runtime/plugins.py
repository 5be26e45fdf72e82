"""Registered layer classes at build and load time: import, check, and explain what is missing.

The spec side (specc.custom_layers) knows a class only by name until here.
"""
from __future__ import annotations

import importlib
import json
import zipfile
from typing import Any, Iterator

import keras

from specc.custom_layers import CustomLayer, lookup, registered
from specc.errors import UsageError


class MissingLayerClass(UsageError):
    """A saved model uses a custom layer class that no imported plugin registered."""


def layer_class(type_name: str) -> type:
    """The Keras class of a registered layer type, imported on first use and checked."""
    entry = lookup(type_name)
    if entry is None:
        raise ValueError(f"layer type {type_name!r} is not registered; import its plugin first")
    return _resolve(entry)


def _resolve(entry: CustomLayer) -> type:
    cls = entry.layer
    if isinstance(cls, str):
        module, _, qualname = cls.partition(":")
        try:
            found: Any = importlib.import_module(module)
            for part in qualname.split("."):
                found = getattr(found, part)
        except (ImportError, AttributeError) as exc:
            raise ImportError(f"the plugin {entry.plugin} registered {entry.type!r} as {cls}, "
                              f"which cannot be imported ({type(exc).__name__}: {exc})") from None
        cls = found
    if not (isinstance(cls, type) and issubclass(cls, keras.layers.Layer)):
        raise TypeError(f"the plugin {entry.plugin} registered {entry.type!r} as "
                        f"{entry.class_path}, which is not a keras.layers.Layer class")
    keras_own = cls.__module__.split(".")[0] == "keras"    # Keras finds these by module
    if not keras_own and keras.saving.get_registered_object(
            keras.saving.get_registered_name(cls)) is not cls:
        raise TypeError(f"{entry.class_path} (layer type {entry.type!r}, plugin {entry.plugin}) "
                        "is not registered serializable: decorate it with "
                        "@keras.saving.register_keras_serializable(package=...) so saved "
                        "models load with safe_mode=True")
    return cls


def import_all() -> None:
    """Import every registered layer class (so Keras can deserialize them); one that cannot
    be imported is left out here: the check of the saved classes names it if it is used."""
    for entry in registered().values():
        try:
            _resolve(entry)
        except (ImportError, TypeError):
            pass


def _custom_classes(config: Any) -> Iterator[tuple[str, str, str]]:
    """(registered name, module, layer name) of every registered (non-Keras) object."""
    if isinstance(config, dict):
        registered_name = config.get("registered_name")
        module = config.get("module")
        if (isinstance(registered_name, str) and ">" in registered_name
                and isinstance(module, str)):
            inner = config.get("config")
            name = inner.get("name", "?") if isinstance(inner, dict) else "?"
            yield registered_name, module, str(name)
        for value in config.values():
            yield from _custom_classes(value)
    elif isinstance(config, list):
        for value in config:
            yield from _custom_classes(value)


def check_saved_classes(path: Any) -> None:
    """Refuse, in one line, a `.keras` file whose custom classes are not registered:
    the class, the layer that uses it, and the module that defines it."""
    try:
        with zipfile.ZipFile(path) as archive:
            config = json.loads(archive.read("config.json"))
    except (OSError, KeyError, ValueError, zipfile.BadZipFile):
        return                              # not a .keras archive: Keras says what it is
    _check_plugin_objects(path, config)
    for name, module, layer in _custom_classes(config):
        if keras.saving.get_registered_object(name) is None:
            raise MissingLayerClass(
                f"{path}: layer {layer!r} is of class {name!r} (module {module}), which no "
                "imported plugin registers: import the plugin that defines it first "
                "(`--plugin MODULE`, `import MODULE`, or install its `specc.layers` entry "
                "point)")


_WRAPPERS = {"specc>PluginLoss": ("loss", "loss"), "specc>PluginMetric": ("metric", "metric")}


def _plugin_objects(config: Any) -> Iterator[tuple[str, str]]:
    """(kind, name) of every plugin loss and metric a saved model's configuration holds."""
    if isinstance(config, dict):
        wrapper = _WRAPPERS.get(config.get("registered_name"))
        inner = config.get("config")
        if wrapper is not None and isinstance(inner, dict) and isinstance(
                inner.get(wrapper[1]), str):
            yield wrapper[0], inner[wrapper[1]]
        for value in config.values():
            yield from _plugin_objects(value)
    elif isinstance(config, list):
        for value in config:
            yield from _plugin_objects(value)


def _check_plugin_objects(path: Any, config: Any) -> None:
    """A saved plugin loss or metric whose name no imported plugin registers: one line
    (Keras would only warn that the model could not be compiled)."""
    from specc import custom_losses

    for kind, name in _plugin_objects(config):
        if custom_losses.lookup(kind, name) is None:
            raise MissingLayerClass(
                f"{path}: the model's {kind} {name!r} is registered by no imported plugin: "
                "import the plugin that registers it first (`--plugin MODULE`, [tool.specc] "
                f"plugins, `import MODULE`, or install its "
                f"`{custom_losses.ENTRY_POINT_GROUPS[kind]}` entry point)")
