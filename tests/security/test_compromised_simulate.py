"""Simulate compromised (issue 11): with the shipped permission config, simulate's own credential
may publish bundles, so NATS lets a forged one through; submit, connected as its own user, must
refuse it by itself and sign nothing. Real nats-server with users and permissions, real anvil
with the devnet deployment, a real submit process.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from mev_common import nats_auth
from mev_common.bus import Bus
from mev_common.settings import load_settings
from mev_ops.nats_server import EmbeddedNats

from tests.integration.devnet.conftest import Devnet
from tests.security.test_submit_refuses import reencoded
from tests.support.submit_world import (
    arbitrage_bundle,
    bot_nonce,
    config_for,
    ledger_rows,
    manual_mining_devnet,
    outcome_of,
    publish_bundle,
    start_submit,
    wait_active,
)

pytestmark = pytest.mark.timeout(180)


@pytest.fixture(scope="module")
def devnet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Devnet]:
    yield from manual_mining_devnet(tmp_path_factory.mktemp("compromised-devnet"))


@pytest.fixture
async def operator_and_simulate(
    secured_server: tuple[EmbeddedNats, Path], devnet: Devnet, tmp_path: Path
) -> AsyncIterator[tuple[Path, Bus, Bus]]:
    """The submit config (its own credential), an operator bus (declares, reads outcomes) and
    a bus holding simulate's credential (the attacker's)."""
    server, auth = secured_server
    config = config_for(devnet, server.url, tmp_path, nats={"credentials_dir": str(auth)})
    settings = load_settings(config)
    operator = await Bus.connect(
        server.url,
        "operator",
        attempts=3,
        options=nats_auth.connect_options(settings.nats, "operator"),
    )
    await nats_auth.declare_bus(operator, settings)
    simulate = await Bus.connect(
        server.url,
        "simulate",
        attempts=3,
        options=nats_auth.connect_options(settings.nats, "simulate"),
    )
    yield config, operator, simulate
    await simulate.close()
    await operator.close()


async def test_a_forged_bundle_with_simulates_credential_is_refused_by_submit(
    devnet: Devnet, operator_and_simulate: tuple[Path, Bus, Bus], tmp_path: Path
) -> None:
    config, operator, simulate = operator_and_simulate
    proc = start_submit(config, tmp_path)
    try:
        await wait_active(proc)
        good, _ = arbitrage_bundle(devnet, "compromised-base")
        tokens = devnet.deployment["tokens"]
        weth, usdc = tokens["WETH"]["address"], tokens["USDC"]["address"]
        back = (devnet.pair("B", "USDC", "WETH")["address"], usdc, weth, 30)
        attacker = devnet.router("A").address  # a contract posing as the first pair
        forged = good.model_copy(
            update={
                "id": "forge-compromised-simulate",
                "data": reencoded(good, [(attacker, weth, usdc, 30), back]),
            }
        )
        nonce = bot_nonce(devnet)
        await publish_bundle(simulate, forged)  # NATS accepts it: simulate may publish bundles
        [outcome] = await outcome_of(operator, forged.id)
        assert (outcome.status, outcome.reason) == (
            "not_sent",
            f"hop 0 pool {attacker} is not the {weth}/{usdc} pair of any configured factory",
        )
        assert bot_nonce(devnet) == nonce  # nothing signed, nothing on the wire
        assert bot_nonce(devnet, "latest") == nonce
        db = tmp_path / "mev-bot.db"
        assert ledger_rows(db, "SELECT COUNT(*) FROM txs") == [(0,)]
    finally:
        proc.stop()
