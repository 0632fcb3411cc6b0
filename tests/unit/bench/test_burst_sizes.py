"""The bench's make-run bursts have the flow's shape: mostly smaller than a fetch batch."""

from __future__ import annotations

import statistics

from bench.burst import MAKE_RUN_FLOW_RATE, burst_sizes


def test_burst_sizes_are_poisson_at_the_flow_rate_capped_per_user() -> None:
    sizes = burst_sizes(2_000, MAKE_RUN_FLOW_RATE, 8, seed=41)
    assert sizes == burst_sizes(2_000, MAKE_RUN_FLOW_RATE, 8, seed=41)  # seeded
    assert min(sizes) == 1 and max(sizes) == 8
    assert 3.7 < statistics.mean(sizes) < 4.2  # Poisson(4) truncated to [1, 8]
    assert sum(s < 8 for s in sizes) > 0.9 * len(sizes)  # below detect's batch of 8
