"""The backrun flow's plan: every swap a victim no other swap of its block crowds or queues."""

from __future__ import annotations

import itertools
import random

import pytest

from bench.backrun_flow import USD_RANGE, WETH_PAIRS, BackrunSwap, plan_block


def _plan(blocks: int, per_block: int, seed: int = 51) -> list[list[BackrunSwap]]:
    rng, flips = random.Random(seed), dict[tuple[str, str], bool]()
    return [plan_block(rng, k, 8, per_block, flips) for k in range(blocks)]


def test_each_block_has_distinct_users_of_its_half_and_distinct_weth_pairs() -> None:
    plan = _plan(200, 3)
    for k, swaps in enumerate(plan):
        assert len(swaps) == 3
        users = [s.user for s in swaps]
        assert len(set(users)) == 3
        assert set(users) <= ({1, 2, 3, 4} if k % 2 == 0 else {5, 6, 7, 8})
        pairs = [frozenset(s.path) for s in swaps]
        assert len(set(pairs)) == 3
        assert all(p in {frozenset(w) for w in WETH_PAIRS} for p in pairs)
        assert all(USD_RANGE[0] <= s.usd <= USD_RANGE[1] for s in swaps)
        assert all(s.dex in (0, 1) and 10**9 <= s.tip_wei <= 3 * 10**9 for s in swaps)


def test_a_user_never_swaps_in_two_blocks_in_a_row() -> None:
    """Its previous swap is mined before its next is sent: never queued behind its own."""
    plan = _plan(100, 4)
    for before, after in itertools.pairwise(plan):
        assert not {s.user for s in before} & {s.user for s in after}


def test_each_pair_alternates_weth_in_and_weth_out() -> None:
    """Prices do not drift one way over the run: uses of a pair flip its direction."""
    directions: dict[frozenset[str], list[bool]] = {}
    for swaps in _plan(300, 3):
        for s in swaps:
            directions.setdefault(frozenset(s.path), []).append(s.path[0] == "WETH")
    assert len(directions) == len(WETH_PAIRS)
    for seq in directions.values():
        assert seq[0] is True
        assert all(a != b for a, b in itertools.pairwise(seq))


def test_seeded_and_bounded() -> None:
    assert _plan(20, 3, seed=7) == _plan(20, 3, seed=7)
    assert _plan(20, 3, seed=7) != _plan(20, 3, seed=8)
    with pytest.raises(ValueError, match=r"per_block must be 1\.\.4"):
        _plan(1, 5)
