"""Which rows each batch of specc's array feed holds, and reading them: NumPy only (imported
inside the functions, so that `specc.feed` stays light), shared by the tf.data pipeline
(specc.feed_tf) and the PyDataset (specc.feed)."""
from __future__ import annotations

from typing import Any

from specc.data import release


def epoch_rows(rows: Any, epoch: int, batch_size: int, *, shuffle: bool, seed: int,
               share: tuple[int, int] | None = None) -> Any:
    """The rows one epoch feeds, batch after batch, as one array: `rows` in the order drawn
    from (seed, epoch) when `shuffle`, cut into batches of `batch_size`. `share=(p, P)`: only
    whole global batches, and of each the p-th slice of batch_size / P (a last partial global
    batch is dropped, so that every process takes the same steps). Each batch's rows are
    sorted: they are read in file order, and a batch's mean does not depend on its order."""
    import numpy as np

    rows = np.asarray(rows)
    order = (rows[np.random.default_rng([seed, epoch]).permutation(len(rows))]
             if shuffle else rows)
    whole = len(order) // batch_size
    if share:
        p, count = share
        mine = order[:whole * batch_size].reshape(whole, count, batch_size // count)[:, p]
        return np.sort(mine, axis=1).reshape(-1)
    head = np.sort(order[:whole * batch_size].reshape(whole, batch_size), axis=1)
    return np.concatenate([head.reshape(-1), np.sort(order[whole * batch_size:])])


def gather(x: dict[str, Any], y: dict[str, Any], take: Any) -> tuple[Any, Any]:
    """One batch: rows `take` of every array (a single input as an array), a mapped file's
    pages released after it is read (memory: one batch's pages at a time)."""
    import numpy as np


    bx = {k: np.asarray(a[take]) for k, a in x.items()}
    by = {k: np.asarray(a[take]) for k, a in y.items()}
    for a in [*x.values(), *y.values()]:
        if isinstance(a, np.memmap):
            release(a)
    return (next(iter(bx.values())) if len(bx) == 1 else bx), by
