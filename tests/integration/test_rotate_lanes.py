"""`python -m mev_ops.rotate --traders-only --lanes` on a real anvil devnet with the real
Executor and a real nats-server: refused (exit 3), nothing changed, unless the emergency stop is
engaged in the control KV and acknowledged by every live submit (a fresh heartbeat or a lease
held), or when NATS cannot be reached;
refused, nothing sent, while an old lane key has a tx in flight; then every lane key
is replaced (new file 0600, old one archived 0600, its gas money moved), the new key trades
(a mined profitable `execute`) and the old one is refused NotTrader. Old lane keys are kept
like the old hot key (scripts/rotate-keys.sh): moved into the archive 0600, gpg-encrypted
(AES256, the passphrase on stdin) when MEV_BACKUP_PASSPHRASE is set."""

from __future__ import annotations

import os
import socket
import stat
import subprocess
import time
from pathlib import Path

import orjson
import pytest
from eth_account import Account
from mev_common import control
from mev_common.lifecycle_keys import instance_key
from mev_common.settings import KeySettings
from mev_ops.devnet.keys import load_or_create_key
from mev_ops.devnet.sender import Sender
from mev_ops.rotate import main as rotate
from mev_ops.rotate_lanes import archive_key

from tests.conftest import NatsEndpoint
from tests.integration.devnet.conftest import CHAIN_ID, Devnet, custom_error, devnet_at
from tests.security.test_executor_attacks import mined
from tests.security.test_executor_traders import profitable_trade, set_trader
from tests.support.control_kv import held_lease, kv_put
from tests.support.stack import write_config

pytestmark = pytest.mark.timeout(180)
ETH = 10**18


def address_in(key: Path) -> str:
    return str(Account.from_key(bytes.fromhex(key.read_text().strip())).address)


STOP_KEY = control.control_key(CHAIN_ID, control.EMERGENCY_STOP)
FIX = (
    "nothing was changed: run `mev-bot --config CONFIG --emergency-stop` (acknowledged by "
    "every running submit, or with none running), then rerun; `mev-bot --resume` once the new "
    "keys are in place\n"
)


def refused(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    assert rotate(argv) == 3
    out, err = capsys.readouterr()
    assert out == ""
    assert err.startswith("rotate: REFUSED: --lanes needs the emergency stop engaged; ")
    assert err.endswith(FIX)
    return err.removeprefix("rotate: REFUSED: --lanes needs the emergency stop engaged; ")


def test_lane_keys_are_replaced_only_with_nothing_in_flight(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], nats_server: NatsEndpoint
) -> None:
    key = tmp_path / "keys/bot.key"
    with devnet_at(tmp_path / "chain", key) as devnet:
        config = write_config(
            tmp_path / "stack", nats_server.url, CHAIN_ID,
            chain={"rpc_endpoints": [{"name": "anvil", "url": devnet.node.rpc_url}]},
            contracts={"deployment_file": str(devnet.deployment_path)},
            keys={"path": str(key), "lanes": 3},
        )  # fmt: skip
        rotate_lanes_and_check(devnet, config, key, capsys, nats_server.url)


