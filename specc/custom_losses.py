"""Custom losses and metrics from plugins: a function or Keras class registered under a name
that a spec writes like a catalog loss or metric (`loss: {type: contrastive, margin: 1.0}`).

A plugin (a module the user chose to import: the project configuration's `plugins`,
`--plugin MODULE`, or an installed package's `specc.losses` / `specc.metrics` entry point)
calls `specc.register_loss` or `specc.register_metric`. A spec never names a module.

No Keras here: the spec side knows each one by its name and its arguments (a Pydantic model);
specc.runtime.plugin_objects wraps it in a Keras loss or metric that saves as its name and
arguments, so a saved model loads with `safe_mode=True` once the plugin is imported.
"""
from __future__ import annotations

import inspect
import re
import sys
from dataclasses import dataclass
from typing import Any, Callable, ClassVar, Final, Literal, Optional, Union, get_args

from pydantic import BaseModel, create_model

from specc.penalties import PluginError
from specc.spec.base import Strict
from specc.spec.catalog_names import LossName, MetricName

KINDS: Final = ("loss", "metric")
#: Installed packages declare their plugin modules here (pyproject: [project.entry-points]).
ENTRY_POINT_GROUPS: Final = {"loss": "specc.losses", "metric": "specc.metrics"}
#: Arguments specc passes itself (or that the Keras wrapper takes): not a plugin's to define.
RESERVED: Final = frozenset({"type", "name", "reduction", "dtype", "y_true", "y_pred",
                             "sample_weight"})
_CLASS_PATH: Final = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$")
_NAME: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")


class PluginObject(Strict):
    """The spec model of every registered loss or metric: `type` and its arguments.

    The class attributes are set per registered name (register_loss, register_metric)."""

    #: "loss" or "metric".
    object_kind: ClassVar[str] = ""
    #: The module that registered it: named in messages.
    plugin: ClassVar[str] = ""

    def arguments(self) -> dict[str, Any]:
        """The arguments the function or class is called with (defaults included)."""
        return self.model_dump(exclude={"type"})

    # A metric list is looked up by name in tables (specc.rules): hash by kind and name.
    def __hash__(self) -> int:
        return hash((self.object_kind, getattr(self, "type", "")))


@dataclass(frozen=True)
class CustomObject:
    """One registered loss or metric."""

    kind: str                        # "loss" or "metric"
    name: str                        # what a spec writes as the loss / metric
    target: Union[Callable, type, str]   # function, Keras class, or "module:attr"
    model: type[PluginObject]        # the spec model
    plugin: str                      # the module that registered it

    @property
    def target_path(self) -> str:
        if isinstance(self.target, str):
            return str(self.target)
        return f"{self.target.__module__}:{self.target.__qualname__}"


_REGISTRY: dict[str, dict[str, CustomObject]] = {"loss": {}, "metric": {}}
_entry_points_loaded: dict[str, bool] = {"loss": False, "metric": False}
#: Installed loss / metric plugins whose import failed: one line each.
_BROKEN: dict[str, list[str]] = {"loss": [], "metric": []}


def catalog_names(kind: str) -> tuple[str, ...]:
    """The catalog's loss or metric names (specc.spec.catalog_names)."""
    return get_args(LossName if kind == "loss" else MetricName)


def register(kind: str, name: str, target: Any = None, *, args: Optional[type[BaseModel]] = None,
             _caller: Optional[str] = None) -> Any:
    """Register a loss or metric under `name` (specc.register_loss / register_metric).

    `target`: a function `fn(y_true, y_pred, **arguments)` returning one value per sample (or
    their mean), a Keras class (keras.losses.Loss / keras.metrics.Metric, constructed with the
    arguments), or "module:attr", imported only when a model is built or loaded. Without
    `target`, a decorator. `args`: a Pydantic model of the arguments; None: derived from the
    function's (or constructor's) annotated keyword arguments, or none for "module:attr".
    """
    plugin = _caller or sys._getframe(1).f_globals.get("__name__", "?")
    where = f"register_{kind}({name!r})"
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)}")
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise ValueError(f"register_{kind}: {name!r} is not a {kind} name (letters, digits, "
                         "'_', at most 64)")
    if name in catalog_names(kind):
        raise ValueError(f"{where}: {name!r} is a built-in {kind} and cannot be replaced")
    if target is None:
        def decorate(obj: Any) -> Any:
            register(kind, name, obj, args=args, _caller=plugin)
            return obj

        return decorate
    if isinstance(target, str):
        if not _CLASS_PATH.match(target):
            raise ValueError(f"{where}: {target!r} is not 'module:attr'")
    elif not callable(target):
        raise ValueError(f"{where}: give a function, a Keras class or 'module:attr'")
    fields = _fields(where, target, args)
    model = create_model(name, __base__=(args, PluginObject) if args else PluginObject,
                         __module__=plugin, type=(Literal[name], ...), **fields)
    model.__doc__ = (inspect.getdoc(target) if not isinstance(target, str) else None) or (
        f"{name}: a custom {kind} registered by the plugin {plugin}.")
    model.object_kind, model.plugin = kind, plugin
    _REGISTRY[kind][name] = CustomObject(kind, name, target, model, plugin)
    return target


