"""A backrun reaches only the node ingest read its victim from; a block trade every node.

A backrun bids exactly its victim's max fee and wins the tie on arrival (docs/DEVNET.md), so on
a node that has no victim yet it is mined before or without it and reverts (gas lost). Ingest
names the endpoint that served it each pending tx (`PendingTx.seen_on`), simulate carries it
(`Bundle.victim_seen_on`), routing refuses a backrun no endpoint of ours is known to hold the
victim of, and the sender hands the trade to that endpoint alone
(tests/integration/test_backrun_fee_order.py shows it on two real anvil nodes).
"""

from __future__ import annotations

import time
from pathlib import Path

import orjson
import pytest
from mev_common.chain.rpc_pool import RpcPool
from mev_common.messages import Bundle, MessageError, decode, encode
from mev_common.settings import RpcEndpoint

from services.submit.routing import victim_node_refusal
from services.submit.sender import Verdict, send_raw, targets
from tests.unit.submit.gate_world import GWEI, bundle
from tests.unit.submit.submit_world import World

VICTIM = {"victim_tx_hash": "0x" + "ab" * 32, "victim_priority_fee": 2 * GWEI}


def backrun(n: int, **fields: object) -> Bundle:
    return bundle(id=f"bundle:o{n}", opportunity_id=f"o{n}", **VICTIM, **fields)


def test_a_block_trade_goes_anywhere_a_backrun_only_where_its_victim_was_seen() -> None:
    two = ["a", "b"]
    assert victim_node_refusal(bundle(), two) is None
    assert victim_node_refusal(backrun(2, victim_seen_on="b"), two) is None
    assert victim_node_refusal(backrun(2, victim_seen_on="c"), two) == (
        "victim seen on endpoint 'c', none of chain.rpc_endpoints"
    )
    assert victim_node_refusal(backrun(2), two) == (
        "victim's endpoint unknown (no victim_seen_on; 2 RPC endpoints): a backrun goes only "
        "to the node that holds its victim"
    )
    assert victim_node_refusal(backrun(2), ["a"]) is None  # the one node ingest reads


def test_the_sender_names_the_victims_endpoint_alone() -> None:
    pool = RpcPool([RpcEndpoint(name=n, url=f"http://{n}:1") for n in ("a", "b", "c")])
    pool.states["b"].down_until = time.monotonic() + 60  # backing off
    assert sorted(targets(pool, None)) == ["a", "c"]  # a block trade: every endpoint up
    assert targets(pool, "c") == ["c"]
    # no other node is known to hold the victim: nowhere rather than elsewhere
    assert (
        targets(pool, "b")
        == "victim's endpoint 'b' is backing off after errors: not sent elsewhere"
    )
    assert targets(pool, "d") == "victim's endpoint 'd' is no RPC endpoint of ours"


async def test_a_backrun_whose_victims_endpoint_is_down_is_sent_nowhere() -> None:
    """REJECTED without a call (nothing is listening on these ports): the submitter gives the
    nonce back and books it not_sent, as for a refusal by every node."""
    pool = RpcPool([RpcEndpoint(name=n, url=f"http://127.0.0.1:9/{n}") for n in ("a", "b")])
    pool.states["b"].down_until = time.monotonic() + 60
    result = await send_raw(pool, b"\x02", only="b")
    assert result.verdict is Verdict.REJECTED and result.accepted_by == []
    assert (
        result.reason == "b: victim's endpoint 'b' is backing off after errors: not sent elsewhere"
    )


def test_where_the_victim_was_seen_travels_only_with_a_victim() -> None:
    sent = backrun(2, victim_seen_on="anvil")
    assert decode(Bundle, encode(sent)).victim_seen_on == "anvil"
    assert b"victim_seen_on" not in encode(bundle())  # unset: not on the wire
    forged = orjson.loads(encode(bundle()))
    with pytest.raises(MessageError, match="victim_seen_on needs victim_tx_hash"):
        decode(Bundle, orjson.dumps({**forged, "victim_seen_on": "anvil"}))
    with pytest.raises(MessageError, match="at most 64 characters"):
        decode(Bundle, orjson.dumps({**orjson.loads(encode(sent)), "victim_seen_on": "x" * 65}))


def two_endpoints(tmp: Path) -> World:
    world = World(tmp)
    chain = world.settings.chain
    endpoints = [*chain.rpc_endpoints, RpcEndpoint(name="b", url="http://y")]
    world.settings = world.settings.model_copy(
        update={"chain": chain.model_copy(update={"rpc_endpoints": endpoints})}
    )
    world.submitter = world.new_submitter()
    return world


async def test_the_submitter_sends_a_backrun_to_its_victims_endpoint(tmp_path: Path) -> None:
    world = two_endpoints(tmp_path)
    sub = await world.start()
    await sub.handle(backrun(2), "t", 1)  # two endpoints, the victim's unknown: not signed
    assert world.chain.sent == [] and sub.nonces.next_nonce == 0
    assert world.outcome("bundle:o2").reason.startswith("victim's endpoint unknown")
    await sub.handle(backrun(3, victim_seen_on="b"), "t", 1)
    assert [tx["only"] for tx in world.chain.sent] == ["b"]


async def test_the_submitter_sends_a_block_trade_everywhere(tmp_path: Path) -> None:
    world = two_endpoints(tmp_path)
    sub = await world.start()
    await sub.handle(bundle(), "t", 1)
    assert [tx["only"] for tx in world.chain.sent] == [None]