def test_lanes_are_refused_when_nats_cannot_be_reached(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The stop cannot be confirmed: refused before any key file or chain is touched."""
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    key = tmp_path / "keys/bot.key"
    config = write_config(
        tmp_path / "stack",
        f"nats://127.0.0.1:{port}",
        CHAIN_ID,
        keys={"path": str(key), "lanes": 3},
    )
    argv = ["--config", str(config), "--traders-only", "--lanes", "--new-key", str(key)]
    assert refused(argv, capsys).startswith(
        f"cannot check it: cannot reach NATS at nats://127.0.0.1:{port}: "
    )
    assert not key.parent.exists()


def require_the_stop(
    devnet: Devnet,
    argv: list[str],
    lane_files: list[Path],
    url: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Refused, no key file made and nothing sent, until the stop is engaged and every live
    submit (fresh heartbeat, or a lease held) acknowledged it; a submit that is gone (heartbeat
    deleted, lease released) is not waited for."""
    bot = devnet.bot()
    nonce = devnet.w3.eth.get_transaction_count(bot.address, "pending")
    assert refused(argv, capsys) == f"{STOP_KEY} is not set; {FIX}"
    revision = kv_put(url, STOP_KEY, b"0")  # after `mev-bot --resume`
    assert refused(argv, capsys) == f"{STOP_KEY}='0' (revision {revision}); {FIX}"
    revision = kv_put(url, STOP_KEY, b"1")
    beat = instance_key(CHAIN_ID, "submit", "submit-lanes")
    heartbeat = {"service": "submit", "instance": "submit-lanes", "status": "ok", "ts": time.time()}
    kv_put(url, beat, orjson.dumps(heartbeat))
    ack = control.ack_key(CHAIN_ID, control.EMERGENCY_STOP, "submit-lanes")
    kv_put(url, ack, control.ack_value(revision - 1))  # it applied an older value only
    assert refused(argv, capsys) == (
        f"{STOP_KEY}=1 (revision {revision}) is not acknowledged by running submit "
        f"submit-lanes; {FIX}"
    )
    kv_put(url, beat, None)  # it exited (a clean exit deletes its heartbeat)
    # A submit whose heartbeat is late still holds its key's lease, so it may send.
    with held_lease(url, f"{CHAIN_ID}.{bot.address.lower()}", "submit.held"):
        assert refused(argv, capsys) == (
            f"{STOP_KEY}=1 (revision {revision}) is not acknowledged by running submit "
            f"submit.held; {FIX}"
        )
    assert devnet.w3.eth.get_transaction_count(bot.address, "pending") == nonce
    assert not any(Path(f"{p}.next").exists() for p in lane_files)


def rotate_lanes_and_check(
    devnet: Devnet, config: Path, key: Path, capsys: pytest.CaptureFixture[str], url: str
) -> None:
    keys = KeySettings(path=str(key), lanes=3)
    lane_files = [Path(keys.lane_path(i)) for i in (1, 2)]
    donor, bot = devnet.user(7), devnet.bot()
    olds = []
    for path in lane_files:  # as `devnet up` makes them: traders with gas money
        lane = load_or_create_key(path)
        assert set_trader(devnet, bot, lane.address, True)["status"] == 1
        tx = donor.send(lane.address, b"", 21_000, value=ETH)
        assert devnet.w3.eth.wait_for_transaction_receipt(tx)["status"] == 1
        olds.append(lane)
    old_texts = [p.read_text() for p in lane_files]
    argv = ["--config", str(config), "--traders-only", "--lanes", "--new-key", str(key)]
    require_the_stop(devnet, argv, lane_files, url, capsys)

    # lane 2 has a tx in flight: refused, nothing sent
    devnet.rpc("evm_setAutomine", [False])
    in_flight = Sender(devnet.w3, Account.from_key(olds[1].key), CHAIN_ID)
    in_flight.send(olds[1].address, b"", 21_000)
    bot_nonce = devnet.w3.eth.get_transaction_count(bot.address)
    assert rotate(argv) == 1
    out, err = capsys.readouterr()
    assert err == (
        f"rotate: FAILED: lane 2 key {olds[1].address} has 1 unsettled tx(s): rotated now, a "
        "trade in flight would revert NotTrader; nothing was sent: stop sends (mev-bot "
        "--emergency-stop), wait until `mev-bot status` shows 0 in flight on that lane, rerun\n"
    )
    assert devnet.w3.eth.get_transaction_count(bot.address, "pending") == bot_nonce
    assert [p.read_text() for p in lane_files] == old_texts
    news = [address_in(Path(f"{p}.next")) for p in lane_files]  # kept for the rerun
    devnet.rpc("evm_mine", [])
    devnet.rpc("evm_setAutomine", [True])

    balances = [devnet.w3.eth.get_balance(lane.address) for lane in olds]
    assert rotate(argv) == 0
    out, err = capsys.readouterr()
    assert err == ""
    executor = devnet.executor
    archived = sorted((key.parent / "archive").iterdir())
    assert stat.S_IMODE((key.parent / "archive").stat().st_mode) == 0o700
    assert [p.read_text() for p in archived] == old_texts  # the old keys kept, 0600
    assert [stat.S_IMODE(p.stat().st_mode) for p in archived] == [0o600, 0o600]
    for lane, path, old, new, before in zip((1, 2), lane_files, olds, news, balances, strict=True):
        assert address_in(path) == new != old.address
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert not Path(f"{path}.next").exists()
        assert executor.functions.isTrader(new).call() is True
        assert executor.functions.isTrader(old.address).call() is False
        assert devnet.w3.eth.get_balance(old.address) < before  # its gas money moved on
        assert 0 < devnet.w3.eth.get_balance(new) < before
        assert f"lane {lane}: {old.address} -> {new}" in out
    for secret in (*old_texts, *(p.read_text() for p in lane_files)):
        assert secret.strip() not in out

    data, profit = profitable_trade(devnet)
    args = custom_error(
        devnet.revert_data(olds[0].address, executor.address, data), "NotTrader(address)"
    )
    assert args == (olds[0].address.lower(),)
    new_lane = Sender(devnet.w3, load_or_create_key(lane_files[0]), CHAIN_ID)
    before = devnet.balance("WETH", executor.address)
    assert mined(devnet, new_lane, executor.address, data)["status"] == 1
    assert devnet.balance("WETH", executor.address) == before + profit


SECRET = "ab" * 32 + "\n"


def lane_key(tmp_path: Path) -> Path:
    key = tmp_path / "bot.lane1.key"
    key.write_text(SECRET)
    key.chmod(0o600)
    return key


def test_without_a_passphrase_the_key_is_moved_0600(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MEV_BACKUP_PASSPHRASE", raising=False)
    key = lane_key(tmp_path)
    kept = archive_key(key, tmp_path / "bot.lane1.key.stamp")
    assert (kept.name, kept.read_text(), key.exists()) == ("bot.lane1.key.stamp", SECRET, False)
    assert stat.S_IMODE(kept.stat().st_mode) == 0o600


def test_with_a_passphrase_only_the_encrypted_copy_is_left(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MEV_BACKUP_PASSPHRASE", "test-only-passphrase")
    monkeypatch.setenv("GNUPGHOME", str(tmp_path / "gnupg"))
    (tmp_path / "gnupg").mkdir(mode=0o700)
    key = lane_key(tmp_path)
    try:  # gpg starts an agent for this GNUPGHOME: ended below
        kept = archive_key(key, tmp_path / "bot.lane1.key.stamp")
        clear = subprocess.run(
            ["gpg", "--batch", "--quiet", "--pinentry-mode", "loopback", "--passphrase-fd", "0",
             "--decrypt", str(kept)],
            input="test-only-passphrase", capture_output=True, text=True, check=True,
            env=dict(os.environ),
        )  # fmt: skip
    finally:
        subprocess.run(["gpgconf", "--kill", "gpg-agent"], check=False, env=dict(os.environ))
    assert (kept.name, key.exists()) == ("bot.lane1.key.stamp.gpg", False)
    assert stat.S_IMODE(kept.stat().st_mode) == 0o600
    assert SECRET.strip().encode() not in kept.read_bytes()
    assert clear.stdout == SECRET
