"""Gather what bench.attribution needs from a with-bot run: the OPPORTUNITIES stream, simulate's
per-opportunity DEBUG lines, the ledger's bundles and outcomes, and the flow's mined swaps.

Run after the flow, before the stack stops (the stream lives in its NATS store).
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Mapping, Sequence
from pathlib import Path

import nats
import orjson
from mev_common.messages import Opportunity, decode
from mev_ops.devnet.flow_plan import SwapIntent

from bench.attribution import OppRecord

STREAM = "OPPORTUNITIES"


async def _stream_messages(url: str, stream: str) -> list[bytes]:
    nc = await nats.connect(url)
    try:
        js = nc.jetstream()
        info = await js.stream_info(stream)
        out = []
        for seq in range(info.state.first_seq, info.state.last_seq + 1):
            try:
                out.append((await js.get_msg(stream, seq)).data or b"")
            except nats.js.errors.NotFoundError:
                continue
        return out
    finally:
        await nc.close()


def sim_results(log_path: Path) -> dict[str, str]:
    """opportunity id -> simulate's result, from its JSON log's `simulated` DEBUG lines."""
    out: dict[str, str] = {}
    if not log_path.exists():
        return out
    for line in log_path.read_bytes().splitlines():
        if b'"simulated"' not in line:
            continue
        try:
            entry = orjson.loads(line)
        except orjson.JSONDecodeError:
            continue
        if entry.get("msg") == "simulated" and "opportunity" in entry:
            out[str(entry["opportunity"])] = str(entry["result"])
    return out


def ledger_outcomes(ledger: str | Path) -> dict[str, tuple[str, str, int | None]]:
    """opportunity id -> (status, reason, block) of its bundle's outcome."""
    con = sqlite3.connect(f"file:{ledger}?mode=ro", uri=True)
    try:
        rows = con.execute(
            "SELECT b.opportunity_id, o.status, o.reason, o.block_number "
            "FROM bundles b JOIN outcomes o ON o.bundle_id = b.id"
        ).fetchall()
    finally:
        con.close()
    return {str(r[0]): (str(r[1]), str(r[2] or ""), r[3]) for r in rows}


def opportunity_records(nats_url: str, simulate_log: Path, ledger: str | Path) -> list[OppRecord]:
    payloads = asyncio.run(_stream_messages(nats_url, STREAM))
    sims = sim_results(simulate_log)
    outcomes = ledger_outcomes(ledger)
    out = []
    for payload in payloads:
        opp = decode(Opportunity, payload)
        status, reason, block = outcomes.get(opp.id, (None, "", None))
        out.append(OppRecord(
            opp.id, opp.block_number, frozenset(h.pool.lower() for h in opp.hops),
            opp.victim is not None, sims.get(opp.id), status, reason, block,
        ))  # fmt: skip
    return out


def mined_swaps(
    intents: Sequence[SwapIntent], hashes: Sequence[str], mined: Mapping[str, tuple[int, bool]]
) -> dict[int, list[tuple[int, bool]]]:
    """block -> (sender, is V3) of the flow's swaps mined in it, in send (so nonce) order."""
    out: dict[int, list[tuple[int, bool]]] = {}
    for intent, h in zip(intents, hashes, strict=True):
        if h in mined:
            out.setdefault(mined[h][0], []).append((intent.user, intent.fee != 0))
    return out
