"""Nonce lanes on real anvil, real NATS and a real submit process (mining by hand).

A block trade of ours bidding 1 gwei is unsettled; a second trade through other pools bids
3 gwei. On one key it would take the next nonce and land behind the cheaper one (and behind
every tx bidding between), so submit refused it ("our unsettled trade ... bids ... <"). With
`keys.lanes: 2` it goes out on lane 1 (a trader key the owner authorized with setTrader), and
both land in the next block, each profit booked to the wei.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from mev_common.bus import Bus
from mev_common.settings import KeySettings
from mev_ops.devnet.keys import load_or_create_key

from tests.conftest import NatsEndpoint
from tests.integration.devnet.conftest import Devnet
from tests.support.submit_world import (
    GWEI,
    WETH,
    arbitrage_bundle,
    config_for,
    health,
    ledger_rows,
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


devnet = module_devnet("lanes-devnet")


def add_lane(devnet: Devnet, lane: int) -> str:
    """What `devnet up` does for a lane: its key beside keys.path (0600), gas money, and the
    owner's setTrader. Returns the lane's address."""
    path = Path(KeySettings(path=str(devnet.key_path)).lane_path(lane))
    account = load_or_create_key(path)
    assert path.stat().st_mode & 0o777 == 0o600
    funder = devnet.user(3)
    fund = funder.send(account.address, b"", 21_000, value=10 * WETH)
    allow = devnet.executor.encode_abi("setTrader", [account.address, True])
    authorize = devnet.bot().send(devnet.executor.address, allow, 100_000)
    mine(devnet)
    for tx in (fund, authorize):
        assert devnet.w3.eth.get_transaction_receipt(tx)["status"] == 1
    return str(account.address)


async def test_a_backrun_bidding_above_our_unsettled_trade_goes_out_on_another_lane(
    devnet: Devnet, nats_server: NatsEndpoint, bus: Bus, tmp_path: Path
) -> None:
    owner = devnet.deployment["bot"]
    lane1 = add_lane(devnet, 1)
    config = config_for(devnet, nats_server.url, tmp_path, lanes=2)
    db = tmp_path / "mev-bot.db"
    proc = start_submit(config, tmp_path)
    try:
        await wait_active(proc)
        lanes = health(proc)["checks"]["nonces"]["detail"]
        assert [lane["in_flight"] for lane in lanes] == [0, 0]
        executor = devnet.executor.address
        cheap, cheap_profit = arbitrage_bundle(
            devnet, "block-trade", via="USDC", max_priority_fee_per_gas=GWEI
        )
        rich, rich_profit = arbitrage_bundle(
            devnet, "backrun", via="DAI", max_priority_fee_per_gas=3 * GWEI
        )
        # rich's set-up mined a block (DAI pools only): cheap is as proven at the new head,
        # which submit requires of a block trade
        cheap = cheap.model_copy(
            update={"block_number": rich.block_number, "deadline_block": rich.deadline_block}
        )
        before = devnet.balance("WETH", executor)
        await publish_bundle(bus, cheap)
        await wait_for(lambda: tx_states(db, cheap.id) == [("trade", "sent")], what="cheap sent")
        await publish_bundle(bus, rich)  # before: refused, the cheap trade unsettled
        await wait_for(lambda: tx_states(db, rich.id) == [("trade", "sent")], what="rich sent")
        senders = dict(
            ledger_rows(db, "SELECT bundle_id, sender FROM txs WHERE kind = 'trade'")  # type: ignore[arg-type]
        )
        assert senders == {cheap.id: owner, rich.id: lane1}
        mined_at = mine(devnet)
        outcomes = {b.id: (await outcome_of(bus, b.id))[0] for b in (cheap, rich)}
        assert {o.status for o in outcomes.values()} == {"included"}
        assert {o.block_number for o in outcomes.values()} == {mined_at}
        assert outcomes[cheap.id].realized_profit == cheap_profit
        assert outcomes[rich.id].realized_profit == rich_profit
        assert devnet.balance("WETH", executor) - before == cheap_profit + rich_profit
        receipts = {
            k: devnet.w3.eth.get_transaction_receipt(o.tx_hash) for k, o in outcomes.items()
        }
        assert receipts[cheap.id]["from"] == owner
        assert receipts[rich.id]["from"] == lane1
        # fee order: the richer trade first, on its own nonce sequence (lane 1's first tx)
        assert receipts[rich.id]["transactionIndex"] < receipts[cheap.id]["transactionIndex"]
        assert devnet.w3.eth.get_transaction(outcomes[rich.id].tx_hash)["nonce"] == 0
        await wait_for(
            lambda: (
                [lane["in_flight"] for lane in health(proc)["checks"]["nonces"]["detail"]] == [0, 0]
            ),
            what="both lanes settled",
        )
    finally:
        proc.stop()
