"""Message schema: exact round trips and exact rejection reasons (the dead-letter text)."""

from __future__ import annotations

import orjson
import pytest
from mev_common.messages import (
    Bundle,
    MessageError,
    Opportunity,
    Outcome,
    PendingTx,
    decode,
    encode,
)

TX_HASH = "0x" + "ab" * 32
ADDR_LOWER = "0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed"
ADDR_CHECKSUM = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"


def pending(**over: object) -> dict[str, object]:
    base: dict[str, object] = {
        "v": 1,
        "chain_id": 31337,
        "hash": TX_HASH,
        "from": ADDR_LOWER,
        "to": ADDR_CHECKSUM,
        "nonce": 7,
        "value": "123456789012345678901234567890",
        "gas": 210000,
        "max_fee_per_gas": "0x77359400",
        "input": "0xDEADBEEF",
    }
    base.update(over)
    return base


def test_pending_tx_round_trip_keeps_big_ints_exact_and_checksums() -> None:
    tx = decode(PendingTx, orjson.dumps(pending()))
    assert tx.value == 123456789012345678901234567890
    assert tx.max_fee_per_gas == 2_000_000_000
    assert tx.sender == ADDR_CHECKSUM
    assert tx.input == "0xdeadbeef"
    wire = orjson.loads(encode(tx))
    assert wire["value"] == "123456789012345678901234567890"
    assert wire["max_fee_per_gas"] == "2000000000"
    assert wire["from"] == ADDR_CHECKSUM
    assert "gas_price" not in wire
    assert decode(PendingTx, encode(tx)) == tx


def test_other_models_round_trip() -> None:
    opp = Opportunity(
        id="backrun:x",
        chain_id=1,
        strategy="backrun",
        trigger=TX_HASH,
        block_number=5,
        block_hash=TX_HASH,
        expected_profit=-(2**70),
    )
    assert decode(Opportunity, encode(opp)) == opp
    bundle = Bundle(id="b", opportunity_id="o", chain_id=1, strategy="backrun", block_number=5)
    assert decode(Bundle, encode(bundle)) == bundle
    out = Outcome(bundle_id="b", chain_id=1, strategy="backrun", status="not_sent")
    assert decode(Outcome, encode(out)).status == "not_sent"


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"not json", "not JSON: invalid literal, expected 'null': line 1 column 1 (char 0)"),
        (b"[1, 2]", "expected a JSON object, got list"),
        (orjson.dumps(pending(v=2)), "unsupported schema version v=2: this build reads v=1"),
        (
            orjson.dumps({k: v for k, v in pending().items() if k != "v"}),
            "unsupported schema version v=None: this build reads v=1",
        ),
        (
            orjson.dumps(pending(value=1.5e18)),
            "invalid PendingTx: value: big integers must be decimal or 0x-hex strings, "
            "not JSON numbers",
        ),
        (
            orjson.dumps({k: v for k, v in pending().items() if k != "nonce"}),
            "invalid PendingTx: nonce: Field required",
        ),
        (
            orjson.dumps(pending(to="0x1234")),
            "invalid PendingTx: to: expected a 20-byte address: 0x followed by 40 hex digits",
        ),
        (
            orjson.dumps(pending(to=ADDR_CHECKSUM.replace("aA", "Aa"))),
            "invalid PendingTx: to: mixed-case address with a wrong EIP-55 checksum",
        ),
        (
            orjson.dumps(pending(hash="0x12")),
            "invalid PendingTx: hash: expected a 32-byte hash: 0x followed by 64 hex digits",
        ),
        (
            orjson.dumps(pending(surprise=1)),
            "invalid PendingTx: surprise: Extra inputs are not permitted",
        ),
    ],
)
def test_malformed_payloads_give_exact_reasons(payload: bytes, reason: str) -> None:
    with pytest.raises(MessageError) as err:
        decode(PendingTx, payload)
    assert str(err.value) == reason


def test_oversized_payload_is_rejected_before_parsing() -> None:
    with pytest.raises(MessageError) as err:
        decode(PendingTx, b"{" + b" " * (1024 * 1024) + b"}", max_bytes=262144)
    assert str(err.value) == "payload of 1048578 bytes exceeds the limit of 262144"


def test_checksum_equals_eth_utils_on_every_kind_of_input() -> None:
    """The hand EIP-55 (one keccak; detect runs it once per pending swap for the new sender)
    accepts, rejects and checksums exactly what eth_utils' validate-then-checksum did."""
    import random

    from eth_utils import is_checksum_address, is_hex_address, to_checksum_address
    from mev_common.messages import AddressError
    from mev_common.wire_types import _checksummed

    def reference(value: str) -> str:
        if not is_hex_address(value):
            raise AddressError("not_hex")
        digits = value[2:]
        if digits != digits.lower() and digits != digits.upper() and not is_checksum_address(value):
            raise AddressError("bad_checksum")
        return to_checksum_address(value)

    def outcome(fn, value: str) -> str:  # type: ignore[no-untyped-def]
        try:
            return fn(value)
        except AddressError as exc:
            return exc.kind

    rng = random.Random(55)
    cases = ["", "0x", "0x" + "0" * 40, "0X" + "AB" * 20, "ab" * 20, "0x" + "g" * 40]
    for _ in range(400):
        lower = "0x" + bytes(rng.getrandbits(8) for _ in range(20)).hex()
        good = to_checksum_address(lower)
        flipped = list(good)
        letters = [i for i, c in enumerate(good) if i > 1 and c.isalpha()]
        if letters:
            i = rng.choice(letters)
            flipped[i] = flipped[i].swapcase()
        cases += [lower, lower.upper().replace("0X", "0x"), good, "".join(flipped),
                  lower[:-1], lower + "0", lower[2:], good[2:]]  # fmt: skip
    for value in cases:
        assert outcome(_checksummed.__wrapped__, value) == outcome(reference, value), value


def test_trigger_kind_is_pending_for_a_backrun_and_block_otherwise() -> None:
    from mev_common.messages import trigger_kind

    assert trigger_kind("0x" + "ab" * 32) == "pending"  # Bundle.victim_tx_hash
    assert trigger_kind(None) == "block"
