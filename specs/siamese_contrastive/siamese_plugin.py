"""specc plugin, in one file: the two pieces of keras.io's siamese network that specc's
catalog does not have -- the Euclidean distance between the two towers' embeddings (a Lambda
in the example) and the contrastive loss -- registered and written together.

https://keras.io/examples/vision/siamese_contrastive/

specc reads this module from its source when it validates a spec (the Keras imports and the
Keras class are left out; see specc.plugin_source), and imports it when it builds one.
`[tool.specc] plugins` names this file; no PYTHONPATH is needed.
"""
from __future__ import annotations

import keras
from keras import ops
from pydantic import BaseModel, Field

import specc


def _distance_shape(args: object, shapes: list) -> tuple:
    left, right = shapes
    if len(left) != 1 or len(right) != 1:
        raise ValueError(f"reads two embedding vectors (rank 1 per sample), got ranks "
                         f"{len(left)} and {len(right)}")
    if None not in (left[0], right[0]) and left[0] != right[0]:
        raise ValueError(f"the embeddings differ in size: {left[0]} and {right[0]}")
    return (1,)


@specc.register_layer("EuclideanDistance", inputs=2, shape=_distance_shape,
                      params=lambda args, shapes: 0)
@keras.saving.register_keras_serializable(package="siamese_plugin")
class EuclideanDistance(keras.layers.Layer):
    """sqrt(max(Σ (x − y)², ε)) per sample, ε = keras.backend.epsilon(): keras.io's
    `euclidean_distance`."""

    def call(self, inputs):
        x, y = inputs
        sum_square = ops.sum(ops.square(x - y), axis=1, keepdims=True)
        return ops.sqrt(ops.maximum(sum_square, keras.backend.epsilon()))

    def compute_output_shape(self, input_shape):
        return (input_shape[0][0], 1)


class ContrastiveArgs(BaseModel):
    margin: float = Field(1.0, gt=0, description="Distance beyond which a dissimilar pair "
                                                 "costs nothing.")


@specc.register_loss("contrastive", args=ContrastiveArgs)
def contrastive(y_true, y_pred, margin=1.0):
    """keras.io's contrastive loss, per sample: (1 − y)·p² + y·max(margin − p, 0)², with
    y = 1 for a pair of the same digit and p the predicted score (Keras averages over the
    batch, as keras.io's `ops.mean` does)."""
    y_true = ops.cast(y_true, y_pred.dtype)
    square_pred = ops.square(y_pred)
    margin_square = ops.square(ops.maximum(margin - y_pred, 0))
    return ops.mean((1 - y_true) * square_pred + y_true * margin_square, axis=-1)
