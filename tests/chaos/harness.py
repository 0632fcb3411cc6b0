"""The bot on the devnet flow, as separate processes, with handles to break each part.

`ChaosWorld` runs anvil, a loopback TCP proxy in front of it (the primary RPC, killable), the
four services and the seeded user flow in a thread. It measures time to the next landed trade
from the ledger and checks, at the end, that the ledger equals the chain to the wei.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mev_ops.devnet.anvil import AnvilNode
from mev_ops.devnet.flow import run_flow

from services.submit.pnl import pnl_summary
from tests.support.chain import eth_balance, rpc, weth_balance
from tests.support.devnet_state import deployed_anvil
from tests.support.stack import SERVICES, ServiceProcess, write_config
from tests.support.tcp_proxy import TcpProxy

CHAIN = 31337


def landed_since(ledger: Path, since_unix: float) -> int:
    """Included trades signed at or after `since_unix`."""
    if not ledger.exists():
        return 0
    db = sqlite3.connect(f"file:{ledger}?mode=ro", uri=True, timeout=5.0)
    try:
        row = db.execute(
            "SELECT COUNT(*) FROM txs t JOIN outcomes o ON o.bundle_id = t.bundle_id "
            "WHERE t.kind = 'trade' AND o.status = 'included' AND t.created_at >= ?",
            (since_unix,),
        ).fetchone()
    except sqlite3.OperationalError as exc:  # submit opened the file, tables not yet made
        if "no such table" not in str(exc):
            raise
        return 0
    finally:
        db.close()
    return int(row[0])


@dataclass
class ChaosWorld:
    """Chain, primary RPC proxy and flow; `start_services` runs the bot against `nats_urls`."""

    tmp: Path
    node: AnvilNode | None = None
    proxy: TcpProxy | None = None
    deployment: dict[str, Any] = field(default_factory=dict)
    procs: dict[str, ServiceProcess] = field(default_factory=dict)
    config: Path | None = None
    flow_stop: threading.Event = field(default_factory=threading.Event)
    flow_thread: threading.Thread | None = None
    before: tuple[int, int, int] = (0, 0, 0)
    times: dict[str, float] = field(default_factory=dict)
    faults: dict[str, float] = field(default_factory=dict)  # what -> when (unix), in order
    on_cleanup: list[Callable[[], None]] = field(default_factory=list)

    @property
    def ledger(self) -> Path:
        return self.tmp / "mev-bot.db"

    def start_chain(self) -> None:
        # the session's saved deployment when a test module made one (one deploy less)
        self.node, _ = deployed_anvil(
            self.tmp, CHAIN, 1, self.tmp / "bot.key", self.tmp / "deployment.json", block_time=1
        )
        self.deployment = json.loads((self.tmp / "deployment.json").read_text())
        self.proxy = TcpProxy(self.node.port).start()

    def start_services(self, nats_url: str | list[str], **sections: dict[str, Any]) -> None:
        assert self.node is not None and self.proxy is not None
        primary = f"http://127.0.0.1:{self.proxy.port}"
        self.config = write_config(
            self.tmp,
            nats_url,  # type: ignore[arg-type]
            CHAIN,
            chain={
                "rpc_endpoints": [
                    {"name": "primary", "url": primary, "ws_url": primary.replace("http", "ws")},
                    {
                        "name": "secondary",
                        "url": self.node.rpc_url,
                        "ws_url": self.node.rpc_url.replace("http", "ws"),
                    },
                ],
                "block_time_s": 1,
            },
            contracts={"deployment_file": str(self.tmp / "deployment.json")},
            keys={"path": str(self.tmp / "bot.key")},
            submit={"priority_fee": "3.5 gwei"},
            **sections,
        )
        self.procs = {
            n: ServiceProcess(n, self.config, self.tmp / f"{n}.log").start() for n in SERVICES
        }
        for proc in self.procs.values():
            proc.wait_health(200, timeout_s=60)

    def start_flow(self, rate: float = 4.0) -> None:
        assert self.node is not None
        url = self.node.rpc_url
        ex = self.deployment["executor"]
        self.before = (
            weth_balance(url, self.deployment["weth"], ex["address"]),
            eth_balance(url, ex["owner"]),
            int(rpc(url, "eth_getTransactionCount", [ex["owner"], "latest"]), 16),
        )
        self.flow_thread = threading.Thread(
            target=run_flow,
            args=(url, self.deployment, 1, rate),
            kwargs={"stop": self.flow_stop, "emit": None},
            daemon=True,
        )
        self.flow_thread.start()

    def restart(self, *names: str) -> None:
        """kill -9 the named services, then start them again and wait for health."""
        for name in names:
            proc = self.procs[name].proc
            assert proc is not None
            proc.kill()
            proc.wait()
        for name in names:
            self.procs[name].start()
        for name in names:
            self.procs[name].wait_health(200, timeout_s=60)

    def time_to_trade(self, fault_wall: float, bound_s: float, what: str) -> float:
        """Seconds from `fault_wall` (unix) until a trade signed after it has landed (so a
        trade already in flight at the fault does not count); fails past `bound_s`."""
        self.faults[what] = fault_wall
        while (took := time.time() - fault_wall) < bound_s:
            if landed_since(self.ledger, fault_wall):
                self.times[what] = took
                print(f"chaos: {what}: a trade signed after it landed {took:.1f} s later")
                return took
            time.sleep(0.2)
        logs = {n: p.logs()[-1500:] for n, p in self.procs.items()}
        raise AssertionError(f"{what}: no trade landed within {bound_s} s\n{logs}")

    def settle(self, timeout_s: float = 30.0) -> None:
        """Stop the flow, let in-flight trades resolve, stop the services."""
        self.flow_stop.set()
        if self.flow_thread is not None:
            self.flow_thread.join(timeout=30)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            pnl = pnl_summary(self.ledger)
            if pnl.in_flight == 0 and sum(pnl.outcomes.values()) == pnl.bundles:
                break
            time.sleep(0.5)
        for proc in self.procs.values():
            proc.stop()

    def assert_books_match_chain(self) -> None:
        """Ledger == chain to the wei; no revert; no nonce used twice; no bundle sent twice."""
        assert self.node is not None
        url, weth = self.node.rpc_url, self.deployment["weth"]
        ex = self.deployment["executor"]
        pnl = pnl_summary(self.ledger)
        weth_gain = weth_balance(url, weth, ex["address"]) - self.before[0]
        gas_paid = self.before[1] - eth_balance(url, ex["owner"])
        assert pnl.count("reverted") == 0, (pnl.outcomes, self.reverted_report())
        assert pnl.in_flight == 0
        assert pnl.realized_profit.get(weth.lower(), 0) == weth_gain > 0
        assert pnl.gas_spent_wei == gas_paid
        db = sqlite3.connect(f"file:{self.ledger}?mode=ro", uri=True)
        try:
            mined = db.execute(
                "SELECT t.nonce, t.bundle_id, b.opportunity_id FROM txs t "
                "JOIN receipts r ON r.tx_hash = t.hash JOIN bundles b ON b.id = t.bundle_id"
            ).fetchall()
            trades = db.execute(
                "SELECT b.opportunity_id, COUNT(*) FROM txs t JOIN bundles b ON b.id = t.bundle_id"
                " WHERE t.kind = 'trade' GROUP BY b.opportunity_id HAVING COUNT(*) > 1"
            ).fetchall()
        finally:
            db.close()
        nonces = [n for n, _, _ in mined]
        assert len(nonces) == len(set(nonces)), "a nonce was mined twice in the ledger"
        # every nonce the chain consumed for the bot is one mined tx of the ledger
        chain_nonce = int(rpc(url, "eth_getTransactionCount", [ex["owner"], "latest"]), 16)
        assert sorted(nonces) == list(range(self.before[2], chain_nonce)), (nonces, chain_nonce)
        assert trades == [], f"an opportunity was traded twice: {trades}"

    def reverted_report(self) -> str:
        """Each reverted trade: its strategy, blocks, reason and when it was sent against the
        faults, with the lines detect and simulate logged about it: what a CI failure needs."""
        db = sqlite3.connect(f"file:{self.ledger}?mode=ro", uri=True)
        try:
            rows = db.execute(
                "SELECT b.id, b.opportunity_id, b.strategy, b.block_number, o.block_number,"
                " o.reason, t.sent_at, t.nonce FROM outcomes o JOIN bundles b ON b.id = o.bundle_id"
                " JOIN txs t ON t.bundle_id = b.id AND t.kind = 'trade'"
                " WHERE o.status = 'reverted'"
            ).fetchall()
        finally:
            db.close()
        lines = [f"faults (unix): {self.faults}"]
        for bundle_id, opp_id, strategy, at, mined, reason, sent_at, nonce in rows:
            after = [(w, round((sent_at or 0) - t, 1)) for w, t in self.faults.items()]
            lines.append(
                f"{bundle_id} {strategy} bundle block {at} mined {mined} nonce {nonce}: {reason};"
                f" sent {sent_at}, seconds after each fault {after}"
            )
            for name in ("detect", "simulate"):
                if name in self.procs:
                    text = self.procs[name].log_path.read_text(errors="replace")
                    hits = [ln for ln in text.splitlines() if opp_id in ln]
                    lines += [f"  {name}: {ln[:400]}" for ln in hits[-4:]]
        return "\n".join(lines)

    def cleanup(self) -> None:
        self.flow_stop.set()
        for proc in self.procs.values():
            proc.stop()
        for fn in self.on_cleanup:
            fn()
        self.on_cleanup.clear()
        if self.proxy is not None:
            self.proxy.kill()
        if self.node is not None:
            self.node.stop()
