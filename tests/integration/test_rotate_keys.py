"""scripts/rotate-keys.sh end to end on a real anvil devnet, a real nats-server and a real
submit process: without an acknowledged emergency stop nothing is rotated (exit 3, same key,
same owner, same balances); with submit running, the stop is acknowledged, the executor's WETH
and ETH go to the beneficiary, ownership moves in two steps to the new key, the old key is
archived 0600 and the new one is 0600."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from mev_ops.devnet.anvil import AnvilNode
from mev_ops.devnet.artifacts import load_artifact
from mev_ops.devnet.deploy import devnet_account
from mev_ops.devnet.sender import Sender
from web3 import Web3

from tests.conftest import NatsEndpoint
from tests.support.devnet_state import deployed_anvil
from tests.support.stack import REPO, ServiceProcess, write_config

CHAIN = 31337
WETH = 10**18
SCRIPT = REPO / "scripts/rotate-keys.sh"

pytestmark = pytest.mark.timeout(240)


@dataclass
class Site:
    node: AnvilNode
    w3: Web3
    deployment: dict[str, Any]
    config: Path
    key: Path

    @property
    def executor(self) -> Any:
        address = self.deployment["executor"]["address"]
        return self.w3.eth.contract(address=address, abi=load_artifact("Executor").abi)

    def weth(self, owner: str) -> int:
        token = self.w3.eth.contract(
            address=self.deployment["weth"], abi=load_artifact("WETH9").abi
        )
        return int(token.functions.balanceOf(owner).call())

    def address_in(self, key: Path) -> str:
        return str(Account.from_key(bytes.fromhex(key.read_text().strip())).address)

    def rotate(self, *args: str) -> subprocess.CompletedProcess[str]:
        """The script as an operator runs it from the host: no extra environment."""
        env = {k: v for k, v in os.environ.items() if k != "MEV_BACKUP_PASSPHRASE"}
        return subprocess.run(
            [str(SCRIPT), *args, "-k", str(self.key), "--config", str(self.config)],
            cwd=self.key.parent.parent, capture_output=True, text=True, check=False,
            timeout=120, env=env,
        )  # fmt: skip


@pytest.fixture(scope="module")
def site(nats_server: NatsEndpoint, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    base = tmp_path_factory.mktemp("rotate")
    key = base / "keys/bot.key"
    node, deployment = deployed_anvil(base, CHAIN, 1, key, base / "deployment.json")
    try:
        config = write_config(
            base / "stack",
            nats_server.url,
            CHAIN,
            chain={"rpc_endpoints": [{"name": "anvil", "url": node.rpc_url}], "block_time_s": 1},
            contracts={"deployment_file": str(base / "deployment.json")},
            keys={"path": str(key)},
        )
        w3 = Web3(Web3.HTTPProvider(node.rpc_url))
        # Profit left in the executor as ETH too, so the ETH sweep is exercised.
        donor = Sender(w3, devnet_account(7), CHAIN)
        tx = donor.send(deployment["executor"]["address"], b"", 100_000, value=3 * WETH)
        assert w3.eth.wait_for_transaction_receipt(tx)["status"] == 1
        yield Site(node, w3, deployment, config, key)
    finally:
        node.stop()


def test_emergency_rotation_without_an_acknowledged_stop_rotates_nothing(site: Site) -> None:
    """NATS is up, no submit runs: the stop is set but nobody confirms sends stopped."""
    key_before = site.key.read_text()
    executor = site.executor.address
    state = (site.weth(executor), site.w3.eth.get_balance(executor))
    rotate = site.rotate("emergency")
    assert rotate.returncode == 3, rotate.stdout + rotate.stderr
    assert "not acknowledged" in rotate.stderr
    assert "emergency stop NOT acknowledged by submit: nothing rotated" in rotate.stderr
    assert site.key.read_text() == key_before
    assert sorted(p.name for p in site.key.parent.iterdir()) == ["bot.key"]  # no .next, no archive
    assert site.executor.functions.owner().call() == site.deployment["bot"]
    assert site.executor.functions.pendingOwner().call() == "0x" + "00" * 20
    assert (site.weth(executor), site.w3.eth.get_balance(executor)) == state


def test_emergency_rotation_stops_sends_sweeps_and_moves_ownership(site: Site) -> None:
    """A real submit acknowledges the stop; then every on-chain step, then the key files."""
    submit = ServiceProcess("submit", site.config, site.config.parent / "submit.log").start()
    try:
        submit.wait_health(200, timeout_s=120)
        rotate_and_check(site)
    finally:
        submit.stop()


def rotate_and_check(site: Site) -> None:
    executor = site.executor
    old_key_text, old = site.key.read_text(), site.deployment["bot"]
    beneficiary = site.deployment["executor"]["beneficiary"]
    weth_in, eth_in = site.weth(executor.address), site.w3.eth.get_balance(executor.address)
    assert (weth_in, eth_in) == (10 * WETH, 3 * WETH)
    weth_ben, eth_ben = site.weth(beneficiary), site.w3.eth.get_balance(beneficiary)

    rotate = site.rotate("emergency")
    assert rotate.returncode == 0, rotate.stdout + rotate.stderr
    assert "acknowledged by submit" in rotate.stdout

    new = site.address_in(site.key)
    assert new != old
    assert executor.functions.owner().call() == new
    assert executor.functions.pendingOwner().call() == "0x" + "00" * 20
    assert site.weth(executor.address) == 0 and site.w3.eth.get_balance(executor.address) == 0
    assert site.weth(beneficiary) - weth_ben == weth_in
    assert site.w3.eth.get_balance(beneficiary) - eth_ben == eth_in
    assert site.w3.eth.get_balance(new) > 0  # the old key's ETH paid for acceptOwnership
    assert f"done: the executor is owned by {new}" in rotate.stdout

    assert stat.S_IMODE(site.key.stat().st_mode) == 0o600
    archive = site.key.parent / "archive"
    assert stat.S_IMODE(archive.stat().st_mode) == 0o700
    (archived,) = archive.iterdir()
    assert archived.read_text() == old_key_text
    assert stat.S_IMODE(archived.stat().st_mode) == 0o600
    assert sorted(p.name for p in site.key.parent.iterdir()) == ["archive", "bot.key"]
    assert old_key_text.strip() not in rotate.stdout + rotate.stderr  # keys are never printed
    assert site.key.read_text().strip() not in rotate.stdout + rotate.stderr


def test_rotation_refuses_a_key_that_does_not_own_the_executor(site: Site, tmp_path: Path) -> None:
    """After the rotation the archived key owns nothing: a rotation from it changes nothing."""
    (archived,) = (site.key.parent / "archive").iterdir()
    stranger = tmp_path / "stranger.key"
    stranger.write_text("cd" * 32 + "\n")
    stranger.chmod(0o600)
    owner = site.executor.functions.owner().call()
    out = subprocess.run(
        [sys.executable, "-m", "mev_ops.rotate", "--config",
         str(site.config), "--old-key", str(archived), "--new-key", str(stranger)],
        capture_output=True, text=True, check=False, timeout=60,
    )  # fmt: skip
    assert out.returncode == 1
    assert f"the executor's owner is {owner}, neither the old key" in out.stderr
    assert site.executor.functions.owner().call() == owner
    assert site.executor.functions.pendingOwner().call() == "0x" + "00" * 20
