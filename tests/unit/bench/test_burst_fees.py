"""The bench's make-run bursts bid as the devnet flow's users do: a fee cap a hair over the tip.

Why it matters: anvil (--order fees) orders by max fee, not tip. Burst swaps capped at 100 gwei
went ahead of every backrun of ours in their block whatever they tipped, between victim and
backrun, and the backrun reverted (h61: 13 of 13 and 14 of 14 reverted backruns of two 50-block
runs; 0 with the flow's cap, side by side)."""

from __future__ import annotations

from eth_account.typed_transactions import TypedTransaction
from eth_utils import to_checksum_address
from hexbytes import HexBytes
from mev_ops.devnet.flow import FEE_HEADROOM_WEI
from mev_ops.devnet.layout import PAIRS

from bench.burst import MAKE_RUN_FLOW_RATE, burst_sizes, signed_bursts

GWEI = 10**9


def _deployment() -> dict:
    symbols = sorted({s for pair in PAIRS for s in pair})
    return {
        "tokens": {
            s: {"address": to_checksum_address(f"0x{i + 1:040x}")} for i, s in enumerate(symbols)
        },
        "dexes": [{"router": to_checksum_address("0x" + c * 40)} for c in "ab"],
        "users": [{}] * 8,
    }


def test_burst_swaps_cap_their_fee_at_the_tip_plus_the_flows_headroom() -> None:
    bursts = signed_bursts(_deployment(), [5] * 8, 20, seed=41)
    sizes = burst_sizes(20, MAKE_RUN_FLOW_RATE, 8, seed=41)
    assert [len(b) for b in bursts] == sizes
    txs = [TypedTransaction.from_bytes(HexBytes(raw)).as_dict()
           for burst in bursts for raw, _ in burst]  # fmt: skip
    assert len(txs) == sum(sizes)
    for tx in txs:
        tip = tx["maxPriorityFeePerGas"]
        assert 1 * GWEI <= tip <= 3 * GWEI
        assert tx["maxFeePerGas"] == tip + FEE_HEADROOM_WEI
