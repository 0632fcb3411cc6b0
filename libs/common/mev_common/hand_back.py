"""A hand-back on a message's last allowed delivery: the copy that takes its place.

A hand-back (`Retryable(error=False)`: a stopping submit returning a bundle it never tried) is
no failed attempt, yet each delivery counts toward the consumer's `max_deliver`, and the server
delivers a message no more once that many deliveries ended, whatever the answer: a nak on the
last one would lose the message, as dead-lettering it did. So the consumer stores a copy in the
stream (same subject, payload and headers, a new stream message whose deliveries count from
zero) and acks the original, which the server would not deliver again anyway: the message goes
on exactly once. A copy's `Nats-Msg-Id` is derived from the original's stream sequence, so a
publish tried again is stored once (the stream's duplicate window); `Mev-Handed-Back` keeps the
first message's id across copies of copies. The last delivery is the durable's: the consumer
reads its `max_deliver` from the server (mev_common.consumer_decl). Should the ack be lost and
that limit have been raised since (a replica restarted with another config), the original
could come back as well: submit books a bundle once by its id (its gate skips a bundle already
in the ledger), the only stage that hands back.
"""

from __future__ import annotations

import hashlib
import time

from nats.aio.msg import Msg

from mev_common.bus import Bus
from mev_common.subjects import HEADER_HANDED_BACK, HEADER_MSG_ID, HEADER_SEEN_NS, HEADER_TRACE


def copy_id(msg: Msg) -> str:
    """The copy's `Nats-Msg-Id`: the first message's id and this one's stream sequence."""
    return f"{_first_id(msg)}:handed-back:{msg.metadata.sequence.stream}"


async def store_copy(bus: Bus, msg: Msg) -> None:
    """Publish `msg` again, as it was, for the next consumer (raises as `Bus.publish` does)."""
    headers = dict(msg.headers or {})
    first = _first_id(msg)
    for name in (HEADER_MSG_ID, HEADER_HANDED_BACK):
        headers.pop(name, None)
    seen = headers.pop(HEADER_SEEN_NS, "")
    await bus.publish(
        msg.subject,
        msg.data or b"",
        msg_id=copy_id(msg),
        trace=headers.pop(HEADER_TRACE, first),
        seen_ns=int(seen) if seen.isdigit() else time.time_ns(),  # as `envelope_of` reads it
        extra_headers={**headers, HEADER_HANDED_BACK: first},
    )


def _first_id(msg: Msg) -> str:
    headers = msg.headers or {}
    first = headers.get(HEADER_HANDED_BACK) or headers.get(HEADER_MSG_ID)
    return first or hashlib.sha256(msg.data or b"").hexdigest()
