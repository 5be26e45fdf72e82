"""A plugin for the custom layers inside keras.applications (ConvNeXt's LayerScale and
StochasticDepth, InceptionResNetV2's CustomScaleLayer): Keras's own classes, named by module
(Keras deserializes them by that module in safe mode), with their arguments and shapes."""
from __future__ import annotations

from pydantic import BaseModel, Field

import specc


class LayerScaleArgs(BaseModel):
    init_values: float = Field(description="Initial value of every scale.")
    projection_dim: int = Field(gt=0, description="Channels: one scale each.")


def _layer_scale_shape(args: LayerScaleArgs, shapes: list) -> tuple:
    (shape,) = shapes
    if not shape or shape[-1] not in (None, args.projection_dim):
        raise ValueError(f"scales {args.projection_dim} channels (projection_dim), got "
                         f"{shape[-1] if shape else 'a scalar'}")
    return tuple(shape)


specc.register_layer("LayerScale", "keras.src.applications.convnext:LayerScale",
                     args=LayerScaleArgs, shape=_layer_scale_shape,
                     params=lambda args, shapes: args.projection_dim)


class StochasticDepthArgs(BaseModel):
    drop_path_rate: float = Field(ge=0.0, lt=1.0, description="Probability of dropping the "
                                  "whole residual branch of a sample in training.")


specc.register_layer("StochasticDepth", "keras.src.applications.convnext:StochasticDepth",
                     args=StochasticDepthArgs, shape=lambda args, shapes: shapes[0],
                     params=lambda args, shapes: 0)


class CustomScaleArgs(BaseModel):
    scale: float = Field(description="The residual's factor: inputs[0] + inputs[1] * scale.")


def _sum_shape(args: CustomScaleArgs, shapes: list) -> tuple:
    a, b = shapes
    if len(a) != len(b) or any(x is not None and y is not None and x != y
                               for x, y in zip(a, b)):
        raise ValueError(f"adds two tensors of one shape, got {a} and {b}")
    return tuple(x if x is not None else y for x, y in zip(a, b))


specc.register_layer("CustomScaleLayer",
                     "keras.src.applications.inception_resnet_v2:CustomScaleLayer",
                     args=CustomScaleArgs, shape=_sum_shape, params=lambda args, shapes: 0,
                     inputs=2)
