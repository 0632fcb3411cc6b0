"""The hand-laid `execute` and `balanceOf` calldata (mev_common.executor) equals eth-abi's
encoding byte for byte, and refuses what eth-abi refuses."""

from __future__ import annotations

import random

import pytest
from eth_abi import encode
from eth_utils import to_checksum_address
from mev_common.executor import (
    _EXECUTE_TYPES,
    BALANCE_OF_SELECTOR,
    EXECUTE_SELECTOR,
    ExecHop,
    _decode_abi,
    _decode_canonical,
    decode_execute,
    encode_balance_of,
    encode_execute,
)

EDGES = (0, 1, 2**255, 2**256 - 1, 10**18, 12345678901234567890)


def address(rng: random.Random) -> str:
    return to_checksum_address(rng.getrandbits(160).to_bytes(20, "big"))


def reference(hops: list[ExecHop], amount_in: int, min_profit: int, flash: bool) -> bytes:
    rows = [(h.pair, h.token_in, h.token_out, h.fee_word) for h in hops]
    return EXECUTE_SELECTOR + encode(_EXECUTE_TYPES, [rows, amount_in, min_profit, flash])


def test_execute_equals_eth_abi() -> None:
    rng = random.Random(12)
    for case in range(400):
        hops = [
            ExecHop(
                address(rng),
                address(rng),
                address(rng),
                rng.choice((0, 5, 30, 100, 9999)),
                rng.choice(("v2", "v3")),
            )
            for _ in range(case % 5)  # 0 to 4 hops (0: the contract refuses it, not the encoder)
        ]
        amount = rng.choice(EDGES) if case % 3 == 0 else rng.getrandbits(rng.randint(1, 256))
        floor = rng.choice(EDGES) if case % 4 == 0 else rng.getrandbits(rng.randint(1, 200))
        flash = bool(case % 2)
        data = encode_execute(hops, amount, floor, flash)
        assert data == reference(hops, amount, floor, flash)
        call = decode_execute(data)
        assert (list(call.hops), call.amount_in, call.min_profit, call.flash) == (
            hops,
            amount,
            floor,
            flash,
        )


def test_lower_case_addresses_equal_eth_abi() -> None:
    hop = ExecHop("0x" + "ab" * 20, "0x" + "CD" * 20, "0X" + "0f" * 20, 30)
    assert encode_execute([hop], 5, 6, True) == reference([hop], 5, 6, True)


def test_balance_of_equals_eth_abi() -> None:
    rng = random.Random(3)
    for _ in range(100):
        owner = address(rng)
        assert encode_balance_of(owner) == BALANCE_OF_SELECTOR + encode(["address"], [owner])


@pytest.mark.parametrize(
    ("amount", "floor", "flash", "pair"),
    [
        (-1, 0, True, "0x" + "11" * 20),  # negative
        (2**256, 0, True, "0x" + "11" * 20),  # too wide
        (1, 2**256, False, "0x" + "11" * 20),
        (True, 0, True, "0x" + "11" * 20),  # a bool is no amount
        (1, 0, 1, "0x" + "11" * 20),  # an int is no bool
        (1, 0, True, "0x" + "11" * 19),  # short
        (1, 0, True, "0x" + "11 " * 13 + "1"),  # 40 characters with spaces: not 20 bytes
        (1, 0, True, "0x" + "zz" * 20),  # not hex
        (1, 0, True, "11" * 21),  # no 0x
    ],
)
def test_refuses_what_eth_abi_refuses(amount: int, floor: int, flash: bool, pair: str) -> None:
    hop = ExecHop(pair, "0x" + "22" * 20, "0x" + "33" * 20, 30)
    with pytest.raises(ValueError):
        encode_execute([hop], amount, floor, flash)
    with pytest.raises(Exception):  # noqa: B017  eth-abi's EncodingError (a TypeError or ValueError)
        reference([hop], amount, floor, flash)


def _abi_or_error(data: bytes) -> object:
    try:
        return _decode_abi(data)
    except Exception as exc:  # eth-abi's own error types
        return type(exc)


def _decoded_or_error(data: bytes) -> object:
    try:
        return decode_execute(data)
    except Exception as exc:
        return type(exc)


def test_the_hand_decoder_is_eth_abis_on_canonical_calls() -> None:
    rng = random.Random(67)
    for case in range(400):
        hops = [
            ExecHop(address(rng), address(rng), address(rng), rng.choice((0, 5, 30, 9999)),
                    rng.choice(("v2", "v3")))
            for _ in range(case % 5)
        ]  # fmt: skip
        data = encode_execute(hops, rng.getrandbits(256), rng.getrandbits(200), bool(case % 2))
        assert _decode_canonical(data) is not None  # the hand path took it
        assert decode_execute(data) == _decode_abi(data)


def _mangled(data: bytes) -> list[bytes]:
    """Bytes eth-abi may read differently from the canonical layout, or refuse."""
    word = lambda v: v.to_bytes(32, "big")  # noqa: E731
    hop0 = 4 + 5 * 32
    return [
        data + b"\x00",  # a trailing byte
        data + bytes(32),  # a trailing word
        data[:-1],  # truncated
        data[:4] + word(5 * 32) + data[36:164] + bytes(32) + data[164:],  # another offset
        data[:100] + word(2) + data[132:],  # flash word 2
        data[:132] + word(5) + data[164:],  # hop count beyond the data
        data[:hop0] + b"\x01" + data[hop0 + 1 :],  # dirty address padding
        data[: hop0 + 96] + word(10_000) + data[hop0 + 128 :],  # fee word no hop kind has
        bytes(4) + data[4:],  # another selector
    ]


def test_what_is_not_canonical_decodes_as_eth_abi_decodes_it() -> None:
    hops = [ExecHop(address(random.Random(k)), address(random.Random(k + 9)),
                    address(random.Random(k + 99)), 30) for k in range(3)]  # fmt: skip
    for bad in _mangled(encode_execute(hops, 10**18, 10**15, True)):
        assert _decode_canonical(bad) is None
        assert _decoded_or_error(bad) == _abi_or_error(bad)
