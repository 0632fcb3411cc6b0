"""A trade is signed and broadcast while an earlier broadcast of ours still awaits its answer,
on real anvil, real NATS and a real submit process with two nonce lanes; every bundle is booked
exactly once and the ledger matches the chain to the wei.

The only RPC endpoint is a relay to anvil (`HoldingRelay`) that holds the first
eth_sendRawTransaction's answer until a second one arrives (3 s at most, under the RPC
timeout). Before submit awaited the answer after the bundle's turn (services/submit/turns.py),
the second bundle was handled only after the first's answer: the relay gave up holding and the
second send came after it. A third bundle through the first one's pools is refused while that
trade is unsettled. A trade withdrawn by detect while its broadcast is held is cancelled only
once answered: refused, it leaves nothing on its nonce, which the next trade takes. A SIGTERM
while a broadcast is held finishes that trade and hands the bundles still before the gate back
unsigned, to the next submit. A nonce resync that reads a lagging node's count (the relay's
`stale`) keeps the next nonce past the one our own receipt shows mined in a block that node
has not reached.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from pathlib import Path

import pytest
from mev_common import subjects
from mev_common.bus import Bus
from mev_common.control import (
    EMERGENCY_STOP,
    NONCE_RESET,
    ack_key,
    control_key,
    ensure_control_bucket,
    parse_ack,
)
from mev_common.messages import Bundle, Withdrawal

from tests.conftest import NatsEndpoint
from tests.integration.devnet.conftest import Devnet
from tests.support.held_gate import (
    handed_back_then_landed,
    one_sent_two_pulled,
    relay_config,
    relay_fixture,
    three_bundles,
)
from tests.support.holding_relay import HoldingRelay
from tests.support.submit_world import (
    CHAIN,
    GWEI,
    add_lane,
    arbitrage_bundle,
    health,
    mine,
    module_devnet,
    outcome_of,
    publish_bundle,
    start_submit,
    tx_states,
    wait_active,
    wait_for,
)

pytestmark = pytest.mark.timeout(120)
devnet = module_devnet("overlap-devnet")

relay = relay_fixture  # the relay in front of `devnet`, holding the first broadcast


async def lands(devnet: Devnet, bus: Bus, db: Path, bundle: Bundle, profit: int) -> None:
    """`bundle`'s trade is on the wire; mined, it is booked included with exactly `profit`."""
    await wait_for(lambda: tx_states(db, bundle.id) == [("trade", "sent")], what=bundle.id)
    mined_at = mine(devnet)
    [landed] = await outcome_of(bus, bundle.id)
    assert (landed.status, landed.block_number, landed.realized_profit) == (
        "included",
        mined_at,
        profit,
    )


async def test_a_trade_is_sent_while_the_one_before_awaits_its_answer_and_all_are_booked(
    devnet: Devnet, nats_server: NatsEndpoint, bus: Bus, relay: HoldingRelay, tmp_path: Path
) -> None:
    owner = devnet.deployment["bot"]
    lane1 = add_lane(devnet, 1)
    config = relay_config(tmp_path, nats_server.url, devnet, relay, lanes=2)
    db = tmp_path / "mev-bot.db"
    first, first_profit = arbitrage_bundle(devnet, "first", via="USDC")
    second, second_profit = arbitrage_bundle(devnet, "second", via="DAI")
    at = {"block_number": second.block_number, "deadline_block": second.deadline_block}
    first = first.model_copy(update=at)  # as proven at the head both are sent at
    again = first.model_copy(update={"id": "again", "opportunity_id": "opp-again"})
    assert first.max_priority_fee_per_gas == second.max_priority_fee_per_gas == GWEI
    counts = [devnet.w3.eth.get_transaction_count(a) for a in (owner, lane1)]
    executor = devnet.executor.address
    before = devnet.balance("WETH", executor)
    proc = start_submit(config, tmp_path)
    try:
        await wait_active(proc)
        await publish_bundle(bus, first)
        await wait_for(lambda: ("send", 0) in relay.events, what="first broadcast")
        await publish_bundle(bus, second)
        await publish_bundle(bus, again)
        await wait_for(lambda: ("answer", 1) in relay.events, what="both answered")
        await wait_for(lambda: ("answer", 0) in relay.events, what="both answered")
        # the second went out while the first's answer was held back
        assert relay.events.index(("send", 1)) < relay.events.index(("answer", 0))
        for b in (first, second):
            await wait_for(lambda b=b: tx_states(db, b.id) == [("trade", "sent")], what=b.id)
        mined_at = mine(devnet)
        outcomes = {b.id: await outcome_of(bus, b.id) for b in (first, second, again)}
        assert {k: [(o.status, o.block_number) for o in v] for k, v in outcomes.items()} == {
            first.id: [("included", mined_at)],
            second.id: [("included", mined_at)],
            again.id: [("not_sent", None)],  # its pools are in our unsettled first trade
        }
        assert "in our unsettled trade" in outcomes[again.id][0].reason
        assert outcomes[first.id][0].realized_profit == first_profit
        assert outcomes[second.id][0].realized_profit == second_profit
        assert devnet.balance("WETH", executor) - before == first_profit + second_profit
        with sqlite3.connect(db) as conn:
            booked = conn.execute(
                "SELECT b.id, o.status FROM bundles b LEFT JOIN outcomes o ON o.bundle_id = b.id "
                "ORDER BY b.id"
            ).fetchall()
            txs = conn.execute("SELECT bundle_id, sender, nonce, state FROM txs").fetchall()
        assert booked == [("again", "not_sent"), ("first", "included"), ("second", "included")]
        assert sorted(txs) == [
            ("first", owner, counts[0], "mined"),
            ("second", lane1, counts[1], "mined"),
        ]
        after = [devnet.w3.eth.get_transaction_count(a) for a in (owner, lane1)]
        assert after == [counts[0] + 1, counts[1] + 1]  # one nonce each, none skipped
        receipts = [devnet.w3.eth.get_transaction_receipt(o[0].tx_hash) for o in outcomes.values()
                    if o[0].tx_hash]  # fmt: skip
        assert sorted(r["from"] for r in receipts) == sorted([owner, lane1])
        assert [e for e in relay.events if e[0] == "send"] == [("send", 0), ("send", 1)]
    finally:
        proc.stop()


