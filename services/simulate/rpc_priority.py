"""Simulate's four RPC consumers in priority order on each endpoint's one token bucket.

simulate's RPC calls (not pyrevm's own lazy reads) go through their endpoint's `rate_limit_rps`
bucket (RpcPool; 25 calls a second by default). Drained, it served whoever asked first (only
the probes left victim traces some); now each consumer leaves the ones above it their tokens
(`keep=`: TokenBucket.try_take), ranked by what it costs when late:

1. Block diffs (diff_feed.py; one trace a block with V3 events, one at a time). Late, every
   simulation through a pool the block changed (or through our executor after our own V3
   trade), backruns included, waits for it (BLOCK_DIFF_WAIT_S), then reforks: nothing is
   proven on the stale state, but a refork leaves the EVM cold and queues every pool's probes
   again (~700 calls on the devnet's 56 pools). Takes any token.
2. Victim traces (victims.py). Late past VICTIM_TRACE_TIMEOUT_S, the simulation reads the
   victim lazily on the hot path: a backrun late or missed. Leaves DIFF_TOKENS.
3. The reference check (reference_checks.py; a sample of published bundles, one at a time,
   3 calls). It traces at the bundle's block, so late it only waits; simulate goes on
   publishing meanwhile, and a check that fails is counted (`result="error"`) and dropped:
   waiting is what it should do. Above the probes, so a disagreement's halt is never held back
   behind a refork's re-prefetch (28 s at 25 calls/s). Leaves DIFF_TOKENS +
   `simulate.victim_trace_reserve`.
4. Pool probes (prefetch.py, at start and after each refork): only time rides on them (a cold
   run reads lazily). Leave what the reference check leaves plus REFERENCE_TOKENS.

The endpoint's limit still bounds them together; with nothing above it asking, each runs at
the full rate. TokenBucket caps a keep at the burst less one (a full bucket serves anyone): on a
burst of at most 2 + the reserve the reference check and the probes tie, at most 2 victim
traces too (latest-only RPCs, HyperEVM's 1.6 calls a second, have none of the first three).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING

from services.simulate.reference import RpcCall

if TYPE_CHECKING:
    from mev_common.chain.rpc_pool import RpcPool

DIFF_TOKENS = 1  # DiffFeed asks one block's diff at a time
REFERENCE_TOKENS = 1  # one reference check at a time, its calls one after another


def keeps(victim_reserve: int) -> tuple[float, float, float, float]:
    """Tokens (diff, victim trace, reference check, pool probe) each leaves in the bucket."""
    victim = float(DIFF_TOKENS)
    reference = victim + victim_reserve
    return 0.0, victim, reference, reference + REFERENCE_TOKENS


@dataclass(frozen=True)
class SimulateCalls:
    """The RPC call each consumer uses, at its place in the order (module docstring)."""

    diff: RpcCall
    victim: RpcCall
    reference: RpcCall
    probe: RpcCall

    @classmethod
    def on(cls, rpc: RpcPool, victim_reserve: int) -> SimulateCalls:
        calls = [partial(rpc.call, keep=keep) for keep in keeps(victim_reserve)]
        return cls(*calls)

    @classmethod
    def plain(cls, call: RpcCall) -> SimulateCalls:
        """One call for all (no bucket: tests, a node of one's own)."""
        return cls(call, call, call, call)
