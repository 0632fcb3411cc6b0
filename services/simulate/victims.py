"""A backrun's victim, traced at the head before its simulation needs it.

The simulation runs the victim on its state at the head (prefetch.prefetch_victim: one
prestateTracer call; a lazy read at the fork block is wrong for an EOA). Awaited when the
opportunity arrives, that trace was the largest hop of a backrun's seen -> bundle (~4 ms of ~15
on `make run`). So simulate also listens to the mempool subject (core NATS: a hint, nothing
acked) and starts the trace when the pending swap is seen, beside detect's search: when the
opportunity arrives the trace is done or in flight, and the opportunity shares it.

Exactness: a victim loaded counts for the head it was traced at only. At a new head it is
traced again (its sender's balance can change without a log the warm EVM patches), and a
trace a block overtook ("moved": nothing loaded) is redone at the new head before the
simulation, rather than letting pyrevm read the victim lazily at the fork block.

Early traces cost RPC: at most `simulate.early_victim_traces_per_s` a second (a token bucket
that never waits: a swap over the budget is traced when its opportunity arrives, as before)
and EARLY_IN_FLIGHT at once; the rest of a burst (`make run`'s flow sends its swaps right
after each block) waits its turn. On each endpoint's rate limit these traces come after block
diffs and before the reference check and the pool probes, which leave them
`simulate.victim_trace_reserve` tokens (rpc_priority.py): they never wait behind those. A mixin
of SimulateService.

Only likely victims: a swap is traced early when it puts in at least the first quartile of what
detect's recent victims of its input token put in (SizeFloors, learned from the opportunities
that arrive; a token with none yet is always traced). Most of `make run`'s swaps are too small to
backrun (610 traces for 36 victims in h51's run), and each trace took CPU from ingest and
detect at the moment swaps arrive. A swap under the floor that is a victim after all is traced
when its opportunity arrives, as before: only time, never a decision, rides on the floor.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from mev_common import metrics, subjects
from mev_common.chain.ratelimit import TokenBucket
from mev_common.chain.router_calls import RouterCallError, decode_router_call
from mev_common.chain.swap_router_calls import SwapRouterCallError, decode_swap_router_call
from mev_common.messages import PendingTx

from services.simulate.prefetch import VictimLoads, prefetch_victim, trace_refusal
from services.simulate.simulator import victim_tx

if TYPE_CHECKING:
    from mev_common.stage import Stage

    from services.simulate.rpc_priority import SimulateCalls
    from services.simulate.warm import WarmEvm

log = logging.getLogger("mev.simulate")
VICTIM_TRACE_TIMEOUT_S = 0.1  # past this the simulation reads the victim lazily instead
EARLY_IN_FLIGHT = 2  # early traces at once: more only queue at the node behind each other
FLOOR_WINDOW = 32  # a token's recent victims its size floor is the first quartile of
FLOOR_MIN_VICTIMS = 4  # below this many, the floor is the smallest victim
FLOOR_TOKENS = 1024  # input tokens with a floor at most (the bus is hostile: memory stays bounded)


def swap_input(tx: PendingTx) -> tuple[str, int] | None:
    """(input token, lowercase; amount in or its limit) of a Router02 or SwapRouter swap, or
    None for a call that is neither (or does not decode)."""
    try:
        v2 = decode_router_call(tx.input, tx.value)
        if v2 is not None:
            return v2.path[0].lower(), v2.amount_in
        v3 = decode_swap_router_call(tx.input, tx.value)
    except (RouterCallError, SwapRouterCallError):
        return None
    return (v3.tokens[0].lower(), v3.amount_in) if v3 is not None else None


@dataclass
class SizeFloors:
    """Per input token, the amount a swap must put in to be worth an early trace (module
    docstring): the first quartile of the last FLOOR_WINDOW victims detect sent (the smallest
    until FLOOR_MIN_VICTIMS have come). A token without a victim yet has no floor."""

    recent: dict[str, deque[int]] = field(default_factory=dict)
    floors: dict[str, int] = field(default_factory=dict)

    def learn(self, victim: PendingTx) -> None:
        swap = swap_input(victim)
        if swap is None:
            return
        token, amount = swap
        if token not in self.recent and len(self.recent) >= FLOOR_TOKENS:
            return  # a new token past the cap keeps no floor: its swaps are traced as before
        amounts = self.recent.setdefault(token, deque(maxlen=FLOOR_WINDOW))
        amounts.append(amount)
        ranked = sorted(amounts)
        self.floors[token] = ranked[len(ranked) // 4 if len(ranked) >= FLOOR_MIN_VICTIMS else 0]

    def likely(self, tx: PendingTx) -> bool:
        swap = swap_input(tx)
        if swap is None:
            return False
        token, amount = swap
        return amount >= self.floors.get(token, 0)


@dataclass
class EarlyGate:
    """Which seen pending txs get an early victim trace: a swap through a known router at least
    its token's victim floor, within the rate (tokens, no waiting). `slots` bounds the traces
    in flight."""

    rate: float
    routers: frozenset[str]
    max_in_flight: int = EARLY_IN_FLIGHT
    clock: Callable[[], float] = time.monotonic
    sizes: SizeFloors = field(default_factory=SizeFloors)
    bucket: TokenBucket | None = field(init=False)
    slots: asyncio.Semaphore = field(init=False)

    def __post_init__(self) -> None:
        self.routers = frozenset(r.lower() for r in self.routers)
        self.bucket = TokenBucket(self.rate, clock=self.clock) if self.rate > 0 else None
        self.slots = asyncio.Semaphore(self.max_in_flight)

    def admit(self, tx: PendingTx) -> bool:
        if self.bucket is None:
            return False
        if tx.to is None or tx.to.lower() not in self.routers or len(tx.input) < 10:
            return False
        return self.sizes.likely(tx) and self.bucket.try_take() == 0


class VictimTraces:
    stage: Stage
    calls: SimulateCalls
    warm: WarmEvm
    latest_only: bool
    victims: VictimLoads
    victim_calls: dict[str, asyncio.Future[str]]
    early: EarlyGate | None = None

    async def listen_pending(self, rate: float, routers: frozenset[str]) -> None:
        """Trace victims as their pending swaps are seen (not on latest-only RPCs: no pending
        txs there, and no trace at a block number)."""
        if self.latest_only or rate <= 0:
            return
        self.early = EarlyGate(rate, routers)
        await self.stage.listen(
            subjects.mempool(self.stage.rt.chain_id), PendingTx, self.on_pending
        )

    async def on_pending(self, tx: PendingTx) -> None:
        """Start the trace (a burst's later swaps wait here for a slot: the subscription hands
        the next hint over once this one started)."""
        early = self.early
        if early is None or not early.admit(tx):
            return
        await early.slots.acquire()
        metrics.SIMULATOR_PREFETCHES.labels(result="victim_early").inc()
        self.victim_call(tx).add_done_callback(lambda _: early.slots.release())

    def saw_victim(self, victim: PendingTx) -> None:
        """A backrun of detect's arrived: its victim's size lowers its token's floor."""
        if self.early is not None:
            self.early.sizes.learn(victim)

    def victim_call(self, victim: PendingTx) -> asyncio.Future[str]:
        """The victim's trace in flight, or a new one: the opportunities of one pending swap
        (several cycles arrive together, and its early trace) share it."""
        call = self.victim_calls.get(victim.hash)
        if call is None:
            call = asyncio.ensure_future(self.trace_victim(victim))
            self.victim_calls[victim.hash] = call
            call.add_done_callback(lambda _: self.victim_calls.pop(victim.hash, None))
        return call

    async def load_victim(self, victim: PendingTx) -> bool:
        """The victim loaded at the current head; False when the node says it cannot pay
        (drop the backrun). A trace a block overtook is redone once at the new head."""
        outcome = await asyncio.shield(self.victim_call(victim))
        if outcome == "moved":
            outcome = await asyncio.shield(self.victim_call(victim))
        return outcome != "unfunded"

    def victim_needed(self, victim: PendingTx) -> bool:
        """Not loaded at the current head yet (nor given up: an RPC without the tracer; nor
        latest-only, HyperEVM: no pending txs there, and no trace at a block number)."""
        head = self.warm.head
        at = head.number if head is not None else 0
        return not self.latest_only and self.victims.needed(victim.hash, self.warm.forks, at)

    async def trace_victim(self, victim: PendingTx) -> str:
        """The victim's state at the head in one awaited trace (prefetch.prefetch_victim), once
        per victim and head: "loaded", "moved" (a block arrived meanwhile: nothing loaded),
        "unfunded" (the node says it cannot pay), or a failure after which the simulation
        reads the victim lazily ("timeout", "unsupported", "error")."""
        if not self.victim_needed(victim):
            return "loaded"
        try:
            call = prefetch_victim(self.calls.victim, self.warm, victim_tx(victim))
            ok = await asyncio.wait_for(call, VICTIM_TRACE_TIMEOUT_S)
        except TimeoutError:  # a slow node, not a missing method: try the next victim
            metrics.SIMULATOR_PREFETCHES.labels(result="victim_timeout").inc()
            return "timeout"
        except Exception as exc:  # a prefetch only saves time: its failure costs a cold run
            refusal = trace_refusal(exc)
            metrics.SIMULATOR_PREFETCHES.labels(result=f"victim_{refusal}").inc()
            if refusal == "unsupported":
                self.victims.failed()
                log.warning("victim prefetch failed", extra={"fields": {"error": repr(exc)}})
            return refusal
        self.victims.done(victim.hash, ok)
        metrics.SIMULATOR_PREFETCHES.labels(result="victim_ok" if ok else "victim_moved").inc()
        return "loaded" if ok else "moved"
