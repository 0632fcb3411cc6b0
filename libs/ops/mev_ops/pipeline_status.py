"""The one-line pipeline status `mev-bot run` prints every few seconds, from the services' own
Prometheus endpoints (so it shows exactly what the dashboards show).

Pure parsing and formatting; the caller fetches the /metrics texts.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from prometheus_client.parser import text_string_to_metric_families

Samples = dict[str, list[tuple[dict[str, str], float]]]


def parse_metrics(text: str) -> Samples:
    """Sample name -> [(labels, value)] of one exposition text."""
    out: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out.setdefault(sample.name, []).append((dict(sample.labels), float(sample.value)))
    return out


def total(samples: Samples, name: str, **labels: str) -> float:
    """Sum of a sample over the label sets that match `labels`."""
    return sum(
        v
        for lbl, v in samples.get(name, [])
        if all(lbl.get(k) == want for k, want in labels.items())
    )


def histogram_quantile(samples: Samples, name: str, q: float) -> float | None:
    """Prometheus' histogram_quantile over the cumulative buckets (summed over all other
    labels, like `sum by (le)`): linear within a bucket."""
    by_le: dict[float, float] = {}
    for lbl, v in samples.get(f"{name}_bucket", []):
        if "le" in lbl:
            by_le[float(lbl["le"])] = by_le.get(float(lbl["le"]), 0.0) + v
    buckets = sorted(by_le.items())
    if not buckets or buckets[-1][1] <= 0:
        return None
    rank = q * buckets[-1][1]
    lower_bound, lower_count = 0.0, 0.0
    for bound, count in buckets:
        if count >= rank:
            if math.isinf(bound):
                return lower_bound
            if count == lower_count:
                return bound
            return lower_bound + (bound - lower_bound) * (rank - lower_count) / (
                count - lower_count
            )
        lower_bound, lower_count = bound, count
    return lower_bound


def since(now: Samples, before: Samples) -> Samples:
    """What histograms observed between two scrapes: `now`'s `_bucket`/`_count`/`_sum`
    samples less `before`'s of the same labels (a restarted service, whose counts went down,
    counts from zero). Other samples are `now`'s."""
    out: Samples = {}
    for name, values in now.items():
        if not name.endswith(("_bucket", "_count", "_sum")):
            out[name] = values
            continue
        old = {tuple(sorted(lbl.items())): v for lbl, v in before.get(name, [])}
        out[name] = [
            (lbl, v - old.get(tuple(sorted(lbl.items())), 0.0))
            if v >= old.get(tuple(sorted(lbl.items())), 0.0)
            else (lbl, v)
            for lbl, v in values
        ]
    return out


@dataclass(frozen=True)
class PipelineStatus:
    blocks: int
    pending: int
    opportunities: int
    simulated: int
    sent: int
    landed: int
    reverted: int
    profit_eth: float
    # Both from the trigger's Mev-Seen-Ns (ingest saw the swap or head), so each holds every
    # stage before it; the line says so ("seen->opp", "seen->bundle"): a "sim" figure is not
    # simulate's own time. detect: to the opportunities stored (pending-swap triggers, bench's
    # row); simulate: to the bundle's publish acked back in simulate (ingest's fetch, detect,
    # both stream hops, the victim's trace, the run and the ack round trip included)
    detect_ms: tuple[float | None, float | None]
    simulate_ms: tuple[float | None, float | None]
    window_s: float | None = None  # latencies over the last window_s seconds, else since start
    # block triggers: seen (ingest has the head) includes ingest's log fetch and the block's
    # whole search, a different quantity from a pending swap's; shown beside it, not mixed in
    detect_block_ms: tuple[float | None, float | None] = (None, None)
    # the same split for simulate: pending-swap backruns, block-triggered bundles beside them
    simulate_block_ms: tuple[float | None, float | None] = (None, None)
    # observations behind each pair (a sim p95 over 2 bundles is their interpolated maximum:
    # `make run` publishes 2-5 pending-swap bundles a minute)
    detect_n: int = 0
    detect_block_n: int = 0
    simulate_n: int = 0
    simulate_block_n: int = 0

    def line(self) -> str:
        def ms(pair: tuple[float | None, float | None], n: int) -> str:
            return "/".join("-" if v is None else f"{v:.1f}" for v in pair) + f" ms n={n}"

        return (
            f"blocks {self.blocks}  pending {self.pending}  opps {self.opportunities}  "
            f"simulated {self.simulated}  sent {self.sent}  landed {self.landed}  "
            f"reverted {self.reverted}  profit {self.profit_eth:.6f} ETH  "
            f"detect seen->opp p50/p95 {ms(self.detect_ms, self.detect_n)}"
            f" (block triggers {ms(self.detect_block_ms, self.detect_block_n)})"
            f"  sim seen->bundle p50/p95 {ms(self.simulate_ms, self.simulate_n)}"
            f" (block triggers {ms(self.simulate_block_ms, self.simulate_block_n)})"
            + (f" (last {self.window_s:.0f} s)" if self.window_s else "")
        )


