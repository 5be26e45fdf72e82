"""The custom layer classes inside keras.applications, registered as spec layer types.

ConvNeXt's `LayerScale` and `StochasticDepth`, InceptionResNetV2's `CustomScaleLayer` are
Keras's own classes, not catalog layers. They are registered here by "module:Class" (Keras
finds its own classes by module when a saved model loads with safe_mode=True), so this module
imports no Keras: validating a spec that names them stays free of TensorFlow.

specc loads this module itself, lazily, the first time a spec names a type that is neither
built in nor registered (specc.custom_layers.lookup); installed specc also declares it as a
`specc.layers` entry point. A type a user's own plugin registered first is left alone.
"""
from __future__ import annotations

from typing import Final

from pydantic import BaseModel, Field

from specc.custom_layers import register_layer, registered_names

_CONVNEXT: Final = "keras.src.applications.convnext"
_INCEPTION_RESNET: Final = "keras.src.applications.inception_resnet_v2"


class LayerScaleArgs(BaseModel):
    """LayerScale(init_values, projection_dim): x * gamma, gamma a learned vector of
    projection_dim scales, each starting at init_values."""

    init_values: float = Field(description="Initial value of every scale (ConvNeXt: 1e-6).")
    projection_dim: int = Field(gt=0, description="How many scales: the input's channels.")


def layer_scale_shape(args: LayerScaleArgs, shapes: list) -> tuple:
    """x * gamma broadcasts: the last axis is projection_dim (or 1, or unknown)."""
    (shape,) = shapes
    last = shape[-1] if shape else 1
    if last not in (None, 1, args.projection_dim):
        raise ValueError(f"scales {args.projection_dim} channels (projection_dim), got {last}")
    return (*shape[:-1], args.projection_dim) if shape else (args.projection_dim,)


class StochasticDepthArgs(BaseModel):
    """StochasticDepth(drop_path_rate): in training, drops a sample's whole residual branch
    with probability drop_path_rate (the kept ones divided by 1 - drop_path_rate); at
    inference, the identity."""

    drop_path_rate: float = Field(ge=0.0, lt=1.0, description="Probability of dropping a "
                                  "sample's whole residual branch in training.")


class CustomScaleArgs(BaseModel):
    """CustomScaleLayer(scale): inputs[0] + inputs[1] * scale."""

    scale: float = Field(description="The residual's factor: inputs[0] + inputs[1] * scale.")


def sum_shape(args: CustomScaleArgs, shapes: list) -> tuple:
    """Two tensors of one shape (unknown sizes filled from the other)."""
    a, b = shapes
    if len(a) != len(b) or any(x is not None and y is not None and x != y
                               for x, y in zip(a, b)):
        raise ValueError(f"adds two tensors of one shape, got {list(a)} and {list(b)}")
    return tuple(x if x is not None else y for x, y in zip(a, b))


def register() -> list[str]:
    """Register the types no plugin registered yet; returns the names registered now."""
    taken = registered_names()
    done = []
    if "LayerScale" not in taken:
        register_layer("LayerScale", f"{_CONVNEXT}:LayerScale", args=LayerScaleArgs,
                       shape=layer_scale_shape, params=lambda args, shapes: args.projection_dim,
                       _caller=__name__)
        done.append("LayerScale")
    if "StochasticDepth" not in taken:
        register_layer("StochasticDepth", f"{_CONVNEXT}:StochasticDepth",
                       args=StochasticDepthArgs, shape=lambda args, shapes: tuple(shapes[0]),
                       params=lambda args, shapes: 0, _caller=__name__)
        done.append("StochasticDepth")
    if "CustomScaleLayer" not in taken:
        register_layer("CustomScaleLayer", f"{_INCEPTION_RESNET}:CustomScaleLayer",
                       args=CustomScaleArgs, shape=sum_shape, params=lambda args, shapes: 0,
                       inputs=2, _caller=__name__)
        done.append("CustomScaleLayer")
    return done


register()
