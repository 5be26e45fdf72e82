"""The terms each regularizer and tap computed in this thread's forward pass, which SpecModel
reads back (specc.runtime.objects, specc.runtime.pairs); no Keras here.
"""
from __future__ import annotations

import threading
from typing import Any

_records = threading.local()


def _key(owner: Any) -> Any:
    return owner if isinstance(owner, str) else id(owner)


def record(owner: Any, values: list[Any]) -> None:
    """Remember the terms a regularizer or tap computed in this thread's forward pass.

    Keras keeps a layer's losses in one list shared by every replica thread; under
    tf.distribute a collective in the forward pass (a batch statistic's all_reduce) lets
    another replica overwrite that list mid-step. SpecModel reads its terms from here, a
    per-thread (so per-replica) record, cleared at the start of every model call.
    """
    store = getattr(_records, "terms", None)
    if store is None:
        store = _records.terms = {}
    store[_key(owner)] = values


def recorded(owner: Any) -> list[Any] | None:
    return getattr(_records, "terms", {}).get(_key(owner))


def clear() -> None:
    """Forget this thread's terms (SpecModel, at the start of every model call)."""
    store = getattr(_records, "terms", None)
    if store:
        store.clear()
