"""Monitoring as shipped in deploy/compose, without a Docker engine: Prometheus scrapes every
replica by DNS, the alert rules pass `promtool test rules`, the dashboards equal their
generator, every panel query and alert rule parses with `promtool`, and every metric a rule or
dashboard queries is exported by a real running service."""

from __future__ import annotations

import importlib.util
import json
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
from tests.support.compose_files import COMPOSE, PROM, need
from tests.support.stack import SERVICES, ServiceProcess, stop_all, write_config


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
        stop_all(procs)


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
