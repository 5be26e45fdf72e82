"""Where a model comes from: keras.applications (no download), or a .keras file refused from
its config.json alone before Keras loads it (so no code from it runs)."""
from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any, Final, Sequence

from specc.errors import UsageError, did_you_mean
from specc.importer.base import (
    _CONTAINERS, MAX_CONFIG_BYTES, OPERATIONS, PLUGIN_HOOK, ImportRefused,
)

#: specc's own classes a model it built holds (class -> its modules): its model class and
#: the identity layers that carry penalty clauses (read back by specc.importer.clauses).
SPECC_CLASSES: Final = {
    "SpecModel": ("specc.runtime.objects",),
    "PenaltyTap": ("specc.runtime.objects",), "OutputTap": ("specc.runtime.objects",),
    "PairTap": ("specc.runtime.pairs",), "PairOutputTap": ("specc.runtime.pairs",),
}


def applications() -> list[str]:
    """The architectures of the installed keras.applications (capitalized constructors)."""
    import keras

    return sorted(n for n in dir(keras.applications)
                  if n[:1].isupper() and callable(getattr(keras.applications, n)))


def cached_only(name: str) -> Any:
    """A stand-in for Keras's `get_file` that never downloads: the path of the file in
    Keras's cache when it is there, else a one-line UsageError saying where it looked."""
    import os

    from keras.src.backend import config

    def get_file(fname: str | None = None, origin: str | None = None, *args: Any,
                 cache_subdir: str = "datasets", cache_dir: str | None = None,
                 **kwargs: Any) -> str:
        base = os.path.expanduser(cache_dir or config.keras_home())
        fname = fname or os.path.basename(str(origin or ""))
        places = [os.path.join(base, cache_subdir, fname),
                  os.path.join("/tmp", ".keras", cache_subdir, fname)]
        for place in places:
            if os.path.isfile(place):
                return place
        raise UsageError(f"--weights imagenet: {fname} is not in Keras's cache (looked at "
                         f"{' and '.join(places)}); specc downloads nothing: run "
                         f"keras.applications.{name}(weights='imagenet') once where there is "
                         "a network, or copy the file there")
    return get_file


def application(name: str, input_shape: Sequence[int] | None = None,
                classes: int | None = None, weights: str | None = None) -> Any:
    """keras.applications.NAME(weights=None, ...): nothing is downloaded. `weights`
    "imagenet": the pretrained weights, from Keras's local cache only (`cached_only`)."""
    import keras
    from keras.src.utils import file_utils

    names = applications()
    if name not in names:
        raise UsageError(f"--application {name}: not in keras.applications"
                         f"{did_you_mean(name, names)} (see `specc import --list`)")
    kwargs: dict[str, Any] = {"weights": weights}
    if input_shape is not None:
        kwargs["input_shape"] = tuple(input_shape)
    if classes is not None:
        kwargs["classes"] = classes
    real = file_utils.get_file
    file_utils.get_file = cached_only(name)          # the applications look it up there
    try:
        return getattr(keras.applications, name)(**kwargs)
    except (ValueError, TypeError) as exc:
        raise UsageError(f"--application {name}: {str(exc).splitlines()[0][:300]}") from None
    finally:
        file_utils.get_file = real


def _config_layers(config: dict[str, Any], where: str = "") -> list[tuple[str, str, str, str]]:
    """(name, class, module, registered name) of every layer in a saved model config, nested models included."""
    out = []
    for layer in config.get("config", {}).get("layers", []) or []:
        if not isinstance(layer, dict):
            continue
        cls = str(layer.get("class_name", "?"))
        inner = layer.get("config", {}) if isinstance(layer.get("config"), dict) else {}
        name = str(inner.get("name", "?"))
        out.append((where + name, cls, str(layer.get("module") or ""),
                    str(layer.get("registered_name") or "")))
        if cls in _CONTAINERS:
            out += _config_layers(layer, where + name + "/")
    return out


def _mask_operations(config: dict[str, Any]) -> set[str]:
    """Operations whose outputs the saved graph reads only as a call's `mask=` (the masks
    Keras passes along by itself, such as an Embedding's `not_equal`): Keras's own ops, which
    the walk leaves out (specc.importer.walk.inputs_of)."""
    as_mask: set[str] = set()
    other: set[str] = set()

    def refs(value: Any, into: set[str]) -> None:
        if isinstance(value, dict):
            if value.get("class_name") == "__keras_tensor__":
                history = (value.get("config") or {}).get("keras_history") or [None]
                into.add(str(history[0]))
                return
            for v in value.values():
                refs(v, into)
        elif isinstance(value, list):
            for v in value:
                refs(v, into)

    def visit(model: dict[str, Any]) -> None:
        inner = model.get("config") if isinstance(model.get("config"), dict) else {}
        for layer in inner.get("layers") or []:
            if not isinstance(layer, dict):
                continue
            for node in layer.get("inbound_nodes") or []:
                if isinstance(node, dict):
                    kwargs = dict(node.get("kwargs") or {})
                    refs(kwargs.pop("mask", None), as_mask)
                    refs([node.get("args"), kwargs], other)
            if layer.get("class_name") in _CONTAINERS:
                visit(layer)
        refs(inner.get("output_layers"), other)

    visit(config)
    return as_mask - other


