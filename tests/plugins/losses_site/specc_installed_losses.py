"""An installed one-file plugin (entry points specc.losses and specc.metrics): it imports
Keras at its top, which specc leaves out when it only validates."""
from keras import ops

import specc


@specc.register_loss("squared_gap")
def squared_gap(y_true, y_pred, scale: float = 1.0):
    return scale * ops.mean(ops.square(y_true - y_pred), axis=-1)


@specc.register_metric("gap_within")
def gap_within(y_true, y_pred, tol: float = 0.5):
    return ops.cast(ops.abs(y_true - y_pred) <= tol, "float32")
