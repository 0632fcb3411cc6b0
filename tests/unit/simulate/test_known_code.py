"""Code simulate already holds is reused (known_code.py): a victim trace names the same router,
pairs and tokens again and again, and building pyrevm's AccountInfo from their code hashed and
analysed it every time. Reused only where exact: the same bytes, in the same EVM's database."""

from __future__ import annotations

from typing import Any

from mev_common.messages import Block
from pyrevm import EVM, AccountInfo

from services.simulate.known_code import CodeHashes, code_bytes
from services.simulate.reference import AccountState
from services.simulate.warm import WarmEvm

ROUTER, CALLER = "0x" + "a1" * 20, "0x" + "c1" * 20
RETURNS_42 = bytes.fromhex("602a60005260206000f3")  # mstore(0, 42); return(0, 32)
RETURNS_7 = bytes.fromhex("600760005260206000f3")


class Inserts:
    """An EVM that records the AccountInfo of each insert."""

    def __init__(self, evm: EVM) -> None:
        self.evm, self.infos = evm, []  # type: list[AccountInfo]

    def insert_account_info(self, address: str, info: AccountInfo) -> None:
        self.infos.append(info)
        self.evm.insert_account_info(address, info)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.evm, name)


def warm_with(evm: Any) -> WarmEvm:
    warm = WarmEvm(None, 1, "0x" + "ee" * 20)
    warm.evm = evm
    warm.head = Block(chain_id=1, number=5, hash="0x" + "11" * 32, parent_hash="0x" + "22" * 32,
                      timestamp=10, base_fee_per_gas=1, gas_limit=30_000_000)  # fmt: skip
    return warm


def load(warm: WarmEvm, code: bytes, balance: int) -> None:
    assert warm.head is not None
    assert warm.load(warm.head, {ROUTER: AccountState(balance, 1, code, {3: balance})}, {}, {})


def call(evm: Any) -> int:
    """The contract's answer, the EVM left as found (as simulate's runs leave it)."""
    checkpoint = evm.snapshot()
    try:
        return int.from_bytes(bytes(evm.message_call(CALLER, ROUTER, b"")), "big")
    finally:
        evm.revert(checkpoint)


def balance(evm: Any) -> int:
    checkpoint = evm.snapshot()
    try:
        return int(evm.get_balance(ROUTER))
    finally:
        evm.revert(checkpoint)


def test_a_contract_loaded_again_is_named_by_its_hash_and_runs_the_same_code() -> None:
    evm = Inserts(EVM())
    warm = warm_with(evm)
    load(warm, RETURNS_42, 5)
    load(warm, bytes(RETURNS_42), 6)  # a new trace: equal bytes, another object
    first, again = evm.infos
    assert first.code == RETURNS_42 and not again.code  # no code to hash and analyse again
    assert again.code_hash == first.code_hash
    assert call(evm) == 42 and balance(evm) == 6  # the balance is the new trace's
    load(warm, RETURNS_7, 7)  # other code at the address: loaded as code again
    assert evm.infos[-1].code == RETURNS_7 and call(evm) == 7
    load(warm, RETURNS_7, 8)  # and that code is named by its hash from then on
    assert not evm.infos[-1].code and call(evm) == 7


def test_a_new_evm_is_given_the_code_itself() -> None:
    """A refork's database holds none of the code: naming a hash there would run nothing."""
    codes = CodeHashes()
    old = EVM()
    info = codes.info(old, ROUTER, 0, 1, RETURNS_42)
    old.insert_account_info(ROUTER, info)
    codes.inserted(ROUTER, info, RETURNS_42)
    assert not codes.info(old, ROUTER, 0, 1, RETURNS_42).code
    fresh = EVM()
    again = codes.info(fresh, ROUTER, 0, 1, RETURNS_42)
    assert again.code == RETURNS_42
    fresh.insert_account_info(ROUTER, again)
    assert call(fresh) == 42


def test_code_hex_is_decoded_once_per_address_and_hex() -> None:
    hex_code = "0x" + RETURNS_42.hex()
    first = code_bytes(ROUTER, hex_code)
    assert first == RETURNS_42
    assert code_bytes(ROUTER, "0x" + RETURNS_42.hex()) is first  # an equal string: no decode
    assert code_bytes(ROUTER, "0x" + RETURNS_7.hex()) == RETURNS_7
