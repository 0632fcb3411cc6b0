"""Send a signed tx with `eth_sendRawTransaction`: a block trade (and a cancel) to every healthy
endpoint at once, a backrun to the one endpoint its victim was seen on.

Why every endpoint: the first node to gossip it wins, and one slow or broken endpoint never
holds a trade back. The raw bytes are the same everywhere, so the chain can include it only
once whatever the number of copies.

Why one for a backrun: it bids exactly its victim's max fee, and fee-ordered nodes (anvil:
docs/DEVNET.md) break that tie by arrival, so it lands right behind its victim only on a node
that had the victim first. A node without the victim mines ours before or without it: it
reverts (gas lost). The node ingest read the victim from (`Bundle.victim_seen_on`) held it
before we ever saw it, so ours reaches that node after its victim; no other node is known to.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from enum import Enum

from mev_common import metrics
from mev_common.chain.jsonrpc import RpcError
from mev_common.chain.rpc_pool import RpcPool, rank_endpoints

# Node answers that mean "I already have this exact tx": as good as an acceptance.
_ALREADY_KNOWN = ("already known", "known transaction", "already imported", "alreadyknown")


class Verdict(Enum):
    ACCEPTED = "accepted"  # at least one node took it (or already had it)
    REJECTED = "rejected"  # every answering node refused it: it will not be mined from here
    UNKNOWN = "unknown"  # no node answered: it may or may not have reached one


@dataclass
class SendResult:
    verdict: Verdict
    accepted_by: list[str] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)

    @property
    def reason(self) -> str:
        return "; ".join(f"{k}: {v}" for k, v in sorted(self.errors.items()))


def targets(pool: RpcPool, only: str | None) -> list[str] | str:
    """`[only]` when named (a backrun's victim's endpoint: no other node is known to hold the
    victim), else every endpoint not backing off (all of them if none is up); or why none."""
    now = time.monotonic()
    if only is not None:
        state = pool.states.get(only)
        if state is None:  # routing refuses such a backrun before it is signed
            return f"victim's endpoint {only!r} is no RPC endpoint of ours"
        if state.down_until > now:  # a send would likely be lost, its nonce held to a cancel
            return f"victim's endpoint {only!r} is backing off after errors: not sent elsewhere"
        return [only]
    ranked = rank_endpoints(list(pool.states.values()), now, pool.max_lag_blocks)
    return [s.name for s in ranked if s.down_until <= now] or list(pool.clients)


async def send_raw(
    pool: RpcPool,
    raw: bytes,
    seen_ns: int | None = None,
    trigger: str = "block",
    only: str | None = None,
) -> SendResult:
    """Hand `raw` to the `targets` endpoints at once; a trade's seen -> sent is observed under
    its `trigger` (messages.trigger_kind)."""
    names = targets(pool, only)
    if isinstance(names, str):  # sent nowhere: the nonce is given back, the bundle not_sent
        return SendResult(Verdict.REJECTED, errors={str(only): names})
    payload = "0x" + raw.hex()
    if seen_ns:
        metrics.SUBMISSION_LATENCY.labels(trigger=trigger).observe(
            max(0.0, (time.time_ns() - seen_ns) / 1e9)
        )
    replies = await asyncio.gather(
        *(pool.clients[name].call("eth_sendRawTransaction", [payload]) for name in names),
        return_exceptions=True,
    )
    result = SendResult(Verdict.UNKNOWN)
    answered_no = 0
    for name, reply in zip(names, replies, strict=True):
        if not isinstance(reply, BaseException):
            result.accepted_by.append(name)
            continue
        message = str(reply)
        if isinstance(reply, RpcError) and reply.code is not None:
            if any(k in message.lower() for k in _ALREADY_KNOWN):
                result.accepted_by.append(name)
                continue
            answered_no += 1
        result.errors[name] = message[:300]
        metrics.ERRORS.labels(kind="send_raw").inc()
    if result.accepted_by:
        result.verdict = Verdict.ACCEPTED
    elif answered_no == len(names):  # a lost answer might hide an acceptance: UNKNOWN
        result.verdict = Verdict.REJECTED
    return result
