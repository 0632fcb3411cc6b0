"""The Executor contract's calldata and revert data, in one place (contracts/Executor.sol).

Simulate builds `execute(...)` calls and explains reverts; submit and the tests decode the same
bytes. Pure functions over bytes: no web3 contract objects on the hot path (eth-abi only).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Literal

from eth_abi import decode, encode
from eth_utils import function_signature_to_4byte_selector, to_checksum_address

if TYPE_CHECKING:
    from mev_common.messages import Hop

EXECUTE_SIGNATURE = "execute((address,address,address,uint256)[],uint256,uint256,bool)"
EXECUTE_SELECTOR = function_signature_to_4byte_selector(EXECUTE_SIGNATURE)  # 0x8eb6f2bf
BALANCE_OF_SELECTOR = function_signature_to_4byte_selector("balanceOf(address)")
_EXECUTE_TYPES = ["(address,address,address,uint256)[]", "uint256", "uint256", "bool"]
# A hop's fee word says its kind (ExecutorBase's NatSpec): below 10,000 a V2 pair's fee in bps;
# V3_HOP | fee in pips a Uniswap V3 pool of that fee tier (pips = bps * 100).
V3_HOP = 1 << 24
V2_FEE_LIMIT = 10_000
V3_FEE_LIMIT_PIPS = 1_000_000
# What `execute` costs a trader (a nonce lane 1+ key) over the owner, whom simulate runs it as:
# `onlyTrader` reads `_ownerEpoch` and `_traders[epoch][sender]` (two cold slots plus the two
# keccaks) only when the sender is not the owner. Exact where the gas refund is under EIP-3529's
# cap (a fifth of the gas); an upper bound where the owner's refund is capped (the trader's
# extra gas raises the cap): ExecutorStorageCommit's 2-hop flash trade, whose commitment slot
# refunds 19,900, costs a trader 712 less (3-hop: exact again). Booking the bound never
# underprices. tests/security/test_executor_traders.py measures both builds, 2 and 3 hops.
TRADER_EXTRA_GAS = 4_353

# Named errors of the Executor, plus Solidity's own Error(string) and Panic(uint256).
ERROR_SIGNATURES = (
    "NotOwner(address)",
    "NotTrader(address)",
    "NotOwnerOrBeneficiary(address)",
    "NotBeneficiary(address)",
    "NotPendingOwner(address)",
    "ZeroAddress()",
    "InvalidPath()",
    "PairNotAllowed(address)",
    "InsufficientProfit(int256,uint256)",
    "UnexpectedCallback(address)",
    "UnexpectedV3Callback(address)",
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
    """One swap of the cycle, as the contract's `Hop` struct. `fee_bps` is the pool's fee in
    basis points for both kinds (a V3 tier in pips is fee_bps * 100, as in messages.Hop)."""

    pair: str
    token_in: str
    token_out: str
    fee_bps: int
    kind: Literal["v2", "v3"] = "v2"

    @classmethod
    def of(cls, hop: Hop) -> ExecHop:
        """The executor hop of a message hop."""
        return cls(hop.pool, hop.token_in, hop.token_out, hop.fee_bps, hop.kind)

    @property
    def fee_word(self) -> int:
        """The struct's fee word: the bps (V2) or V3_HOP | pips (V3)."""
        if self.kind == "v3":
            if not 0 <= self.fee_bps * 100 < V3_FEE_LIMIT_PIPS:
                raise ValueError(f"V3 fee {self.fee_bps} bps out of range")
            return V3_HOP | self.fee_bps * 100
        if not 0 <= self.fee_bps < V2_FEE_LIMIT:
            raise ValueError(f"V2 fee {self.fee_bps} bps out of range")
        return self.fee_bps

    @property
    def fee_pips(self) -> int:
        """A V3 pool's fee tier (its CREATE2 salt has it), in hundredths of a bp."""
        return self.fee_bps * 100


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
    """Calldata of `execute(hops, amountIn, minProfit, flash)` (layout in Executor's NatSpec).

    Laid out by hand, the bytes eth-abi gives (tests/unit/test_executor_encoding.py compares
    them): simulate encodes two a backrun, and eth-abi's generic encoder took ~85 us each.
    Head: the array's offset (4 words), amountIn, minProfit, flash; tail: the length, then each
    hop's four words in place (a static tuple). Addresses are checked for shape only: their
    checksum was checked where they came in (messages, the deployment)."""
    if not isinstance(flash, bool):
        raise ValueError(f"flash must be a bool, not {flash!r}")
    words = [
        _uint(4 * 32),
        _uint(amount_in),
        _uint(min_profit),
        _uint(int(flash)),
        _uint(len(hops)),
    ]
    for h in hops:
        words += [_address(h.pair), _address(h.token_in), _address(h.token_out), _uint(h.fee_word)]
    return EXECUTE_SELECTOR + b"".join(words)


