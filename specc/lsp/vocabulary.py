"""What specc knows about the words of a spec, for completion and hover: layer types and their
arguments (with the argument models' descriptions, the same text as the JSON schema's), penalty
kinds and their formulas, losses, metrics, and the closed word lists of any argument. Read from
the catalog and the Pydantic models, never from a copy; plugins' types and kinds included."""
from __future__ import annotations

import typing
from typing import Any, Final, Literal, Optional

from pydantic import BaseModel

#: Keys of a format 2 entry besides a layer type's own arguments (specc.expand.ENTRY_KEYS).
ENTRY_DOCS: Final = {
    "repeat": "Make <name>1 .. <name>N, each reading the previous; `i` (0-based) is in scope "
              "for `${...}`.",
    "if": "false: the entry does not exist.",
}


def layer_types() -> list[str]:
    """Every layer type a spec may name: built in, and those the plugins registered."""
    from specc import custom_layers

    return custom_layers.known_types()


def layer_model(type_name: Any) -> Optional[type[BaseModel]]:
    from specc import custom_layers

    return custom_layers.model_for(type_name) if isinstance(type_name, str) else None


def describe_type(type_name: str) -> str:
    """One paragraph on a layer type: where it comes from, what it reads, its arguments."""
    from specc import catalog

    definition = catalog.get(type_name)
    if definition is None:
        return ""
    least, most = definition.inputs
    reads = (f"{least} input" if least == most else
             f"{least} or more inputs" if most >= 1 << 20 else f"{least} to {most} inputs")
    where = f"plugin `{definition.plugin}`" if definition.plugin else f"keras.layers.{type_name}"
    required = [k for k, _, req in fields(definition.model) if req and k not in ("name", "type")]
    return (f"{where}; reads {reads}" + (f"; requires {', '.join(required)}" if required
                                         else ""))


def fields(model: type[BaseModel]) -> list[tuple[str, str, bool]]:
    """(key as written in a spec, description, required) of a model's fields."""
    out = []
    for name, info in model.model_fields.items():
        out.append((info.alias or name, info.description or "", info.is_required()))
    return out


def description(model: Optional[type[BaseModel]], key: str) -> str:
    """A field's description ('' when it has none)."""
    if model is None:
        return ENTRY_DOCS.get(key, "")
    for written, text, _ in fields(model):
        if written == key:
            return text
    return ENTRY_DOCS.get(key, "")


def choices(model: Optional[type[BaseModel]], key: str) -> list[str]:
    """The closed word list of a field (`padding`: valid, same), from its annotation."""
    if model is None:
        return []
    for name, info in model.model_fields.items():
        if (info.alias or name) == key:
            return _literals(info.annotation)
    return []


def _literals(annotation: Any, depth: int = 0) -> list[str]:
    if depth > 8:
        return []
    if typing.get_origin(annotation) is Literal:
        return [a for a in typing.get_args(annotation) if isinstance(a, str)]
    out: list[str] = []
    for arg in typing.get_args(annotation):
        for word in _literals(arg, depth + 1):
            if word not in out:
                out.append(word)
    return out


def penalty_kinds() -> dict[str, str]:
    """Activation penalty kind -> its formula (the catalog's)."""
    from specc import penalties

    return {k: penalties.lookup(k).formula for k in penalties.known_kinds()}  # type: ignore


def weight_kinds() -> dict[str, str]:
    from specc.penalties import WEIGHT_FORMULAS

    return dict(WEIGHT_FORMULAS)


def clause_model(kind: Any, weight: bool = False) -> type[BaseModel]:
    """The model of a clause of `kind` (its fields: the common ones and the kind's)."""
    from specc.spec import clauses

    base: type[BaseModel] = clauses.WeightClause if weight else clauses.Clause
    for cls in _subclasses(base):
        tag = cls.model_fields.get("kind")
        if tag is not None and kind in typing.get_args(tag.annotation):
            return cls
    return base


def clause_fields(kind: Any, weight: bool = False) -> list[tuple[str, str, bool]]:
    out = fields(clause_model(kind, weight))
    if not weight and isinstance(kind, str):
        from specc import penalties

        entry = penalties.lookup(kind)
        if entry is not None and entry.params is not None:      # a plugin's own parameters
            out += [f for f in fields(entry.params) if f[0] not in {k for k, _, _ in out}]
    if not any(k == "kind" for k, _, _ in out):
        out.append(("kind", "The penalty kind.", True))
    return out


def _subclasses(cls: type) -> list[type]:
    out, todo = [], list(cls.__subclasses__())
    while todo:
        c = todo.pop()
        out.append(c)
        todo.extend(c.__subclasses__())
    return out


def losses() -> list[str]:
    from specc.spec.model import LossName

    return list(typing.get_args(LossName))


def metrics() -> list[str]:
    from specc.spec.model import MetricName

    return list(typing.get_args(MetricName))


def spec_fields() -> list[tuple[str, str, bool]]:
    from specc.spec.model import Spec

    return [*fields(Spec), ("blocks", "Format 2: named, parameterized sub-graphs "
                            "(`use:` one in `layers:`).", False)]


def model_of(name: str) -> type[BaseModel]:
    """A spec model by class name (InputSpec, UseEntry, ShareEntry, BlockDef, ...)."""
    from specc.spec import blocks, model

    return getattr(model, name, None) or getattr(blocks, name)
