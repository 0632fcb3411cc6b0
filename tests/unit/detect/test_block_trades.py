"""block_path.book_block_trades: a block trade bids `submit.priority_fee` on the block's end
state; a pending swap tipping at least that much through one of its pools is mined first, so
the trade would meet another state and revert (84 of 197 block trades did on bench's backrun
flow). A swap already pending drops it; one seen later withdraws it (pending_book.doomed_by)."""

from __future__ import annotations

from eth_utils import to_checksum_address
from mev_common.amm.v2 import pair_key
from mev_common.messages import Hop, Opportunity, PendingTx

from bench.detect_profile import detector
from bench.samples import swap_calldata
from services.detect.block_path import book_block_trades
from services.detect.reprice import Trade, profit_on
from services.detect.service import Detector

WETH, USDC = to_checksum_address("0x" + "01" * 20), to_checksum_address("0x" + "02" * 20)
P, Q, R = (to_checksum_address(f"0x{0xAA00 + i:040x}") for i in range(3))  # as pools are booked


def block_trade(opp_id: str, a: str, b: str) -> Opportunity:
    return Opportunity(
        id=opp_id,
        chain_id=31337,
        strategy="cross_dex_arbitrage",
        trigger="0x" + "cd" * 32,
        block_number=10,
        block_hash="0x" + "cd" * 32,
        hops=[
            Hop(pool=a, token_in=WETH, token_out=USDC, fee_bps=30, amount_in=10, amount_out=20),
            Hop(pool=b, token_in=USDC, token_out=WETH, fee_bps=30, amount_in=20, amount_out=11),
        ],
        amount_in=10,
        profit_token=WETH,
        max_fee_per_gas=10 * 10**9,
        deadline_block=12,
    )


def test_a_swap_pending_or_seen_later_tipping_as_much_drops_or_withdraws_a_block_trade() -> None:
    det, _, _ = detector()
    ours = det.rt.settings.submit.priority_fee
    det.pending.add("0xswap1", [P], ours, 10)  # already pending, tips what we bid: goes first
    det.pending.add("0xswap2", [R], ours - 1, 10)  # tips less: mined after our trade
    crowded, clear = block_trade("b1", P, Q), block_trade("b2", Q, R)
    assert book_block_trades(det, [crowded, clear]) == [clear]
    assert det.pending.doomed_by("0xlow", ours - 1, [Q]) == []  # tips less: no matter
    assert det.pending.doomed_by("0xswap3", ours, [Q]) == ["b2"]  # withdraw it
    assert det.pending.doomed_by("0xswap4", ours, [Q]) == []  # once


def test_a_block_trade_is_forgotten_at_the_next_block() -> None:
    det, _, _ = detector()
    ours = det.rt.settings.submit.priority_fee
    assert book_block_trades(det, [block_trade("b1", P, Q)]) == [block_trade("b1", P, Q)]
    det.pending.on_block(11, [])  # mined in block 11, or stale: no swap dooms it any more
    assert det.pending.doomed_by("0xswap", ours, [P]) == []


# -- re-priced on the pools of the devnet-like deployment, crowders as real Router02 calls --


