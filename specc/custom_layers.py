"""Custom layers from plugins: a Keras layer class registered under a spec type name.

A plugin (a module the user chose to import: `--plugin MODULE`, or an installed package's
`specc.layers` entry point) calls `specc.register_layer`; a spec can then write
`{name: b1, type: TransformerBlock, ...}` like any catalog layer. A spec never names a module.

No Keras here. The class may be given as `"module:Class"`, imported only when a model is built
or loaded, so validating a spec that uses it never imports TensorFlow; its arguments are then
described by a Pydantic model (`args=`). Given as a class, the arguments may instead be derived
from the constructor's annotated signature.
"""
from __future__ import annotations

import importlib
import inspect
import re
import sys
from dataclasses import dataclass
from typing import (Any, Callable, ClassVar, Final, Literal, Mapping, Optional, Sequence, Union,
                    get_args)

from pydantic import BaseModel, Field, create_model

from specc import catalog
from specc.catalog import LAYER_TYPES
from specc.catalog.args import ActivationArg, Layer
from specc.catalog.definition import LayerDef, ShapeProblem
from specc.penalties import PluginError
from specc.plugin_source import declared_arguments, load_entry_points
from specc.spec.base import CallArgs, LayerSpec

#: Installed packages declare their layer plugin modules here (pyproject: [project.entry-points]).
ENTRY_POINT_GROUP: Final = "specc.layers"
#: specc's own layer plugins (also its entry points): loaded with the installed ones, so they
#: are there when specc runs from a source tree whose entry points are not installed.
BUNDLED: Final = ("specc.applications_layers",)
#: Fields every spec layer has, or that specc passes itself: a plugin's arguments cannot use them.
RESERVED: Final = frozenset({"name", "from", "from_", "call", "type", "dtype", "trainable",
                             "activity_regularizer", "share", "repeat", "if", "use"})
WEIGHT_KINDS: Final = ("kernel", "bias")
_CLASS_PATH: Final = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$")

#: (args, input shapes without the batch axis, None where unknown) -> output shape, or None.
ShapeRule = Callable[[Any, list], Optional[tuple]]
#: (args, input shapes) -> the number of weights Keras creates, or None when unknown.
ParamsRule = Callable[[Any, list], Optional[int]]


class PluginLayer(Layer):
    """The spec model of every registered layer: its arguments plus name, from, dtype, trainable.

    The class attributes are set per registered type (specc.register_layer), which also
    produces the type's definition (specc.catalog.LayerDef) from them."""

    trainable: bool = Field(True, description="false freezes the layer's weights.")

    #: The module that registered the type: named in messages.
    plugin: ClassVar[str] = ""
    #: Clauses go on an identity layer after it unless the plugin says otherwise (own_activity).
    regularizes_own_output: ClassVar[bool] = False


@dataclass(frozen=True)
class CustomLayer:
    """One registered layer type."""

    type: str
    layer: Union[type, str]          # the Keras class, or "module:Class" imported at build
    model: type[PluginLayer]         # the spec model
    plugin: str                      # the module that registered it
    definition: LayerDef             # what validation knows of it (specc.catalog)

    @property
    def class_path(self) -> str:
        if isinstance(self.layer, str):
            return self.layer
        return f"{self.layer.__module__}:{self.layer.__qualname__}"


_REGISTRY: dict[str, CustomLayer] = {}
_entry_points_loaded = False
#: Installed layer plugins whose import failed: one line each.
_BROKEN: list[str] = []


