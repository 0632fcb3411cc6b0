"""Submit: `mev.<chain>.bundles` (durable pull) in, SQLite ledger and `mev.<chain>.outcomes` out."""

from __future__ import annotations

from mev_common import metrics, subjects
from mev_common.bus import Envelope, PullConsumer
from mev_common.messages import Bundle
from mev_common.runtime import Check, Runtime

from services.submit.decide import outcome_for_unsendable
from services.submit.ledger import Ledger


async def main(rt: Runtime) -> None:
    chain = rt.chain_id
    ledger = Ledger(rt.settings.database.path)

    async def on_bundle(env: Envelope[Bundle]) -> None:
        bundle = env.message
        outcome = ledger.outcome_for(bundle.id)
        if outcome is None:  # first time: decide and book before anything leaves this process
            outcome = outcome_for_unsendable(bundle)
            ledger.book(bundle, outcome)
            metrics.BUNDLES.labels(strategy=bundle.strategy, outcome=outcome.status).inc()
        await rt.bus.publish(
            subjects.outcomes(chain),
            outcome,
            msg_id=f"outcome:{bundle.id}",
            trace=env.trace,
            seen_ns=env.seen_ns,
        )
        metrics.TRANSACTIONS_PROCESSED.labels(stage="submit").inc()

    nats = rt.settings.nats
    consumer = PullConsumer(
        bus=rt.bus,
        spec=subjects.consumer_specs(rt.settings)["submit"],
        model=Bundle,
        handler=on_bundle,
        stage="submit",
        chain_id=chain,
        concurrency=1,  # one sender per key: nonces are sequential
        max_deliver=nats.max_deliver,
        ack_wait_s=nats.ack_wait_s,
        nak_delay_s=nats.nak_delay_s,
        max_payload_bytes=nats.max_payload_bytes,
    )
    rt.add_check("consumer", lambda: Check(True, consumer.last_error or "ok", critical=False))
    rt.add_check("ledger", lambda: Check(True, rt.settings.database.path))
    rt.ready = True
    try:
        await consumer.run(rt.stop)
    finally:
        ledger.close()
