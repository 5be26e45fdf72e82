"""A layer's `get_config()` -> spec arguments the way a spec author writes them: Keras
defaults dropped, `{"class_name": ..., "config": ...}` objects as `{type: ...}` or their short
name, tuples as lists, regularizers refused (a spec writes penalty clauses)."""
from __future__ import annotations

import functools
import re
from typing import Any, Final

#: Keys of a layer config that a spec never writes when they hold the value meaning "unused".
_REGULARIZERS: Final = ("kernel_regularizer", "bias_regularizer", "activity_regularizer",
                        "depthwise_regularizer", "pointwise_regularizer", "beta_regularizer",
                        "gamma_regularizer", "recurrent_regularizer", "embeddings_regularizer")
_OBJECT_NONE_KEYS: Final = ("seed", "input_axes", "output_axes")


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def plain(value: Any) -> Any:
    """Tuples as lists, numpy scalars and arrays as numbers and lists."""
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if hasattr(value, "tolist"):
        return plain(value.tolist())
    return value


def _object(value: dict[str, Any], kind: str) -> Any:
    """A serialized initializer or constraint: its short name when it has no arguments and
    the catalog knows the name, else `{type: Class, ...arguments}` (format 2)."""
    from typing import get_args

    from specc.spec import base

    import keras

    cls = value.get("registered_name") or value["class_name"]
    home = keras.initializers if kind == "initializer" else keras.constraints
    defaults = keras_defaults(getattr(home, cls)) if isinstance(getattr(home, cls, None),
                                                                 type) else {}
    config = {k: plain(v) for k, v in (value.get("config") or {}).items()
              if not (k in _OBJECT_NONE_KEYS and v is None)
              and not (k in defaults and plain(v) == defaults[k])}
    words = get_args(base.Initializer) if kind == "initializer" else get_args(base.ConstraintName)
    if not config and _snake(cls) in words:
        return _snake(cls)
    return {"type": cls, **config}


def _argument(key: str, value: Any) -> Any:
    if isinstance(value, dict) and {"class_name", "config"} <= set(value):
        if value["class_name"] in ("DTypePolicy", "FloatDTypePolicy"):
            return (value.get("config") or {}).get("name")
        if key.endswith("_initializer") or key == "initializer":
            return _object(value, "initializer")
        if value["class_name"] == "function" and isinstance(value["config"], str):
            return value["config"]           # a function registered with Keras, by its name
        if key.endswith("_constraint"):
            return _object(value, "constraint")
    return plain(value)


#: Keras's short names of initializers that are the same object with its defaults.
_ALIASES: Final = {"uniform": "random_uniform", "normal": "random_normal"}


def _same(value: Any, default: Any) -> bool:
    """A config value that means the catalog default (`(1, 1)` for 1, "linear" for null,
    "random_uniform" for "uniform")."""
    if value == default or (isinstance(default, str) and _ALIASES.get(default) == value):
        return True
    if default is None and value == "linear":
        return True
    if isinstance(value, list) and value and not isinstance(default, list):
        return all(v == default for v in value)
    if isinstance(value, list) and isinstance(default, list) and len(value) == len(default):
        return all(_same(v, d) for v, d in zip(value, default))
    return False


@functools.lru_cache(maxsize=None)
def _call_defaults(layer_class: type) -> dict[str, Any]:
    """The defaults of a layer class's call() arguments (False, True, 0: recorded as given)."""
    import inspect

    try:
        params = inspect.signature(layer_class.call).parameters.values()
    except (TypeError, ValueError):
        return {}
    return {p.name: p.default for p in params if p.default is not inspect.Parameter.empty}


def input_keyword(layer_class: type, node: Any) -> str | None:
    """The name of a call's first argument when the call passes its input by keyword and no
    tensor by position (keras-hub's decoder layers: `layer(decoder_sequence=x, ...)`); a
    spec's build passes it by position, which is the same call."""
    import inspect

    import keras

    if any(isinstance(a, keras.KerasTensor) for a in keras.tree.flatten(node.arguments.args)):
        return None
    try:
        params = list(inspect.signature(layer_class.call).parameters.values())[1:]
    except (TypeError, ValueError):
        return None
    if not params or params[0].kind not in (params[0].POSITIONAL_ONLY,
                                             params[0].POSITIONAL_OR_KEYWORD):
        return None
    found = node.arguments.kwargs.get(params[0].name)
    return params[0].name if isinstance(found, keras.KerasTensor) else None


@functools.lru_cache(maxsize=None)
def keras_defaults(layer_class: type) -> dict[str, Any]:
    """The constructor defaults of a Keras layer class and its bases (plain values)."""
    import inspect

    out: dict[str, Any] = {}
    for klass in reversed(layer_class.__mro__):
        init = klass.__dict__.get("__init__")
        if init is None:
            continue
        try:
            params = inspect.signature(init).parameters.values()
        except (TypeError, ValueError):
            continue
        out.update((p.name, plain(p.default)) for p in params
                   if p.default is not inspect.Parameter.empty)
    return out


def arguments(cls: type, config: dict[str, Any], defaults: dict[str, Any] | None = None,
              weight_args: Any = None) -> tuple[dict[str, Any], list[str]]:
    """A layer config -> (spec arguments, problems): defaults dropped, objects converted.

    `defaults` (the Keras class's constructor defaults): a key the catalog does not know
    is dropped when it holds Keras's default, so it changes nothing. `weight_args` (a
    registered layer's `weights=`): its regularizer arguments, which penalty clauses fill."""
    fields = cls.model_fields
    defaults = defaults or {}
    regularizers = {*_REGULARIZERS, *(a for names in (weight_args or {}).values()
                                      for a in names)}
    args: dict[str, Any] = {}
    problems = []
    for key, raw in config.items():
        if key == "name":
            continue
        value = _argument(key, raw)
        if key in regularizers:
            if value is not None:
                problems.append(f"it has a {key} (write it as a penalty clause: "
                                f"{'penalties' if key == 'activity_regularizer' else 'weight_penalties'})")
            continue
        if key == "quantization_config" and value is None:
            continue
        if key == "rms_scaling" and value is False:
            continue
        if key == "trainable":
            if value is False and "trainable" in fields:
                args[key] = False
            continue
        if key == "dtype" and value in (None, "float32"):
            continue
        if key == "data_format" and value == "channels_last":
            continue
        if key == "strides" and "pool_size" in config and _same(value, plain(config["pool_size"])):
            continue                           # a pooling layer's strides: null means pool_size
        if key in fields:
            info = fields[key]
            if not info.is_required() and _same(value, info.get_default(call_default_factory=True)):
                continue
        elif key in defaults and value == defaults[key]:
            continue
        args[key] = value
    return args, problems

