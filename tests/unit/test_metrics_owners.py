"""Metric ownership (issue 15): each service's /metrics serves its own metrics and the shared
ones, so a scrape of the wrong port has no series rather than a misleading 0. docs/METRICS.md
lists every metric and every label value the code gives (read from the source), and nothing
else; README and docs name no metric that does not exist."""

from __future__ import annotations

import re
from typing import get_args

from mev_common import metrics
from mev_common.gc_watch import GENERATIONS
from mev_common.messages import OutcomeStatus
from prometheus_client import generate_latest

from services.simulate.service import SIM_BLOCK_HOPS, SIM_HOPS
from services.submit.limits import DAILY_LOSS, GAS_BUDGET, REVERTS, TX_COST
from services.submit.submitter import SUBMIT_HOPS
from tests.support.metric_labels import (
    REPO,
    LabelUse,
    doc_rows,
    exported_name,
    label_uses,
    matches,
)

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


# ---- docs/METRICS.md holds every metric and every label value the code gives ----------------

# Labels whose values the source scan cannot see (a tuple elsewhere, a message's Literal, a
# helper's return): their values, so these too are checked both ways.
KNOWN_ELSEWHERE: dict[tuple[str, str], tuple[str, ...]] = {
    ("mev_bot_hop_latency_seconds", "hop"): (*SIM_HOPS, *SIM_BLOCK_HOPS, *SUBMIT_HOPS),
    ("mev_bot_simulation_latency_seconds", "trigger"): ("pending", "block"),
    ("mev_bot_submission_latency_seconds", "trigger"): ("pending", "block"),
    ("mev_bot_detection_latency_seconds", "trigger"): ("pending", "block"),
    ("mev_bot_bundles_total", "outcome"): get_args(OutcomeStatus),
    ("mev_bot_safety_trip", "reason"): (TX_COST, GAS_BUDGET, DAILY_LOSS, REVERTS),
    ("mev_bot_rpc_requests_total", "status"): ("ok", "rpc_error", "429", "transport_error"),
    ("mev_bot_gc_pause_seconds", "generation"): GENERATIONS,
}


def test_every_metric_has_a_row_with_its_labels_and_no_row_is_left_over() -> None:
    rows = doc_rows()
    exported = {exported_name(m): m for m in metrics.all_metrics()}
    assert set(rows) == set(exported)
    for name, metric in exported.items():
        assert list(rows[name].labels) == list(metric._labelnames), name


def test_every_label_value_the_code_gives_is_documented_and_every_documented_one_is_given() -> None:
    rows, uses = doc_rows(), label_uses()
    for (name, label), values in KNOWN_ELSEWHERE.items():
        use = uses.setdefault((name, label), LabelUse())
        use.values |= set(values)
        use.dynamic = False
    for (name, label), use in uses.items():
        documented = rows[name].labels[label]
        for value in use.values:
            templated = "*" in value  # written `<what>` in the docs
            assert any(
                matches(value, token) and ("<" in token) == templated for token in documented
            ), f'{name}{{{label}="{value}"}} ({", ".join(sorted(use.where[value]))}) undocumented'
        if not use.dynamic:
            for token in documented:
                assert any(matches(value, token) for value in use.values), (
                    f'{name}{{{label}="{token}"}} is in docs/METRICS.md but no code gives it'
                )


def test_every_metric_name_in_readme_and_docs_exists() -> None:
    """A name in prose or a grep pattern is a family, a sample of one, or a prefix of one."""
    families = {exported_name(m) for m in metrics.all_metrics()}
    samples = {f + s for f in families for s in ("", "_bucket", "_sum", "_count")}
    for path in (REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))):
        for name in set(re.findall(r"\bmev_bot_[a-z_]*", path.read_text())):
            assert name in samples or any(f.startswith(name) for f in families), (
                f"{path.relative_to(REPO)} names {name}, which no metric is"
            )
