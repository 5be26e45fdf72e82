"""What the rest of specc knows about a layer type, in one definition (`LayerDef`).

A definition sits in its family's module next to the layer's argument model and holds, side by
side, the facts later stages query by type name (specc.catalog.get): the static output shape,
the parameter count, the dtype behaviour, the axis rule, the call arguments, the import
special case. Ports, penalty weight kinds and input counts stay class attributes of the model
(the validated layer answers them); the definition reads them from there. Built-in types and
plugin types (specc.custom_layers.register_layer) fill in the same definition.

Pure Python, no Keras: shapes leave out the batch axis, None is an unknown size.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Final, Literal, Mapping, Optional, Union

if TYPE_CHECKING:
    from specc.spec.base import LayerSpec

Shape = tuple[Optional[int], ...]
#: (layer, input shapes) -> the output shape (None: unknown); raises ShapeProblem when Keras
#: would certainly refuse the inputs.
ShapeRule = Callable[[Any, list[Shape]], Optional[Shape]]
#: (layer, input shapes) -> how many weights Keras creates (count_params), None: unknown.
ParamsRule = Callable[[Any, list[Shape]], Optional[int]]
#: (layer, input shapes) -> (values per sample of the largest tensor computed inside, what).
InternalRule = Callable[[Any, list[Shape]], tuple[int, str]]
#: How the output's dtype follows from the input's and the layer's dtype policy:
#: "keeps": integer and boolean inputs come out as they are (ids stay ids), floats in the
#:          layer's compute dtype;
#: "float": always a float in the layer's compute dtype (layers with weights, Rescaling);
#: "policy": float inputs come out in the layer's compute dtype; other inputs: not known
#:          statically (validation tracks nothing through the layer);
#: or a function (layer, input dtype) -> the output dtype (None: not known statically).
DTypeRule = Union[Literal["keeps", "float", "policy"], Callable[[Any, str], Optional[str]]]
#: (batch axis allowed, the axis needs a known size because weights are made along it).
AxisRule = tuple[bool, bool]
#: (the import writer, the layer's spec name, its spec arguments so far, the Keras layer) ->
#: a list of problems; updates the arguments in place (specc.importer calls it where the
#: generic mapping of the Keras config is not enough; Keras objects come in, none imported).
ImportRule = Callable[[Any, str, dict[str, Any], Any], list[str]]

#: Call arguments that are true or false rather than tensor names.
BOOLEAN_CALL_ARGS: Final = ("use_causal_mask",)
#: The compute dtype of each dtype policy (None: the global float32 policy).
COMPUTE_DTYPE: Final = {None: "float32", "float32": "float32", "float16": "float16",
                        "bfloat16": "bfloat16", "float64": "float64",
                        "mixed_float16": "float16", "mixed_bfloat16": "bfloat16"}


class ShapeProblem(Exception):
    """A message saying what the layer needs and what it got."""


@dataclass(frozen=True)
class LayerDef:
    """One layer type: its argument model and every rule validation knows about it."""

    type: str
    model: type[LayerSpec]                 # the arguments: a strict Pydantic model
    shape: Optional[ShapeRule] = None      # None: the output shape is unknown at validation
    params: Optional[ParamsRule] = None    # None: the weight count is unknown
    dtype: DTypeRule = "policy"            # "keeps", "float", "policy" or a function
    axis: Optional[AxisRule] = None        # the layer's `axis` argument is checked
    call_args: tuple[str, ...] = ()        # format 2 `call:` arguments it takes
    internal: Optional[InternalRule] = None
    importer: Optional[ImportRule] = None  # specc import: what the generic mapping misses
    plugin: str = ""                       # the module that registered it ("" built in)

    @property
    def weight_args(self) -> Mapping[str, tuple[str, ...]]:
        """Penalty weight kinds (what a weight clause may name) -> regularizer arguments."""
        return self.model.weight_args

    @property
    def inputs(self) -> tuple[int, int]:
        """How many tensors it reads: (least, most)."""
        return self.model.min_inputs, self.model.max_inputs

    @property
    def state_ports(self) -> tuple[str, ...]:
        """Its extra outputs with `return_state` (format 2 `layer.port`)."""
        return self.model.state_ports

    def output_dtype(self, layer: Any, dtype: str) -> Optional[str]:
        """The dtype of its output for an input of `dtype` (None: not known statically)."""
        if callable(self.dtype):
            return self.dtype(layer, dtype)
        compute = COMPUTE_DTYPE[layer.dtype]
        if self.dtype == "float" or dtype.startswith(("float", "bfloat")):
            return compute
        return dtype if self.dtype == "keeps" else None


def no_weights(layer: Any, shapes: list[Shape]) -> int:
    """The parameter count of a layer without weights."""
    return 0


# --- shape helpers shared by the families ----------------------------------------------------

def fmt(shape: Shape) -> str:
    return "(" + ", ".join(["batch", *("None" if d is None else str(d) for d in shape)]) + ")"


def per_axis(value: Any, k: int) -> list[int]:
    """A size given once for every axis, or once per axis, as one per axis."""
    return [value] * k if isinstance(value, int) else list(value)


def need_rank(layer: Any, shape: Shape, rank: int, what: str) -> None:
    if len(shape) != rank:
        raise ShapeProblem(f"{layer.type} needs inputs of shape (batch, {what}), got {fmt(shape)}")


def spatial_rank(layer: Any) -> int:
    """The number of spatial axes a `...1D`/`...2D`/`...3D` layer works on."""
    return int(layer.type[-2])


def same_shape(layer: Any, shapes: list[Shape]) -> Optional[Shape]:
    """The output has its input's shape."""
    return shapes[0]


def window(n: Optional[int], size: int, stride: int, dilation: int, padding: str,
           what: str) -> Optional[int]:
    if n is None:
        return None
    if padding in ("same", "causal"):
        return math.ceil(n / stride)
    span = dilation * (size - 1) + 1
    if n < span:
        raise ShapeProblem(f"its {what} spans {span} but the input axis has only {n} "
                           "(use padding: same, or a smaller window)")
    return (n - span) // stride + 1


SPATIAL_NAMES: Final = {1: "steps, channels", 2: "rows, cols, channels",
                        3: "d1, d2, d3, channels"}


def spatial(layer: Any, shape: Shape, k: int, size: Any, stride: Any, dilation: Any,
            what: str) -> list[Optional[int]]:
    need_rank(layer, shape, k + 1, SPATIAL_NAMES[k])
    sizes, strides, dilations = per_axis(size, k), per_axis(stride, k), per_axis(dilation, k)
    return [window(n, s, st, d, layer.padding, what)
            for n, s, st, d in zip(shape[:k], sizes, strides, dilations)]


def channels(shape: Shape) -> Optional[int]:
    return shape[-1] if shape else None


def axis_index(axis: int, shape: Shape) -> Optional[int]:
    """A non-batch axis as an index into `shape` (no batch axis); None when out of range."""
    rank = len(shape) + 1
    a = axis + rank if axis < 0 else axis
    return a - 1 if 1 <= a < rank else None
