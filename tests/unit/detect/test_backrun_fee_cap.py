"""A backrun's fee cap pays its bid: the victim's own max fee where the trade affords it there.

Before, detect capped every backrun at 2 x base + submit.priority_fee, so a victim tipping more
than that got a backrun submit cut below the victim's tip: users tipping between landed ahead
of it and it reverted (bench's backrun flow, several a run once nonce lanes let them out). Then
at 2 x base + the victim's tip: under the victim's max fee, so on fee-ordered anvil a later user
bidding the victim's fees landed between the victim and ours (tests/integration/
test_backrun_fee_order.py). Now a backrun is capped at its victim's max fee when it pays its
minimum there with RAISE_GAS_FACTOR x its gas (simulate's budget), else as before, and never
above the victim's max fee (anvil would mine it first)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from mev_common.envelope import Envelope
from mev_common.messages import Opportunity, PendingTx, decode

from bench.detect_profile import detector
from bench.swaps import pending_swaps
from services.detect.pricing import RAISE_GAS_FACTOR

GWEI = 10**9
TIP = 5 * GWEI


def backruns(max_fee: int, seed: int = 5) -> tuple[list[Opportunity], int, int, int]:
    """The backruns detect publishes for 60 swaps tipping TIP with this max fee; with the
    head's base fee, the strategy's fee cap and minimum."""
    found, deployment, bus = detector()
    published: list[Opportunity] = []
    counted = bus.publish

    async def publish(subject: str, message: Any, **kw: Any) -> None:
        if isinstance(message, Opportunity):
            published.append(message)
        await counted(subject, message, **kw)

    bus.publish = publish  # type: ignore[method-assign]
    assert found.rt.settings.submit.priority_fee < TIP  # the old cap was below the bid
    base = found.head.base_fee_per_gas if found.head else 0

    async def feed() -> None:
        for tx_hash, payload in pending_swaps(deployment, 60, seed=seed):
            tx = decode(PendingTx, payload).model_copy(
                update={"max_priority_fee_per_gas": TIP, "max_fee_per_gas": max_fee}
            )
            await found.on_pending(Envelope(tx, "mempool", tx_hash, tx_hash, time.time_ns()))

    asyncio.run(feed())
    strategy = found.rt.settings.strategies.backrun
    assert strategy is not None
    out = [o for o in published if o.strategy == "backrun"]
    assert len(out) >= 2  # this seed gives 2 (the rest leave no backrun or are crowded)
    return out, base, strategy.max_gas_price, max(strategy.min_profit, 1)


def test_a_backrun_bids_its_victims_max_fee_where_it_affords_it() -> None:
    """The flow's users: max fee = tip + 1e6 wei (here under 2 x base + tip: base 1 gwei)."""
    victim_max = TIP + 10**6
    found, base, cap, _ = backruns(victim_max)
    assert 2 * base + TIP > victim_max  # the old cap would bid above the victim: anvil first
    for o in found:
        assert o.max_fee_per_gas == min(cap, victim_max), o.id  # exactly the victim's


def test_a_backrun_that_cannot_afford_its_victims_max_fee_keeps_the_old_cap() -> None:
    """A victim capping at 100 gwei: raised only where the trade pays its minimum there."""
    victim_max = 100 * GWEI
    found, base, cap, least = backruns(victim_max)
    raised = min(cap, victim_max)
    kinds = set()
    for o in found:
        pays = o.expected_profit - RAISE_GAS_FACTOR * o.gas_estimate * raised >= least
        kinds.add(pays)
        assert o.max_fee_per_gas == (raised if pays else min(cap, 2 * base + TIP)), o.id
        assert o.net_profit_wei == o.expected_profit - o.gas_estimate * o.max_fee_per_gas
    assert kinds == {True, False}, kinds  # this seed has both


def test_a_backrun_is_never_capped_above_its_victims_max_fee() -> None:
    victim_max = TIP + 3  # below 2 x base + tip: the old cap was above it
    found, base, cap, _ = backruns(victim_max)
    assert min(cap, 2 * base + TIP) > victim_max
    assert all(o.max_fee_per_gas == victim_max for o in found)
