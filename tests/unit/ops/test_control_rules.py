"""One rule per control key, shared by the CLI and every service's watcher (issue 15): a value
a service cannot apply is refused by the CLI and, if written to the KV anyway, rejected by the
watcher without touching the value in force; an unreadable emergency stop means STOPPED."""

from __future__ import annotations

import math

import pytest
from mev_common import control
from mev_common.chain.ratelimit import TokenBucket


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("80", "rpc rate factor must be in (0, 10]; 80 % is 0.8"),
        ("0", "rpc rate factor must be in (0, 10], got '0'"),
        ("-1", "rpc rate factor must be in (0, 10], got '-1'"),
        ("nan", "rpc rate factor must be in (0, 10], got 'nan'"),
        ("inf", "rpc rate factor must be in (0, 10], got 'inf'"),
        ("1000", "rpc rate factor must be in (0, 10], got '1000'"),
        ("fast", "rpc rate factor must be a number in (0, 10], got 'fast'"),
    ],
)
def test_rate_factor_refused_with_its_range(text: str, message: str) -> None:
    with pytest.raises(control.ControlValueError) as info:
        control.validate(control.RPC_RATE_FACTOR, text)
    assert str(info.value) == message


def test_every_accepted_rate_factor_is_one_the_limiter_applies() -> None:
    """The rule and TokenBucket agree at the edges: what the CLI lets through never raises in a
    service."""
    for text in ("0.0001", "0.8", "1", "10"):
        value = float(control.validate(control.RPC_RATE_FACTOR, text))
        TokenBucket(5.0).set_factor(value)
    with pytest.raises(ValueError):
        TokenBucket(5.0).set_factor(10.5)
    assert control.validate(control.RPC_RATE_FACTOR, " 0.80 ") == "0.8"
    assert math.isclose(float(control.validate(control.RPC_RATE_FACTOR, "1e-3")), 0.001)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("0", "rpc pool size must be in [1, 1000], got 0"),
        ("1001", "rpc pool size must be in [1, 1000], got 1001"),
        ("2.5", "rpc pool size must be a whole number in [1, 1000], got '2.5'"),
    ],
)
def test_pool_size_refused_with_its_range(text: str, message: str) -> None:
    with pytest.raises(control.ControlValueError) as info:
        control.validate(control.RPC_POOL_SIZE, text)
    assert str(info.value) == message


def test_state_keeps_the_old_value_when_a_bad_one_arrives() -> None:
    state = control.ControlState()
    state.apply(control.RPC_RATE_FACTOR, b"0.5")
    with pytest.raises(control.ControlValueError, match=r"80 % is 0\.8"):
        state.apply(control.RPC_RATE_FACTOR, b"80")
    assert state.rpc_rate_factor == 0.5
    state.apply(control.RPC_POOL_SIZE, b"4")
    with pytest.raises(control.ControlValueError):
        state.apply(control.RPC_POOL_SIZE, b"-3")
    assert state.rpc_pool_size == 4
    state.apply(control.RPC_RATE_FACTOR, None)  # deleted: back to the configured rate
    assert state.rpc_rate_factor == 1.0


@pytest.mark.parametrize("raw", [b"maybe", b"2", b"\xff", b"stop please"])
def test_unreadable_emergency_stop_means_stopped(raw: bytes) -> None:
    state = control.ControlState()
    with pytest.raises(control.ControlValueError, match="treated as STOPPED"):
        state.apply(control.EMERGENCY_STOP, raw)
    assert state.emergency_stop is True


@pytest.mark.parametrize(("raw", "stopped"), [(b"1", True), (b"true", True), (b"0", False)])
def test_emergency_stop_values(raw: bytes, stopped: bool) -> None:
    state = control.ControlState(emergency_stop=not stopped)
    state.apply(control.EMERGENCY_STOP, raw)
    assert state.emergency_stop is stopped


def test_ack_records_rejection_and_reads_old_acks() -> None:
    assert control.parse_ack(control.ack_value(7)) == (7, None)
    assert control.parse_ack(control.ack_value(8, "rpc rate factor must be in (0, 10]")) == (
        8,
        "rpc rate factor must be in (0, 10]",
    )
    assert control.parse_ack(b"12") == (12, None)  # a service from before the JSON ack


async def test_watcher_rejects_a_bad_value_and_a_failing_apply_without_raising() -> None:
    """_apply_one never raises: a rule violation and an exception from on_change both come
    back as a reason, and the state keeps the value in force."""
    state = control.ControlState(rpc_rate_factor=0.5)
    applied: list[float] = []

    async def on_change(name: str, s: control.ControlState) -> None:
        if s.rpc_rate_factor == 3.0:
            raise ValueError("limiter says no")
        applied.append(s.rpc_rate_factor)

    reason = await control._apply_one(state, control.RPC_RATE_FACTOR, b"80", on_change)
    assert reason == "rpc rate factor must be in (0, 10]; 80 % is 0.8"
    assert state.rpc_rate_factor == 0.5 and applied == []
    reason = await control._apply_one(state, control.RPC_RATE_FACTOR, b"3", on_change)
    assert reason == "could not apply: limiter says no"
    assert await control._apply_one(state, control.RPC_RATE_FACTOR, b"2", on_change) is None
    assert applied == [2.0]


def test_status_shows_a_rejected_value_as_rejected() -> None:
    from mev_ops.status import shown_control

    assert shown_control(control.RPC_RATE_FACTOR, "0.8") == "0.8"
    assert shown_control(control.RPC_RATE_FACTOR, "") == "-"
    assert shown_control(control.EMERGENCY_STOP, "maybe") == (
        "maybe (REJECTED by the services: emergency stop must be 1 or 0, got 'maybe': treated "
        "as STOPPED (fail safe))"
    )
