"""Submit on real anvil, real NATS and real submit processes (mining by hand).

A bundle is built from chain state (tests/support/submit_world.py: a user's big swap unbalances
DEX B, a 2-hop cycle through A and B gains), so the profit asserted is this test's own integer
math; the ledger's realized profit must equal the executor's on-chain WETH balance change to
the wei.
"""

from __future__ import annotations

import asyncio
import json
import signal
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from mev_common import subjects
from mev_common.bus import Bus
from mev_common.control import ack_key, control_key, ensure_control_bucket, parse_ack
from mev_common.settings import load_settings
from mev_ops.devnet.anvil import free_port

from tests.conftest import NatsEndpoint
from tests.integration.devnet.conftest import Devnet
from tests.support.stack import ServiceProcess, run_to_exit
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

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def devnet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Devnet]:
    yield from manual_mining_devnet(tmp_path_factory.mktemp("submit-devnet"))


# --------------------------------------------------------------------------------------------


async def test_bundle_lands_and_ledger_books_the_chain_profit(
    devnet: Devnet, nats_server: NatsEndpoint, bus: Bus, tmp_path: Path
) -> None:
    config = config_for(devnet, nats_server.url, tmp_path)
    db = tmp_path / "mev-bot.db"
    proc = start_submit(config, tmp_path)
    try:
        await wait_active(proc)
        bundle, profit = arbitrage_bundle(devnet, "land-1")
        executor = devnet.executor.address
        before = devnet.balance("WETH", executor)
        nonce = bot_nonce(devnet)
        await publish_bundle(bus, bundle)
        await wait_for(lambda: tx_states(db, bundle.id) == [("trade", "sent")], what="trade sent")
        mined_at = mine(devnet)
        [outcome] = await outcome_of(bus, bundle.id)

        assert outcome.status == "included", outcome
        assert devnet.balance("WETH", executor) - before == profit
        assert outcome.realized_profit == profit
        assert outcome.block_number == mined_at
        receipt = devnet.w3.eth.get_transaction_receipt(outcome.tx_hash)
        assert receipt["status"] == 1
        assert receipt["from"] == devnet.deployment["bot"]
        tx = devnet.w3.eth.get_transaction(outcome.tx_hash)
        assert tx["nonce"] == nonce
        assert tx["maxFeePerGas"] <= 20 * GWEI
        assert outcome.gas_used == receipt["gasUsed"]
        assert outcome.effective_gas_price == receipt["effectiveGasPrice"]
        [(realized, gas_cost, state)] = ledger_rows(
            db,
            "SELECT r.realized_profit, r.gas_cost, t.state FROM receipts r "
            "JOIN txs t ON t.hash = r.tx_hash WHERE t.bundle_id = ?",
            bundle.id,
        )
        assert (int(realized), int(gas_cost), state) == (
            profit,
            receipt["gasUsed"] * receipt["effectiveGasPrice"],
            "mined",
        )

        # money safety: refused bundles become outcomes with a reason, nothing is sent
        wrong_to, _ = arbitrage_bundle(devnet, "refuse-to", to=devnet.deployment["weth"])
        head = int(devnet.w3.eth.block_number)
        stale, _ = arbitrage_bundle(devnet, "refuse-stale", deadline_block=head)
        losing, _ = arbitrage_bundle(devnet, "refuse-loss", net_profit_wei=0)
        nonce_before = bot_nonce(devnet)
        for b in (wrong_to, stale, losing):
            await publish_bundle(bus, b)
        reasons = {b.id: (await outcome_of(bus, b.id))[0] for b in (wrong_to, stale, losing)}
        assert {o.status for o in reasons.values()} == {"not_sent"}
        assert "is not the configured executor" in reasons["refuse-to"].reason
        assert "passed" in reasons["refuse-stale"].reason
        assert reasons["refuse-loss"].reason == "net profit 0 is not positive"
        assert bot_nonce(devnet) == nonce_before
    finally:
        proc.stop()


async def test_dry_run_signs_and_books_but_sends_nothing(
    devnet: Devnet, nats_server: NatsEndpoint, bus: Bus, tmp_path: Path
) -> None:
    config = config_for(devnet, nats_server.url, tmp_path)
    proc = start_submit(config, tmp_path, MEV_SUBMIT__DRY_RUN="true")
    try:
        await wait_active(proc)
        bundle, profit = arbitrage_bundle(devnet, "dry-1")
        nonce = bot_nonce(devnet)
        await publish_bundle(bus, bundle)
        [outcome] = await outcome_of(bus, bundle.id)
        assert outcome.status == "dry_run"
        assert outcome.realized_profit == profit
        assert outcome.reason.startswith("dry run: would send 0x")
        assert bot_nonce(devnet) == nonce
        assert "dry run: would send" in proc.logs()
        assert ledger_rows(tmp_path / "mev-bot.db", "SELECT COUNT(*) FROM txs") == [(0,)]
    finally:
        proc.stop()


