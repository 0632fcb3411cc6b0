"""Submit on real anvil, real NATS and real submit processes (mining by hand).

A bundle is built here from chain state (a user's big swap unbalances DEX B, a 2-hop cycle
through A and B gains), so the profit asserted is this test's own integer math; the ledger's
realized profit must equal the executor's on-chain WETH balance change to the wei.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
import subprocess
import sys
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
from mev_common.messages import Bundle, Outcome
from mev_common.messages import decode as decode_message
from mev_common.settings import load_settings
from mev_ops.devnet.anvil import free_port
from web3 import Web3

from tests.conftest import NatsEndpoint
from tests.integration.devnet.conftest import DEADLINE, Devnet
from tests.support.devnet_state import deployed_anvil
from tests.support.stack import REPO, ServiceProcess, write_config

CHAIN = 31337
WETH = 10**18
GWEI = 10**9
TWO_HOPS = [("A", "WETH", "USDC"), ("B", "USDC", "WETH")]
pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def devnet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Devnet]:
    yield from manual_mining_devnet(tmp_path_factory.mktemp("submit-devnet"))


def manual_mining_devnet(data_dir: Path) -> Iterator[Devnet]:
    """The real devnet deployment on a fresh anvil that mines only when a test says so."""
    key_path, out = data_dir / "bot.key", data_dir / "deployment.json"
    node, deployment = deployed_anvil(data_dir, CHAIN, 1, key_path, out)
    try:
        w3 = Web3(Web3.HTTPProvider(node.rpc_url))
        w3.provider.make_request("evm_setAutomine", [False])  # type: ignore[arg-type]
        yield Devnet(node, w3, deployment, key_path, out)
    finally:
        node.stop()


def config_for(devnet: Devnet, nats_url: str, tmp: Path, **extra: Any) -> Path:
    return write_config(
        tmp,
        nats_url,
        CHAIN,
        chain={"rpc_endpoints": [{"name": "anvil", "url": devnet.node.rpc_url}], "block_time_s": 1},
        contracts={"deployment_file": str(devnet.deployment_path)},
        keys={"path": str(devnet.key_path)},
        **extra,
    )


def mine(devnet: Devnet, blocks: int = 1) -> int:
    devnet.rpc("anvil_mine", [hex(blocks)])
    return int(devnet.w3.eth.block_number)


def unbalance(devnet: Devnet) -> None:
    """A user dumps 60 WETH for USDC on DEX B: WETH is cheap there, the A->B cycle gains."""
    user = devnet.user(1)
    router = devnet.router("B")
    tokens = devnet.deployment["tokens"]
    path = [tokens["WETH"]["address"], tokens["USDC"]["address"]]
    data = router.encode_abi(
        "swapExactTokensForTokens", [60 * WETH, 0, path, user.address, DEADLINE]
    )
    tx = user.send(router.address, data, 300_000)
    mine(devnet)
    assert devnet.w3.eth.get_transaction_receipt(tx)["status"] == 1


def arbitrage_bundle(devnet: Devnet, bundle_id: str, **fields: Any) -> tuple[Bundle, int]:
    """A bundle for the 2-hop cycle on current chain state, and its exact profit."""
    unbalance(devnet)
    head = int(devnet.w3.eth.block_number)
    amount_in = 5 * WETH
    profit = devnet.expected_out(TWO_HOPS, amount_in) - amount_in
    assert profit > 0
    tokens = devnet.deployment["tokens"]
    hops = [
        (devnet.pair(dex, a, b)["address"], tokens[a]["address"], tokens[b]["address"], 30)
        for dex, a, b in TWO_HOPS
    ]
    data = devnet.executor.encode_abi("execute", [hops, amount_in, profit, False])
    values: dict[str, Any] = {
        "id": bundle_id,
        "opportunity_id": f"opp-{bundle_id}",
        "chain_id": CHAIN,
        "strategy": "cross_dex_arbitrage",
        "block_number": head,
        "to": devnet.executor.address,
        "data": data,
        "gas_limit": 400_000,
        "profit_token": tokens["WETH"]["address"],
        "simulated_gas_used": 150_000,
        "simulated_profit": profit,
        "net_profit_wei": profit - 400_000 * 20 * GWEI,
        "min_profit": profit,
        "max_fee_per_gas": 20 * GWEI,
        "max_priority_fee_per_gas": GWEI,
        "deadline_block": head + 2,
    }
    values.update(fields)
    return Bundle(**values), profit


async def publish_bundle(bus: Bus, bundle: Bundle) -> None:
    await bus.publish(
        subjects.bundles(CHAIN), bundle, msg_id=bundle.id, trace=bundle.id, seen_ns=time.time_ns()
    )


async def outcome_of(bus: Bus, bundle_id: str, timeout_s: float = 20.0) -> list[Outcome]:
    """Every outcome published for `bundle_id` (waits until there is at least one)."""
    deadline = time.monotonic() + timeout_s
    while True:
        sub = await bus.js.subscribe(subjects.outcomes(CHAIN), ordered_consumer=True)
        found: list[Outcome] = []
        try:
            while True:
                try:
                    msg = await sub.next_msg(timeout=0.3)
                except TimeoutError:
                    break
                outcome = decode_message(Outcome, msg.data)
                if outcome.bundle_id == bundle_id:
                    found.append(outcome)
        finally:
            await sub.unsubscribe()
        if found or time.monotonic() > deadline:
            assert found, f"no outcome for {bundle_id}"
            return found
        await asyncio.sleep(0.2)


def ledger_rows(db: Path, sql: str, *args: Any) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(db)
    try:
        return conn.execute(sql, args).fetchall()
    finally:
        conn.close()


async def wait_for(predicate: Any, timeout_s: float = 20.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)


def tx_states(db: Path, bundle_id: str) -> list[tuple[str, str]]:
    if not db.exists():
        return []
    try:
        return [
            (str(k), str(s))
            for k, s in ledger_rows(
                db, "SELECT kind, state FROM txs WHERE bundle_id = ? ORDER BY created_at", bundle_id
            )
        ]
    except sqlite3.OperationalError:
        return []


def bot_nonce(devnet: Devnet, tag: str = "pending") -> int:
    return int(devnet.w3.eth.get_transaction_count(devnet.deployment["bot"], tag))


def health(proc: ServiceProcess) -> dict[str, Any]:
    try:
        with urllib.request.urlopen(proc.health_url(), timeout=1) as resp:
            return dict(json.loads(resp.read()))
    except urllib.error.HTTPError as exc:
        return dict(json.loads(exc.read()))
    except OSError:
        return {}


def start_submit(config: Path, tmp: Path, module: str | None = None, **env: str) -> ServiceProcess:
    proc = ServiceProcess("submit", config, tmp / "submit.log", env=env, module=module).start()
    proc.wait_health(200, timeout_s=30)
    return proc


async def wait_active(proc: ServiceProcess) -> None:
    await wait_for(
        lambda: health(proc).get("checks", {}).get("nonces") is not None, 30, "submit active"
    )


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
        assert outcome.reason.startswith(f"cancelled past deadline block {bundle.deadline_block}")
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
                health(proc)["checks"]["nonces"]["detail"] == {"next": nonce + 1, "in_flight": 0}
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
    done = subprocess.run(
        [sys.executable, "-m", "services.submit", "--config", str(config)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=30,
        env=dict(os.environ),
    )
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
