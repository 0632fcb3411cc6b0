"""The submit world of the integration and security tests: a devnet that mines only when a test
says so, a bundle built from chain state with its exact profit, a real submit process, and
readers of its outcomes and ledger.

A bundle is built from chain state (a user's big swap unbalances DEX B, a 2-hop cycle through
A and B gains), so the profit a test asserts is its own integer math.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sqlite3
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from mev_common import subjects
from mev_common.bus import Bus
from mev_common.messages import Bundle, Outcome
from mev_common.settings import KeySettings
from mev_ops.devnet.keys import load_or_create_key
from web3 import Web3

from tests.conftest import NatsEndpoint
from tests.integration.devnet.conftest import DEADLINE, Devnet
from tests.support.devnet_state import deployed_anvil
from tests.support.stack import ServiceProcess, write_config
from tests.support.stream_read import read_until

CHAIN = 31337
WETH = 10**18
GWEI = 10**9
TWO_HOPS = [("A", "WETH", "USDC"), ("B", "USDC", "WETH")]


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


def module_devnet(name: str) -> Any:
    """A test module's own manual-mining devnet, as a module-scoped fixture named `devnet`."""

    @pytest.fixture(scope="module", name="devnet")
    def fixture(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Devnet]:
        yield from manual_mining_devnet(tmp_path_factory.mktemp(name))

    return fixture


def config_for(
    devnet: Devnet,
    nats_url: str,
    tmp: Path,
    lanes: int = 1,
    more_endpoints: Sequence[dict[str, Any]] = (),
    **extra: Any,
) -> Path:
    """Submit's config on `devnet` (endpoint "anvil", then `more_endpoints`)."""
    keys: dict[str, Any] = {"path": str(devnet.key_path)}
    if lanes > 1:
        keys["lanes"] = lanes
    endpoints = [{"name": "anvil", "url": devnet.node.rpc_url}, *more_endpoints]
    return write_config(
        tmp,
        nats_url,
        CHAIN,
        chain={"rpc_endpoints": endpoints, "block_time_s": 1},
        contracts={"deployment_file": str(devnet.deployment_path)},
        keys=keys,
        **extra,
    )


def mine(devnet: Devnet, blocks: int = 1) -> int:
    devnet.rpc("anvil_mine", [hex(blocks)])
    return int(devnet.w3.eth.block_number)


def unbalance(devnet: Devnet, buy: str = "USDC") -> None:
    """A user dumps 60 WETH for `buy` on DEX B: WETH is cheap there, the A->B cycle gains."""
    user = devnet.user(1)
    router = devnet.router("B")
    tokens = devnet.deployment["tokens"]
    path = [tokens["WETH"]["address"], tokens[buy]["address"]]
    data = router.encode_abi(
        "swapExactTokensForTokens", [60 * WETH, 0, path, user.address, DEADLINE]
    )
    tx = user.send(router.address, data, 300_000)
    mine(devnet)
    assert devnet.w3.eth.get_transaction_receipt(tx)["status"] == 1


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


def arbitrage_bundle(
    devnet: Devnet, bundle_id: str, via: str = "USDC", **fields: Any
) -> tuple[Bundle, int]:
    """A bundle for the 2-hop cycle WETH -> `via` (DEX A) -> WETH (DEX B) on current chain
    state, and its exact profit."""
    unbalance(devnet, via)
    legs = [("A", "WETH", via), ("B", via, "WETH")]
    head = int(devnet.w3.eth.block_number)
    amount_in = 5 * WETH
    profit = devnet.expected_out(legs, amount_in) - amount_in
    assert profit > 0
    tokens = devnet.deployment["tokens"]
    hops = [
        (devnet.pair(dex, a, b)["address"], tokens[a]["address"], tokens[b]["address"], 30)
        for dex, a, b in legs
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

    def mine(outcomes: list[Outcome]) -> list[Outcome]:
        return [o for o in outcomes if o.bundle_id == bundle_id]

    subject = subjects.outcomes(CHAIN)
    found = mine(await read_until(bus, subject, Outcome, lambda got: bool(mine(got)), timeout_s))
    assert found, f"no outcome for {bundle_id}"
    return found


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


@contextlib.asynccontextmanager
async def active_submit(
    devnet: Devnet, nats_url: str, tmp: Path, more_endpoints: Sequence[dict[str, Any]] = ()
) -> AsyncIterator[ServiceProcess]:
    """A real submit process on `devnet` (and `more_endpoints`), active (lease held, nonces
    synced); stopped after."""
    proc = start_submit(config_for(devnet, nats_url, tmp, more_endpoints=more_endpoints), tmp)
    try:
        await wait_active(proc)
        yield proc
    finally:
        proc.stop()


@pytest.fixture(name="submit_db")
async def submit_db_fixture(
    devnet: Devnet, nats_server: NatsEndpoint, tmp_path: Path
) -> AsyncIterator[Path]:
    """A real submit process on the module's `devnet`, active; yields its ledger's path. A
    test module uses it as its fixture `submit_db` by `submit_db = submit_db_fixture`."""
    async with active_submit(devnet, nats_server.url, tmp_path):
        yield tmp_path / "mev-bot.db"