async def test_emergency_stop_sends_nothing_and_holds_across_restart(
    devnet: Devnet, nats_server: NatsEndpoint, bus: Bus, tmp_path: Path
) -> None:
    config = config_for(devnet, nats_server.url, tmp_path)
    kv = await ensure_control_bucket(bus.js)
    stop_key = control_key(CHAIN, "emergency_stop")
    proc = start_submit(config, tmp_path)
    try:
        await wait_active(proc)
        revision = await kv.put(stop_key, b"1")
        ack = ack_key(CHAIN, "emergency_stop", "submit-test")

        async def acked() -> bool:
            try:
                return parse_ack((await kv.get(ack)).value)[0] >= revision
            except Exception:
                return False

        deadline = time.monotonic() + 10
        while not await acked():
            assert time.monotonic() < deadline, "emergency stop never acknowledged"
            await asyncio.sleep(0.05)
        assert health(proc)["checks"]["emergency_stop"]["detail"] == "ACTIVE: nothing is sent"
        nonce = bot_nonce(devnet)
        bundle, _ = arbitrage_bundle(devnet, "stop-1")
        await publish_bundle(bus, bundle)
        [outcome] = await outcome_of(bus, bundle.id)
        assert (outcome.status, outcome.reason) == ("not_sent", "emergency stop active")

        proc.stop()  # the flag is still set in the KV: a restarted submitter honours it
        proc = start_submit(config, tmp_path)
        await wait_active(proc)
        bundle2, _ = arbitrage_bundle(devnet, "stop-2")
        await publish_bundle(bus, bundle2)
        [outcome2] = await outcome_of(bus, bundle2.id)
        assert (outcome2.status, outcome2.reason) == ("not_sent", "emergency stop active")
        assert bot_nonce(devnet) == nonce
    finally:
        await kv.put(stop_key, b"0")
        proc.stop()


async def test_kill_9_after_send_never_sends_twice_and_still_books(
    devnet: Devnet, nats_server: NatsEndpoint, bus: Bus, tmp_path: Path
) -> None:
    config = config_for(devnet, nats_server.url, tmp_path)
    db = tmp_path / "mev-bot.db"
    proc = start_submit(config, tmp_path, module="tests.support.submit_kill")
    await wait_active(proc)
    bundle, profit = arbitrage_bundle(devnet, "kill-1")
    nonce = bot_nonce(devnet)
    await publish_bundle(bus, bundle)
    assert proc.wait(timeout_s=20) == -signal.SIGKILL
    assert tx_states(db, bundle.id) == [("trade", "sent")]
    assert bot_nonce(devnet) == nonce + 1  # the node has it

    proc = start_submit(config, tmp_path)  # the unacked bundle is redelivered to this one
    try:
        await wait_active(proc)
        # the redelivered bundle is handled (acked) by this process without a second send
        durable = subjects.consumer_specs(load_settings(config))["submit"].durable
        for _ in range(400):
            info = await bus.js.consumer_info("BUNDLES", durable)
            if info.num_ack_pending == 0 and info.num_pending == 0:
                break
            await asyncio.sleep(0.05)
        assert (info.num_ack_pending, info.num_pending) == (0, 0)
        assert tx_states(db, bundle.id) == [("trade", "sent")]
        mine(devnet)
        outcomes = await outcome_of(bus, bundle.id)
        assert {o.status for o in outcomes} == {"included"}
        assert {o.realized_profit for o in outcomes} == {profit}
        assert tx_states(db, bundle.id) == [("trade", "mined")]
        assert proc.logs().count('"msg":"tx sent"') == 1
        assert bot_nonce(devnet, "latest") == nonce + 1
    finally:
        proc.stop()


