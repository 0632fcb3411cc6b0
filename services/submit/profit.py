"""Realized profit from a receipt: what the chain says happened, never simulate's estimate.

The profit token's ERC20 `Transfer` logs into and out of the executor give its balance change
in this tx exactly (every token movement of a V2 cycle is a Transfer). The Executor's own
`Arbitrage(token, amountIn, profit, hops)` event must agree; if it does not, the Transfer sum
is booked and the disagreement is reported (a token with transfer hooks or fees would cause it).
"""

from __future__ import annotations

from typing import Any, NamedTuple

from eth_utils import keccak

TRANSFER_TOPIC = "0x" + keccak(text="Transfer(address,address,uint256)").hex()
ARBITRAGE_TOPIC = "0x" + keccak(text="Arbitrage(address,uint256,uint256,uint256)").hex()


class Realized(NamedTuple):
    profit: int  # signed, in profit-token units
    event_profit: int | None  # the Executor's Arbitrage event, if it emitted one
    gas_used: int
    effective_gas_price: int

    @property
    def gas_cost(self) -> int:
        return self.gas_used * self.effective_gas_price


def _topic_address(topic: str) -> str:
    return "0x" + topic[-40:].lower()


def token_delta(logs: list[dict[str, Any]], token: str, holder: str) -> int:
    """Net `token` received by `holder` according to the Transfer logs."""
    token, holder = token.lower(), holder.lower()
    delta = 0
    for entry in logs:
        topics = entry.get("topics") or []
        if entry.get("address", "").lower() != token or len(topics) != 3:
            continue
        if topics[0].lower() != TRANSFER_TOPIC:
            continue
        amount = int(entry.get("data") or "0x0", 16)
        if _topic_address(topics[2]) == holder:
            delta += amount
        if _topic_address(topics[1]) == holder:
            delta -= amount
    return delta


def arbitrage_event_profit(logs: list[dict[str, Any]], executor: str, token: str) -> int | None:
    for entry in logs:
        topics = entry.get("topics") or []
        if (
            entry.get("address", "").lower() == executor.lower()
            and len(topics) == 2
            and topics[0].lower() == ARBITRAGE_TOPIC
            and _topic_address(topics[1]) == token.lower()
        ):
            data = bytes.fromhex(entry["data"][2:])
            return int.from_bytes(data[32:64], "big")
    return None


def realized_from_receipt(receipt: dict[str, Any], executor: str, token: str | None) -> Realized:
    """Profit and gas of a mined tx; a reverted tx moved no tokens, so its profit is 0."""
    gas_used = int(receipt["gasUsed"], 16)
    price = int(receipt.get("effectiveGasPrice") or "0x0", 16)
    logs = receipt.get("logs") or []
    if token is None or int(receipt.get("status", "0x0"), 16) != 1:
        return Realized(0, None, gas_used, price)
    return Realized(
        token_delta(logs, token, executor),
        arbitrage_event_profit(logs, executor, token),
        gas_used,
        price,
    )
