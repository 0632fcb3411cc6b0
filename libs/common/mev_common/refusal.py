"""The refusal to start, in a module of its own so the bus layers can raise it too."""

from __future__ import annotations


class RefuseToStart(Exception):
    """A service's `main` found it must not run (the key does not own the executor, the ledger
    belongs to another chain, a durable consumer JetStream cannot bring to the config): the
    process prints "<service>: refusing to start: <message>" on stderr and exits 2, like a bad
    config."""

    exit_code = 2