async def test_past_deadline_a_cancel_takes_the_nonce(
    devnet: Devnet, nats_server: NatsEndpoint, bus: Bus, tmp_path: Path
) -> None:
    config = config_for(devnet, nats_server.url, tmp_path)
    db = tmp_path / "mev-bot.db"
    proc = start_submit(config, tmp_path)
    try:
        await wait_active(proc)
        bundle, _ = arbitrage_bundle(devnet, "late-1", max_fee_per_gas=3 * GWEI)
        nonce = bot_nonce(devnet)
        await publish_bundle(bus, bundle)
        await wait_for(lambda: tx_states(db, bundle.id) == [("trade", "sent")], what="sent")
        [trade_hash] = [
            r[0] for r in ledger_rows(db, "SELECT hash FROM txs WHERE bundle_id = ?", bundle.id)
        ]
        # a fee spike: the trade (max fee <= 3 gwei) cannot be included until its deadline
        devnet.rpc("anvil_setNextBlockBaseFeePerGas", [hex(20 * GWEI)])
        head = mine(devnet, bundle.deadline_block - int(devnet.w3.eth.block_number))
        assert head == bundle.deadline_block
        await wait_for(
            lambda: tx_states(db, bundle.id) == [("trade", "sent"), ("cancel", "sent")],
            what="cancel sent",
        )
        mine(devnet)
        [outcome] = await outcome_of(bus, bundle.id)
        assert outcome.status == "replaced"
        assert outcome.reason.startswith(f"cancelled (past deadline block {bundle.deadline_block})")
        assert devnet.w3.eth.get_transaction_receipt(outcome.tx_hash)["status"] == 1
        cancel = devnet.w3.eth.get_transaction(outcome.tx_hash)
        assert (cancel["nonce"], cancel["value"], cancel["to"]) == (
            nonce,
            0,
            devnet.deployment["bot"],
        )
        assert bot_nonce(devnet, "latest") == nonce + 1
        with pytest.raises(Exception, match="not found"):
            devnet.w3.eth.get_transaction_receipt(trade_hash)
        await wait_for(
            lambda: (
                health(proc)["checks"]["nonces"]["detail"]
                == {"address": devnet.deployment["bot"], "next": nonce + 1, "in_flight": 0}
            ),
            what="nonce freed",
        )
    finally:
        proc.stop()


@pytest.mark.parametrize(
    ("content", "mode", "problem"),
    [
        ("ab" * 32 + "\n", 0o644, "has mode 0644; it must be 0600 (chmod 600 {key})"),
        ("not a key\n", 0o600, "is malformed: expected 64 hex characters or a keystore JSON"),
        (None, 0o600, "not found"),
    ],
    ids=["mode-0644", "malformed", "missing"],
)
def test_unsafe_key_file_refuses_to_start(
    devnet: Devnet,
    nats_server: NatsEndpoint,
    tmp_path: Path,
    content: str | None,
    mode: int,
    problem: str,
) -> None:
    key = tmp_path / "bad.key"
    if content is not None:
        key.write_text(content)
        key.chmod(mode)
    config = config_for(devnet, nats_server.url, tmp_path)
    text = config.read_text().replace(str(devnet.key_path), str(key))
    config.write_text(text)
    done = run_to_exit("submit", config, timeout_s=30)
    assert done.returncode == 2
    problem = problem.format(key=key)
    assert done.stderr == f"submit: refusing to start: key file {key} {problem}\n"
    assert ("ab" * 32) not in done.stdout + done.stderr


async def test_standby_takes_over_the_lease_when_the_active_dies(
    devnet: Devnet, nats_server: NatsEndpoint, bus: Bus, tmp_path: Path
) -> None:
    config = config_for(devnet, nats_server.url, tmp_path)
    active = start_submit(config, tmp_path, MEV_INSTANCE="submit-a")
    try:  # the active holds the lease before the standby exists: no race for it
        await wait_active(active)
    except BaseException:
        active.stop()
        raise
    # the same config (ledger, key, NATS) with ports of its own: an offset could hit a taken port
    standby_config = tmp_path / "standby.yaml"
    cfg = yaml.safe_load(config.read_text())
    cfg["services"]["submit"] = {"health_port": free_port(), "metrics_port": free_port()}
    standby_config.write_text(yaml.safe_dump(cfg))
    standby = ServiceProcess(
        "submit", standby_config, tmp_path / "standby.log", env={"MEV_INSTANCE": "submit-b"}
    ).start()
    standby_url = standby.health_url()

    def standby_checks() -> dict[str, Any]:
        try:
            with urllib.request.urlopen(standby_url, timeout=1) as resp:
                return dict(json.loads(resp.read())["checks"])
        except OSError:
            return {}

    try:
        await wait_for(
            lambda: standby_checks().get("lease", {}).get("detail") == "standby (holder submit-a)",
            30,
            "standby",
        )
        assert "nonces" not in standby_checks()  # a standby pulls no bundles
        assert active.proc is not None
        active.proc.kill()
        killed = time.monotonic()
        await wait_for(lambda: "nonces" in standby_checks(), 15, "takeover")
        takeover_s = time.monotonic() - killed
        print(f"standby took over {takeover_s:.2f} s after the active died")

        bundle, profit = arbitrage_bundle(devnet, "lease-1")
        await publish_bundle(bus, bundle)
        db = tmp_path / "mev-bot.db"
        await wait_for(lambda: tx_states(db, bundle.id) == [("trade", "sent")], what="sent")
        mine(devnet)
        [outcome] = await outcome_of(bus, bundle.id)
        assert (outcome.status, outcome.realized_profit) == ("included", profit)
        assert standby.logs().count('"msg":"tx sent"') == 1
        assert active.logs().count('"msg":"tx sent"') == 0
    finally:
        active.stop()
        standby.stop()
