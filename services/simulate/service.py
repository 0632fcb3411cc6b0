"""Simulate: `mev.<chain>.opportunities.>` (shared pull) in, `mev.<chain>.bundles` out."""

from __future__ import annotations

import time

from mev_common import metrics, subjects
from mev_common.bus import Envelope, PullConsumer
from mev_common.messages import Opportunity
from mev_common.runtime import Check, Runtime

from services.simulate.passthrough import bundle_for


async def main(rt: Runtime) -> None:
    chain = rt.chain_id

    async def on_opportunity(env: Envelope[Opportunity]) -> None:
        bundle = bundle_for(env.message)
        await rt.bus.publish(
            subjects.bundles(chain), bundle, msg_id=bundle.id, trace=env.trace, seen_ns=env.seen_ns
        )
        metrics.SIMULATION_LATENCY.observe(max(0.0, (time.time_ns() - env.seen_ns) / 1e9))
        metrics.TRANSACTIONS_PROCESSED.labels(stage="simulate").inc()

    nats = rt.settings.nats
    consumer = PullConsumer(
        bus=rt.bus,
        spec=subjects.consumer_specs(rt.settings)["simulate"],
        model=Opportunity,
        handler=on_opportunity,
        stage="simulate",
        chain_id=chain,
        concurrency=rt.settings.performance.simulation_concurrency,
        max_deliver=nats.max_deliver,
        ack_wait_s=nats.ack_wait_s,
        nak_delay_s=nats.nak_delay_s,
        max_payload_bytes=nats.max_payload_bytes,
    )
    rt.add_check("consumer", lambda: Check(True, consumer.last_error or "ok", critical=False))
    rt.ready = True
    await consumer.run(rt.stop)