def register_layer(type: str, layer: Union[type, str], *, args: Optional[type[BaseModel]] = None,
                   shape: Optional[ShapeRule] = None, params: Optional[ParamsRule] = None,
                   weights: Optional[Mapping[str, Union[str, Sequence[str]]]] = None,
                   inputs: Union[int, tuple[int, int]] = 1,
                   own_activity: bool = False, call_args: Sequence[str] = (),
                   _caller: Optional[str] = None) -> CustomLayer:
    """Register a Keras layer class under the spec type name `type` (a plugin calls this).

    - `layer`: the class (decorated with `keras.saving.register_keras_serializable`), or
      `"module:Class"`, imported when a model is built or loaded -- validation then needs no
      TensorFlow.
    - `args`: a Pydantic model of the constructor's arguments (what a spec may write besides
      name, from, dtype, trainable). None: derived from the class's annotated `__init__`
      (which needs the class itself, not a string).
    - `shape(args, shapes)`: the output shape (no batch axis) from the input shapes (None
      entries are unknown sizes); raise ValueError when Keras would refuse them. Without it
      the output shape is unknown at validation: nothing after the layer is shape-checked and
      the size budget cannot count what follows.
    - `params(args, shapes)`: the number of weights, for the size budget (None: unknown).
    - `weights`: weight kind (`kernel`, `bias`) -> the constructor argument(s) that take its
      regularizer, so weight-penalty globs reach the layer.
    - `inputs`: how many tensors it reads: a number, or (least, most).
    - `own_activity`: put `via: activity_regularizer` clauses on the layer's own
      `activity_regularizer` (its constructor must pass **kwargs to keras.layers.Layer);
      by default they go on an identity layer right after it, which gives the same term.
    - `call_args`: the keyword arguments of its `call` that a format 2 `call:` mapping may
      give tensors to (`padding_mask`); `specc import` writes them from the recorded call.
    """
    plugin = _caller or sys._getframe(1).f_globals.get("__name__", "?")
    if not isinstance(type, str) or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,63}", type):
        raise ValueError(f"register_layer: {type!r} is not a layer type name (letters, digits, "
                         "'_')")
    if type in LAYER_TYPES:
        raise ValueError(f"register_layer: {type!r} is a built-in layer type and cannot be "
                         "replaced")
    if isinstance(layer, str):
        if not _CLASS_PATH.match(layer):
            raise ValueError(f"register_layer({type!r}): layer {layer!r} is not "
                             "'module:Class'")
        if args is None and getattr(layer, "params", None) is None:
            why = getattr(layer, "why", "") or ("its signature cannot be read without "
                                                "importing it")
            raise ValueError(f"register_layer({type!r}): a class given as {layer!r} needs "
                             f"args= (a Pydantic model of its arguments): {why}")
    elif not inspect.isclass(layer):
        raise ValueError(f"register_layer({type!r}): layer must be a class or 'module:Class'")
    low, high = (inputs, inputs) if isinstance(inputs, int) else tuple(inputs)
    if not 1 <= low <= high:
        raise ValueError(f"register_layer({type!r}): inputs must be >= 1 (least <= most)")
    if isinstance(call_args, str) or not all(isinstance(a, str) and a.isidentifier()
                                             for a in call_args):
        raise ValueError(f"register_layer({type!r}): call_args must be a list of the call's "
                         "keyword argument names")
    regs = _weight_args(type, weights or {})
    fields = _fields(type, layer, args, regs)
    # PluginLayer last: its strict configuration (no unknown keys, no coercion) wins over
    # whatever the plugin's model configures.
    if call_args:                     # its own `call:` keys (the catalog's CallArg otherwise)
        fields["call"] = _call_field(tuple(call_args))
    model = create_model(type, __base__=(args, PluginLayer) if args else PluginLayer,
                         __module__=plugin, type=(Literal[type], ...), **fields)
    model.__doc__ = (inspect.getdoc(layer) if not isinstance(layer, str) else None) or (
        f"{type}: a custom layer registered by the plugin {plugin}.")
    model.plugin = plugin
    model.weight_args = regs
    model.min_inputs, model.max_inputs = low, high
    model.regularizes_own_output = own_activity
    act = model.model_fields.get("activation")
    model.splittable_activation = act is not None and act.default in (None, "linear")
    definition = LayerDef(type, model, _shape_rule(shape, plugin) if shape else None,
                          _params_rule(params, plugin) if params else None, plugin=plugin,
                          call_args=tuple(call_args))
    entry = CustomLayer(type, layer, model, plugin, definition)
    _REGISTRY[type] = entry
    catalog.add(definition)
    return entry


def _call_field(names: tuple[str, ...]) -> tuple[Any, Any]:
    """The `call:` field of a type registered with call_args: those keys, each a tensor
    name, a list of them, or true/false."""
    value = get_args(CallArgs)[1]                     # dict[CallArg, VALUE] -> VALUE
    return (Optional[dict[Literal[names], value]],    # type: ignore[valid-type]
            Field(None, description=f"Tensors passed to its call: {', '.join(names)}."))


def _shape_rule(rule: ShapeRule, plugin: str) -> Callable[[Any, list], Optional[tuple]]:
    """The plugin's shape rule as a catalog rule: what the plugin's function raises becomes a
    ShapeProblem; a result that is not a shape too."""

    def run(layer: Any, shapes: list) -> Optional[tuple]:
        try:
            shape = rule(layer, [tuple(s) for s in shapes])
        except ValueError as exc:
            raise ShapeProblem(str(exc)) from None
        except Exception as exc:           # the plugin's own bug: say so, located
            raise ShapeProblem(f"the shape rule of plugin {plugin} failed "
                               f"({type(exc).__name__}: {exc})") from None
        if shape is None:
            return None
        if not (isinstance(shape, (tuple, list)) and all(
                d is None or (type(d) is int and d > 0) for d in shape)):
            raise ShapeProblem(f"the shape rule of plugin {plugin} returned "
                               f"{str(shape)[:60]}, not a shape (a tuple of sizes or None)")
        return tuple(shape)

    return run


