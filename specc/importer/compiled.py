"""A saved model's compile config -> the spec's `loss`, `loss_weights`, `metrics` and
`optimizer`, as a person writes them (a name where the arguments are Keras's defaults).

The config is read as data (a .keras file's `compile_config`, or `model.get_compile_config()`),
never deserialized: no code from the file runs. A part with no spec form is a note naming it
and why (the spec keeps the rest of the model); a model compiled with no loss gets one chosen
from its outputs' activation, as before.
"""
from __future__ import annotations

import re
from typing import Any, Final, Sequence

from specc.importer.clauses import tidy_schedule

#: Optimizer arguments a spec writes (specc.spec.model.Optimizer), besides learning_rate.
_OPTIMIZER_ARGS: Final = ("momentum", "nesterov", "beta_1", "beta_2", "epsilon", "rho",
                          "weight_decay", "clipnorm", "clipvalue", "global_clipnorm")
#: LossSpec's arguments besides `type`.
_LOSS_ARGS: Final = ("from_logits", "label_smoothing", "delta")


def compile_config(model: Any) -> dict[str, Any] | None:
    """The model's compile config as plain data (None: never compiled)."""
    saved = getattr(model, "_specc_compiled", None)
    if isinstance(saved, dict):
        return saved
    if getattr(model, "compiled", False):
        try:
            return model.get_compile_config()
        except Exception:          # a compile argument Keras cannot serialize: none
            return None
    return None


def _short(value: Any) -> Any:
    """A float32 value as the shortest decimal that gives it (0.0010000000474974513 -> 0.001)."""
    import numpy as np

    if isinstance(value, float):
        return float(str(np.float32(value)))
    return value


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def _plugin(kind: str, config: dict[str, Any]) -> Any:
    """A PluginLoss / PluginMetric's config -> `name` or `{type: name, ...arguments}`."""
    from specc import custom_losses

    name = config.get(kind)
    args = dict(config.get("args") or {})
    entry = custom_losses.lookup(kind, name) if isinstance(name, str) else None
    if entry is None:
        return None
    fields = entry.model.model_fields
    args = {k: v for k, v in args.items()
            if not (k in fields and not fields[k].is_required()
                    and fields[k].get_default(call_default_factory=True) == v)}
    return {"type": name, **args} if args else name


def loss_entry(value: Any) -> tuple[Any, str | None]:
    """One compiled loss -> (its spec form, None), (None, why it has none), or (its spec
    form, what the saved config lost)."""
    from typing import get_args

    from specc.importer.arguments import keras_defaults
    from specc.runtime.emit import _LOSS_CLASSES
    from specc.spec.catalog_names import LossName

    names = get_args(LossName)
    if isinstance(value, str):
        return (value, None) if value in names else (None, f"{value!r} is not a catalog loss")
    if not isinstance(value, dict):
        return None, f"{str(value)[:60]!r} is not a serialized loss"
    cls, config = value.get("class_name"), value.get("config")
    if cls == "function" and isinstance(config, str):
        return loss_entry(config)
    config = config if isinstance(config, dict) else {}
    if cls == "TaskLoss" and str(value.get("module", "")).startswith("specc."):
        return loss_entry(config.get("loss"))        # a scheduled weight's wrapper
    if cls == "PluginLoss" and str(value.get("module", "")).startswith("specc."):
        found = _plugin("loss", config)
        return (found, None) if found is not None else \
            (None, f"plugin loss {config.get('loss')!r} is not registered (give --plugin)")
    spec_name = next((n for n, c in _LOSS_CLASSES.items() if c == cls), None)
    if spec_name is None or not str(value.get("module", "")).startswith("keras"):
        return None, f"{cls} is not a catalog loss"
    import keras

    defaults = keras_defaults(getattr(keras.losses, cls))
    args, other = {}, []
    for key, given in config.items():
        if key in ("name", "dtype") or (key in defaults and given == defaults[key]):
            continue
        if key in _LOSS_ARGS:
            args[key] = given
        else:
            other.append(f"{key}={given!r}")
    if other:
        return None, f"{cls} with {', '.join(other)}, which a spec does not write"
    return ({"type": spec_name, **args} if args else spec_name), _LOST.get(cls)


