"""After a load, detect freezes its heap (services.detect.service.settle_heap): a collection no
longer walks the loaded state (a full one stalled every trigger for 240-365 ms on `make run`),
and the next load's settle frees what the previous one left behind."""

from __future__ import annotations

import gc
import weakref

from mev_common.gc_watch import settle_heap


class _Node:
    """An object in a reference cycle: only the collector frees it."""

    def __init__(self) -> None:
        self.me = self


def test_settle_heap_freezes_the_state_and_the_next_settle_frees_the_last_ones_garbage() -> None:
    old = _Node()
    gone = weakref.ref(old)
    try:
        settle_heap()
        assert gc.get_freeze_count() > 0
        del old  # the next load replaced it
        gc.collect()
        assert gone() is not None  # frozen: collections leave it alone
        settle_heap()
        assert gone() is None
    finally:
        gc.unfreeze()
