"""After a load, detect freezes its heap (services.detect.service.settle_heap): a collection no
longer walks the loaded state (a full one stalled every trigger for 240-365 ms on `make run`),
and the next load's settle frees what the previous one left behind."""

from __future__ import annotations

import gc
import weakref

from mev_common.gc_watch import settle_heap

from bench.detect_profile import detector, devnet_like
from services.detect.rate_screen import lay_out_each


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


def test_a_reloads_settle_leaves_the_heap_a_whole_settle_leaves() -> None:
    """A reload's settle (whole=False) collects only what came since the last freeze: the old
    state, frozen, went by reference counting when the reload replaced it (its pools, cycles
    and indexes hold no reference cycles), so a whole collection after it finds nothing more
    to free: the frozen heap is the one settle_heap() leaves."""
    found, _, _ = detector()
    try:
        settle_heap()  # start-up's (the first load's)
        for k in range(2):
            _, pools, v3_pools = devnet_like()
            found.registry.load(pools, 2 + k, "0x" + "22" * 32, v3_pools)
            found.rebuild_index()
            lay_out_each(found.index, found.registry.all_pools, found.registry.v3.pools)
            settle_heap(whole=False)
            assert gc.get_count() == (0, 0, 0)  # everything since the last freeze: frozen
            gc.unfreeze()
            assert gc.collect() == 0  # what settle_heap() would have freed more: nothing
            gc.freeze()
    finally:
        gc.unfreeze()