def _fields(where: str, target: Any, args: Optional[type[BaseModel]]) -> dict[str, Any]:
    if args is not None:
        if not (inspect.isclass(args) and issubclass(args, BaseModel)):
            raise ValueError(f"{where}: args must be a Pydantic model class")
        clash = sorted(set(args.model_fields) & RESERVED)
        if clash:
            raise ValueError(f"{where}: args may not define {clash[0]!r} (specc sets it)")
        return {}
    from specc.plugin_source import declared_arguments

    # a one-file plugin's class read from its source: its __init__'s arguments ("module:attr"
    # naming anything else: none); a class: its __init__'s after self; a function's after
    # y_true, y_pred
    params, qualname = declared_arguments(target, 1 if inspect.isclass(target) else 2, where)
    fields: dict[str, Any] = {}
    for name, hint, default in params:
        if name in RESERVED:
            continue
        if hint is None:
            raise ValueError(f"{where}: argument {name!r} of {qualname} has no "
                             "annotation; annotate it or give args=")
        fields[name] = (hint, ... if default is inspect.Parameter.empty else default)
    return fields


def unregister(kind: str, name: str) -> None:
    _REGISTRY[kind].pop(name, None)


def lookup(kind: str, name: str) -> Optional[CustomObject]:
    """The registered loss or metric of this name; installed plugins of the kind's group are
    loaded the first time a name is neither in the catalog nor registered. Still unknown
    while an installed plugin failed to import: PluginError naming it."""
    found = _REGISTRY[kind].get(name)
    if found is None and not _entry_points_loaded[kind]:
        _entry_points_loaded[kind] = True
        from specc.plugin_source import load_entry_points

        load_entry_points(ENTRY_POINT_GROUPS[kind], _BROKEN[kind])
        found = _REGISTRY[kind].get(name)
    broken = _BROKEN[kind]
    if found is None and broken:
        raise PluginError(f"{kind} {str(name)[:40]!r} is unknown and {broken[0]}"
                          + (f" (and {len(broken) - 1} more)" if len(broken) > 1 else ""))
    return found


def registered(kind: str) -> dict[str, CustomObject]:
    """Every registered loss or metric, by name (after loading the installed plugins)."""
    lookup(kind, "")
    return dict(_REGISTRY[kind])


def registered_names(kind: str) -> frozenset[str]:
    """The names registered so far (no plugin loading)."""
    return frozenset(_REGISTRY[kind])


def validate_entry(kind: str, value: Any, handler: Callable[[Any], Any], info: Any) -> Any:
    """A spec's loss or metric entry: a registered name (or `{type: NAME, ...}`) becomes its
    model's instance, located errors and all; anything else goes to the catalog's validation."""
    name = value if isinstance(value, str) else (
        value.get("type") if isinstance(value, dict) else None)
    if isinstance(name, str) and name not in catalog_names(kind):
        entry = lookup(kind, name)
        if entry is not None:
            data = {"type": name} if isinstance(value, str) else value
            return entry.model.model_validate(data, context=getattr(info, "context", None))
    return handler(value)


def name_of(entry: Any) -> Optional[str]:
    """A spec's loss or metric entry (a name, a LossSpec, a plugin's model) as its name."""
    if entry is None:
        return None
    return entry if isinstance(entry, str) else str(entry.type)


def unknown_note(kind: str) -> str:
    """What to add after an unknown loss or metric name: where custom ones come from."""
    plugged = sorted(_REGISTRY[kind])
    if plugged:
        return f"; registered by plugins: {', '.join(plugged)}"
    return (f"; a custom {kind} comes from a plugin: --plugin MODULE, [tool.specc] plugins, or "
            f"an installed package's `{ENTRY_POINT_GROUPS[kind]}` entry point")
