"""Who goes first when submit's share of the RPC call budget runs short (HyperEVM's ~100 calls
a minute): settling what is already on the chain, before sending more.

A sent trade is only done when a tracking pass has read the lane's nonce and its receipt:
until then its profit or loss is not booked (the loss limits cannot see it), its nonce and
pool claims stay held, and the ledger disagrees with the chain. So a new trade may only take
the budget while it leaves room for the passes that settle it: with sends and tracking asking
for the same room, a steady flow of bundles kept the share at its edge and every pass was
skipped (a hyperevm e2e run on CI ended with 2 landed trades never booked).
"""

from __future__ import annotations

from mev_common.chain.budget import CallBudget

TRADE_CALLS = 3  # the send, then the nonce read and the receipt that settle it
TRACK_CALLS = 2  # a pass: the lane's nonce count and one receipts batch
SEND_KEEP_FREE = 0.1  # the share a new trade leaves unused, for tracking


def may_send(budget: CallBudget) -> bool:
    """Whether a new trade fits and still leaves tracking its room."""
    return budget.allows(TRADE_CALLS, keep_free=SEND_KEEP_FREE)


def may_track(budget: CallBudget) -> bool:
    """Whether a tracking pass fits: it may use the room sends leave."""
    return budget.allows(TRACK_CALLS)
