"""Signing is on the tick-to-trade path: eth-keys' pure-Python backend took 12-45 ms a tx on
the loaded bench machine, libsecp256k1 (coincurve) ~1 ms (bench.makerun's submit_sign hop).
Same deterministic signature. Speed is the bench's to measure; here, that the native backend
is the one in use."""

from __future__ import annotations

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