async def test_a_trade_withdrawn_while_its_broadcast_is_held_then_refused_leaves_no_cancel(
    devnet: Devnet, nats_server: NatsEndpoint, bus: Bus, relay: HoldingRelay, tmp_path: Path
) -> None:
    """Before, the cancel went out during the hold (on the trade's nonce, pooled by anvil) and
    the refused trade gave that nonce back: the next trade met our cancel there, and the
    cancel's row never settled."""
    relay.refuse_first = True
    owner = devnet.deployment["bot"]
    config = relay_config(tmp_path, nats_server.url, devnet, relay, lanes=1)
    db = tmp_path / "mev-bot.db"
    doomed, _ = arbitrage_bundle(devnet, "bundle:doomed-held", via="USDC")
    doomed = doomed.model_copy(update={"opportunity_id": "doomed-held"})  # as simulate names it
    count = devnet.w3.eth.get_transaction_count(owner)
    proc = start_submit(config, tmp_path)
    try:
        await wait_active(proc)
        await publish_bundle(bus, doomed)
        await wait_for(lambda: ("send", 0) in relay.events, what="the held broadcast")
        withdrawal = Withdrawal(opportunity_id=doomed.opportunity_id, chain_id=CHAIN,
                                reason="test: a swap goes first")  # fmt: skip
        await bus.publish_core(subjects.withdrawals(CHAIN), withdrawal)
        [refused] = await outcome_of(bus, doomed.id)
        assert refused.status == "not_sent" and "replacement transaction underpriced" in (
            refused.reason or ""
        )
        assert tx_states(db, doomed.id) == [("trade", "rejected")]  # no cancel signed
        log = (tmp_path / "submit.log").read_text()
        assert "cancel waits for its trade's broadcast answer" in log  # withdrawn while held
        following, profit = arbitrage_bundle(devnet, "after-held", via="DAI")
        await publish_bundle(bus, following)
        await lands(devnet, bus, db, following, profit)
        with sqlite3.connect(db) as conn:
            txs = conn.execute("SELECT bundle_id, kind, nonce, state FROM txs").fetchall()
        assert sorted(txs) == [
            (following.id, "trade", count, "mined"),  # the refused trade's nonce, reused
            (doomed.id, "trade", count, "rejected"),
        ]
        assert devnet.w3.eth.get_transaction_count(owner) == count + 1
        assert [e for e in relay.events if e[0] == "send"] == [("send", 0), ("send", 1)]
    finally:
        proc.stop()


async def test_a_sigterm_hands_back_the_bundles_not_yet_gated_and_finishes_the_one_sent(
    devnet: Devnet, nats_server: NatsEndpoint, bus: Bus, relay: HoldingRelay, tmp_path: Path
) -> None:
    """SIGTERM while a trade's broadcast awaits its answer and two more bundles wait for the
    gate: the trade on the wire finishes and is tracked, the two are handed back (nak) unsigned
    and the next submit gates them. Before, the stopping process gated, signed and sent both."""
    config = relay_config(tmp_path, nats_server.url, devnet, relay, lanes=1)
    await handed_back_then_landed(devnet, bus, relay, config, "term")


