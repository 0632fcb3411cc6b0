"""`mev-bot --validate-config` through the real CLI entry point: exit codes and exact output."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import yaml
from eth_account import Account
from mev_ops.cli import main

REPO = Path(__file__).resolve().parents[2]
PRODUCTION = REPO / "config/production.yaml"


@pytest.fixture(autouse=True)
def _no_mev_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [n for n in os.environ if n.upper().startswith("MEV_")]:
        monkeypatch.delenv(name)


def production_copy(tmp_path: Path, key_mode: int | None = None, **changes: object) -> Path:
    """config/production.yaml with its key in tmp_path (created with `key_mode` if given) and
    top-level sections updated by `changes` ({"performance": {...}} merges into performance)."""
    config = yaml.safe_load(PRODUCTION.read_text())
    key = tmp_path / "production.key"
    config["keys"]["path"] = str(key)
    if key_mode is not None:
        key.write_text("00" * 32 + "\n")
        key.chmod(key_mode)
    for section, value in changes.items():
        if isinstance(value, dict):
            config.setdefault(section, {}).update(value)
        else:
            config[section] = value
    path = tmp_path / "production.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["--validate-config", *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_production_example_is_valid_with_warnings_only(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "--config", str(PRODUCTION))
    assert (code, err) == (0, "")
    assert out.splitlines() == [
        f"{PRODUCTION}: valid",
        "chain        hyperevm (chain id 999), block gas limit 2000000, pending feed off",
        "rpc          hyperliquid-official: https://rpc.hyperliquid.xyz/*** (1.6 req/s, pool 4)",
        "             hyperevm-runbook: https://rpc.hyperevm.org (1.6 req/s, pool 4)",
        "nats         nats://nats:4222 (external)",
        "services     host 0.0.0.0 (one port set per container), ports health/metrics:",
        "             ingest 8080/9090, detect 8080/9090, simulate 8080/9090, submit 8080/9090",
        "strategies   cyclic_arbitrage: min_profit 0.001 ether, max_gas_price 10 gwei, max_hops 3",
        "             cross_dex_arbitrage: min_profit 0.001 ether, max_gas_price 10 gwei, "
        "max_hops 2",
        "             backrun: disabled",
        "performance  simulation_concurrency 16, decision_timeout_ms 250",
        "mempool      max_pending_transactions 10000",
        "contracts    executor 0x0000000000000000000000000000000000000001; "
        "dexes: hyperswap_v2, second_v2_dex",
        "database     /data/mev-bot.db",
        "key          /app/keys/production.key (missing)",
        "warning: keys.path /app/keys/production.key does not exist (needed to sign bundles)",
        "warning: contracts.executor 0x0000000000000000000000000000000000000001 is a "
        "placeholder: set the real address",
        "warning: contracts.dexes[1].factory 0x0000000000000000000000000000000000000002 is a "
        "placeholder: set the real address",
    ]


def test_negative_simulation_concurrency_exits_2_naming_the_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = production_copy(tmp_path, performance={"simulation_concurrency": -1})
    assert run(capsys, "--config", str(path)) == (
        2,
        "",
        f"{path}: performance.simulation_concurrency: got -1; expected a number >= 1\n",
    )


def test_every_problem_is_one_stderr_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = production_copy(
        tmp_path,
        performance={"simulation_concurrency": 0},
        mempool={"max_pending_transactions": "lots"},
        extra_section={"a": 1},
    )
    code, out, err = run(capsys, "--config", str(path))
    assert (code, out) == (2, "")
    assert err.splitlines() == [
        f"{path}: performance.simulation_concurrency: got 0; expected a number >= 1",
        f"{path}: mempool.max_pending_transactions: got 'lots'; expected an integer",
        f"{path}: extra_section: unknown key; expected one of chain, nats, services, "
        "performance, mempool, strategies, contracts, detect, simulate, submit, database, keys, "
        "logging, devnet",
    ]


def test_broken_yaml_exits_2_with_line_number(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("chain:\n  name: [unclosed\nnats: {}\n")
    assert run(capsys, "--config", str(path)) == (
        2,
        "",
        f"{path}: not valid YAML at line 3, column 5: expected ',' or ']', but got ':'\n",
    )


def test_missing_config_file_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "absent.yaml"
    assert run(capsys, "--config", str(path)) == (
        2,
        "",
        f"{path}: file not found: pass --config PATH or set MEV_CONFIG\n",
    )


def test_mev_config_env_is_used_without_flag(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    path = production_copy(tmp_path, performance={"decision_timeout_ms": -5})
    monkeypatch.setenv("MEV_CONFIG", str(path))
    assert run(capsys) == (
        2,
        "",
        f"{path}: performance.decision_timeout_ms: got -5; expected a number >= 1\n",
    )


def test_invalid_env_override_exits_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    path = production_copy(tmp_path, key_mode=0o600)
    monkeypatch.setenv("MEV_PERFORMANCE__SIMULATION_CONCURRENCY", "abc")
    assert run(capsys, "--config", str(path)) == (
        2,
        "",
        f"{path}: performance.simulation_concurrency: got 'abc' "
        "(from MEV_PERFORMANCE__SIMULATION_CONCURRENCY); expected an integer\n",
    )


@pytest.mark.parametrize("mode", [0o600, 0o400])
def test_private_key_file_is_accepted(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], mode: int
) -> None:
    path = production_copy(tmp_path, key_mode=mode)
    code, out, err = run(capsys, "--config", str(path))
    assert (code, err) == (0, "")
    key_line = f"key          {tmp_path / 'production.key'} (present, mode {mode:04o})"
    assert key_line in out.splitlines()
    assert "keys.path" not in out


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604])
def test_key_file_readable_by_others_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], mode: int
) -> None:
    path = production_copy(tmp_path, key_mode=mode)
    key = tmp_path / "production.key"
    assert run(capsys, "--config", str(path)) == (
        2,
        "",
        f"{path}: keys.path: got {key} with mode {mode:04o}; expected 0600 or stricter "
        f"(other users could read the key: chmod 600 {key})\n",
    )


def test_key_path_that_is_a_directory_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = production_copy(tmp_path, keys={"path": str(tmp_path)})
    assert run(capsys, "--config", str(path)) == (
        2,
        "",
        f"{path}: keys.path: got {tmp_path} (not a regular file); expected a key file\n",
    )


def test_summary_never_shows_an_rpc_token(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = yaml.safe_load(PRODUCTION.read_text())
    config["chain"]["rpc_endpoints"][1]["url"] = "https://user:pw@rpc.example.org/v2/T0kenT0ken"
    path = tmp_path / "production.yaml"
    path.write_text(yaml.safe_dump(config))
    code, out, err = run(capsys, "--config", str(path))
    assert (code, err) == (0, "")
    assert "             hyperevm-runbook: https://***@rpc.example.org/*** (1.6 req/s, pool 4)" in (
        out.splitlines()
    )
    assert "T0kenT0ken" not in out
    assert "pw@" not in out


def test_backrun_without_pending_feed_is_a_warning(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = yaml.safe_load(PRODUCTION.read_text())
    config["strategies"]["backrun"]["enabled"] = True
    path = tmp_path / "production.yaml"
    path.write_text(yaml.safe_dump(config))
    code, out, err = run(capsys, "--config", str(path))
    assert (code, err) == (0, "")
    assert (
        "warning: strategies.backrun is enabled but chain.pending_feed is false: it will find "
        "nothing"
    ) in out.splitlines()


def test_every_lane_key_is_checked_like_the_main_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """keys.lanes 3: lane 1's key (beside keys.path) is private, lane 2's readable by others."""
    path = production_copy(tmp_path, key_mode=0o600, keys={"lanes": 3})
    lane1, lane2 = tmp_path / "production.lane1.key", tmp_path / "production.lane2.key"
    for key, mode, secret in ((lane1, 0o600, "11" * 32), (lane2, 0o644, "22" * 32)):
        key.write_text(secret + "\n")
        key.chmod(mode)
    assert run(capsys, "--config", str(path)) == (
        2,
        "",
        f"{path}: keys.lanes (lane 2 of 3): got {lane2} with mode 0644; expected 0600 or "
        f"stricter (other users could read the key: chmod 600 {lane2})\n",
    )
    lane2.chmod(0o600)
    code, out, err = run(capsys, "--config", str(path))
    assert (code, err) == (0, "")
    # each lane's address (what setTrader must name), never its key
    address1, address2 = (Account.from_key(bytes.fromhex(k * 32)).address for k in ("11", "22"))
    assert f"lane 1 key   {lane1} (present, mode 0600, address {address1})" in out.splitlines()
    assert f"lane 2 key   {lane2} (present, mode 0600, address {address2})" in out.splitlines()
    assert "11" * 32 not in out and "22" * 32 not in out
    lane2.unlink()  # missing: a warning, like a missing keys.path
    code, out, err = run(capsys, "--config", str(path))
    assert (code, err) == (0, "")
    assert f"lane 2 key   {lane2} (missing)" in out.splitlines()


def test_two_lanes_on_one_key_exit_2_naming_both_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Submit refuses two lanes on one key at start-up; --validate-config, which the runbook
    runs first, must too: lane 1 holds the hot key (keys.path), lane 3 lane 2's key (one of
    them as a keystore, told by its `address` field). Addresses are named, never a key."""
    path = production_copy(tmp_path, keys={"lanes": 4})
    hot, lane1, lane2, lane3 = (
        tmp_path / f"production{s}.key" for s in ("", ".lane1", ".lane2", ".lane3")
    )
    keystore = Account.encrypt("22" * 32, "pw", kdf="pbkdf2", iterations=2)
    for key, text in ((hot, "11" * 32), (lane1, "0x" + "11" * 32), (lane2, "22" * 32)):
        key.write_text(text + "\n")
    lane3.write_text(json.dumps(keystore))
    for key in (hot, lane1, lane2, lane3):
        key.chmod(0o600)
    address1, address2 = (Account.from_key(bytes.fromhex(k * 32)).address for k in ("11", "22"))
    fix = (
        "two lanes on one key share one nonce sequence and submit refuses to start; write a "
        "new key to {0} (openssl rand -hex 32, chmod 600), fund it and name it a trader "
        "(python -m mev_ops.rotate --traders-only), or lower keys.lanes"
    )
    code, out, err = run(capsys, "--config", str(path))
    assert (code, out) == (2, "")
    assert err.splitlines() == [
        f"{path}: keys.lanes: lane 1's key file {lane1} holds the same key as {hot} "
        f"(keys.path, the hot key), address {address1}: " + fix.format(lane1),
        f"{path}: keys.lanes: lane 3's key file {lane3} holds the same key as {lane2} "
        f"(lane 2's key), address {address2}: " + fix.format(lane3),
    ]
    assert "11" * 32 not in err and "22" * 32 not in err
    lane1.write_text("33" * 32 + "\n")
    lane3.write_text("44" * 32 + "\n")
    code, out, err = run(capsys, "--config", str(path))
    assert (code, err) == (0, "")


