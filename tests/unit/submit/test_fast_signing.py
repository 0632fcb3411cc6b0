"""Submit's own EIP-1559 encoder and signer (services/submit/signing.py) gives eth-account's
raw bytes and hash exactly, on 1,000 txs with RLP's edge lengths and values, and leaves
every tx it does not take as is (another shape, a spelling eth-account refuses) to eth-account."""

from __future__ import annotations

import random
from typing import Any

import pytest
from eth_account import Account
from eth_utils import to_checksum_address

from services.submit.keys import Signer
from services.submit.signing import Eip1559Signer

EDGE_INTS = (0, 1, 0x7F, 0x80, 0xFF, 0x100, 2**64 - 1, 2**255)
EDGE_DATA = (0, 1, 55, 56, 57, 255, 256, 1024)


def _uint(rng: random.Random, bits: int) -> int:
    return rng.choice([*(v for v in EDGE_INTS if v < 2**bits), rng.getrandbits(bits)])


def _tx(rng: random.Random) -> dict[str, Any]:
    size = rng.choice([*EDGE_DATA, rng.randrange(3000)])
    data = rng.randbytes(size)
    if size == 1:  # a single byte below 0x80 is its own RLP encoding
        data = bytes([rng.choice([0, 0x7F, 0x80, 0xFF])])
    return {
        "type": 2,
        "chainId": rng.choice([1, 999, 31337, 2**40]),
        "nonce": _uint(rng, 64),
        "to": to_checksum_address(rng.randbytes(20)),
        "value": _uint(rng, 256),
        "data": rng.choice(["0x" + data.hex(), data]),
        "gas": _uint(rng, 40),
        "maxFeePerGas": _uint(rng, 128),
        "maxPriorityFeePerGas": _uint(rng, 128),
    }


def test_raw_bytes_and_hash_are_eth_accounts_on_1000_txs() -> None:
    rng = random.Random(67)
    checked = 0
    for _ in range(50):
        account = Account.from_key(rng.randbytes(32))
        signer = Signer(account)
        for _ in range(20):
            tx = _tx(rng)
            want = account.sign_transaction(dict(tx))
            assert Eip1559Signer(bytes(account.key)).sign(dict(tx)) is not None  # the fast path
            raw, tx_hash = signer.sign(dict(tx))
            assert raw == bytes(want.raw_transaction)
            assert tx_hash == "0x" + bytes(want.hash).hex()
            checked += 1
    assert checked == 1000


@pytest.mark.parametrize(
    "change",
    [
        {"to": "0x" + "ab" * 20},  # lower case: eth-account wants the checksum spelling
        {"to": "0x" + "Ab" * 20},  # a wrong checksum
        {"nonce": -1},
        {"gas": True},
    ],
)
def test_what_eth_account_refuses_is_refused(change: dict[str, Any]) -> None:
    account = Account.from_key(b"\x4c" * 32)
    tx = {**_tx(random.Random(1)), **change}
    assert Eip1559Signer(bytes(account.key)).sign(dict(tx)) is None
    with pytest.raises(Exception):  # noqa: B017 (eth-account raises several types)
        account.sign_transaction(dict(tx))
    with pytest.raises(Exception):  # noqa: B017
        Signer(account).sign(dict(tx))


@pytest.mark.parametrize(
    "change",
    [
        {"accessList": []},  # another shape
        {"data": "0xabc"},  # odd hex: eth-account pads it
        {"value": 2**256},  # eth-account does not bound it
    ],
)
def test_what_it_does_not_take_as_is_eth_account_signs(change: dict[str, Any]) -> None:
    account = Account.from_key(b"\x4c" * 32)
    tx = {**_tx(random.Random(2)), **change}
    assert Eip1559Signer(bytes(account.key)).sign(dict(tx)) is None
    raw, _ = Signer(account).sign(dict(tx))
    assert raw == bytes(account.sign_transaction(dict(tx)).raw_transaction)


def test_the_key_never_shows() -> None:
    key = b"\x4c" * 32
    signer = Eip1559Signer(key)
    assert key.hex() not in repr(signer) and key.hex() not in str(signer)
    with pytest.raises(TypeError):
        __import__("pickle").dumps(signer)
