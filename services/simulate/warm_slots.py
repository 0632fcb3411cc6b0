"""The slots of the warm EVM's state a trade reads (WarmEvm's, kept apart from its patching):
what a tx ahead of the trade may change, carried over cold behind it (`carried_slots` from
the route, `carried_by` from the txs' traces), and each token's balance mapping, found once by
probing a pair's balance (`balance_slot`)."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from eth_utils import to_checksum_address
from pyrevm import EVM

from services.simulate.engine import NeedsRefork, TxSpec, balance_of, read_slots
from services.simulate.pair_state import (
    PROBE_SLOTS,
    SLOT_PRICE0,
    SLOT_PRICE1,
    SLOT_RESERVES,
    SLOT_TOKEN0,
    SLOT_TOKEN1,
    BalanceSlot,
)

log = logging.getLogger("mev.simulate.warm")


class StateSlots:
    """WarmEvm's slot bookkeeping; the fields are WarmEvm's (services/simulate/warm.py)."""

    evm: EVM | None
    balance_slots: dict[str, BalanceSlot | None]
    pair_tokens: dict[str, tuple[str, str]]
    touched: dict[TxSpec, list[tuple[str, int]]]

    def carried_slots(self, hops: list[tuple[str, str, str]]) -> list[tuple[str, int]] | None:
        """What a victim may change that a trade through `hops` (pool, token in, token out)
        reads: each pool's reserve and price slots and its two token balances. None when a
        token's balance mapping is not known yet (no probing here: this is the hot path)."""
        out: list[tuple[str, int]] = []
        for pool, token_in, token_out in hops:
            out += [(pool, SLOT_RESERVES), (pool, SLOT_PRICE0), (pool, SLOT_PRICE1)]
            for token in (token_in, token_out):
                found = self.balance_slots.get(token)
                if found is None:
                    return None
                out.append((token, found.slot(pool)))
        return list(dict.fromkeys(out))

    def carried_by(self, txs: Sequence[TxSpec]) -> list[tuple[str, int]] | None:
        """Every slot the txs touch, when each was traced at this head: all a tx run alone
        on the head can change that a trade behind it reads, so the trade runs on its effect
        cold (exact gas, any route: V3 pools' slots too). None when one was not (the
        one-journal fallback)."""
        out: list[tuple[str, int]] = []
        for tx in txs:
            slots = self.touched.get(tx)
            if slots is None:
                return None
            out += slots
        return list(dict.fromkeys(out))

    def tokens_of(self, pair: str) -> tuple[str, str]:
        known = self.pair_tokens.get(pair)
        if known is not None:
            return known
        assert self.evm is not None
        t0, t1 = read_slots(self.evm, pair, SLOT_TOKEN0, SLOT_TOKEN1)
        if t0 == 0 or t1 == 0:
            raise NeedsRefork(f"pair {pair} unknown at the fork block")
        tokens = (_address(t0), _address(t1))
        self.pair_tokens[pair] = tokens
        return tokens

    def balance_slot(self, token: str) -> BalanceSlot:
        """Find (once per token) the balance mapping by matching balanceOf(holder) with the
        storage of each candidate slot, the holder being a pair with a non-zero balance."""
        if token not in self.balance_slots:
            self.balance_slots[token] = self.probe_balance_slot(token)
        found = self.balance_slots[token]
        if found is None:
            raise NeedsRefork(f"token {token}: balance slot unknown")
        return found

    def probe_balance_slot(self, token: str) -> BalanceSlot | None:
        evm = self.evm
        assert evm is not None
        holder = next((p for p, ts in self.pair_tokens.items() if token in ts), None)
        if holder is None:
            return None
        checkpoint = evm.snapshot()  # reads warm what they touch: undo that
        try:
            return self._probe(evm, token, holder)
        finally:
            evm.revert(checkpoint)

    def _probe(self, evm: EVM, token: str, holder: str) -> BalanceSlot | None:
        try:
            balance = balance_of(evm, token, holder)
        except Exception:
            return None
        if balance == 0:
            return None
        for index in range(PROBE_SLOTS):
            for key_first in (True, False):
                candidate = BalanceSlot(index, key_first)
                if evm.storage(token, candidate.slot(holder)) == balance:
                    return candidate
        log.warning("no balance slot found", extra={"fields": {"token": token}})
        return None


def _address(word: int) -> str:
    return to_checksum_address(word.to_bytes(32, "big")[12:])