def keystore_lanes(tmp_path: Path, **keys: object) -> tuple[Path, list[Path]]:
    """keys.lanes 3: a hex hot key, lanes 1 and 2 two keystores of ONE key (each encrypted
    apart, so salts differ) without the `address` field eth_account writes."""
    path = production_copy(tmp_path, keys={"lanes": 3, **keys})
    files = [tmp_path / f"production{s}.key" for s in ("", ".lane1", ".lane2")]
    files[0].write_text("11" * 32 + "\n")
    for lane in files[1:]:
        keystore = Account.encrypt("22" * 32, "pw", kdf="pbkdf2", iterations=2)
        del keystore["address"]
        lane.write_text(json.dumps(keystore))
    for key in files:
        key.chmod(0o600)
    return path, files


@pytest.mark.parametrize("where", ["password_file", "password_env"])
def test_two_keystores_of_one_key_without_an_address_are_decrypted_and_told_apart(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, where: str
) -> None:
    """With the keystore password at hand (keys.password_file or keys.password_env), the two
    address-less keystores are decrypted: lane 2 holds lane 1's key, exit 2."""
    password = tmp_path / "keystore.pw"
    password.write_text("pw\n")
    password.chmod(0o600)
    monkeypatch.setenv("MEV_TEST_KEYSTORE_PW", "pw")
    setting = str(password) if where == "password_file" else "MEV_TEST_KEYSTORE_PW"
    path, (_, lane1, lane2) = keystore_lanes(tmp_path, **{where: setting})
    address = Account.from_key(bytes.fromhex("22" * 32)).address
    code, out, err = run(capsys, "--config", str(path))
    assert (code, out) == (2, "")
    assert err.splitlines() == [
        f"{path}: keys.lanes: lane 2's key file {lane2} holds the same key as {lane1} "
        f"(lane 1's key), address {address}: two lanes on one key share one nonce sequence "
        f"and submit refuses to start; write a new key to {lane2} (openssl rand -hex 32, "
        "chmod 600), fund it and name it a trader (python -m mev_ops.rotate --traders-only), "
        "or lower keys.lanes"
    ]
    assert "22" * 32 not in err