#: Losses whose saved config leaves out an argument (Keras 3's Huber.get_config has no delta).
_LOST: Final = {"Huber": "Keras does not save a Huber loss's delta: Keras's default (1.0) is "
                         "written; give the model's own with `{type: huber, delta: ...}`"}


def metric_entry(value: Any) -> Any:
    """One compiled metric -> its spec form, or None."""
    from typing import get_args

    from specc import custom_losses
    from specc.spec.catalog_names import MetricName

    names = get_args(MetricName)
    if isinstance(value, str):
        known = value in names or custom_losses.lookup("metric", value) is not None
        return value if known else None
    if isinstance(value, dict):
        config = value.get("config") if isinstance(value.get("config"), dict) else {}
        if value.get("class_name") == "PluginMetric":
            return _plugin("metric", config)
        snake = _snake(str(value.get("class_name", "")))
        if snake in names and set(config) <= {"name", "dtype"}:
            return snake
    return None


def _per_output(value: Any, outputs: Sequence[str], keras_names: Sequence[str]) -> list[Any]:
    """A compile argument given once, as a list, or as a mapping by Keras output name ->
    one value per output (the same one when given once)."""
    if isinstance(value, dict) and "class_name" not in value:
        return [value.get(n) for n in keras_names]
    if isinstance(value, (list, tuple)) and len(outputs) > 1:
        return list(value) + [None] * (len(outputs) - len(value))
    return [value] * len(outputs)


def _by_output(values: list[Any], outputs: Sequence[str]) -> Any:
    """One value when every output has it, else a mapping output -> value."""
    if all(v == values[0] for v in values):
        return values[0]
    return dict(zip(outputs, values))


def _guess(outputs: Sequence[str], layers: dict[str, dict[str, Any]]) -> str:
    acts = {layers.get(o, {}).get("activation") for o in outputs}
    return ("categorical_crossentropy" if acts == {"softmax"} else
            "binary_crossentropy" if acts == {"sigmoid"} else "mean_squared_error")


def loss_sections(config: dict[str, Any] | None, meta: dict[str, Any], outputs: Sequence[str],
                  keras_names: Sequence[str], layers: dict[str, dict[str, Any]],
                  notes: list[str]) -> dict[str, Any]:
    """`loss` and `loss_weights` (outputs: the spec's, in the model's order)."""
    if not config or config.get("loss") is None:
        chosen = _guess(outputs, layers)
        notes.append(f"loss: {chosen}, chosen from the outputs' activation (the model carries "
                     "no compiled loss)")
        return {"loss": chosen}
    given = config["loss"]
    if isinstance(given, list) and len(given) == 1 and len(outputs) == 1:
        given = given[0]                         # one output's loss given as a list
    losses = []
    for out, value in zip(outputs, _per_output(given, outputs, keras_names)):
        entry, why = loss_entry(value)
        if entry is not None and why:
            notes.append(f"loss of {out}: {why}")
        if entry is None:
            entry = _guess([out], layers)
            notes.append(f"loss of {out}: {entry}, chosen from its activation (the compiled "
                         f"loss has no spec form: {why})")
        losses.append(entry)
    out: dict[str, Any] = {"loss": _by_output(losses, outputs)}
    weights = config.get("loss_weights")
    if isinstance(weights, list) and len(weights) == 1 and len(outputs) == 1:
        weights = weights[0]
    scheduled = {o: s for o, s in meta.get("loss_weights", ())}
    if weights is not None or scheduled:
        per = _per_output(weights if weights is not None else 1.0, outputs, keras_names)
        declared = list(meta.get("declared", ())) or list(keras_names)
        for k, name in enumerate(declared[:len(per)]):
            if name in scheduled:
                per[k] = tidy_schedule(scheduled[name])
        per = [1.0 if w is None else _short(w) if isinstance(w, float) else w for w in per]
        out["loss_weights"] = per[0] if len(per) == 1 else _by_output(per, outputs) \
            if not any(isinstance(w, dict) for w in per) else dict(zip(outputs, per))
    return out


