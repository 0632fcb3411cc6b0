"""Contract code simulate has already decoded and loaded, reused instead of redone.

Every victim trace (prefetch.prefetch_victim) names the same router, pairs and tokens, with
their whole code (~75 KB of hex for a V2 router swap). Decoding that hex again cost ~0.3 ms a
trace, and loading it again into the EVM ~0.65 ms more: pyrevm's `AccountInfo(code=...)`
hashes and analyses the code each time (~0.36 ms for the 22 KB router). Both ran on simulate's
event loop as swaps were seen, right when backruns arrive: ~1 ms of CPU a trace, the largest
CPU cost on that loop in `make run` (more than the simulations). Now the hex of an address's
code is decoded once (`code_bytes`), and an account whose code this EVM's database already
holds is loaded by its code hash (`CodeHashes.info`): the database keeps the code it was given
under that hash, so the EVM runs the very same bytes.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pyrevm import EVM, AccountInfo

# addresses remembered at most (a hostile bus may name many contracts): a contract's code is at
# most 24 KB, its hex 48 KB, so at most ~37 MB; past it the cache starts again
MAX_CODES = 512

_HEX: dict[str, tuple[str, bytes]] = {}  # address -> (its code's hex, those bytes)


def code_bytes(address: str, hex_code: str) -> bytes:
    """`hex_code` decoded, the same bytes object as last time for the same address and hex."""
    known = _HEX.get(address)
    if known is not None and known[0] == hex_code:
        return known[1]
    code = bytes.fromhex(hex_code.removeprefix("0x"))
    if len(_HEX) >= MAX_CODES:
        _HEX.clear()
    _HEX[address] = (hex_code, code)
    return code


def account_info(
    balance: int, nonce: int, code_hash: bytes | None, code: bytes | None
) -> AccountInfo:
    """pyrevm's AccountInfo (its 0.3.7 stubs leave out the first argument, balance)."""
    return AccountInfo(balance, nonce, code_hash, code)  # type: ignore[arg-type,call-arg]


@dataclass
class CodeHashes:
    """The code (and its hash) `info` gave one EVM's database for each address. A different
    EVM (a refork) starts empty: its database holds none of it."""

    evm: EVM | None = None
    codes: dict[str, tuple[bytes, bytes]] = field(default_factory=dict)

    def info(self, evm: EVM, address: str, balance: int, nonce: int, code: bytes) -> AccountInfo:
        """The account to insert into `evm`'s database; call `inserted` once it is in."""
        if evm is not self.evm:
            self.evm, self.codes = evm, {}
        if not code:
            return account_info(balance, nonce, None, None)
        known = self.codes.get(address)
        if known is not None and known[0] == code:
            return account_info(balance, nonce, known[1], None)
        return account_info(balance, nonce, None, code)

    def inserted(self, address: str, info: AccountInfo, code: bytes) -> None:
        """`info` (from `info`) is in the database now: its code may be named by hash."""
        code_hash = info.code_hash
        if not code or code_hash is None:
            return
        if len(self.codes) >= MAX_CODES and address not in self.codes:
            self.codes.clear()
        self.codes[address] = (code, bytes(code_hash))
