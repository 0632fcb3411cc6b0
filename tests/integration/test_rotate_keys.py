"""scripts/rotate-keys.sh end to end on a real anvil devnet, a real nats-server and a real
submit process: while a submit that did not acknowledge the emergency stop holds its key's lease,
nothing is rotated (exit 3, same key, same owner, same balances); with submit running, the stop
is acknowledged, the executor's WETH and ETH go to the beneficiary, ownership moves in two steps
to the new key, the old key is archived 0600 and the new one is 0600, and the nonce lane key
(keys.lanes: 2) is a trader of the new owner (the ownership change dropped it). A lane key that
is not a trader: submit refuses to start naming the command that fixes it, and that command
does. With submit stopped (no heartbeat, no lease), `--lanes` sets the stop and rotates."""

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
from mev_common.settings import KeySettings
from mev_ops.devnet.anvil import AnvilNode
from mev_ops.devnet.artifacts import load_artifact
from mev_ops.devnet.deploy import devnet_account
from mev_ops.devnet.keys import load_or_create_key
from mev_ops.devnet.sender import Sender
from web3 import Web3

from tests.conftest import NatsEndpoint
from tests.support.control_kv import held_lease
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
    nats_url: str

    @property
    def executor(self) -> Any:
        address = self.deployment["executor"]["address"]
        return self.w3.eth.contract(address=address, abi=load_artifact("Executor").abi)

    def weth(self, owner: str) -> int:
        token = self.w3.eth.contract(
            address=self.deployment["weth"], abi=load_artifact("WETH9").abi
        )
        return int(token.functions.balanceOf(owner).call())

    @property
    def lane(self) -> str:
        return self.address_in(self.key.parent / "bot.lane1.key")

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
            keys={"path": str(key), "lanes": 2},
        )
        w3 = Web3(Web3.HTTPProvider(node.rpc_url))
        # lane 1 as `devnet up` makes it: a key beside keys.path the owner names a trader
        lane = load_or_create_key(Path(KeySettings(path=str(key)).lane_path(1)))
        executor = w3.eth.contract(
            address=deployment["executor"]["address"], abi=load_artifact("Executor").abi
        )
        owner = Sender(w3, Account.from_key(bytes.fromhex(key.read_text().strip())), CHAIN)
        allow = executor.encode_abi("setTrader", [lane.address, True])
        tx = owner.send(executor.address, allow, 100_000)
        assert w3.eth.wait_for_transaction_receipt(tx)["status"] == 1
        # Profit left in the executor as ETH too, so the ETH sweep is exercised.
        donor = Sender(w3, devnet_account(7), CHAIN)
        tx = donor.send(deployment["executor"]["address"], b"", 100_000, value=3 * WETH)
        assert w3.eth.wait_for_transaction_receipt(tx)["status"] == 1
        yield Site(node, w3, deployment, config, key, nats_server.url)
    finally:
        node.stop()


def test_emergency_rotation_without_an_acknowledged_stop_rotates_nothing(site: Site) -> None:
    """NATS is up, a submit holds the key's lease (it may send) but acknowledges nothing: the
    stop is set, nobody confirms sends stopped."""
    key_before = site.key.read_text()
    executor = site.executor.address
    state = (site.weth(executor), site.w3.eth.get_balance(executor))
    with held_lease(site.nats_url, f"{CHAIN}.{site.deployment['bot'].lower()}", "submit-held"):
        rotate = site.rotate("emergency")
    assert rotate.returncode == 3, rotate.stdout + rotate.stderr
    assert "not acknowledged" in rotate.stderr
    assert "rotate-keys: no acknowledgement: checking that no submit is running" in rotate.stdout
    assert f"stop_check: NOT engaged: {CHAIN}.emergency_stop=1 (revision " in rotate.stderr
    assert ") is not acknowledged by running submit submit-held\n" in rotate.stderr
    assert "emergency stop NOT acknowledged by submit: nothing rotated" in rotate.stderr
    assert site.key.read_text() == key_before
    # no .next, no archive
    assert sorted(p.name for p in site.key.parent.iterdir()) == ["bot.key", "bot.lane1.key"]
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
    lane = site.lane
    assert executor.functions.isTrader(lane).call() is True  # named again by the new owner
    assert f"setTrader(lane 1 key {lane}, true): ok" in rotate.stdout

    assert stat.S_IMODE(site.key.stat().st_mode) == 0o600
    archive = site.key.parent / "archive"
    assert stat.S_IMODE(archive.stat().st_mode) == 0o700
    (archived,) = archive.iterdir()
    assert archived.read_text() == old_key_text
    assert stat.S_IMODE(archived.stat().st_mode) == 0o600
    names = ["archive", "bot.key", "bot.lane1.key"]  # the lane key stays
    assert sorted(p.name for p in site.key.parent.iterdir()) == names
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


