"""Detect's pending view after a gap in its feed (NATS back, a redelivery, a reload): swaps
still pending stay booked, and trades wait for a block mined after the gap, two block times at
most (services/detect/feed_gap.py). h78's first version held them until such a block came on
any path but the reload's, and forever when none came (test_detect_gap, mined by hand)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from mev_common.envelope import Envelope
from mev_common.messages import Block, Opportunity, PendingTx, decode

from bench.detect_profile import CHAIN_ID, _Bus, detector
from bench.swaps import pending_swaps
from services.detect.feed_gap import CLOCK_MARGIN_S, FeedGap, watch_reconnects
from services.detect.service import Detector


class _Keep(_Bus):
    """Every opportunity published, in order."""

    def __init__(self) -> None:
        super().__init__()
        self.opportunities: list[Opportunity] = []

    async def publish(self, subject: str, message: Any, **_: Any) -> None:
        if isinstance(message, Opportunity):
            self.opportunities.append(message)


def _env(message: Any, key: str, deliveries: int = 1, seen_s: float = 0.0) -> Envelope[Any]:
    """`seen_s`: when ingest saw it (Mev-Seen-Ns), now by default."""
    seen_ns = int(seen_s * 1e9) if seen_s else time.time_ns()
    return Envelope(message, "t", key, key, seen_ns, deliveries)


def _next_block(det: Detector, stamped: int, skip: int = 0) -> Block:
    assert det.head is not None
    number = det.head.number + 1 + skip
    parent = det.head.hash if not skip else "0x" + f"{number - 1:064x}"
    return Block(chain_id=CHAIN_ID, number=number, hash="0x" + f"{number:064x}",
                 parent_hash=parent, timestamp=stamped, base_fee_per_gas=10**9)  # fmt: skip


def _swaps(deployment: dict[str, Any], n: int, seed: int) -> list[tuple[str, PendingTx]]:
    return [(h, decode(PendingTx, p)) for h, p in pending_swaps(deployment, n, seed=seed)]


def test_a_swap_seen_at_a_lagging_head_stays_booked_while_the_blocks_catch_up() -> None:
    """Detect's head is 5 s (blocks) behind the chain's clock when a swap arrives (the block
    stream catching up after NATS came back): the four blocks of the backlog do not age it out
    (booked at the stale head, it left the book at the fourth while still pending)."""
    det, deployment, _ = detector()
    det.rt.bus = _Keep()  # type: ignore[assignment]
    det.recheck = False
    assert det.head is not None
    stale = int(time.time()) - 5
    det.head_seen_s = stale  # ingest saw our head 5 s ago
    tx_hash, tx = _swaps(deployment, 1, seed=8)[0]

    async def main() -> None:
        await det.on_pending(_env(tx, tx_hash))
        for k in range(1, 5):  # mined (and seen by ingest) before the swap arrived
            block = _next_block(det, stale + k)
            await det.on_block(_env(block, block.hash, seen_s=stale + k))

    asyncio.run(main())
    assert det.head.number == 5
    assert tx_hash in det.pending.entries


def test_a_chain_clock_apart_from_ours_books_a_swap_at_our_head() -> None:
    """The chain's stamps run 100 s behind our clock (a devnet loaded from a state dump that
    old; a node's clock off) while detect is live (ingest saw the head just now): a swap is
    booked at our head, so one that never mines leaves the book after max_age_blocks. Booked
    by the stamp, it sat 98 blocks ahead and crowded backruns through its pools for as long
    (bench's devnet flow found 5x fewer pending opportunities)."""
    det, deployment, _ = detector()
    det.rt.bus = _Keep()  # type: ignore[assignment]
    det.recheck = False
    assert det.head is not None
    now = time.time()
    det.head = det.head.model_copy(update={"timestamp": int(now) - 100})
    det.head_seen_s = now
    tx_hash, tx = _swaps(deployment, 1, seed=8)[0]
    asyncio.run(det.on_pending(_env(tx, tx_hash)))
    assert det.pending.entries[tx_hash].seen_block == det.head.number


class _Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_a_gap_holds_until_a_block_stamped_after_it_or_two_block_times() -> None:
    """Chain and host clocks agree; ingest sees each block 10 ms after its stamp."""
    clock = _Clock(100.5)
    feed = FeedGap(max_hold_s=2.0, clock=clock)
    assert feed.whole and not feed.on_block(99, 99.01) and feed.hold([1]) == [1]
    assert feed.opened("nats reconnected")  # newly unsure
    assert not feed.whole and feed.reason == "nats reconnected"
    assert feed.hold([1, 2]) == [] and feed.held == 2
    assert not feed.on_block(100, 100.01)  # mined before the gap
    assert not feed.on_block(101, 101.01)  # within the margin
    assert feed.on_block(102, 102.01) and feed.whole and feed.reason == ""
    assert not feed.on_block(106, 106.01)  # already whole
    # no block comes: the hold ends two block times after the event that opened it; a later
    # event moves the time a block must be mined past, not that end
    assert feed.opened("pending tx redelivered")
    clock.now = 102.0
    assert not feed.opened("nats reconnected")
    assert not feed.on_block(102, 102.01) and feed.hold([1]) == []
    clock.now = 102.49
    assert feed.hold([1]) == [] and not feed.whole
    clock.now = 102.5
    assert feed.hold([1]) == [1] and feed.whole and feed.held == 4


def _mined_every_2_s(feed: FeedGap, behind_s: int, until: int) -> None:
    """Blocks mined on our clock's even seconds up to `until`, stamped `behind_s` behind it,
    each seen by ingest 10 ms after."""
    for mined in range(until - 20, until + 1, 2):
        assert not feed.on_block(mined - behind_s, mined + 0.01)


def test_a_chain_clock_behind_ours_releases_on_the_first_block_mined_after_the_gap() -> None:
    """The chain's stamps run 100 s behind our clock (a devnet loaded from a state dump that
    old): the first block mined more than the margin after the event releases the hold, as
    with clocks that agree. By the stamp, none did: every hold ran to its timeout."""
    clock = _Clock(1000.5)
    feed = FeedGap(max_hold_s=4.0, clock=clock)
    _mined_every_2_s(feed, 100, 1000)
    assert feed.opened("nats reconnected")
    assert feed.clock_offset == pytest.approx(100.01)
    assert not feed.on_block(1001 - 100, 1001.01)  # mined within the margin: not yet
    clock.now = 1002.01
    assert feed.on_block(1002 - 100, 1002.01) and feed.whole  # 2 s before the timeout


def test_a_chain_clock_ahead_of_ours_holds_past_a_block_mined_before_the_gap() -> None:
    """The chain's stamps run 100 s ahead of our clock (a node's clock off): a block mined
    before the event (applied after it: the block stream was behind too) does not release
    the hold, the swap it missed may still be pending; the next block mined after it does.
    By the stamp, the first block applied released it."""
    clock = _Clock(1000.5)
    feed = FeedGap(max_hold_s=4.0, clock=clock)
    _mined_every_2_s(feed, -100, 998)
    assert feed.opened("nats reconnected")
    assert not feed.on_block(1000 + 100, 1000.01)  # mined (and seen) 0.5 s before the event
    assert not feed.on_block(1000 + 100, 1001.9)  # the same, seen late by ingest
    assert not feed.whole and feed.hold([1]) == []
    clock.now = 1002.01
    assert feed.on_block(1002 + 100, 1002.01) and feed.whole


def test_no_seen_time_yet_holds_to_the_timeout() -> None:
    """Blocks with no seen time (an older ingest's) give no offset: the hold runs its course
    (unsure which clock the stamps are on)."""
    clock = _Clock(1000.5)
    feed = FeedGap(max_hold_s=2.0, clock=clock)
    assert feed.opened("nats reconnected")
    assert not feed.on_block(1010, 0.0) and feed.clock_offset is None
    clock.now = 1002.5
    assert feed.hold([1]) == [1] and feed.whole


def test_a_redelivered_pending_tx_opens_a_gap_a_late_one_does_not() -> None:
    feed = FeedGap(max_hold_s=2.0, clock=_Clock(100.0))
    assert not feed.on_pending(1) and feed.whole  # however late: a consumer behind misses none
    assert feed.on_pending(2) and feed.reason == "pending tx redelivered"


def test_detect_holds_backruns_after_a_redelivery_until_a_later_block() -> None:
    """Two detectors, the same 40 swaps: the first with a whole feed publishes backruns for
    them; the second was handed its first swap a second time (a redelivery), so it publishes
    none of the first 20 (counted as held) until a block stamped after that redelivery, then
    backruns for the other 20 again."""
    whole, deployment, _ = detector()
    gapped, _, _ = detector()
    clock = _Clock(time.time())
    gapped.feed.clock = clock
    for det in (whole, gapped):
        det.recheck = False  # the book's nonce check after a load needs an RPC
    buses = [_Keep(), _Keep()]
    whole.rt.bus, gapped.rt.bus = buses  # type: ignore[assignment]
    swaps = _swaps(deployment, 40, seed=8)

    async def main() -> None:
        for k, (tx_hash, tx) in enumerate(swaps):
            if k == 20:  # the same block reaches both: mined after the redelivery
                stamp = int(clock.now) + 2
                for det in (whole, gapped):
                    block = _next_block(det, stamp)
                    await det.on_block(_env(block, block.hash, seen_s=stamp + 0.01))
            await whole.on_pending(_env(tx, tx_hash))
            await gapped.on_pending(_env(tx, tx_hash, deliveries=2 if k == 0 else 1))

    asyncio.run(main())
    first = {h for h, _ in swaps[:20]}
    before = [o for o in buses[0].opportunities if o.trigger in first]
    after = [o for o in buses[0].opportunities if o.trigger not in first]
    assert len(before) >= 5 and len(after) >= 5  # real backruns on both sides of the block
    assert gapped.feed.held >= 5  # before the follow-ons each would have led
    assert not [o for o in buses[1].opportunities if o.trigger in first]
    assert [o.id for o in buses[1].opportunities] == [o.id for o in after]
    assert gapped.feed.whole


def _reloading(det: Detector, gap: Block, meanwhile: Any = None) -> None:
    """`det.load` as a reload to `gap` (the snapshot at it) that runs `meanwhile` while the
    pools are unloaded; the rest of the reload path (services/detect/gap.py) is the real one."""

    async def reload() -> None:
        det.loaded = False
        if meanwhile is not None:
            await meanwhile()
        det.registry.block_number, det.registry.block_hash = gap.number, gap.hash
        det.loaded = True

    det.load = reload  # type: ignore[method-assign]


def test_the_reload_path_releases_and_a_hold_ends_with_no_block() -> None:
    """NATS came back, then a gap in the block stream reloads the pools: a reload to a block
    stamped after the reconnect releases the trades. A reload to one stamped before it does
    not, nor does any block after it (a devnet mined by hand): two block times after the
    reconnect detect trades again."""
    det, deployment, _ = detector()
    clock = _Clock(float(int(time.time())))
    det.feed.clock = clock
    det.recheck = False
    start = clock.now
    det.feed.opened("nats reconnected")
    gap = _next_block(det, int(start + CLOCK_MARGIN_S) + 1, skip=1)
    _reloading(det, gap)
    asyncio.run(det.on_block(_env(gap, gap.hash, seen_s=gap.timestamp + 0.01)))
    assert det.registry.block_number == gap.number and det.head == gap
    assert det.feed.whole  # released by the reload's block

    bus = det.rt.bus = _Keep()  # type: ignore[assignment]
    swaps = _swaps(deployment, 40, seed=8)
    det.feed.opened("nats reconnected")
    gap = _next_block(det, int(clock.now), skip=1)  # mined before the reconnect
    _reloading(det, gap)

    async def main() -> None:
        await det.on_block(_env(gap, gap.hash, seen_s=gap.timestamp + 0.01))
        for k, (tx_hash, tx) in enumerate(swaps):
            if k == 20:
                clock.now += 2.0  # two block times
            await det.on_pending(_env(tx, tx_hash))

    asyncio.run(main())
    first = {h for h, _ in swaps[:20]}
    assert det.feed.held >= 5 and det.feed.whole
    assert not [o for o in bus.opportunities if o.trigger in first]
    assert len(bus.opportunities) >= 5


def test_swaps_seen_while_the_pools_reload_are_booked_after_it() -> None:
    """A pending swap acked while detect reloads its pools (a restarted detect skipped 87-110
    so, unbooked) is booked once the reload is done, so it crowds the backruns it goes ahead
    of, and skipping it holds nothing."""
    det, deployment, _ = detector()
    det.recheck = False
    bus = det.rt.bus = _Keep()  # type: ignore[assignment]
    swaps = _swaps(deployment, 6, seed=8)
    gap = _next_block(det, int(time.time()), skip=1)

    async def meanwhile() -> None:
        for tx_hash, tx in swaps:
            await det.on_pending(_env(tx, tx_hash))

    _reloading(det, gap, meanwhile)
    asyncio.run(det.on_block(_env(gap, gap.hash)))
    assert det.registry.block_number == gap.number and det.skipped == []
    assert set(det.pending.entries) == {h for h, _ in swaps}
    assert all(det.pending.entries[h].seen_block == gap.number for h, _ in swaps)
    assert det.feed.whole and bus.opportunities == []  # booked, not searched


class _Generations:
    """The bus's re-declare count, as `Bus.generation` / `wait_generation` expose it."""

    def __init__(self) -> None:
        self.generation, self.changed = 0, asyncio.Event()

    def bump(self) -> None:
        self.generation += 1
        self.changed.set()

    async def wait_generation(self, seen: int, stop: asyncio.Event) -> None:
        while self.generation == seen and not stop.is_set():
            self.changed.clear()
            await self.changed.wait()


async def test_nats_back_opens_a_hold_that_ends_on_time_with_nothing_else_coming() -> None:
    bus, stop, feed = _Generations(), asyncio.Event(), FeedGap(max_hold_s=0.05)
    watcher = asyncio.create_task(watch_reconnects(bus, stop, feed))  # type: ignore[arg-type]
    await asyncio.sleep(0)
    assert feed.whole
    bus.bump()
    for _ in range(100):
        await asyncio.sleep(0)
    assert feed.reason == "nats reconnected"
    for _ in range(200):  # no block, no pending tx, no hold() call: the watcher ends it
        if feed.whole:
            break
        await asyncio.sleep(0.01)
    assert feed.whole
    stop.set()
    bus.changed.set()
    await watcher
