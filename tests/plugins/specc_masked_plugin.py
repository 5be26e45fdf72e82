"""A layer plugin whose layer takes a mask tensor in its call, as keras-hub's
TransformerEncoder takes `padding_mask`: registered with `call_args`, so a spec passes the
mask with `call: {padding_mask: NAME}` and `specc import` writes it from the recorded call."""
from __future__ import annotations

from typing import Annotated

import keras
from pydantic import Field

import specc


@keras.saving.register_keras_serializable(package="specc_masked_plugin")
class MaskedProjection(keras.layers.Layer):
    """(x @ kernel) at the positions where padding_mask is 1, zero elsewhere."""

    def __init__(self, units: Annotated[int, Field(gt=0)], **kwargs):
        super().__init__(**kwargs)
        self.units = units

    def build(self, input_shape):
        self.kernel = self.add_weight(shape=(input_shape[-1], self.units), name="kernel",
                                      initializer="glorot_uniform")

    def call(self, x, padding_mask=None):
        y = keras.ops.matmul(x, self.kernel)
        if padding_mask is not None:
            y = y * keras.ops.expand_dims(keras.ops.cast(padding_mask, y.dtype), -1)
        return y

    def get_config(self):
        return {**super().get_config(), "units": self.units}


def _shape(args, shapes):
    return (*shapes[0][:-1], args.units)


def _params(args, shapes):
    n = shapes[0][-1]
    return None if n is None else n * args.units


specc.register_layer("MaskedProjection", MaskedProjection, shape=_shape, params=_params,
                     call_args=("padding_mask",))