async def test_a_resync_on_a_lagging_nodes_count_never_goes_below_our_mined_nonce(
    devnet: Devnet, nats_server: NatsEndpoint, bus: Bus, relay: HoldingRelay, tmp_path: Path
) -> None:
    """Our trade mined on nonce N; a nonce resync then reads a node that lags (it counts N, as
    a node that has not seen the block of a backrun sent to its victim's node alone). Before,
    the next nonce went back to N and the next trade was refused ("nonce too low"); our own
    receipt says N is used: the next trade takes N + 1 and lands."""
    relay.second.set()  # no broadcast held here
    owner = devnet.deployment["bot"]
    config = relay_config(tmp_path, nats_server.url, devnet, relay, lanes=1)
    db = tmp_path / "mev-bot.db"
    count = devnet.w3.eth.get_transaction_count(owner)
    proc = start_submit(config, tmp_path)
    try:
        await wait_active(proc)
        first, _ = arbitrage_bundle(devnet, "lag-first", via="USDC")
        await publish_bundle(bus, first)
        await wait_for(lambda: tx_states(db, first.id) == [("trade", "sent")], what="first")
        mined_at = mine(devnet)
        [landed] = await outcome_of(bus, first.id)
        assert (landed.status, landed.block_number) == ("included", mined_at)
        log = tmp_path / "submit.log"
        synced = log.read_text().count('"msg":"nonces synced"')
        # a node one block behind: our mined trade's block not reached, the trade not counted
        relay.stale = {"eth_blockNumber": hex(mined_at - 1), "eth_getTransactionCount": hex(count)}
        kv = await ensure_control_bucket(bus.js)
        await kv.put(control_key(CHAIN, NONCE_RESET), b"lagging-node")
        await wait_for(
            lambda: log.read_text().count('"msg":"nonces synced"') > synced, what="the resync"
        )
        relay.stale = {}
        assert health(proc)["checks"]["nonces"]["detail"]["next"] == count + 1
        second, second_profit = arbitrage_bundle(devnet, "lag-second", via="DAI")
        await publish_bundle(bus, second)
        await lands(devnet, bus, db, second, second_profit)
        with sqlite3.connect(db) as conn:
            txs = conn.execute("SELECT bundle_id, nonce, state FROM txs").fetchall()
        assert sorted(txs, key=lambda t: t[1]) == [
            (first.id, count, "mined"),
            (second.id, count + 1, "mined"),
        ]
        assert devnet.w3.eth.get_transaction_count(owner) == count + 2
    finally:
        proc.stop()


async def test_an_emergency_stop_refuses_the_bundles_not_yet_gated_and_finishes_the_one_sent(
    devnet: Devnet, nats_server: NatsEndpoint, bus: Bus, relay: HoldingRelay, tmp_path: Path
) -> None:
    """`mev-bot --emergency-stop` while a trade's broadcast awaits its answer and two more
    bundles wait for the gate: the trade on the wire is tracked to its end, the two are refused
    unsigned (booked not_sent: the operator stopped trading, they are stale by the resume)."""
    owner = devnet.deployment["bot"]
    config = relay_config(tmp_path, nats_server.url, devnet, relay, lanes=1)
    db = tmp_path / "mev-bot.db"
    built = three_bundles(devnet, "estop")
    count = devnet.w3.eth.get_transaction_count(owner)
    kv = await ensure_control_bucket(bus.js)
    stop_key = control_key(CHAIN, EMERGENCY_STOP)
    proc = start_submit(config, tmp_path)
    try:
        await one_sent_two_pulled(proc, config, bus, relay, built)
        revision = await kv.put(stop_key, b"1")
        ack = ack_key(CHAIN, EMERGENCY_STOP, "submit-test")

        async def acked() -> bool:
            with contextlib.suppress(Exception):
                return parse_ack((await kv.get(ack)).value)[0] >= revision
            return False

        for _ in range(100):
            if await acked():
                break
            await asyncio.sleep(0.02)
        assert await acked()
        relay.second.set()  # the held answer comes back after the stop
        outcomes = {b.id: await outcome_of(bus, b.id) for b, _ in built[1:]}
        assert {k: [(o.status, o.reason) for o in v] for k, v in outcomes.items()} == {
            b.id: [("not_sent", "emergency stop active")] for b, _ in built[1:]
        }
        await lands(devnet, bus, db, *built[0])  # tracked to its end
        assert relay.sends() == [("send", 0)]
        assert devnet.w3.eth.get_transaction_count(owner) == count + 1
    finally:
        await kv.put(stop_key, b"0")
        proc.stop()
