"""A stage's durable consumer as declared: created from the config, or brought to it at start.

JetStream keeps a durable's config: subscribing to it again (nats-py's `pull_subscribe`) only
reads it, so a changed `nats.max_deliver` or `nats.ack_wait_s` never reached a running
deployment, silently. A server-side `max_deliver` below the config's loses a bundle handed
back on the server's last delivery (the consumer, counting to the config's, nak'd it), an
`ack_wait` shorter than the config's delivers work twice. So at start each service compares
the durable with the config: the fields JetStream edits on a durable (nats-server 2.15.1:
max_deliver, ack_wait, max_ack_pending, filter_subject) are updated in place and logged, old
-> new; a field it cannot edit (ack policy, deliver policy) is a refusal to start naming the
fix, as a consumer acking otherwise than the pipeline expects loses or repeats work. A service
whose update is refused (its bus permissions, a server error) says so and runs on the
durable's values: the consumer reads its real `max_deliver`, never the config's
(mev_common.consumer). The operator's `mev-bot nats-auth declare` applies the same updates.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import nats.errors
import nats.js.errors
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from mev_common.refusal import RefuseToStart
from mev_common.subjects import ConsumerSpec

log = logging.getLogger("mev.bus")

# What JetStream edits on a durable (checked on nats-server 2.15.1), and what it refuses with
# 10012 "... can not be updated"; only the fields the pipeline sets are compared.
EDITABLE = ("max_deliver", "ack_wait", "max_ack_pending", "filter_subject")
FIXED = ("ack_policy", "deliver_policy")


class ConsumerMismatch(RefuseToStart):
    """The durable differs from the config in a field JetStream cannot edit."""


@dataclass(frozen=True)
class Change:
    field: str
    have: Any
    want: Any

    def __str__(self) -> str:
        return f"{self.field} {_shown(self.field, self.have)} -> {_shown(self.field, self.want)}"


def consumer_config(spec: ConsumerSpec, max_deliver: int, ack_wait_s: float) -> ConsumerConfig:
    """The config a stage's durable should have (`nats.max_deliver`, `nats.ack_wait_s`)."""
    return ConsumerConfig(
        name=spec.durable,
        durable_name=spec.durable,
        ack_policy=AckPolicy.EXPLICIT,
        deliver_policy=DeliverPolicy.ALL,
        max_deliver=max_deliver,
        ack_wait=ack_wait_s,
        max_ack_pending=spec.max_ack_pending,
        filter_subject=spec.filter_subject,
    )


def differences(
    have: ConsumerConfig, want: ConsumerConfig, fields: tuple[str, ...]
) -> list[Change]:
    return [
        Change(f, getattr(have, f), getattr(want, f))
        for f in fields
        if _norm(f, getattr(have, f)) != _norm(f, getattr(want, f))
    ]


async def declare_consumer(
    js: JetStreamContext,
    spec: ConsumerSpec,
    want: ConsumerConfig,
    *,
    update: bool = True,
    create: bool = True,
) -> ConsumerConfig | None:
    """The durable's config in effect: created from `want` if missing (None if not `create`),
    else checked against it: `ConsumerMismatch` for a field JetStream cannot edit, an update of
    the others if `update` (a refused update is logged and the durable's values kept)."""
    try:
        have = (await js.consumer_info(spec.stream, spec.durable)).config
    except nats.js.errors.NotFoundError:
        if not create:
            return None
        return (await js.add_consumer(spec.stream, config=want)).config
    fixed = differences(have, want, FIXED)
    if fixed:
        raise ConsumerMismatch(_refusal(spec, fixed))
    changes = differences(have, want, EDITABLE)
    if not changes or not update:
        return have
    changed = ", ".join(map(str, changes))
    name = f"{spec.stream} {spec.durable}"
    try:
        now = (await js.add_consumer(spec.stream, config=want)).config
    except (nats.errors.Error, TimeoutError) as exc:  # a permission refusal: no answer
        log.error(
            "consumer differs from the config and could not be updated: running on its "
            "values; run `mev-bot nats-auth declare` (as operator) and restart the service",
            extra={"fields": {"consumer": name, "differs": changed, "error": repr(exc)}},
        )
        return have
    log.info(
        "consumer updated to the config",
        extra={"fields": {"consumer": name, "changed": changed}},
    )
    return now


def limit_of(config: ConsumerConfig, fallback: int) -> int:
    """The delivery after which the server delivers a message no more (-1/0: never)."""
    value = config.max_deliver
    if value is None:
        return fallback
    return value if value > 0 else 1 << 62


def _refusal(spec: ConsumerSpec, fixed: list[Change]) -> str:
    what = ", ".join(f"{c.field} {_shown(c.field, c.have)} (config: {_shown(c.field, c.want)})"
                     for c in fixed)  # fmt: skip
    return (
        f"durable consumer {spec.durable} on {spec.stream} has {what}, which JetStream cannot "
        f"change on a durable: stop every replica of this stage, run `nats consumer rm "
        f"{spec.stream} {spec.durable}`, then start them (the durable is created from the "
        f"config; it delivers what {spec.stream} still holds again)"
    )


def _norm(field: str, value: Any) -> Any:
    if field == "ack_wait" and value is not None:
        return round(float(value) * 1e9)  # the server keeps nanoseconds
    if field in FIXED and value is not None:
        return getattr(value, "value", value)  # the enum or its string
    return value


def _shown(field: str, value: Any) -> str:
    if field == "ack_wait" and value is not None:
        return f"{float(value):g}s"
    return str(getattr(value, "value", value))
