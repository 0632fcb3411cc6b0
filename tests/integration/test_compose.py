"""deploy/compose without a Docker engine: `docker-compose config` accepts the file, every
service has health and metrics ports and a healthcheck, volumes, credentials and the cluster
profile are as the runbook needs them (monitoring: test_monitoring.py)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.compose_files import COMPOSE, PROM, need
from tests.support.stack import REPO, SERVICES


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    out = subprocess.run(
        [need("docker-compose"), "-f", str(COMPOSE / "docker-compose.yml"), "--profile", "devnet",
         "config"],
        capture_output=True, text=True, check=True, cwd=COMPOSE,
    )  # fmt: skip
    return yaml.safe_load(out.stdout)


def test_compose_has_every_service_and_the_devnet_profile(compose: dict[str, Any]) -> None:
    assert sorted(compose["services"]) == sorted(
        [*SERVICES, "nats", "nats-box", "operator", "prometheus", "alertmanager", "grafana",
         "anvil", "devnet-deploy", "flow", "nats-1", "nats-2", "nats-3"]
    )  # fmt: skip
    for name in ("anvil", "devnet-deploy", "flow"):
        assert compose["services"][name]["profiles"] == ["devnet"]
    for name in ("nats-1", "nats-2", "nats-3"):
        assert compose["services"][name]["profiles"] == ["cluster"]


@pytest.mark.parametrize("name", SERVICES)
def test_service_ports_health_and_startup_order(compose: dict[str, Any], name: str) -> None:
    svc = compose["services"][name]
    assert sorted(svc["expose"]) == ["8080", "9090"]
    assert svc["healthcheck"]["test"][-1].endswith(
        "urlopen('http://127.0.0.1:8080/health', timeout=2)"
    )
    assert svc["depends_on"] == {
        "nats": {"condition": "service_healthy"},
        "operator": {"condition": "service_healthy"},
    }
    assert svc["restart"] == "on-failure"  # --shutdown-graceful exits 0 and stays down
    assert svc["command"] == ["python", "-m", f"services.{name}"]


@pytest.mark.parametrize("name", ["detect", "simulate"])
def test_scaled_services_have_no_fixed_name_or_host_port(
    compose: dict[str, Any], name: str
) -> None:
    svc = compose["services"][name]
    assert "container_name" not in svc
    assert "ports" not in svc


def mounts(service: dict[str, Any]) -> dict[str, tuple[str, str]]:
    """target -> (source, mode); docker-compose 1.x prints short `src:target:mode` strings."""
    found: dict[str, tuple[str, str]] = {}
    for volume in service.get("volumes", []):
        if isinstance(volume, dict):
            mode = "ro" if volume.get("read_only") else "rw"
            found[volume["target"]] = (volume["source"], mode)
        else:
            source, target, *mode = volume.split(":")
            found[target] = (source, mode[0] if mode else "rw")
    return found


def test_key_read_only_ledger_and_nats_on_volumes(compose: dict[str, Any]) -> None:
    submit = mounts(compose["services"]["submit"])
    assert submit["/app/keys"][1] == "ro"
    assert submit["/data"] == ("data", "rw")
    for name in ("ingest", "detect", "simulate"):  # they read the devnet deployment only
        assert mounts(compose["services"][name])["/data"] == ("data", "ro")
        assert "/app/keys" not in mounts(compose["services"][name])
    nats = compose["services"]["nats"]
    assert nats["command"] == ["-c", "/etc/nats/nats-server.conf"]
    assert mounts(nats)["/data"] == ("nats-data", "rw")
    assert sorted(compose["volumes"]) == [
        "alertmanager-data", "data", "grafana-data", "nats-1-data", "nats-2-data", "nats-3-data",
        "nats-data", "prometheus-data",
    ]  # fmt: skip
    for name in SERVICES:  # one NATS, one replica, unless cluster.env says otherwise
        env = compose["services"][name]["environment"]
        assert json.loads(env["MEV_NATS__URLS"]) == ["nats://nats:4222"]
        assert str(env["MEV_NATS__REPLICAS"]) == "1"


def test_cluster_profile_runs_three_routed_servers_and_r3(tmp_path: Path) -> None:
    out = subprocess.run(
        [need("docker-compose"), "-f", str(COMPOSE / "docker-compose.yml"), "--env-file",
         str(COMPOSE / "cluster.env"), "--profile", "cluster", "config"],
        capture_output=True, text=True, check=True, cwd=COMPOSE,
    )  # fmt: skip
    config = yaml.safe_load(out.stdout)
    nodes = ["nats-1", "nats-2", "nats-3"]
    for node in nodes:
        svc = config["services"][node]
        assert svc["profiles"] == ["cluster"]
        command = svc["command"]
        assert command[:2] == ["-c", "/etc/nats/nats-server.conf"]  # users and permissions too
        assert mounts(svc)["/etc/nats/auth.conf"][0].endswith("/nats-auth/auth.conf")
        assert command[command.index("--name") + 1] == node
        assert command[command.index("--cluster_name") + 1] == "mev"
        routes = command[command.index("--routes") + 1].split(",")
        assert sorted(routes) == [f"nats://{n}:6222" for n in nodes if n != node]
        assert mounts(svc)["/data"] == (f"{node}-data", "rw")
    for name in SERVICES:
        env = config["services"][name]["environment"]
        assert json.loads(env["MEV_NATS__URLS"]) == [f"nats://{n}:4222" for n in nodes]
        assert str(env["MEV_NATS__REPLICAS"]) == "3"


def test_alerts_reach_alertmanager_and_its_webhook(compose: dict[str, Any]) -> None:
    prom = yaml.safe_load((PROM / "prometheus.yml").read_text())
    targets = prom["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"]
    assert targets == ["alertmanager:9093"]
    am = compose["services"]["alertmanager"]
    assert mounts(am)["/etc/alertmanager/alertmanager.yml"] == (
        str(COMPOSE / "alertmanager/alertmanager.yml"),
        "ro",
    )
    config = yaml.safe_load((COMPOSE / "alertmanager/alertmanager.yml").read_text())
    receivers = {r["name"]: r for r in config["receivers"]}
    assert config["route"]["receiver"] in receivers
    hooks = receivers[config["route"]["receiver"]]["webhook_configs"]
    assert hooks and hooks[0]["url"].startswith("http") and hooks[0]["send_resolved"] is True
    amtool = shutil.which("amtool")
    if amtool:
        subprocess.run(
            [amtool, "check-config", str(COMPOSE / "alertmanager/alertmanager.yml")], check=True
        )


def test_nats_box_has_the_operator_credential(compose: dict[str, Any]) -> None:
    box = compose["services"]["nats-box"]
    assert box["environment"]["NATS_NKEY"] == "/app/nats-auth/operator.nk"  # the CLI's --nkey
    assert box["environment"]["NATS_URL"] == "nats://nats:4222"
    assert mounts(box)["/app/nats-auth/operator.nk"] == (
        str(COMPOSE / "nats-auth/operator.nk"),
        "ro",
    )


def test_each_service_mounts_only_its_own_nats_credential(compose: dict[str, Any]) -> None:
    """Issue 11: a container holds one NATS user's seed; the operator's only in `operator` and
    the `nats-box` tools container (issue 17: the real NATS CLI as the operator)."""
    production = yaml.safe_load((REPO / "config/production.yaml").read_text())
    devnet = yaml.safe_load((COMPOSE / "devnet.yaml").read_text())
    creds_dir = production["nats"]["credentials_dir"]
    assert devnet["nats"]["credentials_dir"] == creds_dir
    owners = {**{name: name for name in SERVICES}, "operator": "operator", "nats-box": "operator"}
    for name, svc in compose["services"].items():
        seeds = {t: src for t, (src, _) in mounts(svc).items() if t.endswith(".nk")}
        if name not in owners:
            assert seeds == {}, name
            continue
        user = owners[name]
        target = f"{creds_dir}/{user}.nk"
        assert list(seeds) == [target], name
        assert seeds[target].endswith(f"/nats-auth/{user}.nk")
        assert mounts(svc)[target][1] == "ro"
        assert "MEV_NATS__CREDENTIALS_FILE" not in svc.get("environment", {})  # no env secrets
    nats = mounts(compose["services"]["nats"])
    assert nats["/etc/nats/auth.conf"][0].endswith("/nats-auth/auth.conf")
    assert nats["/etc/nats/nats-server.conf"][0].endswith("/nats/nats-server.conf")


def test_the_shipped_nats_config_with_generated_users_is_valid(tmp_path: Path) -> None:
    """`mev-bot nats-auth init` writes the seeds and auth.conf; nats-server accepts the
    committed nats-server.conf with it (`-t`: test the config and exit)."""
    from mev_common.nats_auth import USERS, permissions
    from mev_ops.nats_server import nats_server_binary

    auth = tmp_path / "nats-auth"
    init = subprocess.run(
        ["mev-bot", "nats-auth", "init", "--dir", str(auth)],
        capture_output=True, text=True, cwd=REPO, check=False,
        env={**os.environ, "PATH": f"{REPO}/.venv/bin:{os.environ.get('PATH', '')}"},
    )  # fmt: skip
    assert init.returncode == 0, init.stderr
    conf_text = (auth / "auth.conf").read_text()
    for user in USERS:
        assert f"# {user}" in conf_text
        assert f"{user}.nk" in init.stdout and "mode 600" in init.stdout
        for subject in permissions(user).publish:
            assert f'"{subject}"' in conf_text
    shutil.copy(COMPOSE / "nats/nats-server.conf", tmp_path / "nats-server.conf")
    shutil.copy(auth / "auth.conf", tmp_path / "auth.conf")
    conf = tmp_path / "nats-server.conf"
    conf.write_text(conf.read_text().replace('"/data"', f'"{tmp_path / "store"}"'))
    check = subprocess.run(
        [nats_server_binary(), "-t", "-c", str(conf)], capture_output=True, text=True, check=False
    )
    assert check.returncode == 0, check.stdout + check.stderr


def test_dockerfile_slim_non_root_cli_and_healthcheck() -> None:
    text = (COMPOSE / "Dockerfile").read_text()
    assert "FROM python:3.11-slim AS base" in text
    assert "USER mev" in text
    assert "test -x /usr/local/bin/mev-bot" in text
    assert "HEALTHCHECK --interval=10s" in text
