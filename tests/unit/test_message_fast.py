"""The hand-checked PendingTx decoder (mev_common.message_fast) against pydantic: over ingest's
own payloads and every mangling of each field, `messages.decode` accepts exactly what
pydantic accepts, with equal values, and refuses the rest with pydantic's own reason."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import orjson
import pytest
from mev_common import message_fast
from mev_common.messages import (
    MessageError,
    Opportunity,
    PendingTx,
    decode,
    describe_errors,
    encode,
)
from pydantic import ValidationError

SENDER = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
ROUTER = "0x7a250d5630B4cF539739dF2C5dAcb4c659F2488D"
HASH = "0x" + "ab" * 32


def payload(**over: Any) -> dict[str, Any]:
    tx = {
        "v": 1,
        "chain_id": 31337,
        "hash": HASH,
        "from": SENDER,
        "to": ROUTER,
        "nonce": 7,
        "value": "1000000000000000000",
        "gas": 450_000,
        "max_fee_per_gas": "100000000000",
        "max_priority_fee_per_gas": "1000000007",
        "input": "0x38ed1739" + "00" * 64,
    }
    tx.update(over)
    return {k: v for k, v in tx.items() if v is not _DROP}


_DROP = object()


def dumps(data: dict[str, Any]) -> bytes:
    return json.dumps(data).encode()  # orjson refuses integers past 64 bits: JSON has them


# what each field is mangled into: wrong types, bounds, spellings, and valid variants
MANGLED: dict[str, list[Any]] = {
    "v": [2, 0, "1", None, _DROP],
    "chain_id": [0, -1, "31337", 31337.0, True, None, 2**70, _DROP],
    "hash": [HASH.upper().replace("0X", "0x"), "0x" + "ab" * 31, "ab" * 32, 5, None, _DROP],
    "from": [SENDER.lower(), SENDER.upper().replace("0X", "0x"), SENDER[:-1] + "9",
             "0X" + SENDER[2:].lower(), SENDER[2:], SENDER + "00", 7, None, _DROP],
    "to": [None, ROUTER.lower(), ROUTER[:-1] + "E", "", _DROP],
    "nonce": [0, -1, "7", 7.0, False, None, 2**64, _DROP],
    "value": [0, 5, -5, "-5", "0x10", "0X10", "0x", "1e18", 1.5, True, None, "", _DROP],
    "gas": [0, -1, "450000", None, _DROP],
    "gas_price": [None, "0", "123", -1, "abc"],
    "max_fee_per_gas": [None, 10**30, "0xff", "-1", _DROP],
    "max_priority_fee_per_gas": [None, 0, "x", _DROP],
    "input": ["0x", "0X38", "0x3", "0xzz", "38ed", None, 5, _DROP],
    "raw": [None, "0xf86c", "0xf86", 3],
    "seen_on": [None, "anvil", "", "x" * 64, "x" * 65, "é" * 64, 5, ["a"], _DROP],
}  # fmt: skip


def cases() -> list[dict[str, Any]]:
    out = [payload()]
    for key, values in MANGLED.items():
        out += [payload(**{key: value}) for value in values]
    out.append(payload(sender=SENDER))  # the field's name beside its alias
    swapped = payload(sender=SENDER)
    del swapped["from"]
    out += [swapped, payload(extra=1), payload(to=ROUTER, gas_price="7", raw="0x00")]
    return out


def pydantic_outcome(data: dict[str, Any]) -> PendingTx | str:
    try:
        return PendingTx.model_validate(orjson.loads(dumps(data)))  # as decode parses it
    except ValidationError as exc:
        return f"invalid PendingTx: {describe_errors(exc)}"


@pytest.mark.parametrize("data", cases())
def test_decode_equals_pydantic(data: dict[str, Any]) -> None:
    if data.get("v") != 1:
        with pytest.raises(MessageError, match="unsupported schema version"):
            decode(PendingTx, dumps(data))
        return
    want = pydantic_outcome(data)
    try:
        got: PendingTx | str = decode(PendingTx, dumps(data))
    except MessageError as exc:
        got = str(exc)
    if isinstance(want, str):
        assert got == want
        return
    assert isinstance(got, PendingTx)
    assert got == want
    assert got.model_fields_set == want.model_fields_set
    assert encode(got) == encode(want)


def test_the_hand_check_takes_ingest_payloads() -> None:
    """The fast path is really used for what ingest publishes (not silently pydantic)."""
    fast = message_fast.pending_tx(payload())
    assert fast is not None
    assert fast.sender == SENDER and fast.value == 10**18 and fast.nonce == 7
    assert fast.max_priority_fee_per_gas == 1_000_000_007 and fast.input.startswith("0x38ed1739")
    assert message_fast.pending_tx(payload(gas_price=None, to=None, raw="0xAB")) is not None
    assert message_fast.pending_tx(payload(seen_on="anvil")) is not None


@pytest.mark.parametrize(
    "over",
    [{"from": SENDER[:-1] + "9"}, {"value": "-1"}, {"nonce": -1}, {"chain_id": 0},
     {"hash": "0x12"}, {"input": "0x3"}, {"extra": 1}, {"from": _DROP}],
)  # fmt: skip
def test_hostile_payloads_are_refused(over: dict[str, Any]) -> None:
    """Each check pydantic makes still refuses: a bad checksum, a negative wei or nonce, chain
    0, a short hash, odd hex, an unknown key, a missing sender."""
    assert message_fast.pending_tx(payload(**over)) is None
    with pytest.raises(MessageError, match="invalid PendingTx"):
        decode(PendingTx, dumps(payload(**over)))


@pytest.mark.parametrize("first", ["mev_common.message_fast", "mev_common.messages"])
def test_the_hand_check_is_registered_whichever_module_is_imported_first(first: str) -> None:
    code = f"import {first}; from mev_common import messages; print(len(messages._FAST))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "1"


OPPORTUNITY = {
    "id": "backrun:" + "c" * 40,
    "chain_id": 31337,
    "strategy": "backrun",
    "trigger": HASH,
    "block_number": 9,
    "block_hash": "0x" + "cd" * 32,
    "hops": [],
    "amount_in": 10**18,
    "profit_token": ROUTER,
    "expected_profit": 5,
    "net_profit_wei": -3,
    "gas_estimate": 210_000,
    "max_fee_per_gas": 2 * 10**9,
    "deadline_block": 11,
    "victim": None,
    "ahead": [],
}


@pytest.mark.parametrize("left_out", [(), ("amount_in", "victim", "deadline_block")])
def test_construct_makes_what_model_construct_makes(left_out: tuple[str, ...]) -> None:
    values = {k: v for k, v in OPPORTUNITY.items() if k not in left_out}
    got = message_fast.construct(Opportunity, dict(values))
    want = Opportunity.model_construct(**values)
    assert got == want
    assert list(got.__dict__.items()) == list(want.__dict__.items())  # order: encode's too
    assert got.model_fields_set == want.model_fields_set
    assert encode(got) == encode(want)
    assert got.v == 1 and "v" not in got.model_fields_set


def test_construct_refuses_an_unknown_field_and_a_left_out_mutable_default() -> None:
    with pytest.raises(TypeError, match=r"no field \['bogus'\]"):
        message_fast.construct(Opportunity, {**OPPORTUNITY, "bogus": 1})
    for mutable in ("hops", "ahead"):  # a list default (`hops`) or a factory (`ahead`)
        values = {k: v for k, v in OPPORTUNITY.items() if k != mutable}
        with pytest.raises(TypeError, match=rf"Opportunity\.{mutable} must be given"):
            message_fast.construct(Opportunity, values)
