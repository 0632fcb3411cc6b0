"""When blocks are produced, estimated from budgeted head polls alone (HyperEVM profile).

Under an RPC budget ingest sees the head only every few blocks, and block timestamps are whole
seconds, so nothing says how old a polled head is within a 1-s block. The polls themselves do:
a poll sent at wall time `sent` that got head N back at `received` says block N was produced
at or before `received` and block N+1 after `sent`. With a steady block time T, block n is
produced at `phase + n*T`, so each poll bounds `phase` from both sides; the intersection over
recent polls narrows it to tens of ms (the poll scheduler bisects it while it is wide).

When the bounds become inconsistent (block times not steady, a stall, a skipped block) the
estimator forgets what the new poll contradicts and says it is not locked; unlocked means the
bot behaves as without it. Being locked on a wrong phase only shifts polls (same number) and
refuses trades that looked old: it never makes a trade go out that would not have gone out.
Pure: times are passed in (seconds, wall clock), nothing is read here.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

WINDOW = 32  # recent polls kept (~85 s at 2.67 s): older bounds expire, so drift unlocks
MIN_POLLS = 3  # consistent polls before the estimate is trusted


@dataclass(frozen=True)
class Poll:
    """One head poll: sent and answered at these wall times (s), the head it returned."""

    sent: float
    received: float
    head: int

    def bounds(self, block_time: float) -> tuple[float, float]:
        """(low, high): phase > low and phase <= high (block n produced at phase + n*T)."""
        return self.sent - (self.head + 1) * block_time, self.received - self.head * block_time


@dataclass
class PhaseEstimator:
    """The production phase of a steady chain, from the intersection of recent polls."""

    block_time: float
    lock_width: float = 0.08  # s: locked when the phase is known this well
    polls: deque[Poll] = field(default_factory=lambda: deque(maxlen=WINDOW))
    resets: int = 0

    def __post_init__(self) -> None:
        if self.block_time <= 0:
            raise ValueError("chain.block_time_s must be > 0 to estimate block production")

    def observe(self, poll: Poll) -> None:
        """Add a poll; keep only the newest polls consistent with it (a reset when it
        contradicts the older ones)."""
        kept = [poll]
        low, high = poll.bounds(self.block_time)
        for older in reversed(self.polls):
            lo, hi = older.bounds(self.block_time)
            if max(low, lo) > min(high, hi):
                self.resets += 1
                break
            kept.append(older)
            low, high = max(low, lo), min(high, hi)
        self.polls = deque(reversed(kept), maxlen=WINDOW)

    def interval(self) -> tuple[float, float] | None:
        """(earliest, latest) phase consistent with the recent polls (None: no poll yet)."""
        if not self.polls:
            return None
        bounds = [p.bounds(self.block_time) for p in self.polls]
        return max(b[0] for b in bounds), min(b[1] for b in bounds)

    @property
    def locked(self) -> bool:
        found = self.interval()
        return (
            found is not None
            and len(self.polls) >= MIN_POLLS
            and found[1] - found[0] <= self.lock_width
        )

    def produced_at(self, number: int) -> float | None:
        """The earliest time block `number` can have been produced (so its age is never
        underestimated by the phase's uncertainty); None when not locked."""
        found = self.interval()
        if found is None or not self.locked:
            return None
        return found[0] + number * self.block_time

    def next_poll(self, not_before: float, delay: float) -> float:
        """When to poll, at or after `not_before`: `delay` after the latest possible
        production of the next block when locked; while unlocked, at the middle of the
        phase's uncertainty (each poll halves it); with no bounds yet, at `not_before`."""
        found = self.interval()
        if found is None:
            return not_before
        low, high = found
        offset = high + delay if self.locked else (low + min(high, low + self.block_time)) / 2
        slots = -((offset - not_before) // self.block_time)  # ceil: the first slot not before
        return offset + slots * self.block_time


def next_block_first(
    produced_at: float | None, now: float, block_time: float, margin: float
) -> bool:
    """True when the block after the state block is probably produced before a tx sent now
    reaches the node (then it lands two blocks after its state: the trade is not sent).
    `produced_at` None (not locked, or a WebSocket feed): never (today's behaviour)."""
    if produced_at is None:
        return False
    return now - produced_at + margin >= block_time


LATE_HEAD = "late head: the next block is likely produced before the tx reaches the node"


@dataclass
class ProductionClock:
    """Submit's view of block production: the latest block message's estimate."""

    block_time: float
    margin: float  # s: from the send decision to the tx at the node, and then some
    number: int = -1
    produced_ns: int | None = None

    def saw(self, number: int, produced_ns: int | None) -> None:
        """A block message (its estimate None: not locked, or not a polled head)."""
        if number >= self.number:
            self.number, self.produced_ns = number, produced_ns

    def late_reason(self, state_block: int, now_ns: int) -> str | None:
        """Why a trade proven on `state_block` must not be sent at `now_ns` (None: send)."""
        if self.produced_ns is None:
            return None
        produced = self.produced_ns / 1e9 + (state_block - self.number) * self.block_time
        if not next_block_first(produced, now_ns / 1e9, self.block_time, self.margin):
            return None
        return f"{LATE_HEAD} (block {state_block}, {now_ns / 1e9 - produced:.3f} s old)"
