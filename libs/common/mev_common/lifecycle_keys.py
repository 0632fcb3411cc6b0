"""KV keys shared by the runtime (writer) and `mev-bot` (reader) in the `mev-control` bucket.

Kept apart from control.py's service keys: these belong to every service's lifecycle, not to
one stage's behaviour. Import-light on purpose: the CLI and every service load it.
"""

from __future__ import annotations

SHUTDOWN = "shutdown"
HEARTBEAT_INTERVAL_S = 2.0
# A heartbeat older than this means the instance is gone (crashed, killed, partitioned).
STALE_AFTER_S = 3 * HEARTBEAT_INTERVAL_S
# A killed instance cannot delete its heartbeat: `mev-bot status` shows it as stale this long,
# then leaves it out (its service is still reported missing if no other instance is healthy).
FORGET_AFTER_S = 300.0


def shutdown_key(chain_id: int) -> str:
    """A put here asks every running service of the chain to drain and exit 0."""
    return f"{chain_id}.{SHUTDOWN}"


def instance_key(chain_id: int, service: str, instance: str) -> str:
    """Where an instance puts its health JSON every HEARTBEAT_INTERVAL_S (deleted on exit)."""
    return f"{chain_id}.instances.{service}.{instance.replace('.', '_')}"


def instances_filter(chain_id: int) -> str:
    return f"{chain_id}.instances.>"
