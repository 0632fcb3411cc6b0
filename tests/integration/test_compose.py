"""deploy/compose without a Docker engine: `docker-compose config` accepts the file, every
service has health and metrics ports and a healthcheck, Prometheus scrapes every replica by
DNS, the alert rules pass `promtool test rules`, the dashboards equal their generator, every
panel query and alert rule parses with `promtool`, and every metric a rule or dashboard queries
is exported by a real running service."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import NatsEndpoint
from tests.support.stack import REPO, SERVICES, ServiceProcess, write_config

COMPOSE = REPO / "deploy/compose"
PROM = COMPOSE / "prometheus"


def need(binary: str) -> str:
    path = shutil.which(binary)
    if path is None:  # make setup installs it from deploy/apt-packages.txt
        pytest.skip(f"{binary} not installed (make setup installs it)")
    return path


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


def test_prometheus_scrapes_every_replica_by_dns(tmp_path: Path) -> None:
    config = yaml.safe_load((PROM / "prometheus.yml").read_text())
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert sorted(jobs) == sorted(SERVICES)
    for name, job in jobs.items():
        assert job["dns_sd_configs"] == [
            {"names": [name], "type": "A", "port": 9090, "refresh_interval": "15s"}
        ]
    # promtool checks the file as Prometheus will read it (the rules at their mounted path)
    shutil.copy(PROM / "alerts.yml", tmp_path / "alerts.yml")
    config["rule_files"] = [str(tmp_path / "alerts.yml")]
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
    subprocess.run(
        [need("promtool"), "check", "config", str(tmp_path / "prometheus.yml")],
        check=True, capture_output=True,
    )  # fmt: skip


def test_alert_rules_pass_their_unit_tests() -> None:
    out = subprocess.run(
        [need("promtool"), "test", "rules", "alerts.test.yml"],
        cwd=PROM, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert out.returncode == 0, out.stdout + out.stderr
    assert "SUCCESS" in out.stdout


def test_every_runbook_alert_has_a_rule() -> None:
    rules = yaml.safe_load((PROM / "alerts.yml").read_text())
    names = {r["alert"] for g in rules["groups"] for r in g["rules"]}
    assert names >= {
        "MevBotDown", "DetectionLatencyHigh", "SimulationLatencyHigh", "ThroughputLow",
        "BundleSuccessLow", "ErrorRateHigh", "MemoryHigh", "RpcRateLimited", "ConsumerLagHigh",
        "EmergencyStopActive", "SimulatorDisagreement", "ConsumerStalled",
    }  # fmt: skip


def generator() -> Any:
    spec = importlib.util.spec_from_file_location(
        "grafana_generate", COMPOSE / "grafana/generate.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_committed_dashboards_equal_the_generator() -> None:
    rendered = generator().render()
    assert sorted(rendered) == ["pipeline.json", "pnl.json", "rpc.json"]
    for name, text in rendered.items():
        assert (COMPOSE / "grafana/dashboards" / name).read_text() == text, (
            f"run: python deploy/compose/grafana/generate.py ({name} is stale)"
        )


def panel_queries() -> list[tuple[str, str]]:
    """(dashboard file / panel / refId, PromQL) of every target of every committed dashboard."""
    found = []
    for path in sorted((COMPOSE / "grafana/dashboards").glob("*.json")):
        for panel in json.loads(path.read_text())["panels"]:
            for target in panel["targets"]:
                found.append(
                    (f"{path.name} / {panel['title']} / {target['refId']}", target["expr"])
                )
    return found


def promtool_check_rules(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [need("promtool"), "check", "rules", str(path)], capture_output=True, text=True, check=False
    )


def test_every_panel_query_and_alert_rule_parses_with_promtool(tmp_path: Path) -> None:
    """No Grafana or Prometheus server runs here: promtool's parser is the judge. Each panel
    query becomes a recording rule of a temporary rule file; the alert rules are checked as
    they are. The counts make sure promtool read every one."""
    queries = panel_queries()
    assert len(queries) == len({where for where, _ in queries}) >= 30
    rules = [{"record": f"panel_query_{i}", "expr": expr} for i, (_, expr) in enumerate(queries)]
    panels = tmp_path / "panels.yml"
    panels.write_text(yaml.safe_dump({"groups": [{"name": "panels", "rules": rules}]}))
    out = promtool_check_rules(panels)
    where = "\n".join(f"panel_query_{i}: {w}" for i, (w, _) in enumerate(queries))
    assert out.returncode == 0, f"{out.stdout}{out.stderr}\n{where}"
    assert f"SUCCESS: {len(queries)} rules found" in out.stdout

    alerts = yaml.safe_load((PROM / "alerts.yml").read_text())
    count = sum(len(g["rules"]) for g in alerts["groups"])
    out = promtool_check_rules(PROM / "alerts.yml")
    assert out.returncode == 0, out.stdout + out.stderr
    assert f"SUCCESS: {count} rules found" in out.stdout

    # and the check can fail: one unbalanced parenthesis is refused, naming the query
    broken = [*rules[:1], {"record": "panel_query_broken", "expr": "sum(rate(mev_bot_x[5m])"}]
    panels.write_text(yaml.safe_dump({"groups": [{"name": "panels", "rules": broken}]}))
    out = promtool_check_rules(panels)
    assert out.returncode == 1, out.stdout
    assert '"panel_query_broken": could not parse expression' in out.stderr, out.stderr


# ---- every referenced metric is exported -------------------------------------------------

_METRIC = re.compile(r"\b((?:mev_bot|process)_[a-z0-9_]+)")


def referenced_metrics() -> set[str]:
    exprs = [
        r["expr"]
        for g in yaml.safe_load((PROM / "alerts.yml").read_text())["groups"]
        for r in g["rules"]
    ]
    for path in sorted((COMPOSE / "grafana/dashboards").glob("*.json")):
        for panel in json.loads(path.read_text())["panels"]:
            exprs.extend(t["expr"] for t in panel["targets"])
    return {m for e in exprs for m in _METRIC.findall(e)}


def exported_series(text: str) -> set[str]:
    """Series names a scrape can contain, from the # TYPE lines (labelled metrics that have not
    been used yet have a TYPE line but no sample)."""
    names: set[str] = set()
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split()
            if kind == "histogram":
                names |= {f"{name}_bucket", f"{name}_sum", f"{name}_count"}
            else:
                names.add(name)
    return names


@pytest.fixture(scope="module")
def running_services(
    nats_server: NatsEndpoint, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, str]]:
    tmp = tmp_path_factory.mktemp("compose-metrics")
    config = write_config(tmp, nats_server.url, 4343)
    ports = yaml.safe_load(config.read_text())["services"]
    procs = [ServiceProcess(n, config, tmp / f"{n}.log").start() for n in SERVICES]
    try:
        scrapes: dict[str, str] = {}
        for proc in procs:
            url = f"http://127.0.0.1:{ports[proc.name]['metrics_port']}/metrics"
            scrapes[proc.name] = scrape(url, proc)
        yield scrapes
    finally:
        for proc in procs:
            proc.stop()


def scrape(url: str, proc: ServiceProcess, timeout_s: float = 30.0) -> str:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        assert proc.proc is not None and proc.proc.poll() is None, proc.logs()
        try:
            with urllib.request.urlopen(url, timeout=1) as resp:
                return resp.read().decode()
        except OSError:
            time.sleep(0.1)
    raise AssertionError(f"{proc.name}: no /metrics at {url}\n{proc.logs()}")


def test_every_metric_in_rules_and_dashboards_is_exported(
    running_services: dict[str, str],
) -> None:
    exported = set().union(*(exported_series(t) for t in running_services.values()))
    referenced = referenced_metrics()
    assert len(referenced) > 20
    assert sorted(referenced - exported) == []


def test_owned_metrics_are_exported_by_their_owner_only(
    running_services: dict[str, str],
) -> None:
    """No confident zero from the wrong port: a metric one service owns (bundle success rate,
    gas price, mempool size...) is in its owner's scrape and in no other (issue 15)."""
    from mev_common import metrics

    series = {name: exported_series(text) for name, text in running_services.items()}
    for owner, owned in metrics.OWNED_BY.items():
        for metric in owned:
            name = metric._name  # the family name; counters add _total
            kinds = {n for n in series[owner] if n == name or n.startswith(f"{name}_")}
            assert kinds, f"{name} not exported by its owner {owner}"
            for other in set(series) - {owner}:
                leaked = {n for n in series[other] if n == name or n.startswith(f"{name}_")}
                assert leaked == set(), f"{other} exports {owner}'s {leaked}"
    assert "mev_bot_bundle_success_rate" not in series["ingest"]
    assert "mev_bot_gas_price" in series["submit"]
