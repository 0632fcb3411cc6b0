"""Grafana dashboards as code: `python deploy/compose/grafana/generate.py` writes dashboards/.

Built with grafana-foundation-sdk (Grafana's own typed builders, pinned to the Grafana version
compose runs), since no Grafana server runs here to reject a malformed dashboard.
tests/integration/test_compose.py checks that the committed JSON equals this output, that
every panel query parses with `promtool`, and that every metric a panel queries is exported
by a real service.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from grafana_foundation_sdk.builders import dashboard, prometheus, timeseries
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models.dashboard import DataSourceRef

OUT = Path(__file__).resolve().parent / "dashboards"
DS = DataSourceRef(type_val="prometheus", uid="prometheus")
HEIGHT = 8


def panel(
    title: str, exprs: dict[str, str], unit: str = "short", width: int = 12
) -> timeseries.Panel:
    """A time series of one or more PromQL queries, keyed by legend."""
    built = timeseries.Panel().title(title).datasource(DS).unit(unit).span(width).height(HEIGHT)
    for i, (legend, expr) in enumerate(exprs.items()):
        built.with_target(
            prometheus.Dataquery()
            .ref_id(chr(65 + i))
            .expr(expr)
            .legend_format(legend)
            .datasource(DS)
        )
    return built


def p(q: float, metric: str, by: str = "") -> str:
    group = f"le{', ' + by if by else ''}"
    return f"histogram_quantile({q}, sum by ({group}) (rate({metric}_bucket[5m])))"


def build_dashboard(uid: str, title: str, panels: list[timeseries.Panel]) -> dashboard.Dashboard:
    """Panels laid out left to right, wrapping at 24 columns (the SDK's grid), numbered."""
    built = (
        dashboard.Dashboard(title)
        .uid(uid)
        .tags(["mev-bot"])
        .timezone("utc")
        .refresh("10s")
        .time("now-1h", "now")
    )
    for i, item in enumerate(panels):
        built.with_panel(item.id(i + 1))
    return built


STAGES = {
    "detect": "mev_bot_detection_latency_seconds",
    "simulate": "mev_bot_simulation_latency_seconds",
    "submit": "mev_bot_submission_latency_seconds",
}


def pipeline() -> dashboard.Dashboard:
    latency = {}
    for stage, metric in STAGES.items():
        latency[f"{stage} p50"] = p(0.5, metric)
        latency[f"{stage} p95"] = p(0.95, metric)
    return build_dashboard(
        "mev-pipeline",
        "MEV pipeline overview",
        [
            panel("Services up", {"{{job}} {{instance}}": "mev_bot_status"}, width=8),
            panel(
                "Rate per stage (msg/s)",
                {"{{stage}}": "sum by (stage) (rate(mev_bot_transactions_processed_total[1m]))"},
                "ops",
                8,
            ),
            panel(
                "Throughput (runbook > 100 TPS)",
                {"detect": 'sum(mev_bot_transactions_processed_per_second{job="detect"})'},
                "ops",
                8,
            ),
            panel("Latency p50 / p95 per stage (from Mev-Seen-Ns)", latency, "s"),
            panel(
                "Consumer lag per stream",
                {"{{stream}} {{consumer}}": "max by (stream, consumer) (mev_bot_consumer_lag)"},
            ),
            panel(
                "Dead letters (DLQ rate)",
                {"{{stage}}": "sum by (stage) (rate(mev_bot_dead_letters_total[5m]))"},
                "ops",
                8,
            ),
            panel(
                "Error rate (runbook < 1%)",
                {"{{job}}": "max by (job) (mev_bot_error_rate)"},
                "percentunit",
                8,
            ),
            panel(
                "Emergency stop / mempool size",
                {
                    "emergency stop": "max(mev_bot_emergency_stop_active)",
                    "mempool": "sum(mev_bot_mempool_size)",
                },
                width=8,
            ),
            panel(
                "Memory (limit 2 GiB)",
                {"{{job}} {{instance}}": "process_resident_memory_bytes"},
                "bytes",
            ),
            panel(
                "Simulator disagreements",
                {
                    "{{strategy}}": (
                        "sum by (strategy) (increase(mev_bot_simulator_disagreements_total[1h]))"
                    )
                },
            ),
        ],
    )


def pnl() -> dashboard.Dashboard:
    return build_dashboard(
        "mev-pnl",
        "MEV P&L",
        [
            panel("Realized profit per hour (ETH)", {"profit": "max(mev_bot_profit_eth_per_hour)"}),
            panel(
                "Cumulative realized profit (ETH)",
                {"{{strategy}}": "sum by (strategy) (mev_bot_profit_wei_total) / 1e18"},
            ),
            panel(
                "Gas spent per hour (ETH)",
                {
                    "{{strategy}}": (
                        "sum by (strategy) (increase(mev_bot_gas_spent_wei_total[1h])) / 1e18"
                    )
                },
            ),
            panel("Gas efficiency (runbook > 0.8)", {"ratio": "max(mev_bot_gas_efficiency_ratio)"}),
            panel(
                "Bundle outcomes by strategy",
                {
                    "{{strategy}} {{outcome}}": (
                        "sum by (strategy, outcome) (increase(mev_bot_bundles_total[1h]))"
                    )
                },
            ),
            panel(
                "Bundle success (runbook > 80%)",
                {
                    "all": "max(mev_bot_bundle_success_rate)",
                    "{{strategy}}": "max by (strategy) (mev_bot_strategy_success_rate)",
                },
                "percentunit",
            ),
            panel("Gas price (wei)", {"gas price": "max(mev_bot_gas_price)"}, width=24),
            panel(
                "Missed profit: best cycle left after each block, net of gas (ETH)",
                {
                    "left at the last block": "max(mev_bot_residual_wei) / 1e18",
                    "missed, last hour": (
                        "sum(increase(mev_bot_residual_wei_summed_total[1h])) / 1e18"
                    ),
                    "realized, last hour": "sum(increase(mev_bot_profit_wei_total[1h])) / 1e18",
                },
                width=24,
            ),
        ],
    )


def rpc() -> dashboard.Dashboard:
    return build_dashboard(
        "mev-rpc",
        "MEV RPC",
        [
            panel(
                "Requests per endpoint (req/s)",
                {"{{endpoint}}": "sum by (endpoint) (rate(mev_bot_rpc_requests_total[1m]))"},
                "reqps",
            ),
            panel(
                "Errors and 429s per endpoint",
                {
                    "{{endpoint}} {{status}}": (
                        "sum by (endpoint, status) "
                        '(rate(mev_bot_rpc_requests_total{status!="ok"}[5m]))'
                    )
                },
                "reqps",
            ),
            panel(
                "Latency p50 / p95 per endpoint",
                {
                    "{{endpoint}} p50": p(0.5, "mev_bot_rpc_latency_seconds", "endpoint"),
                    "{{endpoint}} p95": p(0.95, "mev_bot_rpc_latency_seconds", "endpoint"),
                },
                "s",
            ),
            panel(
                "Endpoint healthy / requests per second gauge",
                {
                    "{{endpoint}} healthy": "max by (endpoint) (mev_bot_rpc_endpoint_healthy)",
                    "{{job}} req/s": "sum by (job) (mev_bot_rpc_requests_per_second)",
                },
            ),
        ],
    )


DASHBOARDS = {"pipeline.json": pipeline, "pnl.json": pnl, "rpc.json": rpc}


def render() -> dict[str, str]:
    return {
        name: json.dumps(make().build(), cls=JSONEncoder, indent=2) + "\n"
        for name, make in DASHBOARDS.items()
    }


def main() -> int:
    OUT.mkdir(exist_ok=True)
    for name, text in render().items():
        (OUT / name).write_text(text)
        print(f"wrote {OUT / name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
