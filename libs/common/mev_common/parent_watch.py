"""A spawned helper process that ends with its parent.

Why: a `spawn` child (simulate's py-evm pool worker, the bench's rival) waits on a pipe whose
both ends it holds, so it never sees EOF: a parent killed by SIGKILL (a chaos test, a stop past
its 15 s grace) left the child, and multiprocessing's resource tracker it keeps open, running
for good. A daemon thread in the child notices the parent gone (re-parented) and exits.
"""

from __future__ import annotations

import os
import threading
import time


def exit_with_parent(every_s: float = 0.5) -> None:
    """Call first in a child process: it exits (code 0) within `every_s` of its parent's end."""
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(every_s)
        os._exit(0)

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()
