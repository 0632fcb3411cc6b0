"""Which JetStream refusals a service waits out at start (a cluster still forming) and which
end it at once: CI saw a fresh 3-node cluster refuse an R3 stream with 10005 while the meta
leader did not yet know every peer, and the service (and the bench) gave up."""

from __future__ import annotations

import nats.errors
import nats.js.errors
import pytest
from mev_common.stream_decl import NO_PLACEMENT, cluster_settling


@pytest.mark.parametrize(
    ("exc", "settling"),
    [
        (nats.errors.TimeoutError(), True),
        (TimeoutError(), True),
        (nats.errors.NoRespondersError(), True),
        (nats.js.errors.ServiceUnavailableError(code=503, err_code=10008), True),
        (nats.js.errors.BadRequestError(code=400, err_code=NO_PLACEMENT), True),
        # permissions or a stream declared differently: waiting changes nothing
        (nats.js.errors.BadRequestError(code=400, err_code=10058), False),
        (nats.js.errors.APIError(code=403, err_code=10003), False),
        (nats.errors.AuthorizationError(), False),
        (ValueError("bad"), False),
    ],
)
def test_cluster_settling(exc: BaseException, settling: bool) -> None:
    assert cluster_settling(exc) is settling
