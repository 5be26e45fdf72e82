"""Activation layers: Activation, ReLU, LeakyReLU, Softmax (keras/src/layers/activations)."""
# No `from __future__ import annotations`: Pydantic would eval every annotation string
# at import, which `specc validate` pays on each run.

from typing import Final, Literal, Optional

from pydantic import Field

from specc.catalog.args import ActivationName, Axes, Float, Layer, NonNegFloat
from specc.catalog.definition import LayerDef, no_weights, same_shape


class Activation(Layer):
    type: Literal["Activation"]
    activation: ActivationName = Field(description="The activation function to apply.")


class ReLU(Layer):
    type: Literal["ReLU"]
    max_value: Optional[NonNegFloat] = Field(None, description="Upper bound; null: none.")
    negative_slope: NonNegFloat = Field(0.0, description="Slope below the threshold.")
    threshold: Float = Field(0.0, description="Inputs below this are damped.")


class LeakyReLU(Layer):
    type: Literal["LeakyReLU"]
    negative_slope: NonNegFloat = Field(0.3, description="Slope for negative inputs.")


class Softmax(Layer):
    type: Literal["Softmax"]
    axis: Axes = Field(-1, description="The axis or axes to normalize over.")


LAYERS: Final = (
    LayerDef("Activation", Activation, same_shape, no_weights),
    LayerDef("ReLU", ReLU, same_shape, no_weights),
    LayerDef("LeakyReLU", LeakyReLU, same_shape, no_weights),
    LayerDef("Softmax", Softmax, same_shape, no_weights, axis=(True, False)),
)