def _uint(value: int) -> bytes:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 1 << 256:
        raise ValueError(f"not a uint256: {value!r}")
    return value.to_bytes(32, "big")


def _address(address: str) -> bytes:
    if not isinstance(address, str) or len(address) != 42 or address[:2] not in ("0x", "0X"):
        raise ValueError(f"not an address: {address!r}")
    try:
        raw = bytes.fromhex(address[2:])
    except ValueError:
        raw = b""
    if len(raw) != 20:  # fromhex skips spaces: "0x" and 40 characters is not yet 20 bytes
        raise ValueError(f"not an address: {address!r}")
    return bytes(12) + raw


def decode_execute(data: bytes) -> ExecuteCall:
    """Inverse of `encode_execute`; raises ValueError for anything but an execute call.

    Submit decodes every bundle on its tick-to-trade path, and eth-abi's generic decoder with a
    checksum per address took ~0.4 ms for 2 hops: the canonical layout (what `encode_execute`
    writes) is read by hand, and kept only if it encodes back to `data` byte for byte, which
    makes it eth-abi's answer; anything else goes through eth-abi as before."""
    call = _decode_canonical(data)
    if call is not None:
        return call
    return _decode_abi(data)


def _decode_canonical(data: bytes) -> ExecuteCall | None:
    n, rest = divmod(len(data) - 4 - 5 * 32, 4 * 32)
    if n < 0 or rest or data[:4] != EXECUTE_SELECTOR:
        return None
    word = [int.from_bytes(data[i : i + 32], "big") for i in range(4, 4 + 5 * 32, 32)]
    if word[0] != 4 * 32 or word[3] > 1 or word[4] != n:
        return None
    hops = []
    for k in range(n):
        at = 4 + 5 * 32 + k * 4 * 32
        pair, token_in, token_out = (
            _checksum(data[i + 12 : i + 32]) for i in range(at, at + 96, 32)
        )
        try:
            hops.append(
                _hop(pair, token_in, token_out, int.from_bytes(data[at + 96 : at + 128], "big"))
            )
        except ValueError:
            return None
    call = ExecuteCall(tuple(hops), word[1], word[2], bool(word[3]))
    try:
        same = encode_execute(call.hops, call.amount_in, call.min_profit, call.flash) == data
    except ValueError:
        return None
    return call if same else None


@lru_cache(maxsize=4096)
def _checksum(raw: bytes) -> str:
    """The checksummed spelling of a 20-byte address (a handful of pools and tokens recur)."""
    return str(to_checksum_address(raw))


def _decode_abi(data: bytes) -> ExecuteCall:
    if data[:4] != EXECUTE_SELECTOR:
        raise ValueError(f"not an execute call: selector 0x{data[:4].hex()}")
    rows, amount_in, min_profit, flash = decode(_EXECUTE_TYPES, data[4:])
    hops = tuple(
        _hop(to_checksum_address(p), to_checksum_address(a), to_checksum_address(b), int(f))
        for p, a, b, f in rows
    )
    return ExecuteCall(hops, int(amount_in), int(min_profit), bool(flash))


def _hop(pair: str, token_in: str, token_out: str, word: int) -> ExecHop:
    """The hop a fee word describes; ValueError for a word the contract refuses or that no
    ExecHop encodes back to (a V3 tier that is not a whole number of bps)."""
    if word < V2_FEE_LIMIT:
        return ExecHop(pair, token_in, token_out, word)
    pips = word - V3_HOP
    if 0 <= pips < V3_FEE_LIMIT_PIPS and pips % 100 == 0:
        return ExecHop(pair, token_in, token_out, pips // 100, "v3")
    raise ValueError(f"hop fee word {word:#x} is neither a V2 fee nor V3_HOP | a whole-bps tier")


def encode_balance_of(owner: str) -> bytes:
    return BALANCE_OF_SELECTOR + _address(owner)


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


def encode_set_trader(trader: str, allowed: bool) -> bytes:
    """`setTrader` (owner only): let a nonce lane's key `execute` (or no longer). An ownership
    change drops every trader the previous owner named: the new owner names them again."""
    return _call("setTrader(address,bool)", trader, allowed)


def encode_is_trader(account: str) -> bytes:
    """`isTrader(account)`: may it `execute` now (the owner always may)."""
    return _call("isTrader(address)", account)


def encode_set_factory(factory: str, init_code_hash: bytes, allowed: bool) -> bytes:
    """`setFactory`: allowlist (or remove) a V2 factory whose pairs the executor may call."""
    return _call("setFactory(address,bytes32,bool)", factory, init_code_hash, allowed)


def encode_set_v3_factory(factory: str, init_code_hash: bytes, allowed: bool) -> bytes:
    """`setV3Factory`: allowlist (or remove) a Uniswap V3 factory whose pools the executor may
    call (CREATE2 salted by its pools' tokens and fee tier)."""
    return _call("setV3Factory(address,bytes32,bool)", factory, init_code_hash, allowed)


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
