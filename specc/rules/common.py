"""What the rules share: how a layer is named in a message, shapes as printed, the static
shapes and dtypes a layer reads."""
from __future__ import annotations

from typing import Any, Final, Optional

from specc import catalog
from specc.budget import of_context
from specc.context import Context
from specc.errors import quote


def described(layer: Any) -> str:
    return f"layer {quote(layer.name)} ({layer.type})"


def fmt(shape: tuple) -> str:
    return "(" + ", ".join(["batch", *("None" if d is None else str(d) for d in shape)]) + ")"


def shapes_read(ctx: Context, layer: Any) -> list[Optional[tuple]]:
    """The static shapes of what `layer` reads (None where unknown)."""
    known = of_context(ctx).shapes
    return [known.get(r) for r in ctx.reads.get(layer.name, ())]


def clause_shape(ctx: Context, clause: Any) -> Optional[tuple]:
    """The static per-sample shape of the tensor a clause measures (None: unknown)."""
    return of_context(ctx).shapes.get(clause.layer)


def loss_name(loss: Any) -> Optional[str]:
    if loss is None:
        return None
    return loss if isinstance(loss, str) else str(loss.type)


INTEGER_DTYPES: Final = ("int32", "int64")


#: The dtype of a layer's weights under each dtype policy (mixed policies keep float32).
VARIABLE_DTYPE: Final = {None: "float32", "float32": "float32", "mixed_float16": "float32",
                         "mixed_bfloat16": "float32", "float16": "float16",
                         "bfloat16": "bfloat16", "float64": "float64"}


def dtype_sources(ctx: Context) -> dict[str, tuple[str, str]]:
    """Tensor name -> (dtype, where it comes from) where certain: inputs' declared dtypes,
    carried through the layers whose dtype rule `keeps` them; those whose rule is `float`
    (layers with weights, Rescaling) give floats, those with a rule of their own what it says
    (StringLookup's int64 ids) (specc.catalog)."""
    spec = ctx.spec
    out = {name: (inp.dtype, f"input {quote(name)}") for name, inp in spec.inputs.items()}
    for size in of_context(ctx).layers:               # graph order
        layer = spec.layers[size.path[1]]
        reads = ctx.reads.get(layer.name, ())
        definition = catalog.get(layer.type)
        rule = getattr(definition, "dtype", None)
        if rule == "keeps" and reads and reads[0] in out:
            out[layer.name] = out[reads[0]]
        elif callable(rule) and reads and reads[0] in out:       # StringLookup: int64 ids
            dtype = definition.output_dtype(layer, out[reads[0]][0])
            if dtype is not None:
                out[layer.name] = (dtype, described(layer))
        elif rule == "float":
            out[layer.name] = ("float32" if layer.dtype is None else
                               layer.dtype.removeprefix("mixed_"), described(layer))
    return out
