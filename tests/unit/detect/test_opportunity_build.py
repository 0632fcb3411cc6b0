"""Detect builds its Opportunity and Withdrawal messages without validating them (the hot path):
each one it builds, backrun (V2) or block-triggered (V2 and V3 hops), must equal what pydantic
makes of its own encoding, so skipping validation skips nothing."""

from __future__ import annotations

import asyncio

import orjson
from mev_common.messages import Opportunity, Withdrawal, encode

from bench.detect_profile import _Bus, detector, feed
from bench.swaps import pending_swaps
from services.detect.opportunity import to_opportunity
from services.detect.search import search


def assert_valid(opportunity: Opportunity) -> None:
    again = Opportunity.model_validate(orjson.loads(encode(opportunity)))
    assert again == opportunity
    assert encode(again) == encode(opportunity)


class _Keep(_Bus):
    def __init__(self) -> None:
        super().__init__()
        self.messages: list[Opportunity] = []
        self.withdrawals: list[Withdrawal] = []

    async def publish(self, subject: str, message: object, **_: object) -> None:
        if isinstance(message, Opportunity):
            self.messages.append(message)
        if isinstance(message, Withdrawal):
            self.withdrawals.append(message)


def test_backrun_opportunities_validate_unchanged() -> None:
    found, deployment, _ = detector()
    bus = found.rt.bus = _Keep()
    asyncio.run(feed(found, pending_swaps(deployment, 200, seed=3)))
    assert len(bus.messages) >= 100
    for opportunity in bus.messages:
        assert opportunity.victim is not None and opportunity.strategy == "backrun"
        assert_valid(opportunity)
    assert len(bus.withdrawals) >= 100  # later swaps through the same pools
    for withdrawal in bus.withdrawals:
        again = Withdrawal.model_validate(orjson.loads(encode(withdrawal)))
        assert again == withdrawal and encode(again) == encode(withdrawal)


def test_block_opportunities_with_v3_hops_validate_unchanged() -> None:
    found, _, _ = detector()
    assert found.head is not None
    pools = found.registry.all_pools
    results = search(found.index.cycles, pools, found.strategies, 10**9)
    opportunities = [to_opportunity(f, pools, found.head, found.head.hash) for f in results]
    assert opportunities
    assert any(hop.kind == "v3" for o in opportunities for hop in o.hops)
    for opportunity in opportunities:
        assert_valid(opportunity)
