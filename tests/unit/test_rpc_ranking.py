"""Token bucket and endpoint ranking: exact, on an injected clock."""

from __future__ import annotations

import pytest
from mev_common.chain.ratelimit import TokenBucket
from mev_common.chain.rpc_pool import EndpointState, backoff_s, rank_endpoints


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_token_bucket_allows_burst_then_rate() -> None:
    clock = Clock()
    bucket = TokenBucket(rate=10, clock=clock)
    assert [bucket.try_take() for _ in range(10)] == [0.0] * 10
    assert bucket.try_take() == pytest.approx(0.1)
    clock.now += 0.5
    assert bucket.available == pytest.approx(5.0)


def test_rate_factor_applies_from_now_on() -> None:
    clock = Clock()
    bucket = TokenBucket(rate=100, clock=clock)
    for _ in range(100):
        bucket.try_take()
    bucket.set_factor(0.8)
    assert bucket.rate == 80
    clock.now += 1.0
    assert bucket.available == pytest.approx(80.0)
    with pytest.raises(ValueError, match="rate factor must be in"):
        bucket.set_factor(0)


def test_rank_prefers_fast_healthy_and_puts_laggards_and_failed_last() -> None:
    states = [
        EndpointState("slow", head=100, latency_s=0.050),
        EndpointState("fast", head=100, latency_s=0.010),
        EndpointState("lagging", head=90, latency_s=0.001),
        EndpointState("down", head=101, latency_s=0.001, down_until=200.0, consecutive_errors=3),
    ]
    ranked = [s.name for s in rank_endpoints(states, now=150.0, max_lag_blocks=3)]
    assert ranked == ["fast", "slow", "lagging", "down"]
    # once the backoff has passed, the failed endpoint competes again (and is fastest)
    ranked = [s.name for s in rank_endpoints(states, now=250.0, max_lag_blocks=3)]
    assert ranked == ["down", "fast", "slow", "lagging"]


def test_backoff_doubles_with_jitter_and_caps() -> None:
    for errors, ceiling in [(1, 0.25), (2, 0.5), (3, 1.0), (20, 30.0)]:
        for _ in range(50):
            assert ceiling / 2 <= backoff_s(errors) <= ceiling


def test_keep_leaves_tokens_to_calls_that_cannot_wait() -> None:
    """Background calls (simulate's pool probes) take a token only while `keep` stay; the hot
    path's calls (victim traces) then find them at once, and both together stay in the rate."""
    clock = Clock()
    bucket = TokenBucket(rate=25, clock=clock)
    assert [bucket.try_take(keep=4) for _ in range(21)] == [0.0] * 21
    assert bucket.try_take(keep=4) == pytest.approx(0.04)  # 4 left: the background waits
    assert [bucket.try_take() for _ in range(4)] == [0.0] * 4  # the hot path does not
    assert bucket.try_take() == pytest.approx(0.04)
    # a whole second: 25 tokens, whoever asks; the background's wait is the longer one
    clock.now += 1.0
    taken = sum(bucket.try_take(keep=4) == 0.0 for _ in range(100))
    taken += sum(bucket.try_take() == 0.0 for _ in range(100))
    assert taken == 25
    assert bucket.try_take(keep=4) == pytest.approx(0.2)
    assert bucket.try_take() == pytest.approx(0.04)


def test_keep_is_capped_so_a_full_small_bucket_serves_background_calls() -> None:
    """HyperEVM's 1.6 calls/s (burst 1.6): a keep of 4 could never be met; a full bucket serves."""
    clock = Clock()
    bucket = TokenBucket(rate=1.6, clock=clock)
    assert bucket.try_take(keep=4) == 0.0
    assert bucket.try_take(keep=4) == pytest.approx(0.625)  # 0.6 left: full again in 1/1.6 s
    clock.now += 1.0
    assert bucket.try_take(keep=4) == 0.0
