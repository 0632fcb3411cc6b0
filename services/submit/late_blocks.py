"""Block trades that missed the block they were proven for: asked at the head, withdrawn if they
would revert there. Pure; the I/O is in settlement.py.

A block trade (an opportunity from a block, no victim) proven on block N is sent at head N for
block N + 1. When it misses N + 1 (it reached the node just after the block was sealed, or was
outbid) it stays in the node's pool and lands in N + 2 or later, on a state nothing proved;
the executor's minProfit check then reverts it there and we pay ~100-200k gas for nothing.
Submit's head rule stops such a trade being SENT late, not an already-sent one landing late.
So each tracking pass takes our unresolved block trades whose nonce the chain has not counted
and whose proven block is older than the head (they were not in the head block), and asks the
node once per head whether the signed tx would still pay there (an eth_call of its own
from/to/data/value/gas at `latest`). If it reverts while the chain's nonce count, read again
after the call, still leaves it out (so the call did not run it on its own result), it is
withdrawn like a backrun whose victim was mined without it (late_victims.py): a 21k-gas cancel
on its nonce. If it still pays, it is left to land. A trade proven on top of others of ours
(`after_bundles`) is not asked: alone at the head is not the state it meets (stack_cancel.py
follows its bases). No such trade: no call.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from eth_account.typed_transactions import TypedTransaction
from hexbytes import HexBytes
from mev_common.chain.jsonrpc import RpcError
from mev_common.messages import Bundle

from services.submit.ledger_records import TxRecord

REVERT_MARKS = ("revert", "out of gas", "outofgas", "invalid opcode")  # lower-cased messages


@dataclass(frozen=True)
class LateBlockTrade:
    """An in-flight block trade of ours that its proven block's successor did not mine."""

    bundle_id: str
    nonce: int
    proven_block: int
    call: dict[str, str]  # eth_call's transaction object: the signed tx's own fields


def late_block_trades(
    trades: Iterable[tuple[TxRecord, Bundle]],
    *,
    sender: str,
    head: int,
    mined_nonce: int,
    pays_at: Mapping[str, int],
) -> list[LateBlockTrade]:
    """The trades to ask about at `head`. `trades`: our unresolved trade txs on one lane (sent
    by `sender`) with their bundles, none withdrawn or being cancelled; `mined_nonce`: that
    lane's confirmed tx count, read after `head`; `pays_at`: bundle id -> the head at which the
    node last said it still pays (asked once per head)."""
    out: list[LateBlockTrade] = []
    for tx, bundle in trades:
        if tx.kind != "trade" or bundle.victim_tx_hash is not None or bundle.after_bundles:
            continue
        if tx.nonce < mined_nonce or bundle.block_number >= head:
            continue  # mined (tracking settles it), or its block may still come
        if pays_at.get(bundle.id, -1) >= head:
            continue
        out.append(LateBlockTrade(bundle.id, tx.nonce, bundle.block_number, call_of(tx, sender)))
    return out


def call_of(tx: TxRecord, sender: str) -> dict[str, str]:
    """eth_call's object for the signed tx `tx.raw` from `sender`: the bytes that would land,
    not the bundle they were built from. No fee fields: whether it pays, not whether we can."""
    signed = TypedTransaction.from_bytes(HexBytes(tx.raw)).as_dict()
    return {
        "from": sender,
        "to": "0x" + bytes(signed["to"]).hex(),
        "data": "0x" + bytes(signed["data"]).hex(),
        "value": hex(int(signed["value"])),
        "gas": hex(int(signed["gas"])),
    }


def revert_message(reply: Any) -> str | None:
    """The node's word that the call reverts (a JSON-RPC error with code 3, or a message that
    says revert or out of gas), or None: it pays (a result) or the reply says nothing about the
    trade (no answer, another error): asked again next pass."""
    if not isinstance(reply, RpcError):
        return None
    text = str(reply)
    if reply.code == 3 or any(mark in text.lower() for mark in REVERT_MARKS):
        return text
    return None


@dataclass(frozen=True)
class Verdicts:
    withdraw: list[tuple[LateBlockTrade, str]]  # each trade that would revert, and why
    pays: list[str]  # bundle ids of the trades that still pay at the head: left to land
    unknown: list[str]  # bundle ids the node gave no answer about


def judge(trades: Sequence[LateBlockTrade], replies: Sequence[Any], head: int) -> Verdicts:
    """Each trade's eth_call reply (in `trades`' order) at `head` -> what to do with it."""
    out = Verdicts([], [], [])
    for trade, reply in zip(trades, replies, strict=True):
        message = revert_message(reply)
        if message is not None:
            why = (
                f"block trade proven on block {trade.proven_block} missed block "
                f"{trade.proven_block + 1}; at head {head} it reverts ({message[:120]})"
            )
            out.withdraw.append((trade, why))
        elif isinstance(reply, str):
            out.pays.append(trade.bundle_id)
        else:
            out.unknown.append(trade.bundle_id)
    return out


def still_unmined(
    withdraw: Sequence[tuple[LateBlockTrade, str]], mined_nonce: int
) -> list[tuple[str, str]]:
    """(bundle id, why) of the reverting trades whose nonce the chain has still not counted,
    `mined_nonce` read AFTER the eth_call replies. A trade mined between the first nonce read
    and its eth_call was run again on its own result (an arbitrage already taken loses its
    fees there): that revert says nothing about it (seen on bench's flow: 8 of 8 such
    "reverts" in two runs had landed and paid)."""
    return [(t.bundle_id, why) for t, why in withdraw if t.nonce >= mined_nonce]