def metric_section(config: dict[str, Any] | None, outputs: Sequence[str],
                   keras_names: Sequence[str], notes: list[str]) -> dict[str, Any]:
    if (config or {}).get("weighted_metrics"):
        notes.append("weighted_metrics: no spec form, left out (a spec's metrics are not "
                     "weighted by sample_weight)")
    metrics = (config or {}).get("metrics")
    if not metrics:
        return {}

    def converted(values: Any, where: str) -> list[Any]:
        out = []
        for v in values if isinstance(values, (list, tuple)) else [values]:
            m = metric_entry(v)
            if m is None:
                shown = v if isinstance(v, str) else (v or {}).get("class_name", v)
                notes.append(f"metric {str(shown)[:60]!r}{where}: no spec form, left out")
            else:
                out.append(m)
        return out

    if isinstance(metrics, dict) or (isinstance(metrics, list) and metrics and
                                     all(isinstance(m, (list, tuple)) for m in metrics)):
        per = _per_output(metrics, outputs, keras_names)
        mapping = {o: converted(m, f" of {o}") for o, m in zip(outputs, per) if m}
        mapping = {o: m for o, m in mapping.items() if m}
        return {"metrics": mapping} if mapping else {}
    flat = converted(metrics, "")
    return {"metrics": flat} if flat else {}


def optimizer_section(config: dict[str, Any] | None, notes: list[str]) -> dict[str, Any]:
    """`optimizer`: a name when every argument is Keras's default, else `{type, ...}`."""
    from specc.runtime.emit import _OPTIMIZERS

    value = (config or {}).get("optimizer")
    if value is None:
        return {}
    if isinstance(value, str):
        if value in _OPTIMIZERS:
            return {"optimizer": value}
        notes.append(f"optimizer {value!r}: not a catalog optimizer, left out (adam)")
        return {}
    cls = value.get("class_name") if isinstance(value, dict) else None
    name = next((n for n, c in _OPTIMIZERS.items() if c == cls), None)
    if name is None or not str(value.get("module", "")).startswith("keras"):
        notes.append(f"optimizer {str(cls)[:60]!r}: not a catalog optimizer, left out (adam)")
        return {}
    import keras

    given = dict(value.get("config") or {})
    defaults = getattr(keras.optimizers, cls)().get_config()
    lr = given.pop("learning_rate", None)
    lr_default = defaults.pop("learning_rate", None)
    args, ignored = {}, []
    for key, v in given.items():
        if key == "name" or (key in defaults and _short(v) == _short(defaults[key])):
            continue
        if key in _OPTIMIZER_ARGS:
            args[key] = _short(v)
        else:
            ignored.append(f"{key}={v!r}")
    if ignored:
        notes.append(f"optimizer {cls}: {', '.join(ignored)} has no spec form, left out")
    if isinstance(lr, dict):
        schedule, why = _lr_schedule(lr)
        if schedule is None:
            notes.append(f"optimizer {cls}: its learning rate {why}; Keras's default used")
            lr = lr_default
        else:
            lr = schedule
    if not args and (lr is None or _short(lr) == _short(lr_default)):
        return {"optimizer": name}
    out = {"type": name, "learning_rate": _short(lr if lr is not None else lr_default)}
    return {"optimizer": {**out, **args}}


def _lr_schedule(value: dict[str, Any]) -> tuple[Any, str]:
    """A serialized keras.optimizers.schedules object -> `{schedule: Class, ...}`."""
    from pydantic import ValidationError

    from specc.schedules import LR_SCHEDULES

    cls = value.get("class_name")
    model = next((m for m in LR_SCHEDULES if m.__name__ == cls), None)
    if model is None or not str(value.get("module", "")).startswith("keras"):
        return None, f"schedule {cls!r} is not one a spec names"
    config = {k: _short(v) for k, v in (value.get("config") or {}).items() if k != "name"}
    fields = model.model_fields
    config = {k: v for k, v in config.items()
              if not (k in fields and not fields[k].is_required()
                      and fields[k].get_default(call_default_factory=True) == v)}
    try:
        model.model_validate({"schedule": cls, **config})
    except ValidationError as exc:
        return None, f"schedule {cls}: {exc.errors()[0]['msg']}"
    return {"schedule": cls, **config}, ""