def test_keystores_without_an_address_or_a_password_are_named_as_not_checked(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """No password configured: the two keystores cannot be told apart; each is named in a
    warning that says so and how to add the address field (exit 0: nothing is known wrong)."""
    path, (_, lane1, lane2) = keystore_lanes(tmp_path)
    code, out, err = run(capsys, "--config", str(path))
    assert (code, err) == (0, "")
    warnings = [line for line in out.splitlines() if line.startswith("warning: keys.lanes")]
    assert warnings == [
        f"warning: keys.lanes: lane {lane}'s key file {key} was not compared with the other "
        "lanes' keys (two lanes on one key make submit refuse to start): it is a keystore "
        "without an `address` field and no keystore password is configured "
        "(keys.password_env, keys.password_file); add its address to the file "
        '(`"address": "<40 hex>"`, as geth and eth_account write it) or make its password '
        "available here (keys.password_env set, or keys.password_file)"
        for lane, key in ((1, lane1), (2, lane2))
    ]


def test_a_keystore_the_configured_password_does_not_open_is_named_as_not_checked(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    password = tmp_path / "keystore.pw"
    password.write_text("not-pw\n")
    password.chmod(0o600)
    path, (_, lane1, lane2) = keystore_lanes(tmp_path, password_file=str(password))
    code, out, err = run(capsys, "--config", str(path))
    assert (code, err) == (0, "")
    warnings = [line for line in out.splitlines() if line.startswith("warning: keys.lanes")]
    assert [w.split(": it is a keystore without an `address` field and ")[1] for w in warnings] == [
        f"it could not be decrypted here: key file {key}: wrong keystore password; add its "
        'address to the file (`"address": "<40 hex>"`, as geth and eth_account write it) or '
        "make its password available here (keys.password_env set, or keys.password_file)"
        for key in (lane1, lane2)
    ]
