"""A layer plugin as a user writes one, given as a class: its arguments are derived from the
annotated constructor. (Importing it imports Keras; see specs/transformer for the lazy form.)"""
from __future__ import annotations

from typing import Annotated, Optional

import keras
from pydantic import Field

import specc


@keras.saving.register_keras_serializable(package="specc_layer_plugin")
class ScaledDense(keras.layers.Layer):
    """activation((x @ kernel + bias) * scale), with a learned scale per unit."""

    def __init__(self, units: Annotated[int, Field(gt=0)], activation: Optional[str] = None,
                 use_bias: bool = True, kernel_regularizer=None, bias_regularizer=None,
                 **kwargs):
        super().__init__(**kwargs)
        self.units, self.use_bias = units, use_bias
        self.activation = keras.activations.get(activation)
        self.kernel_regularizer = keras.regularizers.get(kernel_regularizer)
        self.bias_regularizer = keras.regularizers.get(bias_regularizer)

    def build(self, input_shape):
        self.kernel = self.add_weight(shape=(input_shape[-1], self.units), name="kernel",
                                      initializer="glorot_uniform",
                                      regularizer=self.kernel_regularizer)
        self.bias = self.add_weight(shape=(self.units,), name="bias", initializer="zeros",
                                    regularizer=self.bias_regularizer) if self.use_bias else None
        self.scale = self.add_weight(shape=(self.units,), name="scale", initializer="ones")

    def call(self, x):
        z = keras.ops.matmul(x, self.kernel)
        if self.bias is not None:
            z = z + self.bias
        return self.activation(z * self.scale)

    def get_config(self):
        return {**super().get_config(), "units": self.units, "use_bias": self.use_bias,
                "activation": keras.activations.serialize(self.activation),
                "kernel_regularizer": keras.regularizers.serialize(self.kernel_regularizer),
                "bias_regularizer": keras.regularizers.serialize(self.bias_regularizer)}


def _shape(args, shapes):
    (shape,) = shapes
    if not shape:
        raise ValueError("reads vectors (rank >= 1 per sample), got a scalar")
    return (*shape[:-1], args.units)


def _params(args, shapes):
    n = shapes[0][-1]
    return None if n is None else n * args.units + args.units * (1 + args.use_bias)


specc.register_layer("ScaledDense", ScaledDense, shape=_shape, params=_params,
                     weights={"kernel": "kernel_regularizer", "bias": "bias_regularizer"})
# The same class without a shape rule: validation cannot follow shapes through it.
specc.register_layer("ScaledDenseNoShape", ScaledDense,
                     weights={"kernel": "kernel_regularizer", "bias": "bias_regularizer"})
