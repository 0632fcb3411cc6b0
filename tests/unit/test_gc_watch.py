"""Every collection is timed under its generation, once: the hook is installed once per
process however often a service (or a test) starts."""

from __future__ import annotations

import gc

from mev_common import metrics
from mev_common.gc_watch import GcWatch, watch_gc


def observations(generation: str) -> float:
    child = metrics.GC_PAUSE.labels(generation=generation)
    return sum(bucket.get() for bucket in child._buckets)


def test_each_collection_is_observed_once_under_its_generation() -> None:
    watch_gc()
    watch_gc()  # a second start adds no second hook
    assert sum(isinstance(c, GcWatch) for c in gc.callbacks) == 1
    before = {g: observations(g) for g in ("0", "1", "2")}
    gc.collect(0)
    gc.collect(2)
    gc.collect(2)
    after = {g: observations(g) for g in ("0", "1", "2")}
    assert after["0"] - before["0"] >= 1  # the allocator may start its own young collections
    assert after["2"] - before["2"] == 2
