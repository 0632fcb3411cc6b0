"""Submit's last word before a signed tx leaves (handlers.send_refusal): each reason alone
refuses with its own words, and an emergency stop outranks everything after it."""

from __future__ import annotations

import pytest

from services.submit.handlers import send_refusal


def refusal(
    *,
    emergency_stop: bool = False,
    watcher_down: str | None = None,
    lease_held: bool = True,
    nats_connected: bool = True,
    rpc_down: str | None = None,
) -> str | None:
    """send_refusal with everything clear unless said otherwise."""
    return send_refusal(
        emergency_stop=emergency_stop,
        watcher_down=watcher_down,
        lease_held=lease_held,
        nats_connected=nats_connected,
        rpc_down=rpc_down,
    )


def test_all_clear_sends() -> None:
    assert refusal() is None


@pytest.mark.parametrize(
    ("reason", "expected"),
    [
        (refusal(emergency_stop=True), "emergency stop active"),
        (
            refusal(watcher_down="control watcher failed: boom"),
            "control watcher failed: boom: emergency stop state unknown",
        ),
        (refusal(lease_held=False), "submit lease not held"),
        (refusal(nats_connected=False), "NATS disconnected: control state unknown"),
        (refusal(rpc_down="every RPC endpoint is down: a"), "every RPC endpoint is down: a"),
    ],
)
def test_each_reason_alone_refuses_in_its_own_words(reason: str | None, expected: str) -> None:
    assert reason == expected


def test_the_first_reason_wins() -> None:
    down = "every RPC endpoint is down: a"
    watcher = "control watcher ended"
    assert (
        refusal(
            emergency_stop=True,
            watcher_down=watcher,
            lease_held=False,
            nats_connected=False,
            rpc_down=down,
        )
        == "emergency stop active"
    )
    assert (
        refusal(watcher_down=watcher, lease_held=False, nats_connected=False, rpc_down=down)
        == "control watcher ended: emergency stop state unknown"
    )
    assert refusal(lease_held=False, nats_connected=False, rpc_down=down) == (
        "submit lease not held"
    )
    assert refusal(nats_connected=False, rpc_down=down) == (
        "NATS disconnected: control state unknown"
    )