SENT_OUTCOMES = ("included", "reverted", "dropped", "replaced")


def pipeline_status(
    by_service: Mapping[str, Samples],
    before: Mapping[str, Samples] | None = None,
    window_s: float | None = None,
) -> PipelineStatus:
    """Combine the services' samples (a service that did not answer is simply absent). With
    `before` (the scrape `window_s` ago) the latencies are those of the window only: a
    since-start histogram keeps the first minute's cold start (forks, prefetches) forever."""
    if before is not None:
        by_service = {k: since(v, before.get(k, {})) for k, v in by_service.items()}

    def merged(names: Iterable[str]) -> Samples:
        out: Samples = {}
        for service in names:
            for key, values in by_service.get(service, {}).items():
                out.setdefault(key, []).extend(values)
        return out

    ingest, detect = merged(["ingest"]), merged(["detect"])
    simulate, submit = merged(["simulate"]), merged(["submit"])
    published = "mev_bot_messages_published_total"

    def only(samples: Samples, trigger: tuple[str | None, ...]) -> Samples:
        """Only these values of the `trigger` label (None: unlabelled)."""
        return {
            k: [(lbl, v) for lbl, v in rows if lbl.get("trigger") in trigger]
            for k, rows in samples.items()
        }

    def quantiles(samples: Samples, name: str) -> tuple[float | None, float | None]:
        p50, p95 = (histogram_quantile(samples, name, q) for q in (0.5, 0.95))
        return (None if p50 is None else p50 * 1000, None if p95 is None else p95 * 1000)

    detection, simulation = (
        "mev_bot_detection_latency_seconds",
        "mev_bot_simulation_latency_seconds",
    )
    detect_pending, detect_block = only(detect, ("pending", None)), only(detect, ("block",))
    sim_pending, sim_block = only(simulate, ("pending", None)), only(simulate, ("block",))

    return PipelineStatus(
        blocks=int(total(ingest, published, subject="blocks")),
        pending=int(total(ingest, published, subject="mempool")),
        opportunities=int(total(detect, published, subject="opportunities")),
        simulated=int(total(simulate, published, subject="bundles")),
        sent=int(sum(total(submit, "mev_bot_bundles_total", outcome=o) for o in SENT_OUTCOMES)),
        landed=int(total(submit, "mev_bot_bundles_total", outcome="included")),
        reverted=int(total(submit, "mev_bot_bundles_total", outcome="reverted")),
        profit_eth=total(submit, "mev_bot_profit_wei_total") / 1e18,
        detect_ms=quantiles(detect_pending, detection),
        detect_block_ms=quantiles(detect_block, detection),
        simulate_ms=quantiles(sim_pending, simulation),
        simulate_block_ms=quantiles(sim_block, simulation),
        window_s=window_s if before is not None else None,
        detect_n=int(total(detect_pending, f"{detection}_count")),
        detect_block_n=int(total(detect_block, f"{detection}_count")),
        simulate_n=int(total(sim_pending, f"{simulation}_count")),
        simulate_block_n=int(total(sim_block, f"{simulation}_count")),
    )
