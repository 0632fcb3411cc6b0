"""`python -m tests.support.submit_kill --config PATH`: the real submit service, except that it
SIGKILLs itself right after its first trade is broadcast and recorded, before the bundle is
acked. The exactly-once-across-a-crash test runs it; the hook is injected here, so nothing in
the production money path reads an environment variable for it.
"""

from __future__ import annotations

import functools
import os
import signal
import sys

from mev_common.runtime import service_entrypoint

from services.submit.ledger_records import TxRecord
from services.submit.service import main


def kill_now(_sent: TxRecord) -> None:
    os.kill(os.getpid(), signal.SIGKILL)


if __name__ == "__main__":
    sys.exit(service_entrypoint("submit", functools.partial(main, after_send=kill_now)))