def test_a_lane_key_that_is_no_trader_is_refused_naming_the_command_that_fixes_it(
    site: Site,
) -> None:
    """The new owner drops lane 1 (as any ownership change does): submit exits 2 naming the
    lane's address and the command; the command names it a trader, once (a rerun skips it)."""
    executor, lane = site.executor, site.lane
    owner = Sender(site.w3, Account.from_key(bytes.fromhex(site.key.read_text().strip())), CHAIN)
    drop = executor.encode_abi("setTrader", [lane, False])
    assert site.w3.eth.wait_for_transaction_receipt(owner.send(executor.address, drop, 100_000))[
        "status"
    ]
    assert executor.functions.isTrader(lane).call() is False
    done = subprocess.run(
        [sys.executable, "-m", "services.submit", "--config", str(site.config)],
        cwd=REPO, capture_output=True, text=True, timeout=60, env=dict(os.environ),
    )  # fmt: skip
    assert done.returncode == 2, done.stderr[-2000:]
    command = f"python -m mev_ops.rotate --config CONFIG --traders-only --new-key {site.key}"
    assert done.stderr.endswith(
        f"submit: refusing to start: executor {executor.address} does not let lane 1's key "
        f"{lane} trade (isTrader = 0x{'0' * 64}): the owner must call setTrader({lane}, true): "
        f"run {command} (docs/RUNBOOK.md, nonce lanes), or lower keys.lanes\n"
    ), done.stderr[-2000:]
    fix = command.replace("python", sys.executable, 1).replace("CONFIG", str(site.config))
    for expected in (f"setTrader(lane 1 key {lane}, true): ok", f"lane 1 key {lane} is a trader"):
        out = subprocess.run(fix.split(), capture_output=True, text=True, check=False, timeout=60)
        assert out.returncode == 0, out.stdout + out.stderr
        assert expected in out.stdout
        assert executor.functions.isTrader(lane).call() is True


def test_a_rotation_with_lanes_replaces_the_lane_keys_too_with_submit_stopped(site: Site) -> None:
    """`--lanes` implies emergency: with submit stopped (it exited: no heartbeat, no lease),
    nobody acknowledges the stop, the stop flag alone is enough (`mev-bot --emergency-stop`
    says so, exit 0); ownership moves, and lane 1's key is replaced: the new one a trader of
    the new owner, the old one archived."""
    old_lane, old_text = site.lane, (site.key.parent / "bot.lane1.key").read_text()
    rotate = site.rotate("--lanes")
    assert rotate.returncode == 0, rotate.stdout + rotate.stderr
    assert "not acknowledged" not in rotate.stderr
    assert f"mev-bot: emergency stop set: {CHAIN}.emergency_stop=1 (revision " in rotate.stdout
    assert (
        ") is set; no submit is running to acknowledge it (no fresh heartbeat, no lease held); "
    ) in rotate.stdout
    new_owner, new_lane = site.address_in(site.key), site.lane
    assert site.executor.functions.owner().call() == new_owner
    assert new_lane != old_lane
    assert site.executor.functions.isTrader(new_lane).call() is True
    assert site.executor.functions.isTrader(old_lane).call() is False
    assert f"lane 1: {old_lane} -> {new_lane}" in rotate.stdout
    kept = [p for p in (site.key.parent / "archive").iterdir() if ".lane1." in p.name]
    assert [p.read_text() for p in kept] == [old_text]
    assert stat.S_IMODE((site.key.parent / "bot.lane1.key").stat().st_mode) == 0o600
    assert not (site.key.parent / "bot.lane1.key.next").exists()
    assert old_text.strip() not in rotate.stdout + rotate.stderr
