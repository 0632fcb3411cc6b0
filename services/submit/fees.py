"""EIP-1559 fees for a bundle: what to bid, bounded by what simulate's decision assumed.

The cap is min(bundle.max_fee_per_gas, strategies.<name>.max_gas_price): simulate proved the
trade profitable at its cap, so paying more could turn a win into a loss. A backrun bids its
victim's max fee (`Bundle.victim_max_fee_per_gas`, never above the cap) and one wei per gas
under its victim's effective tip (min(tip, max fee - next base)). Anvil (`--order fees`) orders
by max fee alone, ties in arrival order: ours ties with its victim and, sent after it (we learn
of it from the node we send to), lands right after it and before any later tx bidding the same
(bidding under the victim's max fee let later users with the victim's fees in between:
tests/integration/test_backrun_fee_order.py). Builders order by effective tip: one wei under
the victim's, ours can never land before it, whichever node saw which tx first (a tie there
would trust arrival at every node our tx is broadcast to). A backrun whose cap cannot pay that
tip is not sent: cut lower, every tx tipping between lands ahead of it (bench's backrun flow saw
such backruns revert behind users tipping 1-1.8 gwei when detect capped them at the default
tip). A victim waiting for a cheaper lower nonce of its sender: simulate proved ours at that
nonce's max fee (`Bundle.bid_max_fee_per_gas`, services/simulate/stacking.py), so it bids
that, with one wei under the victim's effective tip at that fee. Without the victim's max fee
(an older simulate), a backrun bids one wei under its victim's tip with a max fee of
2 x next base + that, as before.
"""

from __future__ import annotations

from typing import NamedTuple

# Geth and anvil accept a same-nonce replacement only if both fees rise by at least 10 %.
REPLACEMENT_BUMP_NUM, REPLACEMENT_BUMP_DEN = 9, 8  # +12.5 %, with headroom over the 10 %


class Fees(NamedTuple):
    max_fee_per_gas: int
    max_priority_fee_per_gas: int


class FeeRefusal(NamedTuple):
    reason: str


def next_base_fee(base_fee: int, gas_used: int, gas_limit: int) -> int:
    """EIP-1559 base fee of the block after one with these numbers (the chain's own rule)."""
    if gas_limit <= 0:
        return base_fee
    target = gas_limit // 2
    if target == 0 or gas_used == target:
        return base_fee
    if gas_used > target:
        delta = max(base_fee * (gas_used - target) // target // 8, 1)
        return base_fee + delta
    return base_fee - base_fee * (target - gas_used) // target // 8


def bundle_fees(
    *,
    next_base: int,
    bundle_cap: int,
    strategy_cap: int,
    default_priority: int,
    bundle_priority: int = 0,
    victim_priority: int | None = None,
    victim_max_fee: int | None = None,
    bid_max_fee: int | None = None,
) -> Fees | FeeRefusal:
    """The fees to sign with, or why the bundle must not be sent at all."""
    cap = min(bundle_cap, strategy_cap)
    if cap <= 0:
        return FeeRefusal("no fee cap: bundle.max_fee_per_gas is 0")
    if next_base > cap:
        return FeeRefusal(f"base fee {next_base} above the fee cap {cap}")
    if victim_priority is not None and victim_max_fee is not None and bid_max_fee is not None:
        bid = min(bid_max_fee, victim_max_fee)  # the victim's effective tip at our bid
        return _victim_fees(next_base, cap, min(victim_priority, bid), bid)
    if victim_priority is not None and victim_max_fee is not None:
        return _victim_fees(next_base, cap, victim_priority, victim_max_fee)
    if victim_priority is not None:
        priority = max(victim_priority - 1, 1)
        if priority > cap - next_base:  # cut below it, users tipping between go first
            return FeeRefusal(
                f"backrun must bid {priority} wei/gas (one under its victim's tip), its fee cap "
                f"{cap} leaves {cap - next_base} over the base fee {next_base}: it would land "
                "behind txs it was not proven behind"
            )
    else:
        priority = bundle_priority or default_priority
    priority = min(priority, cap - next_base)
    max_fee = min(cap, 2 * next_base + priority)
    return Fees(max_fee_per_gas=max_fee, max_priority_fee_per_gas=priority)


def _victim_fees(next_base: int, cap: int, tip: int, max_fee: int) -> Fees | FeeRefusal:
    """A backrun's fees: its victim's `max_fee` (never above `cap`), one wei under the victim's
    effective tip at `next_base`."""
    if max_fee < tip:
        return FeeRefusal(f"victim's max fee {max_fee} is below its priority fee {tip}")
    if next_base > max_fee:
        return FeeRefusal(f"base fee {next_base} above the victim's max fee {max_fee}")
    theirs = min(tip, max_fee - next_base)
    if theirs < 1:
        return FeeRefusal(
            f"victim tips {theirs} wei/gas over the base fee {next_base}: nothing to bid under"
        )
    bid, priority = min(cap, max_fee), theirs - 1
    if bid - next_base < priority:  # cut below it, users tipping between go first
        return FeeRefusal(
            f"backrun must tip {priority} wei/gas (one under its victim's effective tip), its "
            f"fee cap {cap} leaves {cap - next_base} over the base fee {next_base}: it would "
            "land behind txs it was not proven behind"
        )
    return Fees(max_fee_per_gas=bid, max_priority_fee_per_gas=priority)


def cancel_fees(old: Fees, next_base: int) -> Fees:
    """Fees for a same-nonce 0-value replacement: strictly above the old tx's by the bump, and
    enough to be mined at the coming base fee. Bounded by 21,000 gas, so the cost is small."""
    bumped_priority = old.max_priority_fee_per_gas * REPLACEMENT_BUMP_NUM // REPLACEMENT_BUMP_DEN
    priority = max(bumped_priority + 1, 1)
    bumped_max = old.max_fee_per_gas * REPLACEMENT_BUMP_NUM // REPLACEMENT_BUMP_DEN + 1
    return Fees(
        max_fee_per_gas=max(bumped_max, 2 * next_base + priority),
        max_priority_fee_per_gas=priority,
    )


def capped_cancel_fees(old: Fees, next_base: int, cap: int) -> Fees | FeeRefusal:
    """`cancel_fees` never above `cap` (the strategy's max_gas_price): a replacement that must
    bid more than the cap to be accepted is not sent at all, so repeated cancels cannot climb
    the +12.5 % ladder without end."""
    fees = cancel_fees(old, next_base)
    floor = old.max_fee_per_gas * REPLACEMENT_BUMP_NUM // REPLACEMENT_BUMP_DEN + 1
    if floor > cap or fees.max_priority_fee_per_gas > cap:
        return FeeRefusal(
            f"a replacement of max fee {old.max_fee_per_gas} must bid at least {floor} wei, "
            f"above max_gas_price {cap}"
        )
    return Fees(min(fees.max_fee_per_gas, cap), fees.max_priority_fee_per_gas)
