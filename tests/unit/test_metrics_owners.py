"""Metric ownership (issue 15): each service's /metrics serves its own metrics and the shared
ones, so a scrape of the wrong port has no series rather than a misleading 0."""

from __future__ import annotations

from mev_common import metrics
from prometheus_client import generate_latest

SERVICES = ("ingest", "detect", "simulate", "submit")


def families(service: str) -> set[str]:
    """Family names in the scrape (TYPE says `<name>_total` for a counter, `_info` for info)."""
    text = generate_latest(metrics.registry_for(service)).decode()
    return {
        line.split()[2].removesuffix("_total").removesuffix("_info")
        for line in text.splitlines()
        if line.startswith("# TYPE ")
    }


def test_each_owned_metric_is_served_by_its_owner_only() -> None:
    served = {s: families(s) for s in SERVICES}
    for owner, owned in metrics.OWNED_BY.items():
        for metric in owned:
            holders = {s for s in SERVICES if metric._name in served[s]}
            assert holders == {owner}, metric._name


def test_shared_metrics_are_served_by_every_service() -> None:
    shared = [m._name for m in metrics.all_metrics() if metrics.owner_of(m) is None]
    assert {"mev_bot_status", "mev_bot_nats_connected", "mev_bot_rpc_requests"} <= set(shared)
    for service in SERVICES:
        assert set(shared) <= families(service)


def test_the_wrong_port_has_no_bundle_success_rate_and_gas_price_is_submits() -> None:
    assert "mev_bot_bundle_success_rate" not in families("ingest")
    assert "mev_bot_profit_eth_per_hour" not in families("detect")
    assert metrics.owner_of(metrics.GAS_PRICE) == "submit"
    assert "base fee + priority fee" in metrics.GAS_PRICE._documentation


def test_sim_and_submit_latency_serve_both_triggers_from_the_start() -> None:
    """Dashboards and alerts sum them `by (le)`; the status line and bench split by trigger."""
    for service, name in (
        ("simulate", "mev_bot_simulation_latency_seconds"),
        ("submit", "mev_bot_submission_latency_seconds"),
    ):
        text = generate_latest(metrics.registry_for(service)).decode()
        for trigger in ("pending", "block"):
            assert f'{name}_count{{trigger="{trigger}"}}' in text
        assert f"{name}_count{{" in text and f"{name}_count " not in text  # no unlabelled series
