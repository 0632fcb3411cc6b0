"""Turns at submit's gate (services/submit/turns.py): one bundle at a time; among those
waiting, a pending-swap backrun before block bundles that arrived earlier, never before a
trade of ours it stands on; arrival order otherwise. And the lane choice's preference for a
lane whose broadcast is not awaiting its answer (services/submit/lanes.py)."""

from __future__ import annotations

import asyncio

from services.submit.lanes import LaneLoad, choose_lane
from services.submit.turns import Turns, Waiting, next_turn
from tests.unit.submit.gate_world import GWEI, bundle

VICTIM = {"victim_tx_hash": "0x" + "ab" * 32, "victim_priority_fee": 2 * GWEI}


def test_a_backrun_goes_first_unless_it_stands_on_one_waiting_before_it() -> None:
    block1, block2 = Waiting(0, "b1", False), Waiting(1, "b2", False)
    backrun = Waiting(2, "r", True)
    assert next_turn([]) is None
    assert next_turn([block1, block2]) == block1  # arrival order
    assert next_turn([block2, backrun, block1]) == backrun
    assert next_turn([Waiting(3, "r2", True), backrun]) == backrun  # backruns: arrival order
    stacked = Waiting(2, "r", True, frozenset({"b2"}))  # proven on top of our trade b2
    assert next_turn([block1, block2, stacked]) == block1
    assert next_turn([block2, stacked]) == block2
    on_later = Waiting(0, "r0", True, frozenset({"b2"}))  # b2 is no earlier waiter
    assert next_turn([on_later, block2]) == on_later


async def test_the_gate_hands_its_turn_to_the_backrun_then_in_arrival_order() -> None:
    turns, order = Turns(), []
    release = asyncio.Event()

    async def through(b_id: str, **fields: object) -> None:
        async with turns.turn(bundle(id=b_id, opportunity_id=b_id, **fields)):
            order.append(b_id)
            if b_id == "first":
                await release.wait()

    tasks = [asyncio.create_task(through("first"))]
    await asyncio.sleep(0)
    tasks += [
        asyncio.create_task(through(b_id, **fields))
        for b_id, fields in [
            ("block-a", {}),
            ("block-b", {}),
            ("backrun", VICTIM),
            ("stacked", {**VICTIM, "after_bundles": ["block-b"]}),
        ]
    ]
    await asyncio.sleep(0)
    assert order == ["first"]
    release.set()
    await asyncio.gather(*tasks)
    assert order == ["first", "backrun", "block-a", "block-b", "stacked"]
    assert not turns.busy and not turns.waiting


async def test_a_waiter_cancelled_leaves_the_turns_in_order() -> None:
    turns, order = Turns(), []
    release = asyncio.Event()

    async def through(b_id: str) -> None:
        async with turns.turn(bundle(id=b_id, opportunity_id=b_id)):
            order.append(b_id)
            await release.wait()

    first = asyncio.create_task(through("first"))
    await asyncio.sleep(0)
    gone, last = asyncio.create_task(through("gone")), asyncio.create_task(through("last"))
    await asyncio.sleep(0)
    gone.cancel()
    release.set()
    await asyncio.gather(first, gone, last, return_exceptions=True)
    assert order == ["first", "last"] and not turns.busy and not turns.waiting


def test_a_lane_whose_broadcast_awaits_its_answer_is_chosen_last() -> None:
    sending = LaneLoad(0, {}, sending=True)
    assert choose_lane("new", GWEI, frozenset(), [sending, LaneLoad(1, {"old": GWEI})]) == 1
    assert choose_lane("new", GWEI, frozenset(), [sending]) == 0  # the only one: it waits
    # a trade stacked on the one being sent must follow it on its lane
    held = LaneLoad(0, {"base": GWEI}, sending=True)
    assert choose_lane("new", GWEI, frozenset({"base"}), [held, LaneLoad(1, {})]) == 0
