"""`specc fit`'s TensorBoard log: Keras's callback, written once per epoch without its batch
hooks, so that training does not wait for every batch's logs."""
from __future__ import annotations

from typing import Any


def epoch_tensorboard(log_dir: str) -> Any:
    """keras.callbacks.TensorBoard(log_dir) whose batch hooks are Keras's no-ops: with
    `update_freq="epoch"` and no profiling, Keras's hooks only pass each batch's logs to
    summaries that have no writer, yet a callback with its own `on_train_batch_end` makes
    Keras wait for every batch's logs (one noisy measurement, load 5 on 2 cores: an epoch of
    a 20,000-row table 1.23x as long with Keras's callback as without). The train function's
    graph, which Keras writes after the first batch, is written after the first epoch."""
    import keras

    base = keras.callbacks.Callback

    class EpochTensorBoard(keras.callbacks.TensorBoard):
        on_train_batch_begin = base.on_train_batch_begin
        on_train_batch_end = base.on_train_batch_end
        on_test_batch_begin = base.on_test_batch_begin

        def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
            if getattr(self, "_should_write_train_graph", False):
                self._write_keras_model_train_graph()
                self._should_write_train_graph = False
            super().on_epoch_end(epoch, logs)

    return EpochTensorBoard(log_dir=log_dir)
