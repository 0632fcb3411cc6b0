"""The devnet's swap flow below the bot's services in CPU priority (`devnet.nice`).

Why: the flow stands for the chain's users, on other machines in production. On `make run`'s
small host it took a core from ingest, NATS and detect at the moment swaps arrive (it signs and
sends the rest of a burst while detect handles its first swap; docs/DEVNET.md). anvil is left
as it is: it stands for the node, whose answers (victim traces, logs, sends) the bot awaits;
lowered, it answered late on a busy host (simulate's victim wait p95 2-3 -> 38-41 ms).

A nice value alone does not act where the kernel groups tasks by session
(CONFIG_SCHED_AUTOGROUP, on in most distributions): each session then gets an equal share of
the CPU whatever its processes' nice values, and the stack starts the flow in a session of its
own (setsid). So that session's autogroup is niced as well. The flow lowers itself once it
has imported web3 and found the deployment, about to send: a start at normal priority keeps
`make run`'s first swaps as early as before on a busy host.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

AUTOGROUP = Path("/proc/self/autogroup")


def lower_priority(nice: int) -> None:
    """Raise this process's nice value by `nice` (0: unchanged; raising needs no privilege)
    and, when it leads its own session (the stack starts the flow so), its session's
    autogroup's: a flow started by hand from a shell leaves the shell's session alone."""
    if nice <= 0:
        return
    os.nice(nice)
    if os.getsid(0) == os.getpid():
        with contextlib.suppress(OSError):  # no autogroups on this kernel: the nice value acts
            AUTOGROUP.write_text(f"{nice}\n")
