"""The Executor contract's calldata and revert data, in one place (contracts/Executor.sol).

Simulate builds `execute(...)` calls and explains reverts; submit and the tests decode the same
bytes. Pure functions over bytes: no web3 contract objects on the hot path (eth-abi only).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from eth_abi import decode, encode
from eth_utils import function_signature_to_4byte_selector, to_checksum_address

EXECUTE_SIGNATURE = "execute((address,address,address,uint256)[],uint256,uint256,bool)"
EXECUTE_SELECTOR = function_signature_to_4byte_selector(EXECUTE_SIGNATURE)  # 0x8eb6f2bf
BALANCE_OF_SELECTOR = function_signature_to_4byte_selector("balanceOf(address)")
_EXECUTE_TYPES = ["(address,address,address,uint256)[]", "uint256", "uint256", "bool"]

# Named errors of the Executor, plus Solidity's own Error(string) and Panic(uint256).
ERROR_SIGNATURES = (
    "NotOwner(address)",
    "NotOwnerOrBeneficiary(address)",
    "NotBeneficiary(address)",
    "NotPendingOwner(address)",
    "ZeroAddress()",
    "InvalidPath()",
    "PairNotAllowed(address)",
    "InsufficientProfit(int256,uint256)",
    "UnexpectedCallback(address)",
    "CallbackMissing(address)",
    "LoanNotReceived(address,uint256,uint256)",
    "TransferFailed(address)",
    "EthTransferFailed()",
    "Error(string)",
    "Panic(uint256)",
)
_ERRORS: dict[bytes, tuple[str, list[str]]] = {
    function_signature_to_4byte_selector(sig): (
        sig[: sig.index("(")],
        [t for t in sig[sig.index("(") + 1 : -1].split(",") if t],
    )
    for sig in ERROR_SIGNATURES
}


@dataclass(frozen=True)
class ExecHop:
    """One swap of the cycle, as the contract's `Hop` struct."""

    pair: str
    token_in: str
    token_out: str
    fee_bps: int


@dataclass(frozen=True)
class ExecuteCall:
    hops: tuple[ExecHop, ...]
    amount_in: int
    min_profit: int
    flash: bool


@dataclass(frozen=True)
class RevertReason:
    """A decoded revert: `name` is the error (or "empty"/"unknown"), `args` its values."""

    name: str
    args: tuple[Any, ...] = ()
    data: bytes = b""

    def __str__(self) -> str:
        if not self.args:
            return self.name
        return f"{self.name}({', '.join(str(a) for a in self.args)})"


def encode_execute(hops: Sequence[ExecHop], amount_in: int, min_profit: int, flash: bool) -> bytes:
    """Calldata of `execute(hops, amountIn, minProfit, flash)` (layout in Executor's NatSpec)."""
    rows = [(h.pair, h.token_in, h.token_out, h.fee_bps) for h in hops]
    return EXECUTE_SELECTOR + encode(_EXECUTE_TYPES, [rows, amount_in, min_profit, flash])


def decode_execute(data: bytes) -> ExecuteCall:
    """Inverse of `encode_execute`; raises ValueError for anything but an execute call."""
    if data[:4] != EXECUTE_SELECTOR:
        raise ValueError(f"not an execute call: selector 0x{data[:4].hex()}")
    rows, amount_in, min_profit, flash = decode(_EXECUTE_TYPES, data[4:])
    hops = tuple(
        ExecHop(to_checksum_address(p), to_checksum_address(a), to_checksum_address(b), int(f))
        for p, a, b, f in rows
    )
    return ExecuteCall(hops, int(amount_in), int(min_profit), bool(flash))


def encode_balance_of(owner: str) -> bytes:
    return BALANCE_OF_SELECTOR + encode(["address"], [owner])


def _call(signature: str, *args: Any) -> bytes:
    types = [t for t in signature[signature.index("(") + 1 : -1].split(",") if t]
    return function_signature_to_4byte_selector(signature) + encode(types, list(args))


# Operator calls (key rotation, sweeps, allowlist): rare, so built per call.
def encode_sweep(token: str, amount: int) -> bytes:
    """`sweep(token, amount)`: pay `amount` of `token` to the beneficiary (owner or beneficiary)."""
    return _call("sweep(address,uint256)", token, amount)


def encode_sweep_eth(amount: int) -> bytes:
    return _call("sweepEth(uint256)", amount)


def encode_transfer_ownership(new_owner: str) -> bytes:
    """Step 1 of a key rotation (owner or beneficiary); `acceptOwnership` is step 2."""
    return _call("transferOwnership(address)", new_owner)


def encode_accept_ownership() -> bytes:
    return _call("acceptOwnership()")


def encode_set_factory(factory: str, init_code_hash: bytes, allowed: bool) -> bytes:
    """`setFactory`: allowlist (or remove) a V2 factory whose pairs the executor may call."""
    return _call("setFactory(address,bytes32,bool)", factory, init_code_hash, allowed)


def encode_address_getter(name: str) -> bytes:
    """Calldata of a no-argument address getter: "owner", "pendingOwner" or "beneficiary"."""
    return _call(f"{name}()")


def decode_revert(data: bytes) -> RevertReason:
    """Name the revert: an Executor error, Error(string), Panic(uint256), or empty/unknown."""
    if not data:
        return RevertReason("empty")
    known = _ERRORS.get(data[:4])
    if known is None:
        return RevertReason("unknown", (), data)
    name, types = known
    try:
        values = decode(types, data[4:]) if types else ()
    except Exception:
        return RevertReason(name, (), data)
    return RevertReason(name, tuple(values), data)
