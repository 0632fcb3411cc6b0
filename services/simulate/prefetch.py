"""The state a pool's first simulation needs, fetched off the hot path.

A pool the warm EVM has not touched makes a cold simulation: pyrevm fetches each account and
slot over RPC, one blocking round trip at a time (7-13 ms with the event loop stalled). When a
pool is first seen (at start, every pool of the deployment; later, one named by an opportunity)
the service traces at the head, with the RPC's prestateTracer, the calls a trade through it
makes: the pair's views, its tokens' `balanceOf` of the pair and of our executor, and an
Executor call through the pair (its factory allowlist lives in storage). The trace is every
account and slot those calls read, with its value at the head; loaded into the fork's database
while the EVM is still at that head (warm.WarmEvm.load), the values are exact. The trace also
shows each token's balance mapping, so warm.py needs no probing RPC for it later. A Uniswap V3
pool (named by an opportunity's V3 hop) is probed with V3 hops: see V3_PROBE_AMOUNTS.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from itertools import combinations
from typing import Any, Literal

from eth_utils import function_signature_to_4byte_selector
from mev_common.amm.v3 import TICK_SPACING
from mev_common.chain.contracts import V3Dex
from mev_common.chain.pools import v3_pool_address
from mev_common.executor import ExecHop, encode_balance_of, encode_execute
from mev_common.messages import Hop

from services.simulate.engine import VIEW_CALLER, TxSpec
from services.simulate.pair_state import PROBE_SLOTS
from services.simulate.reference import Prestate, RpcCall, fetch_prestate
from services.simulate.warm import BalanceSlot, WarmEvm

VIEWS = (
    "getReserves()",
    "token0()",
    "token1()",
    "price0CumulativeLast()",
    "price1CumulativeLast()",
)
log = logging.getLogger("mev.simulate")
PAIR_VIEWS = tuple(function_signature_to_4byte_selector(sig) for sig in VIEWS)
# Executor probes through the pool: flash cycles pair -> pair in both directions (they revert
# on the pair's lock after the allowlist check, the first swap and the loan transfer, which is
# what they are for). Two sizes, so one gives a non-zero output whatever the decimals.
PROBE_AMOUNTS = (10**6, 10**15)
PROBE_GAS = 1_000_000
RpcBatch = Callable[[list[tuple[str, list[Any]]]], Awaitable[list[Any]]]
# A V3 pool's probes (V3 hops, the same flash cycle, reverting on the pool's lock) also read
# the executor's V3 factory allowlist and the pool's price, liquidity, fee growth and oracle;
# the largest one swaps to the price limit, reading every tick-bitmap word (and crossing every
# initialized tick) on its side. Without them a route's first simulation through the pool read
# each of these lazily: one blocking RPC each, 14 on a V2-V3-V3 route (5 ms of CPU, 48 ms of
# wall on the event loop), and any later run crossing a new word or tick another.
V3_PROBE_AMOUNTS = (*PROBE_AMOUNTS, 10**30)
V3_PROBE_GAS = 30_000_000
V3_VIEWS = tuple(function_signature_to_4byte_selector(sig) for sig in ("token0()", "token1()"))


@dataclass(frozen=True)
class PoolProbe:
    pair: str
    token0: str
    token1: str
    v3_fee_bps: int | None = None  # a Uniswap V3 pool's fee tier (bps); None: a V2 pair

    @classmethod
    def of(cls, hop: Hop, v3: bool = True) -> PoolProbe:
        """The probe of an opportunity's hop's pool; `v3` False: V2-style probes for a V3 pool
        too (latest-only RPCs: each of a V3 probe's ~730 slots is one read of a rate-limited
        batch there, and the key recorder would run the tick walk round after round)."""
        fee = hop.fee_bps if hop.kind == "v3" and v3 else None
        return cls(hop.pool, *sorted_tokens(hop.token_in, hop.token_out), fee)

    def calls(self, executor: str, bot: str) -> list[TxSpec]:
        v3 = self.v3_fee_bps is not None
        selectors = V3_VIEWS if v3 else PAIR_VIEWS
        views = [TxSpec(VIEW_CALLER, self.pair, sel, 0, 200_000) for sel in selectors]
        balances = [
            TxSpec(VIEW_CALLER, token, encode_balance_of(holder), 0, 200_000)
            for token in (self.token0, self.token1)
            for holder in (self.pair, executor)
        ]
        trades = []
        kind: Literal["v2", "v3"] = "v3" if v3 else "v2"
        fee = self.v3_fee_bps if self.v3_fee_bps is not None else 30
        for a, b in ((self.token0, self.token1), (self.token1, self.token0)):
            hops = [ExecHop(self.pair, a, b, fee, kind), ExecHop(self.pair, b, a, fee, kind)]
            for amount in V3_PROBE_AMOUNTS if v3 else PROBE_AMOUNTS:
                data = encode_execute(hops, amount, 0, True)
                trades.append(TxSpec(bot, executor, data, 0, V3_PROBE_GAS if v3 else PROBE_GAS))
        return views + balances + trades


def v3_candidates(dexes: Sequence[V3Dex], tokens: Iterable[str]) -> list[PoolProbe]:
    """The probe of every pool the V3 factories could have between `tokens` at each enabled fee
    tier (CREATE2 addresses: a pool at one is the factory's). Which exist is asked at start
    (`existing`), so a route's first simulation through one finds it loaded: a pool first
    prefetched when an opportunity named it made that simulation read the pool's account and
    slots lazily (2.5-7 ms of CPU, 10-50 ms of wall on the loop; ~10 in a 3-minute `make run`)."""
    ordered = sorted(set(tokens), key=lambda t: int(t, 16))
    return [
        PoolProbe(v3_pool_address(d.factory, a, b, fee, d.init_code_hash), a, b, fee // 100)
        for d in dexes
        for a, b in combinations(ordered, 2)
        for fee in TICK_SPACING
    ]


async def existing(call_batch: RpcBatch, probes: list[PoolProbe]) -> list[PoolProbe]:
    """The probes whose pool has code at the latest block (one batch)."""
    codes = await call_batch([("eth_getCode", [p.pair, "latest"]) for p in probes])
    return [p for p, code in zip(probes, codes, strict=True) if isinstance(code, str) and code[2:]]


def sorted_tokens(a: str, b: str) -> tuple[str, str]:
    """A V2 pair's (token0, token1): its two tokens in address order."""
    return (a, b) if int(a, 16) < int(b, 16) else (b, a)


def balance_slot_in(prestate: Prestate, token: str, holders: list[str]) -> BalanceSlot | None:
    """The balance mapping whose slot for every holder was read by the traced `balanceOf`s."""
    account = next((v for k, v in prestate.items() if k.lower() == token.lower()), None)
    if account is None:
        return None
    for index in range(PROBE_SLOTS):
        for key_first in (True, False):
            candidate = BalanceSlot(index, key_first)
            if all(candidate.slot(h) in account.storage for h in holders):
                return candidate
    return None


async def prefetch_pool(
    rpc: RpcCall, warm: WarmEvm, probe: PoolProbe, bot: str, tries: int = 3
) -> bool:
    """Trace `probe`'s calls at the head and load them; retried when a block arrives between
    the trace and the load. False when the head kept moving."""
    calls = probe.calls(warm.executor, bot)
    for _ in range(tries):
        head, env = warm.head, warm.env
        if head is None or env is None:
            return False
        prestate = await fetch_prestate(rpc, calls, head.number, env)
        slots = {}
        for token in (probe.token0, probe.token1):
            found = balance_slot_in(prestate, token, [probe.pair, warm.executor])
            if found is not None:
                slots[token] = found
        if warm.load(head, prestate, {probe.pair: (probe.token0, probe.token1)}, slots):
            return True
    return False


async def prefetch_victim(rpc: RpcCall, warm: WarmEvm, victim: TxSpec) -> bool:
    """Load what a backrun's victim reads (its sender's balance, nonce and code, its token
    balances and allowances, the router) at the head, from one prestateTracer call awaited
    off the event loop, instead of pyrevm fetching each of them lazily, one blocking round
    trip at a time, in the simulation. Lazily they would also be read at the fork block, not
    the head: an EOA's balance changes without a log the warm EVM patches, so a victim funded
    after the fork would look unfunded. False when a block arrived meanwhile (the simulation
    then reads lazily, as without the prefetch). Loaded, the victim runs once on the EVM: its
    effect, kept for this head (effects.py), is what every backrun of it runs behind."""
    head, env = warm.head, warm.env
    if head is None or env is None:
        return False
    prestate = await fetch_prestate(rpc, [victim], head.number, env)
    if not warm.load(head, prestate, {}, {}):
        return False
    warm.touched[victim] = [(a, slot) for a, acct in prestate.items() for slot in acct.storage]
    carried = warm.carried_by([victim])  # as simulator.py asks for it: the same entry
    if warm.evm is not None and carried is not None:
        try:
            warm.effects.of(warm.evm, victim, carried)
        except Exception as exc:  # only time rides on it: the simulation runs the victim itself
            log.warning("victim run failed", extra={"fields": {"error": repr(exc)[:300]}})
    return True


def trace_refusal(exc: Exception) -> str:
    """Why the node would not trace a victim: "unfunded" (it cannot pay value + gas at the
    head, so it cannot run: drop the backrun; a lazy read at the fork block could still show
    the balance it has spent since), "unsupported" (no debug_traceCall here) or "error"."""
    text = str(exc).lower()
    if "insufficient funds" in text:
        return "unfunded"
    unsupported = ("not found", "not supported", "unsupported", "not available")
    if getattr(exc, "code", None) == -32601 or any(u in text for u in unsupported):
        return "unsupported"
    return "error"


@dataclass
class VictimLoads:
    """Which victims (by tx hash) are loaded into the current fork at the current head, so
    each is traced once a head; a refork or a new head forgets them (an EOA's balance moves
    without a log the warm EVM patches: a victim's state holds for its head only). After
    `max_errors` "unsupported" refusals in a row (an RPC without debug_traceCall) it stops
    trying: simulations then read victims lazily. Only those count: unfunded victims are free
    to send and must not switch the prefetch off."""

    limit: int = 4096
    max_errors: int = 3
    at: tuple[int, int] = (-1, -1)  # (forks, head number) the loaded victims hold for
    errors: int = 0
    loaded: dict[str, None] = field(default_factory=dict)

    def needed(self, tx_hash: str, forks: int, head: int = 0) -> bool:
        if (forks, head) != self.at:
            self.at, self.loaded = (forks, head), {}
        return self.errors < self.max_errors and tx_hash not in self.loaded

    def done(self, tx_hash: str, ok: bool) -> None:
        if ok:
            self.errors = 0
            self.loaded[tx_hash] = None
            if len(self.loaded) > self.limit:
                del self.loaded[next(iter(self.loaded))]

    def failed(self) -> None:
        self.errors += 1
