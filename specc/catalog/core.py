"""Core layers: Dense, Embedding, Identity, Masking (keras/src/layers/core)."""
# No `from __future__ import annotations`: Pydantic would eval every annotation string
# at import, which `specc validate` pays on each run.

from typing import Any, ClassVar, Final, Literal, Mapping, Optional

from pydantic import Field

from specc.catalog.args import (
    KERNEL_BIAS, ActivationArg, BiasConstraint, BiasInit, KernelConstraint, KernelInit, Layer,
    LayerInitializer, UseBias, WeightedLayer,
)
from specc.catalog.definition import (
    LayerDef, Shape, ShapeProblem, channels, fmt, no_weights, same_shape,
)
from specc.spec.base import Constraint, PositiveInt


class Dense(WeightedLayer):
    type: Literal["Dense"]
    units: PositiveInt = Field(description="Size of the output's last axis.")
    activation: ActivationArg = None
    use_bias: UseBias = True
    kernel_initializer: KernelInit = "glorot_uniform"
    bias_initializer: BiasInit = "zeros"
    kernel_constraint: KernelConstraint = None
    bias_constraint: BiasConstraint = None

    splittable_activation: ClassVar[bool] = True
    weight_args: ClassVar[Mapping[str, tuple[str, ...]]] = KERNEL_BIAS


class Embedding(WeightedLayer):
    """Maps integer ids (the input's dtype must be an integer type) to dense vectors."""

    type: Literal["Embedding"]
    input_dim: PositiveInt = Field(description="Vocabulary size: ids are in [0, input_dim).")
    output_dim: PositiveInt = Field(description="Size of each embedding vector.")
    embeddings_initializer: LayerInitializer = Field(
        "uniform", description="Initializer of the embedding matrix.")
    embeddings_constraint: Optional[Constraint] = Field(
        None, description="Constraint applied to the embedding matrix after each update.")
    mask_zero: bool = Field(False, description="Treat id 0 as padding and mask it out.")

    weight_args: ClassVar[Mapping[str, tuple[str, ...]]] = {
        "kernel": ("embeddings_regularizer",)}



class Identity(Layer):
    type: Literal["Identity"]

    # Keras's Identity has no get_config of its own: an activity_regularizer would make it
    # unsaveable; the clause goes on an identity Activation after it instead.
    regularizes_own_output: ClassVar[bool] = False



class Masking(Layer):
    """Masks the steps whose features all equal `mask_value` for the layers after it (and
    the penalties on them: specc.penalties.MASK_NOTE)."""

    type: Literal["Masking"]
    mask_value: float = Field(0.0, allow_inf_nan=False,
                              description="A step whose features all equal it is masked.")


def _dense_shape(layer: Any, shapes: list[Shape]) -> Optional[Shape]:
    shape = shapes[0]
    if not shape:
        raise ShapeProblem("Dense needs inputs with a feature axis, got (batch,)")
    if shape[-1] is None:
        raise ShapeProblem(f"Dense needs a known last axis, got {fmt(shape)}")
    return (*shape[:-1], layer.units)


def _dense_params(layer: Any, shapes: list[Shape]) -> Optional[int]:
    n = channels(shapes[0])
    return None if n is None else n * layer.units + layer.units * layer.use_bias


def _embedding_shape(layer: Any, shapes: list[Shape]) -> Optional[Shape]:
    return (*shapes[0], layer.output_dim)


def _embedding_params(layer: Any, shapes: list[Shape]) -> Optional[int]:
    return layer.input_dim * layer.output_dim


LAYERS: Final = (
    LayerDef("Dense", Dense, _dense_shape, _dense_params, "float"),
    LayerDef("Embedding", Embedding, _embedding_shape, _embedding_params, "float"),
    LayerDef("Identity", Identity, same_shape, no_weights, "keeps"),
    LayerDef("Masking", Masking, same_shape, no_weights),
)
