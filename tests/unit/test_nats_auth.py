"""The permission model of DESIGN §2 as data, credential files and client options (no server:
tests/security/test_bus_permissions.py runs the same config against a real nats-server)."""

from __future__ import annotations

import ast
import os
import stat
from pathlib import Path

import pytest
from mev_common import nats_auth
from mev_common.nats_auth import NatsAuthError, connect_options, permissions
from mev_common.settings import NatsSettings
from pydantic import ValidationError

from services.submit import lease

REPO = Path(__file__).resolve().parents[2]


def test_only_simulate_and_submit_may_publish_bundles_and_only_the_operator_control_keys() -> None:
    bundles = "mev.*.bundles"  # submit: the copy of a bundle it hands back (hand_back.py)
    publishers = [u for u in nats_auth.USERS if bundles in permissions(u).publish]
    assert publishers == ["simulate", "submit"]
    for user in nats_auth.SERVICES:
        publish = permissions(user).publish
        assert not any(s.startswith("$KV.mev-control.*.") and "emergency_stop" == s.split(".")[-1]
                       for s in publish)  # fmt: skip
        assert "$KV.>" not in publish and "$JS.API.>" not in publish
        assert not any("STREAM.DELETE" in s or "STREAM.PURGE" in s or "STREAM.CREATE" in s
                       or "STREAM.UPDATE" in s for s in publish)  # fmt: skip
        assert f"$KV.mev-control.*.instances.{user}.>" in publish
        assert f"mev.*.dead.{user}" in publish
        assert permissions(user).subscribe[0] == f"_INBOX_{user}.>"
    assert "$KV.>" in permissions("operator").publish
    assert not any(s.startswith("mev.") for s in permissions("operator").publish)


def test_acks_follow_the_service_that_applies_each_control_key() -> None:
    from mev_ops import control_cmds

    commands = [control_cmds.EMERGENCY_STOP, control_cmds.RPC_RATE, control_cmds.RPC_POOL,
                control_cmds.RESET_NONCE]  # fmt: skip
    for command in commands:
        ack = f"$KV.mev-control.*.ack.{command.key}.>"
        owners = [u for u in nats_auth.USERS if ack in permissions(u).publish]
        assert owners == list(command.acked_by)


def test_lease_bucket_matches_the_submit_lease() -> None:
    assert (nats_auth.LEASE_BUCKET, nats_auth.LEASE_TTL_S) == (
        lease.LEASE_BUCKET,
        lease.LEASE_TTL_S,
    )


def test_unknown_user_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown NATS user 'mallory'"):
        permissions("mallory")


def test_credentials_are_private_reused_and_rotated_one_at_a_time(tmp_path: Path) -> None:
    auth = tmp_path / "auth"
    first = {u: p.read_bytes() for u, p in nats_auth.ensure_credentials(auth).items()}
    assert sorted(first) == sorted(nats_auth.USERS)
    assert all(stat.S_IMODE(nats_auth.seed_path(auth, u).stat().st_mode) == 0o600 for u in first)
    assert nats_auth.ensure_credentials(auth) and all(
        nats_auth.seed_path(auth, u).read_bytes() == first[u] for u in first
    )
    old_conf = (auth / "auth.conf").read_text()
    old_key = nats_auth.public_key(nats_auth.seed_path(auth, "detect"))
    nats_auth.rotate(auth, "detect")
    new_key = nats_auth.public_key(nats_auth.seed_path(auth, "detect"))
    conf = (auth / "auth.conf").read_text()
    assert new_key != old_key and new_key in conf and old_key not in conf and old_key in old_conf
    assert nats_auth.seed_path(auth, "ingest").read_bytes() == first["ingest"]
    assert not any(seed.decode().strip() in conf for seed in first.values())


def test_connect_options(tmp_path: Path) -> None:
    assert connect_options(NatsSettings(), "detect") == {}
    auth = tmp_path / "auth"
    nats_auth.ensure_credentials(auth)
    options = connect_options(NatsSettings(credentials_dir=str(auth)), "detect")
    assert options == {"nkeys_seed": str(auth / "detect.nk"), "inbox_prefix": "_INBOX_detect"}
    one = NatsSettings(credentials_dir=str(auth), credentials_file=str(auth / "submit.nk"))
    assert connect_options(one, "detect")["inbox_prefix"] == "_INBOX_submit"
    with pytest.raises(NatsAuthError, match="mev-bot nats-auth init"):
        connect_options(NatsSettings(credentials_dir=str(tmp_path / "none")), "detect")
    os.chmod(auth / "detect.nk", 0o644)
    with pytest.raises(NatsAuthError, match="chmod 600"):
        connect_options(NatsSettings(credentials_dir=str(auth)), "detect")


def test_tls_settings_are_checked() -> None:
    with pytest.raises(ValidationError, match="cert_file and key_file together"):
        NatsSettings(tls={"cert_file": "c.pem"})
    assert connect_options(NatsSettings(url="tls://nats:4222"), "detect")["tls"] is not None
    with pytest.raises(
        NatsAuthError, match=r"nats\.tls\.ca_file: file /nonexistent\.pem not found"
    ):
        connect_options(NatsSettings(tls={"ca_file": "/nonexistent.pem"}), "detect")


def test_a_seed_is_masked_wherever_it_appears(tmp_path: Path) -> None:
    seed = nats_auth.new_seed().decode()
    assert nats_auth.mask_secrets(f"failed with {seed}!") == "failed with S***!"
    with pytest.raises(ValidationError) as info:
        NatsSettings(credentials_file=seed)
    assert "not the seed itself" in str(info.value)


def _stages_in(path: Path) -> set[str]:
    """Stage names a service gives its durable input: `Consume("<stage>", ...)`."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if not isinstance(node, ast.Call):
            continue
        if getattr(node.func, "id", None) != "Consume" or not node.args:
            continue
        stage = node.args[0]
        if isinstance(stage, ast.Constant) and isinstance(stage.value, str):
            found.add(stage.value)
    return found


CONSUMING = {"detect", "simulate", "submit"}  # ingest only produces


@pytest.mark.parametrize("service", nats_auth.SERVICES)
def test_every_dead_letter_stage_of_a_service_is_permitted(service: str) -> None:
    """Its durable input's stage, and the service's own name (its ordered readers, e.g. the
    blocks, dead-letter under it: mev_common.stage)."""
    stages = _stages_in(REPO / "services" / service / "service.py")
    assert stages == ({service} if service in CONSUMING else set())
    publish = permissions(service).publish
    expected = stages | ({service} if service in CONSUMING else set())
    assert all(f"mev.*.dead.{stage}" in publish for stage in expected), expected


def test_only_submit_records_the_chain_genesis() -> None:
    """submit binds the control values to the chain instance it trades on (chain_binding)."""
    from services.submit.chain_binding import GENESIS

    key = f"$KV.mev-control.*.{GENESIS}"
    assert [u for u in nats_auth.USERS if key in permissions(u).publish] == ["submit"]
