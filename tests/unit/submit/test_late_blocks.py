"""services/submit/late_blocks.py: which block trades missed their block, what is asked of the
node about them, and what its answers decide."""

from __future__ import annotations

from typing import Any

from eth_account import Account
from eth_utils import to_checksum_address
from mev_common.chain.jsonrpc import RpcError
from mev_common.messages import Bundle

from services.submit.late_blocks import (
    LateBlockTrade,
    Verdicts,
    call_of,
    judge,
    late_block_trades,
    revert_message,
    still_unmined,
)
from services.submit.ledger_records import TxRecord

KEY = Account.from_key("0x" + "42" * 32)
EXECUTOR = to_checksum_address("0x" + "ee" * 20)
DATA = "0xdeadbeef" + "00" * 32
VICTIM = "0x" + "ab" * 32


def signed(nonce: int, gas: int = 400_000, value: int = 0) -> str:
    fees = {"maxFeePerGas": 20 * 10**9, "maxPriorityFeePerGas": 10**9}
    tx = {"type": 2, "chainId": 31337, "nonce": nonce, "to": EXECUTOR, "value": value,
          "data": DATA, "gas": gas, **fees}  # fmt: skip
    return "0x" + bytes(KEY.sign_transaction(tx).raw_transaction).hex()


def trade(name: str, nonce: int, block: int, **fields: Any) -> tuple[TxRecord, Bundle]:
    tx = TxRecord(hash=f"0x{nonce:064x}", bundle_id=f"bundle:{name}", kind="trade", nonce=nonce,
                  max_fee_per_gas=20 * 10**9, max_priority_fee_per_gas=10**9, gas_limit=400_000,
                  deadline_block=block + 2, raw=signed(nonce), state="sent", created_at=0.0,
                  sender=KEY.address)  # fmt: skip
    bundle = Bundle(id=f"bundle:{name}", opportunity_id=name, chain_id=31337,
                    strategy="cross_dex_arbitrage", block_number=block, to=EXECUTOR, data=DATA,
                    gas_limit=400_000, deadline_block=block + 2, **fields)  # fmt: skip
    return tx, bundle


CALL = {
    "from": KEY.address,
    "to": EXECUTOR.lower(),
    "data": DATA,
    "value": "0x0",
    "gas": hex(400_000),
}


def late(pairs: list[tuple[TxRecord, Bundle]], **kw: Any) -> list[str]:
    args: dict[str, Any] = {"sender": KEY.address, "head": 11, "mined_nonce": 5, "pays_at": {}}
    args.update(kw)
    return [t.bundle_id.removeprefix("bundle:") for t in late_block_trades(pairs, **args)]


def test_the_eth_call_is_the_signed_txs_own_fields_from_its_sender() -> None:
    tx, _ = trade("a", 5, 10)
    assert call_of(tx, KEY.address) == CALL
    other = TxRecord(**{**tx.__dict__, "raw": signed(5, gas=123_457, value=7)})
    assert call_of(other, "0x" + "01" * 20) == {
        **CALL,
        "from": "0x" + "01" * 20,
        "gas": hex(123_457),
        "value": "0x7",
    }


def test_a_block_trade_proven_before_the_head_with_its_nonce_uncounted_is_asked() -> None:
    [only] = late_block_trades(
        [trade("a", 5, 10)], sender=KEY.address, head=11, mined_nonce=5, pays_at={}
    )
    assert only == LateBlockTrade("bundle:a", 5, 10, CALL)


def test_only_block_trades_that_missed_their_block_are_asked() -> None:
    pairs = [
        trade("mined", 4, 10),  # nonce counted: it landed (tracking settles it)
        trade("current", 5, 11),  # proven on the head: block 12 may still mine it
        trade("backrun", 6, 10, victim_tx_hash=VICTIM),  # late_victims.py's
        trade("stacked", 7, 10, after_bundles=["bundle:x"]),  # alone is not its state
        trade("late", 8, 9),
    ]
    assert late(pairs) == ["late"]
    assert late(pairs, head=9) == []  # the common case: nothing to ask, no RPC
    assert late(pairs, head=10) == ["late"]
    assert late(pairs, head=12) == ["current", "late"]
    assert late(pairs, mined_nonce=0) == ["mined", "late"]


def test_a_trade_that_still_paid_is_asked_again_only_at_a_later_head() -> None:
    pairs = [trade("a", 5, 10)]
    assert late(pairs, pays_at={"bundle:a": 11}) == []
    assert late(pairs, pays_at={"bundle:a": 11}, head=12) == ["a"]
    assert late(pairs, pays_at={"bundle:b": 11}) == ["a"]


def test_a_revert_is_an_rpc_error_with_code_3_or_a_revert_message() -> None:
    assert revert_message(RpcError("eth_call", "execution reverted: minProfit", 3)) == (
        "eth_call: execution reverted: minProfit"
    )
    assert revert_message(RpcError("eth_call", "whatever", 3)) == "eth_call: whatever"
    assert revert_message(RpcError("eth_call", "EVM error: Reverted", -32003)) is not None
    assert revert_message(RpcError("eth_call", "out of gas", -32000)) == "eth_call: out of gas"
    assert revert_message(RpcError("eth_call", "EVM error OutOfGas", None)) is not None
    # no answer, or an answer about something else: not a revert (asked again next pass)
    assert revert_message(RpcError("batch", "rate limited (HTTP 429)", 429)) is None
    assert revert_message(RpcError("eth_call", "header not found", -32000)) is None
    assert revert_message("0x") is None
    assert revert_message(None) is None


def test_judge_withdraws_reverts_leaves_payers_and_waits_on_no_answer() -> None:
    a, b, c = (
        LateBlockTrade("bundle:a", 5, 10, CALL),
        LateBlockTrade("bundle:b", 6, 9, CALL),
        LateBlockTrade("bundle:c", 7, 10, CALL),
    )
    replies = [
        RpcError("eth_call", "execution reverted", 3),
        "0x",
        RpcError("eth_call", "missing from the batch reply"),
    ]
    why = (
        "block trade proven on block 10 missed block 11; at head 11 it reverts "
        "(eth_call: execution reverted)"
    )
    assert judge([a, b, c], replies, head=11) == Verdicts(
        withdraw=[(a, why)], pays=["bundle:b"], unknown=["bundle:c"]
    )


def test_a_revert_counts_only_while_the_nonce_read_after_the_call_leaves_the_trade_out() -> None:
    a, b = LateBlockTrade("bundle:a", 5, 10, CALL), LateBlockTrade("bundle:b", 6, 10, CALL)
    withdraw = [(a, "why a"), (b, "why b")]
    assert still_unmined(withdraw, mined_nonce=5) == [("bundle:a", "why a"), ("bundle:b", "why b")]
    # nonce 5 counted after the call: a was mined meanwhile, its call ran on its own result
    assert still_unmined(withdraw, mined_nonce=6) == [("bundle:b", "why b")]
    assert still_unmined(withdraw, mined_nonce=7) == []
