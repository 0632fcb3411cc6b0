"""Loss limits that stop sending without a human: pure, from the ledger's numbers.

Four limits, each of which trips the emergency stop with its reason (services/submit/safety.py
persists it, so it survives a restart): one tx's worst-case gas (gas limit x max fee), the
day's gas budget, the day's realized loss, and N on-chain reverts in a row. Every window starts
at the later of the UTC day's start and the operator's last clear of a trip, so a clear gives
the bot a fresh window instead of re-tripping on the numbers that tripped it.
"""

from __future__ import annotations

from dataclasses import dataclass

from mev_common.settings import SubmitSettings, format_wei

# The metric label of each limit (mev_bot_safety_trip{reason}); the reason text says more.
TX_COST, GAS_BUDGET, DAILY_LOSS, REVERTS = (
    "tx_cost",
    "daily_gas_budget",
    "daily_loss",
    "consecutive_reverts",
)


@dataclass(frozen=True)
class Limits:
    max_tx_cost: int
    daily_gas_budget: int
    daily_loss_limit: int
    max_consecutive_reverts: int

    @classmethod
    def from_settings(cls, cfg: SubmitSettings) -> Limits:
        return cls(
            cfg.max_tx_cost, cfg.daily_gas_budget, cfg.daily_loss_limit, cfg.max_consecutive_reverts
        )


@dataclass(frozen=True)
class Spend:
    """The window's numbers, from the ledger (wei of the native coin)."""

    gas_spent: int = 0  # gasUsed x effectiveGasPrice of our mined txs
    native_profit: int = 0  # realized profit of trades whose profit token is the native one
    in_flight_cost: int = 0  # worst case of unresolved txs: per nonce, max gas x max fee
    consecutive_reverts: int = 0  # reverted trades since the last included one

    @property
    def loss(self) -> int:
        return self.gas_spent - self.native_profit


def kind_of(reason: str) -> str:
    """The limit a trip reason names (its metric label)."""
    return reason.split(":", 1)[0]


def send_refusal(limits: Limits, spend: Spend, cost: int) -> str | None:
    """Why a tx that may cost `cost` wei of gas must not be sent (and the stop trips)."""
    if cost > limits.max_tx_cost:
        return (
            f"{TX_COST}: gas limit x max fee = {format_wei(cost)} above submit.max_tx_cost "
            f"{format_wei(limits.max_tx_cost)}"
        )
    committed = spend.gas_spent + spend.in_flight_cost + cost
    if committed > limits.daily_gas_budget:
        return (
            f"{GAS_BUDGET}: spent {format_wei(spend.gas_spent)} + in flight "
            f"{format_wei(spend.in_flight_cost)} + this tx {format_wei(cost)} above "
            f"submit.daily_gas_budget {format_wei(limits.daily_gas_budget)}"
        )
    return None


def trip_reason(limits: Limits, spend: Spend) -> str | None:
    """Why sending must stop now, from settled results (checked after each settlement)."""
    if spend.consecutive_reverts >= limits.max_consecutive_reverts:
        return (
            f"{REVERTS}: {spend.consecutive_reverts} trades reverted on chain in a row "
            f"(submit.max_consecutive_reverts {limits.max_consecutive_reverts})"
        )
    if spend.loss > limits.daily_loss_limit:
        return (
            f"{DAILY_LOSS}: lost {format_wei(spend.loss)} today (gas {format_wei(spend.gas_spent)}"
            f" - profit {format_wei(spend.native_profit)}), above submit.daily_loss_limit "
            f"{format_wei(limits.daily_loss_limit)}"
        )
    if spend.gas_spent >= limits.daily_gas_budget:
        return (
            f"{GAS_BUDGET}: spent {format_wei(spend.gas_spent)} today, the whole "
            f"submit.daily_gas_budget {format_wei(limits.daily_gas_budget)}"
        )
    return None
