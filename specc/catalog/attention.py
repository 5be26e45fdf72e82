"""Attention: MultiHeadAttention (keras/src/layers/attention).

It reads [query, value] or [query, value, key]; one input means self-attention.
"""
# No `from __future__ import annotations`: Pydantic would eval every annotation string
# at import, which `specc validate` pays on each run.

import math
from typing import Annotated, Any, ClassVar, Final, Literal, Mapping, Optional, Union

from pydantic import Field

from specc.catalog.args import (
    KERNEL_BIAS, Axes, BiasConstraint, BiasInit, KernelConstraint, KernelInit, Seed, UseBias,
    WeightedLayer,
)
from specc.catalog.definition import LayerDef, Shape, ShapeProblem, channels, fmt
from specc.spec.base import Fraction, PositiveInt


class MultiHeadAttention(WeightedLayer):
    """Reads [query, value] or [query, value, key]; one input means self-attention."""

    type: Literal["MultiHeadAttention"]
    num_heads: PositiveInt = Field(description="Number of attention heads.")
    key_dim: PositiveInt = Field(description="Size of each head for query and key.")
    value_dim: Optional[PositiveInt] = Field(
        None, description="Size of each head for value; null means key_dim.")
    dropout: Fraction = Field(0.0, description="Dropout rate on the attention scores.")
    use_bias: UseBias = True
    output_shape: Optional[Union[PositiveInt, Annotated[list[PositiveInt],
                                                        Field(min_length=1)]]] = Field(
        None, description="Output shape without batch and sequence axes; null: the query's.")
    attention_axes: Optional[Axes] = Field(
        None, description="Axes attention runs over; null means all but batch, heads, features.")
    kernel_initializer: KernelInit = "glorot_uniform"
    bias_initializer: BiasInit = "zeros"
    kernel_constraint: KernelConstraint = None
    bias_constraint: BiasConstraint = None
    use_gate: bool = Field(False, description="Gate the attention output with a sigmoid.")
    seed: Seed = None

    weight_args: ClassVar[Mapping[str, tuple[str, ...]]] = KERNEL_BIAS
    max_inputs: ClassVar[int] = 3
    regularizes_own_output: ClassVar[bool] = False   # Keras passes it to the projections


def _shape(layer: Any, shapes: list[Shape]) -> Optional[Shape]:
    """Query shape, last axis replaced by `output_shape`; rank-1 queries: see specc.rules."""
    query = shapes[0]
    if len(query) < 2 or any(len(s) < 2 for s in shapes):
        return None
    value = shapes[1] if len(shapes) > 1 else query
    key = shapes[2] if len(shapes) > 2 else value
    if len(key) != len(value) or any(a is not None and b is not None and a != b
                                     for a, b in zip(key[:-1], value[:-1])):
        raise ShapeProblem(f"key {fmt(key)} and value {fmt(value)} must match except on "
                           "the last axis")
    out = layer.output_shape
    if out is None:
        return query
    return (*query[:-1], *([out] if isinstance(out, int) else out))


def _params(layer: Any, shapes: list[Shape]) -> Optional[int]:
    query = shapes[0]
    value = shapes[1] if len(shapes) > 1 else query
    key = shapes[2] if len(shapes) > 2 else value
    dims = [channels(s) for s in (query, key, value)]
    if any(d is None for d in dims):
        return None
    q, k, v = dims
    h, kd = layer.num_heads, layer.key_dim
    vd = layer.value_dim or kd
    out = layer.output_shape or q
    out = math.prod(out) if isinstance(out, list) else out
    b = int(layer.use_bias)
    total = (q * h * kd + h * kd * b) + (k * h * kd + h * kd * b) + (v * h * vd + h * vd * b)
    total += h * vd * out + out * b
    if layer.use_gate:
        total += q * h * vd + h * vd * b
    return total


def _elements(shape: Shape) -> int:
    return math.prod(1 if d is None else d for d in shape)


def _internal(layer: Any, shapes: list[Shape]) -> tuple[int, str]:
    """The largest tensor it computes inside, per sample: a projection or the scores."""
    if any(len(s) < 2 for s in shapes):
        return 0, ""
    query = shapes[0]
    value = shapes[1] if len(shapes) > 1 else query
    h = layer.num_heads
    vd = layer.value_dim or layer.key_dim
    sizes = [(h * layer.key_dim * _elements(query[:-1]), "its query projection"),
             (h * vd * _elements(value[:-1]), "its value projection")]
    if layer.attention_axes is None:
        sizes.append((h * _elements(query[:-1]) * _elements(value[:-1]),
                      "its attention scores (heads x query steps x key steps)"))
    return max(sizes)


LAYERS: Final = (
    LayerDef("MultiHeadAttention", MultiHeadAttention, _shape, _params, "float",
             call_args=("attention_mask", "query_mask", "value_mask", "key_mask",
                        "use_causal_mask"),
             internal=_internal),
)
