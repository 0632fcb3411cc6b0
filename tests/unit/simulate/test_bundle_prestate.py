"""The reference check's prestate of a backrun bundle: the backrun is traced on the state its
victim leaves, not on the block's (traced alone it took another path, left slots out, and
py-evm reverted bundles that landed: a false halt of the backrun strategy)."""

from __future__ import annotations

import asyncio
from typing import Any

from services.simulate.engine import BlockEnvSpec, TxSpec
from services.simulate.reference import fetch_bundle_prestate, merge_overrides

POOL = "0x" + "11" * 20
TOKEN = "0x" + "22" * 20
USER = "0x" + "33" * 20
EXECUTOR = "0x" + "44" * 20


def _slot(n: int) -> str:
    return "0x" + f"{n:064x}"


class ScriptedNode:
    """Answers debug_traceCall as a node would for these two txs, recording each request."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []

    async def __call__(self, method: str, params: list[Any]) -> Any:
        assert method == "debug_traceCall"
        call, block, options = params
        assert block == hex(100)
        self.calls.append((call["from"], options))
        if call["from"] == USER and options.get("tracerConfig") == {"diffMode": True}:
            return {
                "pre": {},
                "post": {
                    POOL: {"storage": {_slot(8): _slot(5)}},
                    USER: {"balance": "0x10", "nonce": 4},
                },
            }
        if call["from"] == USER:
            return {POOL: {"storage": {_slot(8): _slot(9)}}, USER: {"balance": "0x20", "nonce": 3}}
        # the backrun: on the victim's state it reaches a slot it does not reach alone
        reached = {_slot(8): _slot(5)} | (
            {_slot(9): _slot(7)} if "stateOverrides" in options else {}
        )
        return {POOL: {"storage": reached}, TOKEN: {"storage": {_slot(1): _slot(2)}}}


def test_the_backrun_is_traced_on_what_its_victim_leaves() -> None:
    node = ScriptedNode()
    env = BlockEnvSpec(31337, 101, 1_700_000_001, 7, 30_000_000)
    victim, backrun = TxSpec(USER, POOL, b"\x01"), TxSpec(EXECUTOR, POOL, b"\x02")
    prestate = asyncio.run(fetch_bundle_prestate(node, [victim, backrun], 100, env))
    # victim traced, its post-state traced once (diffMode), then the backrun on it
    assert [(sender, "stateOverrides" in o, "tracerConfig" in o) for sender, o in node.calls] == [
        (USER, False, False),
        (USER, False, True),
        (EXECUTOR, True, False),
    ]
    overrides = node.calls[2][1]["stateOverrides"]
    assert overrides == {
        "0x1111111111111111111111111111111111111111": {"stateDiff": {_slot(8): _slot(5)}},
        "0x3333333333333333333333333333333333333333": {"balance": "0x10", "nonce": "0x4"},
    }
    assert node.calls[2][1]["blockOverrides"] == {"number": hex(101), "time": hex(1_700_000_001)}
    pool = prestate["0x1111111111111111111111111111111111111111"]
    # the slot the victim wrote keeps its value before the bundle; the one only the backrun
    # after the victim reads is in
    assert pool.storage == {8: 9, 9: 7}
    assert prestate["0x3333333333333333333333333333333333333333"].nonce == 3


def test_a_single_tx_bundle_is_one_plain_trace() -> None:
    node = ScriptedNode()
    env = BlockEnvSpec(31337, 101, 1_700_000_001, 7, 30_000_000)
    asyncio.run(fetch_bundle_prestate(node, [TxSpec(EXECUTOR, POOL, b"\x02")], 100, env))
    assert len(node.calls) == 1 and "stateOverrides" not in node.calls[0][1]


def test_later_writes_win_in_the_overrides() -> None:
    into: dict[str, dict[str, Any]] = {}
    merge_overrides(into, {POOL: {"storage": {_slot(1): _slot(1)}, "balance": "0x1"}})
    merge_overrides(into, {POOL: {"storage": {_slot(1): _slot(2), _slot(3): _slot(4)}}})
    assert into == {
        "0x1111111111111111111111111111111111111111": {
            "balance": "0x1",
            "stateDiff": {_slot(1): _slot(2), _slot(3): _slot(4)},
        }
    }
