"""A pass-through pipeline stage on the real runtime and bus, for the bus-contract tests.

`python -m tests.support.relay --stage detect|simulate --config PATH` consumes that stage's
input (detect: mempool PendingTx; simulate: Opportunity) and publishes one message per input
(an Opportunity; a Bundle) with an id derived from the input, exactly as a real stage does
(detect's batched, its publishes' acks deferred). It
lets the contract tests (exactly-once, dead letters, SIGTERM drain, health) run without a chain.
"""

from __future__ import annotations

import argparse
import asyncio
import sys

from mev_common import subjects
from mev_common.bus import Envelope
from mev_common.consumer import PullConsumer
from mev_common.messages import Bundle, Opportunity, PendingTx
from mev_common.runtime import Runtime, run_async, setup_logging
from mev_common.settings import load_settings

ZERO_HASH = "0x" + "00" * 32


def opportunity_for(tx: PendingTx) -> Opportunity:
    return Opportunity(
        id=f"backrun:{tx.hash}",
        chain_id=tx.chain_id,
        strategy="backrun",
        trigger=tx.hash,
        block_number=0,
        block_hash=ZERO_HASH,
    )


def bundle_for(opp: Opportunity) -> Bundle:
    return Bundle(
        id=f"bundle:{opp.id}",
        opportunity_id=opp.id,
        chain_id=opp.chain_id,
        strategy=opp.strategy,
        block_number=opp.block_number,
    )


def relay_main(stage: str):  # type: ignore[no-untyped-def]
    async def main(rt: Runtime) -> None:
        chain = rt.chain_id

        async def to_opportunity(env: Envelope[PendingTx]) -> None:
            """As detect: sent at once, its stream ack deferred to the batched consumer."""
            opp = opportunity_for(env.message)
            sent = await rt.bus.publish_later(
                subjects.opportunities(chain, opp.strategy),
                opp,
                msg_id=opp.id,
                trace=env.trace,
                seen_ns=env.seen_ns,
            )
            env.defer(sent)

        async def to_bundle(env: Envelope[Opportunity]) -> None:
            bundle = bundle_for(env.message)
            await rt.bus.publish(
                subjects.bundles(chain),
                bundle,
                msg_id=bundle.id,
                trace=env.trace,
                seen_ns=env.seen_ns,
            )

        nats = rt.settings.nats
        consumer: PullConsumer[PendingTx] | PullConsumer[Opportunity]
        spec = subjects.consumer_specs(rt.settings)[stage]
        common = dict(
            bus=rt.bus,
            spec=spec,
            stage=stage,
            chain_id=chain,
            concurrency=8,
            max_deliver=nats.max_deliver,
            ack_wait_s=nats.ack_wait_s,
            nak_delay_s=nats.nak_delay_s,
            max_payload_bytes=nats.max_payload_bytes,
        )
        if stage == "detect":
            consumer = PullConsumer(
                model=PendingTx,
                handler=to_opportunity,
                batched=True,  # detect's input is batched (services/detect/service.py)
                **common,  # type: ignore[arg-type]
            )
        else:
            consumer = PullConsumer(model=Opportunity, handler=to_bundle, **common)  # type: ignore[arg-type]
        rt.ready = True
        await consumer.run(rt.stop)

    return main


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--stage", choices=["detect", "simulate"], required=True)
    parser.add_argument("--config", required=True)
    args = parser.parse_args()
    settings = load_settings(args.config)
    setup_logging(args.stage, "INFO", "json")
    sys.exit(asyncio.run(run_async(args.stage, settings, relay_main(args.stage))))
