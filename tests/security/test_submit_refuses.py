"""Submit refuses what it did not prove, whoever published it (issue 11), on a real anvil with
the real devnet deployment, a real nats-server and real submit processes.

Bundles are published on the bundles subject as simulate would (a compromised simulate): each
forgery is refused with its exact reason and no tx is signed (our nonce on chain unchanged, no
tx row in the ledger); 100 forged withdrawals cause at most the capped cancels; three trades
that pass the gate but revert on chain trip the emergency stop, the fourth is not sent, the
trip survives a restart and holds until the operator writes the emergency-stop key; a key that
does not own the executor makes submit exit 2 naming both addresses.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from mev_common import subjects
from mev_common.bus import Bus
from mev_common.chain.pools import UNISWAP_V2_INIT_CODE_HASH, v2_pair_address
from mev_common.control import control_key, ensure_control_bucket
from mev_common.executor import ExecHop, decode_execute, encode_execute
from mev_common.messages import Bundle, Withdrawal, bundle_id_for, encode

from tests.conftest import NatsEndpoint
from tests.integration.devnet.conftest import Devnet
from tests.support.stack import REPO
from tests.support.submit_world import (
    CHAIN,
    GWEI,
    arbitrage_bundle,
    bot_nonce,
    config_for,
    health,
    ledger_rows,
    manual_mining_devnet,
    mine,
    outcome_of,
    publish_bundle,
    start_submit,
    tx_states,
    wait_active,
    wait_for,
)

pytestmark = pytest.mark.timeout(180)
MEV_BOT = str(Path(sys.executable).parent / "mev-bot")
MAX_GAS_PRICE = 50 * GWEI  # strategies.*.max_gas_price of the test config


@pytest.fixture(scope="module")
def devnet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Devnet]:
    yield from manual_mining_devnet(tmp_path_factory.mktemp("security-devnet"))


def reencoded(bundle: Bundle, hops: list[tuple[str, str, str, int]] | None = None,
              min_profit: int | None = None) -> str:  # fmt: skip
    """The bundle's calldata with other hops or another minProfit (a forger's edit)."""
    call = decode_execute(bytes.fromhex(bundle.data[2:]))
    new_hops = [ExecHop(*h) for h in hops] if hops else list(call.hops)
    profit = call.min_profit if min_profit is None else min_profit
    return "0x" + encode_execute(new_hops, call.amount_in, profit, call.flash).hex()


def tx_count(db: Path) -> int:
    return int(ledger_rows(db, "SELECT COUNT(*) FROM txs")[0][0]) if db.exists() else 0


async def test_forged_bundles_are_refused_with_their_reason_and_nothing_is_signed(
    devnet: Devnet, nats_server: NatsEndpoint, bus: Bus, tmp_path: Path
) -> None:
    config = config_for(devnet, nats_server.url, tmp_path)
    db = tmp_path / "mev-bot.db"
    proc = start_submit(config, tmp_path)
    try:
        await wait_active(proc)
        good, _ = arbitrage_bundle(devnet, "forge-base")
        head = int(devnet.w3.eth.block_number)
        tokens = devnet.deployment["tokens"]
        weth, usdc = tokens["WETH"]["address"], tokens["USDC"]["address"]
        pair_b = devnet.pair("B", "USDC", "WETH")["address"]
        attacker = devnet.router("A").address  # any contract that is not a pair
        stranger = "0x" + "99" * 20  # a factory nobody configured
        unknown_pair = v2_pair_address(stranger, weth, usdc, UNISWAP_V2_INIT_CODE_HASH)
        back = (pair_b, usdc, weth, 30)
        not_a_pair = f"is not the {weth}/{usdc} pair of any configured factory"
        forged: dict[str, tuple[dict[str, Any], str]] = {
            "attacker-pair": (
                {"data": reencoded(good, [(attacker, weth, usdc, 30), back])},
                f"hop 0 pool {attacker} {not_a_pair}",
            ),
            "unknown-factory": (
                {"data": reencoded(good, [(unknown_pair, weth, usdc, 30), back])},
                f"hop 0 pool {unknown_pair} {not_a_pair}",
            ),
            "value": ({"value": 1}, "bundle.value is 1 wei: an executor call never carries value"),
            "gas-over-cap": (
                {"gas_limit": 600_001},
                "gas limit 600001 above strategies.cross_dex_arbitrage.gas_limit 600000",
            ),
            "far-deadline": (
                {"deadline_block": head + 10**6},
                f"deadline block {head + 10**6} is more than detect.deadline_blocks (2) past "
                f"the chain head {head}",
            ),
            "profit-token": (
                {"profit_token": usdc},
                f"profit token {usdc} is not allowlisted (submit.profit_tokens)",
            ),
            "claims": (
                {"data": reencoded(good, min_profit=good.min_profit - 1)},
                f"calldata minProfit {good.min_profit - 1} is not the bundle's {good.min_profit}",
            ),
            "victim-sender": (  # a stranger's "victim" to make submit cancel our trade later
                {"victim_sender": stranger, "victim_nonce": 0},
                "victim_sender and victim_nonce come together, and only with victim_tx_hash",
            ),
        }  # fmt: skip
        nonce = bot_nonce(devnet)
        bundles = {
            name: good.model_copy(update={"id": f"forge-{name}", **fields})
            for name, (fields, _) in forged.items()
        }
        for b in bundles.values():
            await publish_bundle(bus, b)
        for name, (_, reason) in forged.items():
            [outcome] = await outcome_of(bus, bundles[name].id)
            assert (outcome.status, outcome.reason) == ("not_sent", reason), name
        assert bot_nonce(devnet) == nonce
        assert bot_nonce(devnet, "latest") == nonce
        assert tx_count(db) == 0
        assert ledger_rows(db, "SELECT COUNT(*) FROM outcomes WHERE status = 'not_sent'") == [
            (len(forged),)
        ]
        assert proc.logs().count('"msg":"tx sent"') == 0
    finally:
        proc.stop()


async def test_a_hundred_withdrawals_cause_one_cancel_under_max_gas_price(
    devnet: Devnet, nats_server: NatsEndpoint, bus: Bus, tmp_path: Path
) -> None:
    config = config_for(devnet, nats_server.url, tmp_path)
    db = tmp_path / "mev-bot.db"
    proc = start_submit(config, tmp_path)
    try:
        await wait_active(proc)
        made, _ = arbitrage_bundle(devnet, "withdrawn-1")
        bundle = made.model_copy(update={"id": bundle_id_for(made.opportunity_id)})  # simulate's id
        nonce = bot_nonce(devnet, "latest")
        await publish_bundle(bus, bundle)
        await wait_for(lambda: tx_states(db, bundle.id) == [("trade", "sent")], what="trade sent")
        withdrawal = encode(
            Withdrawal(opportunity_id=bundle.opportunity_id, chain_id=CHAIN, reason="forged")
        )
        for _ in range(100):
            await bus.nc.publish(subjects.withdrawals(CHAIN), withdrawal)
        await bus.nc.flush()
        await wait_for(
            lambda: tx_states(db, bundle.id) == [("trade", "sent"), ("cancel", "sent")],
            what="cancel sent",
        )
        await asyncio.sleep(1.0)  # every one of the 100 has reached submit by now
        assert tx_states(db, bundle.id) == [("trade", "sent"), ("cancel", "sent")]
        mined_at = mine(devnet)
        block = devnet.w3.eth.get_block(mined_at, full_transactions=True)
        ours = [tx for tx in block["transactions"] if tx["from"] == devnet.deployment["bot"]]
        assert len(ours) == 1
        [cancel] = ours
        assert (cancel["nonce"], cancel["value"], cancel["to"]) == (
            nonce,
            0,
            devnet.deployment["bot"],
        )
        assert cancel["maxFeePerGas"] <= MAX_GAS_PRICE
        assert bot_nonce(devnet, "latest") == nonce + 1
        [outcome] = await outcome_of(bus, bundle.id)
        assert outcome.status == "replaced"
        assert tx_count(db) == 2
    finally:
        proc.stop()


def losing_bundle(devnet: Devnet, bundle_id: str) -> Bundle:
    """Passes every check of submit's gate, reverts on chain: minProfit 1 wei above the
    profit the pools give (as if simulate's state had moved)."""
    bundle, profit = arbitrage_bundle(devnet, bundle_id)
    data = reencoded(bundle, min_profit=profit + 1)
    return bundle.model_copy(
        update={"data": data, "min_profit": profit + 1, "simulated_profit": profit + 1}
    )


def metric(proc: Any, name: str) -> str:
    import yaml

    cfg = yaml.safe_load(proc.config.read_text())
    url = f"http://127.0.0.1:{cfg['services']['submit']['metrics_port']}/metrics"
    with urllib.request.urlopen(url, timeout=2) as resp:
        text = resp.read().decode()
    return "\n".join(line for line in text.splitlines() if line.startswith(name))


async def test_three_reverts_trip_the_stop_the_fourth_is_not_sent(
    devnet: Devnet, nats_server: NatsEndpoint, bus: Bus, tmp_path: Path
) -> None:
    config = config_for(devnet, nats_server.url, tmp_path)
    db = tmp_path / "mev-bot.db"
    kv = await ensure_control_bucket(bus.js)
    proc = start_submit(config, tmp_path)
    reason = "consecutive_reverts: 3 trades reverted on chain in a row " + (
        "(submit.max_consecutive_reverts 3)"
    )
    try:
        await wait_active(proc)
        for i in range(3):
            bundle = losing_bundle(devnet, f"revert-{i}")
            await publish_bundle(bus, bundle)
            await wait_for(lambda b=bundle: tx_states(db, b.id) == [("trade", "sent")], what="sent")
            mine(devnet)
            [outcome] = await outcome_of(bus, bundle.id)
            assert outcome.status == "reverted", outcome
            assert devnet.w3.eth.get_transaction_receipt(outcome.tx_hash)["status"] == 0
        await wait_for(
            lambda: health(proc)["checks"]["emergency_stop"]["detail"] == f"TRIPPED: {reason}",
            what="trip in health",
        )
        assert health(proc)["status"] == "ok"  # the process is healthy; it only must not send
        assert metric(proc, "mev_bot_safety_trip") == (
            'mev_bot_safety_trip{reason="consecutive_reverts"} 1.0'
        )
        nonce = bot_nonce(devnet)
        fourth, _ = arbitrage_bundle(devnet, "revert-3")
        await publish_bundle(bus, fourth)
        [outcome] = await outcome_of(bus, fourth.id)
        assert (outcome.status, outcome.reason) == ("not_sent", f"emergency stop tripped: {reason}")
        assert bot_nonce(devnet) == nonce
        assert tx_count(db) == 3

        # `mev-bot status` shows the trip (submit's heartbeat carries its health checks)
        deadline = time.monotonic() + 15
        while True:
            shown = await asyncio.to_thread(
                subprocess.run,
                [MEV_BOT, "--config", str(config), "status"],
                capture_output=True, text=True, timeout=60, check=False,
            )  # fmt: skip
            if "emergency_stop: TRIPPED: consecutive_reverts" in shown.stdout:
                break
            assert time.monotonic() < deadline, shown.stdout + shown.stderr
            await asyncio.sleep(0.5)

        proc.stop()  # the trip is in the ledger file: a restart does not clear it
        proc = start_submit(config, tmp_path)
        await wait_active(proc)
        assert health(proc)["checks"]["emergency_stop"]["detail"] == f"TRIPPED: {reason}"

        await kv.put(control_key(CHAIN, "emergency_stop"), b"0")  # the operator clears it
        await wait_for(
            lambda: health(proc)["checks"]["emergency_stop"]["detail"] == "off", what="cleared"
        )
        assert metric(proc, "mev_bot_safety_trip") == (
            'mev_bot_safety_trip{reason="consecutive_reverts"} 0.0'
        )
        fifth, _ = arbitrage_bundle(devnet, "after-clear")
        await publish_bundle(bus, fifth)
        await wait_for(lambda: tx_states(db, fifth.id) == [("trade", "sent")], what="sends again")
        mine(devnet)
        [landed] = await outcome_of(bus, fifth.id)
        assert landed.status == "included"
    finally:
        proc.stop()


def test_an_owner_mismatch_makes_submit_exit_2_naming_both(
    devnet: Devnet, nats_server: NatsEndpoint, tmp_path: Path
) -> None:
    stranger = Account.create()
    key = tmp_path / "stranger.key"
    key.write_text(stranger.key.hex() + "\n")
    key.chmod(0o600)
    config = config_for(devnet, nats_server.url, tmp_path)
    config.write_text(config.read_text().replace(str(devnet.key_path), str(key)))
    done = subprocess.run(
        [sys.executable, "-m", "services.submit", "--config", str(config)],
        cwd=REPO, capture_output=True, text=True, timeout=60, env=dict(os.environ),
    )  # fmt: skip
    executor, owner = devnet.executor.address, devnet.deployment["bot"]
    assert done.returncode == 2, done.stderr[-2000:]
    assert done.stderr.endswith(
        f"submit: refusing to start: executor {executor} is owned by {owner}, not by this "
        f"key's address {stranger.address}: use the owner's key (keys.path) or transfer the "
        "executor's ownership to this address\n"
    ), done.stderr[-2000:]
    assert stranger.key.hex() not in done.stdout + done.stderr
