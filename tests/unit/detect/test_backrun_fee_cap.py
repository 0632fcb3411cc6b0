"""A backrun's fee cap pays its bid: one wei under its victim's tip at up to twice the base fee.

Before, detect capped every backrun at 2 x base + submit.priority_fee, so a victim tipping more
than that got a backrun submit cut below the victim's tip: users tipping between landed ahead
of it and it reverted (bench's backrun flow, several a run once nonce lanes let them out)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from mev_common.envelope import Envelope
from mev_common.messages import Opportunity, PendingTx, decode

from bench.detect_profile import detector
from bench.swaps import pending_swaps

GWEI = 10**9


def test_every_backrun_is_capped_at_two_base_fees_plus_its_victims_tip() -> None:
    found, deployment, bus = detector()
    published: list[Opportunity] = []
    counted = bus.publish

    async def publish(subject: str, message: Any, **kw: Any) -> None:
        if isinstance(message, Opportunity):
            published.append(message)
        await counted(subject, message, **kw)

    bus.publish = publish  # type: ignore[method-assign]
    assert found.rt.settings.submit.priority_fee < 5 * GWEI  # the old cap was below the bid
    base = found.head.base_fee_per_gas if found.head else 0

    async def feed() -> None:
        for tx_hash, payload in pending_swaps(deployment, 60, seed=5):
            tx = decode(PendingTx, payload).model_copy(
                update={"max_priority_fee_per_gas": 5 * GWEI}
            )
            await found.on_pending(Envelope(tx, "mempool", tx_hash, tx_hash, time.time_ns()))

    asyncio.run(feed())
    backruns = [o for o in published if o.strategy == "backrun"]
    assert len(backruns) >= 2  # this seed gives 2 (the rest leave no backrun or are crowded)
    cap = found.rt.settings.strategies.backrun.max_gas_price  # type: ignore[union-attr]
    for o in backruns:
        assert o.victim is not None and o.victim.max_priority_fee_per_gas is not None
        assert o.max_fee_per_gas == min(cap, 2 * base + o.victim.max_priority_fee_per_gas), o.id
