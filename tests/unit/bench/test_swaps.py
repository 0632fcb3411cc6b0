"""Bench's synthetic victims are the devnet flow's mix of V2 and V3 swaps, each a real backrun
candidate detect decodes and applies: before, every one was a Router02 swap, while `make run`'s
flow sends 35 % of its swaps to a SwapRouter (V3 victims cost detect more to search)."""

from __future__ import annotations

from fractions import Fraction

import pytest
from mev_common.chain.swap_router_calls import decode_swap_router_call
from mev_common.messages import PendingTx, decode
from mev_ops.devnet.flow_plan import V3_SHARE

from bench.detect_profile import detector
from bench.swaps import GWEI, is_v3, pending_swaps, sender
from services.detect.pending_swaps import apply_pending, decode_pending, path_pools


def txs(n: int, seed: int, **kw: object) -> list[PendingTx]:
    _, deployment, _ = detector()
    return [decode(PendingTx, p) for _, p in pending_swaps(deployment, n, seed, **kw)]  # type: ignore[arg-type]


def test_the_v3_share_is_the_flows_exactly_and_spread_evenly() -> None:
    assert Fraction(V3_SHARE).limit_denominator(1000) == Fraction(7, 20)
    found, deployment, _ = detector()
    routers = found.v3_routers.by_router
    for n in (1, 3, 20, 40, 101, 400):
        swaps = [decode(PendingTx, p) for _, p in pending_swaps(deployment, n, seed=2)]
        flags = [tx.to in routers for tx in swaps]
        assert sum(flags) == n * 7 // 20  # floor(n x 0.35)
        assert flags == [is_v3(i, Fraction(7, 20)) for i in range(n)]
    first = [tx.to in routers for tx in txs(20, 2)]
    assert [i for i, v3 in enumerate(first) if v3] == [2, 5, 8, 11, 14, 17, 19]  # by hand
    assert not any(tx.to in routers for tx in txs(50, 2, v3_share=0.0))


def test_every_swap_has_its_own_sender_at_nonce_0_and_a_rising_tip() -> None:
    swaps = txs(60, 4)
    assert [tx.sender for tx in swaps] == [sender(4, i) for i in range(60)]
    assert len({tx.sender for tx in swaps}) == 60
    assert {tx.nonce for tx in swaps} == {0}
    assert [tx.max_priority_fee_per_gas for tx in swaps] == [GWEI + i for i in range(60)]
    assert len({tx.hash for tx in swaps}) == 60
    later = txs(10, 4, start=60)  # a run's next batch: the sequence's next swaps, exactly
    assert later == txs(70, 4)[60:]
    assert not {tx.hash for tx in later} & {tx.hash for tx in swaps}  # the stream dedups by it
    assert [tx.sender for tx in later] == [sender(4, i) for i in range(60, 70)]
    assert [tx.max_priority_fee_per_gas for tx in later] == [GWEI + i for i in range(60, 70)]


@pytest.mark.parametrize("eth_in", [False, True])
def test_detect_decodes_and_applies_every_swap_through_our_pools(eth_in: bool) -> None:
    found, deployment, _ = detector()
    assert found.head is not None
    lands_at = found.head.timestamp + 1
    weth = deployment["tokens"]["WETH"]["address"]
    kinds = {"v2": 0, "v3": 0}
    for _, payload in pending_swaps(deployment, 80, seed=6, eth_in=eth_in):
        tx = decode(PendingTx, payload)
        swap = decode_pending(found, tx)
        assert swap is not None
        pools = path_pools(found, swap)
        if swap.v3 is not None:
            kinds["v3"] += 1
            _, call = swap.v3
            assert call.kind == "exactInputSingle" and len(pools) == 1
            assert pools[0] in found.registry.v3.pools
            assert (call.amount_out_min, call.sqrt_price_limit_x96) == (0, 0)
            if eth_in:  # paid as ETH, which SwapRouter wraps: the sender needs only ETH
                assert call.tokens[0] == weth and tx.value == call.amount_in
            assert decode_swap_router_call(tx.input, tx.value) == call
        else:
            kinds["v2"] += 1
            assert swap.swap is not None and len(pools) == len(swap.swap.path) - 1
            assert tx.value == (swap.swap.amount_in if eth_in else 0)
        assert apply_pending(found, swap, lands_at) is not None  # none would revert
    assert kinds == {"v2": 52, "v3": 28}


def test_v3_swaps_need_v3_pools() -> None:
    _, deployment, _ = detector()
    bare = {k: v for k, v in deployment.items() if k not in ("v3_pools", "v3_dexes")}
    with pytest.raises(ValueError, match="v3_share"):
        pending_swaps(bare, 5, seed=1)
    assert len(pending_swaps(bare, 5, seed=1, v3_share=0.0)) == 5
