"""Detect: `mev.<chain>.blocks` (ordered, per replica) and `mev.<chain>.mempool` (shared pull) in,
`mev.<chain>.opportunities.<strategy>` out."""

from __future__ import annotations

import time

from mev_common import metrics, subjects
from mev_common.bus import Envelope, PullConsumer, subscribe_ordered
from mev_common.messages import Block, Opportunity, PendingTx
from mev_common.runtime import Check, Runtime

from services.detect.passthrough import opportunity_for_block, opportunity_for_pending


async def main(rt: Runtime) -> None:
    state: dict[str, Block] = {}
    chain = rt.chain_id

    async def publish(opp: Opportunity, env: Envelope[Block] | Envelope[PendingTx]) -> None:
        await rt.bus.publish(
            subjects.opportunities(chain, opp.strategy),
            opp,
            msg_id=opp.id,
            trace=env.trace,
            seen_ns=env.seen_ns,
        )
        metrics.DETECTION_LATENCY.observe(max(0.0, (time.time_ns() - env.seen_ns) / 1e9))
        metrics.TRANSACTIONS_PROCESSED.labels(stage="detect").inc()

    async def on_block(env: Envelope[Block]) -> None:
        state["head"] = env.message
        await publish(opportunity_for_block(env.message), env)

    async def on_pending(env: Envelope[PendingTx]) -> None:
        await publish(opportunity_for_pending(env.message, state.get("head")), env)

    nats = rt.settings.nats
    consumer = PullConsumer(
        bus=rt.bus,
        spec=subjects.consumer_specs(rt.settings)["detect"],
        model=PendingTx,
        handler=on_pending,
        stage="detect",
        chain_id=chain,
        concurrency=rt.settings.performance.detect_concurrency,
        max_deliver=nats.max_deliver,
        ack_wait_s=nats.ack_wait_s,
        nak_delay_s=nats.nak_delay_s,
        max_payload_bytes=nats.max_payload_bytes,
    )
    blocks_sub = await subscribe_ordered(
        rt.bus,
        subjects.blocks(chain),
        Block,
        on_block,
        "detect",
        chain,
        max_payload_bytes=nats.max_payload_bytes,
    )
    rt.add_check("consumer", lambda: Check(True, consumer.last_error or "ok", critical=False))
    rt.ready = True
    try:
        await consumer.run(rt.stop)
    finally:
        await blocks_sub.unsubscribe()
