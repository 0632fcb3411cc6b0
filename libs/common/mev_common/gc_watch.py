"""The garbage collector's pauses, timed: a collection holds the event loop, and a full one
over a large heap held detect's for 240-365 ms (57-152 ms in h74's block bench) while no hop
named it. Every service exports them (`mev_bot_gc_pause_seconds{generation}`), so a tail in a
hop can be laid beside the collections of the same minute."""

from __future__ import annotations

import gc
import time
from typing import Any

from mev_common import metrics

GENERATIONS = ("0", "1", "2")


class GcWatch:
    """A `gc.callbacks` hook: the time from a collection's start to its stop, by generation."""

    def __init__(self) -> None:
        self.started = 0.0
        self.children = [metrics.GC_PAUSE.labels(generation=g) for g in GENERATIONS]

    def __call__(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self.started = time.perf_counter()
            return
        generation = int(info.get("generation", 2))
        self.children[min(generation, 2)].observe(time.perf_counter() - self.started)


def watch_gc() -> GcWatch:
    """Install the hook once per process (a second call returns the first)."""
    for callback in gc.callbacks:
        if isinstance(callback, GcWatch):
            return callback
    watch = GcWatch()
    gc.callbacks.append(watch)
    return watch


def settle_heap(whole: bool = True) -> None:
    """What start-up (or a load) built lives on: out of the collector's way. Frozen objects are
    never walked again, so a full collection walks only what came since; unfrozen first, so the
    last load's state can go.

    `whole=False` (detect's reload): the frozen heap stays frozen and only what came since the
    last freeze is collected, then frozen. A frozen object is still freed by reference counting,
    so the old state goes when the new one replaces it unless it sits in a reference cycle;
    detect's pools, cycles and indexes hold none (tests/unit/detect/test_settle_heap.py: a whole
    collection after finds nothing more). The collection then walks the new state, not the
    whole heap again: it held detect's loop 86-690 ms a reload (on load)."""
    if whole:
        gc.unfreeze()
    gc.collect()
    gc.freeze()