def _params_rule(rule: ParamsRule, plugin: str) -> Callable[[Any, list], Optional[int]]:
    """The plugin's parameter count as a catalog rule: unknown (None) for a channels_first
    layout, when it raises (its shape rule reports problems) or returns no count."""

    def run(layer: Any, shapes: list) -> Optional[int]:
        if layer.__dict__.get("data_format") == "channels_first":
            return None
        try:
            count = rule(layer, list(shapes))
        except Exception:
            return None
        return count if type(count) is int and count >= 0 else None

    return run


def _weight_args(type: str, weights: Mapping[str, Any]) -> dict[str, tuple[str, ...]]:
    out = {}
    for kind, args in weights.items():
        if kind not in WEIGHT_KINDS:
            raise ValueError(f"register_layer({type!r}): weight kind {kind!r} is not one of "
                             f"{', '.join(WEIGHT_KINDS)}")
        names = (args,) if isinstance(args, str) else tuple(args)
        if not names or not all(isinstance(n, str) and n.isidentifier() for n in names):
            raise ValueError(f"register_layer({type!r}): weights[{kind!r}] must name the "
                             "constructor argument(s) that take its regularizer")
        out[kind] = names
    return out


def _fields(type: str, layer: Any, args: Optional[type[BaseModel]],
            regs: Mapping[str, tuple[str, ...]]) -> dict[str, Any]:
    """The spec model's own fields: none beyond `args`'s, or derived from the signature."""
    taken = RESERVED | {a for names in regs.values() for a in names}
    if args is not None:
        if not (inspect.isclass(args) and issubclass(args, BaseModel)):
            raise ValueError(f"register_layer({type!r}): args must be a Pydantic model class")
        clash = sorted(set(args.model_fields) & taken)
        if clash:
            raise ValueError(f"register_layer({type!r}): args may not define {clash[0]!r} "
                             "(specc sets it)")
        return {}
    params, shown = declared_arguments(layer, 1, f"register_layer({type!r})")
    if isinstance(layer, str):        # a one-file plugin's class, read from its source
        shown += ".__init__"
    else:
        owner = next((c for c in layer.__mro__ if "__init__" in vars(c)), object)
        if owner.__module__.split(".")[0] == "keras":
            params = []               # no __init__ of its own: Keras's arguments are specc's
    fields: dict[str, Any] = {}
    for name, hint, default in params:
        if name in taken or name.endswith("_regularizer"):   # penalties reach those (weights=)
            continue
        if hint is None:
            raise ValueError(f"register_layer({type!r}): argument {name!r} of {shown} has no "
                             "annotation; annotate it or give args=")
        annotation = ActivationArg if name == "activation" else hint
        fields[name] = (annotation, ... if default is inspect.Parameter.empty else default)
    return fields


def unregister_layer(type: str) -> None:
    if _REGISTRY.pop(type, None) is not None:
        catalog.remove(type)


def lookup(type: str) -> Optional[CustomLayer]:
    """The registered layer of this type name; installed plugins (and specc's own, BUNDLED)
    are loaded the first time a type is neither built in nor registered. Still unknown while an
    installed plugin failed to import: PluginError naming it."""
    global _entry_points_loaded
    found = _REGISTRY.get(type)
    if found is None and not _entry_points_loaded:
        _entry_points_loaded = True
        load_entry_points(ENTRY_POINT_GROUP, _BROKEN)
        for module in BUNDLED:
            importlib.import_module(module)
        found = _REGISTRY.get(type)
    if found is None and _BROKEN:
        raise PluginError(f"layer type {str(type)[:40]!r} is unknown and {_BROKEN[0]}"
                          + (f" (and {len(_BROKEN) - 1} more)" if len(_BROKEN) > 1 else ""))
    return found


def model_for(type: Any) -> Optional[type[LayerSpec]]:
    """The spec model of a built-in or registered layer type (None when unknown)."""
    if not isinstance(type, str):
        return None
    found = LAYER_TYPES.get(type)
    if found is None:
        entry = lookup(type)
        found = entry.model if entry is not None else None
    return found


def registered() -> dict[str, CustomLayer]:
    """Every registered layer type, by name (after loading the installed plugins)."""
    lookup("")                       # loads the entry points once
    return dict(_REGISTRY)


def known_types() -> list[str]:
    """Built-in and registered layer type names (for did-you-mean)."""
    return [*LAYER_TYPES, *sorted(_REGISTRY)]


def registered_names() -> frozenset[str]:
    """The type names registered so far (no plugin loading)."""
    return frozenset(_REGISTRY)


def unknown_type_note() -> str:
    """What to say after `unknown layer type X`: where the types are listed, and where custom
    ones come from."""
    plugged = sorted(t for t, e in _REGISTRY.items() if e.plugin not in BUNDLED)
    if plugged:
        return ("(see the spec reference for the list; registered by plugins: "
                f"{', '.join(plugged)})")
    return ("(see the spec reference for the list; a custom type comes from a plugin: "
            f"--plugin MODULE, or an installed package's `{ENTRY_POINT_GROUP}` entry point)")
