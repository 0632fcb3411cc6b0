"""The status table and its last-error column, from heartbeat JSON (no broker needed)."""

from __future__ import annotations

from mev_ops.instances import Instance
from mev_ops.status import format_uptime, lane_lines, lanes_of, last_error, render_table, row_for

BEAT = {
    "service": "submit",
    "instance": "submit-0",
    "version": "0.1.0",
    "status": "ok",
    "uptime_s": 3725.2,
    "ready": True,
    "checks": {"nats": {"ok": True, "detail": "connected", "critical": True}},
    "last_error": None,
}


def test_row_and_table() -> None:
    row = row_for(Instance("submit.submit-0", BEAT, 1.0), {"submit": 3})
    assert row == {
        "service": "submit", "instance": "submit-0", "health": "ok", "ready": "yes",
        "version": "0.1.0", "uptime_s": 3725.2, "lag": 3, "rpc_per_min": "-", "last_error": "-",
    }  # fmt: skip
    assert render_table([row]).splitlines() == [
        "SERVICE  INSTANCE  HEALTH  READY  VERSION  UPTIME  LAG  RPC/MIN  LAST ERROR",
        "submit   submit-0  ok      yes    0.1.0    1h02m   3    -        -",
    ]


def test_rpc_budget_column() -> None:
    budgeted = {**BEAT, "rpc_calls_last_min": 38, "rpc_budget_per_min": 40.0}
    assert row_for(Instance("submit.s", budgeted, 0.0), {})["rpc_per_min"] == "38/40"
    unlimited = {**BEAT, "rpc_calls_last_min": 250, "rpc_budget_per_min": None}
    assert row_for(Instance("submit.s", unlimited, 0.0), {})["rpc_per_min"] == "250"


def test_stale_heartbeat_and_unknown_lag() -> None:
    row = row_for(Instance("submit.submit-0", BEAT, 7.4), {"submit": None})
    assert (row["health"], row["lag"]) == ("stale 7s", "?")
    ingest = row_for(Instance("ingest.i", {**BEAT, "service": "ingest"}, 0.0), {"submit": 1})
    assert ingest["lag"] == "-"  # ingest reads no shared consumer


def test_last_error_prefers_a_failing_check() -> None:
    failing = {**BEAT, "checks": {"rpc": {"ok": False, "detail": "all endpoints down"}}}
    assert last_error(failing) == "rpc: all endpoints down"
    logged = {**BEAT, "last_error": {"ts": 1.0, "msg": "send failed: nonce too low"}}
    assert last_error(logged) == "send failed: nonce too low"


def test_uptime() -> None:
    assert [format_uptime(s) for s in (5, 65, 3600, 90061)] == ["5s", "1m05s", "1h00m", "25h01m"]


def test_each_lane_shows_its_address_never_its_key() -> None:
    """submit's `nonces` check: one dict with one lane, a list with keys.lanes > 1."""
    one = {"address": "0x" + "aB" * 20, "next": 7, "in_flight": 1}
    two = [one, {"address": "0x" + "Cd" * 20, "next": 0, "in_flight": 0}]
    checks = {"nonces": {"ok": True, "detail": two, "critical": False}}
    assert lanes_of({**BEAT, "checks": checks}) == two
    assert lanes_of({**BEAT, "checks": {"nonces": {"ok": True, "detail": one}}}) == [one]
    assert lanes_of(BEAT) == []  # another service: no senders
    assert lane_lines({"submit-0": two}) == [
        f"lane 0 of submit-0: 0x{'aB' * 20} (next nonce 7, 1 in flight)",
        f"lane 1 of submit-0: 0x{'Cd' * 20} (next nonce 0, 0 in flight)",
    ]
