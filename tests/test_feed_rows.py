"""Which rows each batch of specc's feed holds (NumPy only): every epoch a partition of the
rows into batches, a pure function of (seed, epoch), and with several processes each one's
slice of the same global batches."""
from __future__ import annotations

import numpy as np

from specc.feed_rows import epoch_rows


def _batches(flat: np.ndarray, size: int) -> list[list[int]]:
    return [flat[i:i + size].tolist() for i in range(0, len(flat), size)]


def test_each_epoch_is_a_partition_in_batches() -> None:
    rows = np.arange(5, 28)                            # 23 rows: 5 batches of 4, one of 3
    for epoch in range(3):
        got = epoch_rows(rows, epoch, 4, shuffle=True, seed=7)
        assert sorted(got.tolist()) == rows.tolist()
        batches = _batches(got, 4)
        assert [len(b) for b in batches] == [4] * 5 + [3]
        assert all(b == sorted(b) for b in batches)   # each batch read in file order
    # the order: the permutation drawn from (seed, epoch), independently of this code
    perm = rows[np.random.default_rng([7, 1]).permutation(23)]
    assert _batches(epoch_rows(rows, 1, 4, shuffle=True, seed=7), 4) == [
        sorted(perm[i:i + 4].tolist()) for i in range(0, 23, 4)]


def test_the_order_is_a_function_of_seed_and_epoch() -> None:
    rows = np.arange(100)
    a = epoch_rows(rows, 3, 8, shuffle=True, seed=1)
    assert np.array_equal(a, epoch_rows(rows, 3, 8, shuffle=True, seed=1))    # integer rows
    assert not np.array_equal(a, epoch_rows(rows, 4, 8, shuffle=True, seed=1))
    assert not np.array_equal(a, epoch_rows(rows, 3, 8, shuffle=True, seed=2))
    assert epoch_rows(rows, 3, 8, shuffle=False, seed=1).tolist() == list(range(100))


def test_processes_take_their_slice_of_every_whole_global_batch() -> None:
    rows = np.arange(30)                               # 3 global batches of 8, 6 rows dropped
    one = _batches(epoch_rows(rows, 2, 8, shuffle=True, seed=0), 8)[:3]
    parts = [_batches(epoch_rows(rows, 2, 8, shuffle=True, seed=0, share=(p, 2)), 4)
             for p in (0, 1)]
    assert [len(p) for p in parts] == [3, 3]
    for k in range(3):
        assert sorted(parts[0][k] + parts[1][k]) == one[k]
        assert not set(parts[0][k]) & set(parts[1][k])
