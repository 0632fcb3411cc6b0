"""Signing is on the tick-to-trade path: eth-keys' pure-Python backend took 12-45 ms a tx on
the loaded bench machine, libsecp256k1 (coincurve) ~1 ms. Same deterministic signature."""

from __future__ import annotations

import time

from eth_account import Account
from eth_account.typed_transactions import TypedTransaction
from eth_keys import KeyAPI
from eth_keys.backends import CoinCurveECCBackend, NativeECCBackend, get_backend

from services.submit.keys import Signer

KEY = "0x" + "4c" * 32
TX = {
    "type": 2,
    "chainId": 31337,
    "nonce": 7,
    "to": "0x" + "11" * 20,
    "value": 0,
    "gas": 312_345,
    "maxFeePerGas": 100 * 10**9,
    "maxPriorityFeePerGas": 10**9,
    "data": "0x" + "ab" * 300,
}


def test_signing_uses_libsecp256k1() -> None:
    assert isinstance(get_backend(), CoinCurveECCBackend)


def test_the_signature_is_the_pure_python_backends_to_the_bit() -> None:
    raw, tx_hash = Signer(Account.from_key(KEY)).sign(dict(TX))
    signed = Account.from_key(KEY).sign_transaction(dict(TX))
    assert raw == bytes(signed.raw_transaction) and tx_hash == "0x" + bytes(signed.hash).hex()
    digest = TypedTransaction.from_dict(dict(TX)).hash()
    native = KeyAPI(NativeECCBackend()).PrivateKey(bytes.fromhex(KEY[2:])).sign_msg_hash(digest)
    assert (signed.r, signed.s, signed.v) == (native.r, native.s, native.v)


def test_one_signature_takes_milliseconds_not_tens() -> None:
    signer = Signer(Account.from_key(KEY))
    signer.sign(dict(TX))
    started = time.perf_counter()
    for nonce in range(20):
        signer.sign(dict(TX, nonce=nonce))
    per_tx_ms = (time.perf_counter() - started) / 20 * 1e3
    assert per_tx_ms < 8.0, per_tx_ms  # native: 12-45 ms loaded; coincurve ~1 ms loaded
