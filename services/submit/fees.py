"""EIP-1559 fees for a bundle: what to bid, bounded by what simulate's decision assumed.

The cap is min(bundle.max_fee_per_gas, strategies.<name>.max_gas_price): simulate proved the
trade profitable at its cap, so paying more could turn a win into a loss. A backrun bids its
victim's own fees: the same priority fee and the same max fee (`Bundle.victim_max_fee_per_gas`),
never above the cap. Ordered by max fee (anvil `--order fees`) or by effective tip (builders), it
then ties with its victim and arrival decides: it lands right after the victim (it is sent after
it), before any later tx bidding the same, and never before it (that would be a front-run).
Bidding under the victim's max fee let later users with the victim's fees in between on anvil
(tests/integration/test_backrun_fee_order.py). A backrun whose cap cannot pay the victim's
effective tip is not sent: cut lower, every tx tipping between lands ahead of it (bench's
backrun flow saw such backruns revert behind users tipping 1-1.8 gwei when detect capped them at
the default tip). Without the victim's max fee (an older simulate), a backrun bids one wei under
its victim's tip, as before.
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
) -> Fees | FeeRefusal:
    """The fees to sign with, or why the bundle must not be sent at all."""
    cap = min(bundle_cap, strategy_cap)
    if cap <= 0:
        return FeeRefusal("no fee cap: bundle.max_fee_per_gas is 0")
    if next_base > cap:
        return FeeRefusal(f"base fee {next_base} above the fee cap {cap}")
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
    """A backrun's fees: its victim's (`tip`, `max_fee`), the max fee never above `cap`."""
    if max_fee < tip:
        return FeeRefusal(f"victim's max fee {max_fee} is below its priority fee {tip}")
    if next_base > max_fee:
        return FeeRefusal(f"base fee {next_base} above the victim's max fee {max_fee}")
    bid = min(cap, max_fee)
    ours, theirs = min(tip, bid - next_base), min(tip, max_fee - next_base)
    if ours < theirs:  # cut below it, users tipping between go first
        return FeeRefusal(
            f"backrun must tip {theirs} wei/gas (its victim's effective tip), its fee cap "
            f"{cap} leaves {cap - next_base} over the base fee {next_base}: it would land "
            "behind txs it was not proven behind"
        )
    return Fees(max_fee_per_gas=bid, max_priority_fee_per_gas=min(tip, bid))


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