def world() -> tuple[Detector, Opportunity, dict[str, str]]:
    """A block trade selling 3 WETH on DEX A's WETH/USDC pair (its USDC reserve raised 3 %)
    and the USDC back on DEX B's: its profit exactly what reprice.profit_on says on them."""
    det, deployment, _ = detector()
    tokens = {s: t["address"] for s, t in deployment["tokens"].items()}
    weth, usdc = tokens["WETH"], tokens["USDC"]
    a, b = (det.pair_index[d][pair_key(weth, usdc)] for d in ("A", "B"))
    pool = det.registry.pools[a]
    det.registry.pools[a] = pool._replace(reserve0=pool.reserve0 * 103 // 100)  # USDC is token0
    hops = [
        Hop(pool=a, token_in=weth, token_out=usdc, fee_bps=30, amount_in=1, amount_out=1),
        Hop(pool=b, token_in=usdc, token_out=weth, fee_bps=30, amount_in=1, amount_out=1),
    ]
    opp = block_trade("real", a, b).model_copy(
        update={"hops": hops, "amount_in": 3 * 10**18, "block_number": 1}
    )
    base = Trade(((a, weth), (b, usdc)), opp.amount_in, 0, dict(det.registry.pools))
    opp = opp.model_copy(update={"expected_profit": profit_on(base, det.registry.pools)})
    routers = {d["name"]: d["router"] for d in deployment["dexes"]}
    return det, opp, {**tokens, **routers, "pair_a": a}


def swap(
    det: Detector, names: dict[str, str], n: int, path: list[str], amount: int, least: int = 0
) -> PendingTx:
    """User n's Router02 swap of `amount` along `path` (symbols) on DEX A, tipping what our
    block trade bids: mined before it."""
    tip = det.rt.settings.submit.priority_fee
    return PendingTx.model_validate(
        {
            "chain_id": 31337, "hash": f"0x{n:064x}", "from": f"0x{n:040x}", "to": names["A"],
            "nonce": 0, "gas": 300_000, "max_fee_per_gas": 100 * 10**9,
            "max_priority_fee_per_gas": tip,
            "input": swap_calldata(amount, least, [names[s] for s in path], f"0x{n:040x}", 2**40),
        }
    )  # fmt: skip


def seen(det: Detector, tx: PendingTx, pools: list[str]) -> list[str]:
    """What on_pending does with a new swap: booked whole, then the trades it dooms."""
    det.pending.add(tx.hash, pools, det.rt.settings.submit.priority_fee, 1, tx.sender, 0, tx)
    return det.pending.doomed_by(tx.hash, det.rt.settings.submit.priority_fee, pools)


def test_a_block_trade_is_kept_behind_a_swap_that_leaves_it_its_min_profit() -> None:
    det, opp, names = world()
    assert opp.expected_profit == 45_338_122_394_554_121  # 0.045 ETH on the 3 % gap
    a = names["pair_a"]
    against = swap(det, names, 1, ["USDC", "WETH"], 20_000 * 10**6)  # opposite: better price
    det.pending.add(
        against.hash, [a], det.rt.settings.submit.priority_fee, 1, against.sender, 0, against
    )
    assert book_block_trades(det, [opp]) == [opp]  # before: dropped (block_crowded)
    assert seen(det, swap(det, names, 2, ["WETH", "USDC"], 10**17), [a]) == []  # small
    assert seen(det, swap(det, names, 3, ["WETH", "USDC"], 30 * 10**18), [a]) == ["real"]


def test_a_block_trade_is_dropped_behind_a_swap_it_cannot_follow_or_that_leaves_it_short() -> None:
    det, opp, names = world()
    a = names["pair_a"]
    assert seen(det, swap(det, names, 1, ["WETH", "USDC"], 30 * 10**18), [a]) == []
    assert book_block_trades(det, [opp]) == []
    det, opp, names = world()
    assert book_block_trades(det, [opp]) == [opp]
    # through a pool not the trade's first (DAI/USDC on A): its USDC in depends on that pool
    assert seen(det, swap(det, names, 4, ["DAI", "USDC", "WETH"], 10**18), [a]) == ["real"]


def test_a_swap_that_reverts_on_the_head_but_not_behind_another_is_replayed_too() -> None:
    """Detect books a swap that reverts on the head state with no pools (on_pending); behind
    an opposite swap its minimum output is met, so it lands, and 30 WETH our way dooms the
    trade: seen after the opposite swap kept the trade, it withdraws it."""
    det, opp, names = world()
    a = names["pair_a"]
    against = swap(det, names, 1, ["USDC", "WETH"], 20_000 * 10**6)
    assert seen(det, against, [a]) == [] and book_block_trades(det, [opp]) == [opp]
    pool = det.registry.pools[a]
    on_head = pool.amount_out(names["WETH"], 30 * 10**18)
    after = pool.with_swap(names["USDC"], 20_000 * 10**6).amount_out(names["WETH"], 30 * 10**18)
    assert after > on_head  # the opposite swap made WETH dearer in USDC: its minimum is met
    late = swap(det, names, 5, ["WETH", "USDC"], 30 * 10**18, least=on_head + 1)
    assert seen(det, late, []) == ["real"]  # before: [] (no pools: it touched nothing)


def test_a_swap_that_reverted_on_an_older_head_is_not_replayed_after_the_block() -> None:
    """A swap that reverts leaves no log, so the book keeps it after it was mined (reverted);
    replaying it behind the next block's trades gave up ~20x more of them on the devnet flow."""
    det, opp, names = world()
    a = names["pair_a"]
    assert seen(det, swap(det, names, 1, ["USDC", "WETH"], 20_000 * 10**6), [a]) == []
    on_head = det.registry.pools[a].amount_out(names["WETH"], 30 * 10**18)
    assert seen(det, swap(det, names, 5, ["WETH", "USDC"], 30 * 10**18, on_head + 1), []) == []
    assert book_block_trades(det, [opp]) == []  # this block: it may land behind the first
    det.pending.on_block(2, [])
    later = opp.model_copy(update={"id": "later", "block_number": 2})
    assert book_block_trades(det, [later]) == [later]
