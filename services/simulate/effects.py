"""A victim's effect, run once per victim and head and shared by every backrun of it.

A backrun runs behind its victim as two transactions (engine.run_backrun): the victim in a
reverted checkpoint, what it left in the carried slots written cold for our call. Detect sends
several cycles through one pending swap, and each simulation ran the victim again (3 EVM txs a
plain backrun: the victim, the measuring call, the final calldata). The victim's effect does
not depend on the route behind it when the carried slots are every slot the victim touches
(its trace at the head, warm.WarmEvm.carried_by): it is computed once, when the victim's trace
is loaded (prefetch.prefetch_victim, before its opportunity arrives), and every backrun of it
at that head runs 2 (the measuring call and the final calldata).

Exactness: an effect is a function of the block env and of the state the victim reads: the
slots it touches (carried: their values are re-read on every reuse and must equal those it
ran on) and the accounts pyrevm loaded for it (balance, nonce, code hash: re-read too). A new
head or a refork clears every effect (warm.py: the block env moves); a block diff, a prefetch
or another victim's trace that changes any of those values makes the entry stale, and it runs
again. Only a victim run alone is kept: txs ahead of it (a stacked victim on the same pool, our
own trades) are another state, simulated as before (simulator.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pyrevm import EVM

from services.simulate.engine import SimResult, TxSpec, read_slots_at, run_ahead

Account = tuple[int, int, bytes | None]  # balance, nonce, code hash
Slots = list[tuple[str, int]]
LIMIT = 4096  # victims kept at one head (the bus is hostile: memory stays bounded)


@dataclass(frozen=True)
class Effect:
    carried: tuple[tuple[str, int], ...]
    before: list[int]  # carried's values the victim ran on
    accounts: dict[str, Account]  # what pyrevm loaded for it, as it was then
    after: list[int] | SimResult  # carried's values after it, or its failure


def account_state(evm: EVM, addresses: list[str]) -> dict[str, Account]:
    """Each account's balance, nonce and code hash, left out of the journal (cold)."""
    checkpoint = evm.snapshot()
    try:
        out: dict[str, Account] = {}
        for address in addresses:
            info = evm.basic(address)
            out[address] = (int(info.balance), int(info.nonce), info.code_hash)
        return out
    finally:
        evm.revert(checkpoint)


@dataclass
class VictimEffects:
    """Effects by victim at the current head (cleared by warm.py at each new head or refork);
    `runs` and `reused` count victim runs and reuses (simulate's /health)."""

    entries: dict[TxSpec, Effect] = field(default_factory=dict)
    runs: int = 0
    reused: int = 0

    def clear(self) -> None:
        self.entries.clear()

    def of(
        self, evm: EVM, victim: TxSpec, carried: Slots
    ) -> tuple[list[int] | SimResult, list[int]]:
        """`victim`'s values of `carried` after it runs on the EVM's state (left unchanged), or
        its failure; and `carried`'s values before it (engine.carried_state's `before`). The
        entry of an earlier run is reused when the state it ran on is unchanged."""
        before = read_slots_at(evm, carried)
        entry = self.entries.get(victim)
        if (
            entry is not None
            and entry.carried == tuple(carried)
            and entry.before == before
            and account_state(evm, list(entry.accounts)) == entry.accounts
        ):
            self.reused += 1
            return entry.after, before
        after, loaded = run_ahead(evm, victim, carried)
        self.runs += 1
        self.entries.pop(victim, None)
        if len(self.entries) >= LIMIT:
            del self.entries[next(iter(self.entries))]
        self.entries[victim] = Effect(tuple(carried), before, account_state(evm, loaded), after)
        return after, before