def registered_classes() -> dict[type, Any]:
    """The Keras class of every registered layer type (specc.register_layer: specc's own and
    the imported plugins') -> its registration; a class that cannot be imported is left out."""
    from specc.custom_layers import registered
    from specc.runtime.plugins import layer_class

    out: dict[type, Any] = {}
    for type_name, entry in registered().items():
        try:
            out.setdefault(layer_class(type_name), entry)
        except (ImportError, TypeError):
            continue
    return out


def keras_file(path: str | Path) -> Any:
    """Load a .keras file with safe_mode=True, after refusing, from its config alone, every
    layer class a spec cannot express (so that no code from the file can run)."""
    import keras

    from specc.spec.layers import LAYER_TYPES

    path = Path(path)
    if path.suffix != ".keras":
        raise UsageError(f"{path}: `specc import` reads a .keras model file")
    try:
        with zipfile.ZipFile(path) as archive:
            info = archive.getinfo("config.json")
            if info.file_size > MAX_CONFIG_BYTES:
                raise UsageError(f"{path}: config.json is {info.file_size:,} bytes, over "
                                 f"{MAX_CONFIG_BYTES:,}")
            config = json.loads(archive.read(info))
    except (zipfile.BadZipFile, KeyError, json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise UsageError(f"{path}: not a .keras model file ({exc})") from None
    top = config.get("class_name") if isinstance(config, dict) else None
    if top in SPECC_CLASSES and str(config.get("module")) in SPECC_CLASSES[top]:
        top = "Functional"                   # specc's own model: a functional one
    if top not in _CONTAINERS or not isinstance((config.get("config") or {}).get("layers"),
                                                list):
        name = ((config.get("config") or {}) if isinstance(config, dict) else {}).get("name", "?")
        registered = str(config.get("registered_name") or "") if isinstance(config, dict) else ""
        hint = ("; a Model subclass built from layers (a keras-hub backbone) saves only its "
                "constructor's arguments: save keras.Model(model.inputs, model.outputs) and "
                "import that" if ">" in registered else "")
        raise ImportRefused([f"model {name!r} ({registered if hint else top}): a subclassed "
                             "model has no graph to import (its call() is Python code); build "
                             "it as a functional or Sequential model, or write its spec" + hint])
    known = {*LAYER_TYPES, "InputLayer", *_CONTAINERS, *OPERATIONS}
    plugged = {(c.__module__, c.__name__) for c in registered_classes()}
    plugged |= {("keras.layers", name) for module, name in plugged   # Keras's own, saved by
                if module.startswith("keras.src.layers")}             # its public module
    masks = _mask_operations(config)
    lines = [_refusal(name, cls, module, registered)
             for name, cls, module, registered in _config_layers(config)
             if (module, cls) not in plugged and module not in SPECC_CLASSES.get(cls, ())
             and not (name.rsplit("/", 1)[-1] in masks and module.startswith("keras.src.ops"))
             and (cls not in known or (module and not module.startswith("keras")))]
    if lines:
        raise ImportRefused(lines)
    import specc.runtime.pairs  # noqa: F401  (registers specc's own classes for loading)

    try:
        model = keras.saving.load_model(path, safe_mode=True, compile=False)
    except Exception as exc:   # Keras refused the file: say why in one line
        raise UsageError(f"{path}: Keras cannot load it ({str(exc).splitlines()[0][:300]})") \
            from None
    compiled = config.get("compile_config")
    model._specc_compiled = compiled if isinstance(compiled, dict) else None   # as data
    return model


def _refusal(name: str, cls: str, module: str = "", registered: str = "") -> str:
    """One line for a layer class without a spec form: the class as Keras registers it
    (`keras_hub>TransformerEncoder`) and as register_layer takes it (`module:Class`)."""
    if module.startswith(("keras.src.ops", "keras.ops")):
        return (f"operation {name!r} (keras.ops {cls}): no catalog layer computes it; write "
                f"it as a layer and {PLUGIN_HOOK}")
    keras_own = ">" not in registered and (not module or module == "keras.layers"
                                           or module.startswith("keras.src.layers"))
    if cls == "Lambda" and keras_own:
        return (f"layer {name!r} ({cls}): a Lambda runs Python code, which a spec never "
                f"does; rewrite it as a layer class and {PLUGIN_HOOK}")
    if keras_own:
        return (f"layer {name!r} (keras.layers.{cls}): a Keras layer specc's catalog does not "
                f"have; {PLUGIN_HOOK}")
    where = f"{module}:{cls}" if module else ""
    if registered and registered != cls:
        where = f"{registered}, class {where}" if where else registered
    elif registered:                       # a live class that Keras cannot name in a file
        return (f"layer {name!r} ({where}): specc does not know this class, and it is not "
                "registered serializable (register_layer needs "
                f"@keras.saving.register_keras_serializable first); {PLUGIN_HOOK}")
    return f"layer {name!r} ({where}): specc does not know this class; {PLUGIN_HOOK}"


def layer_refusal(layer: Any) -> str:
    """_refusal for a live Keras layer (its registered name read from Keras)."""
    import keras

    cls = type(layer)
    return _refusal(layer.name, cls.__name__, cls.__module__,
                    keras.saving.get_registered_name(cls))
