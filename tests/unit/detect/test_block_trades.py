"""block_path.book_block_trades: a block trade bids `submit.priority_fee` on the block's end
state; a pending swap tipping at least that much through one of its pools is mined first, so
the trade would meet another state and revert (84 of 197 block trades did on bench's backrun
flow). A swap already pending drops it; one seen later withdraws it (pending_book.doomed_by)."""

from __future__ import annotations

from eth_utils import to_checksum_address
from mev_common.messages import Hop, Opportunity

from bench.detect_profile import detector
from services.detect.block_path import book_block_trades

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
