"""The dry run's environment and its summary from a real ledger file."""

from __future__ import annotations

from pathlib import Path

from mev_common.messages import Bundle, Outcome
from mev_common.ops.dry_run import dry_run_env, dry_run_ledger, summarize
from mev_common.settings import load_settings

from services.submit.ledger import Ledger
from tests.support.stack import write_config


def test_env_uses_a_separate_ledger_and_distinct_ports_for_containers(tmp_path: Path) -> None:
    settings = load_settings(
        write_config(tmp_path, "nats://127.0.0.1:4222", 999, services={"separate_hosts": True})
    )
    env = dry_run_env(settings)
    assert env["MEV_SUBMIT__DRY_RUN"] == "true"
    assert env["MEV_DATABASE__PATH"] == str(tmp_path / "mev-bot.dry-run.db")
    assert env["MEV_SERVICES__SEPARATE_HOSTS"] == "false"
    ports = [v for k, v in env.items() if k.endswith("_PORT")]
    assert len(ports) == 8 and len(set(ports)) == 8


def test_summary_lists_would_be_sends_and_net_pnl(tmp_path: Path) -> None:
    settings = load_settings(write_config(tmp_path, "nats://127.0.0.1:4222", 999))
    ledger_path = dry_run_ledger(settings)
    ledger = Ledger(ledger_path)
    books = [
        ("dry_run", 3 * 10**15, "(net 2900000000000000 wei)"),  # submit's reason carries net
        ("dry_run", 10**15, ""),  # no net in the reason: gas columns are used
        ("not_sent", 10**15, "too late"),
    ]
    for i, (status, profit, reason) in enumerate(books):
        bundle = Bundle.model_validate(
            {"id": f"b{i}", "opportunity_id": f"o{i}", "chain_id": 999, "strategy": "backrun",
             "block_number": 100 + i, "simulated_profit": profit}
        )  # fmt: skip
        outcome = Outcome(
            bundle_id=f"b{i}", chain_id=999, strategy="backrun", status=status,
            gas_used=100_000, effective_gas_price=10**9, reason=f"dry run ... {reason}",
        )  # fmt: skip
        ledger.book(bundle, outcome)
    ledger.close()
    assert summarize(ledger_path).splitlines() == [
        "dry run: 3 bundles booked",
        "would-be sends: 2",
        "  b0  backrun  block 100  profit 0.003 ether",
        "  b1  backrun  block 101  profit 0.001 ether",
        "by strategy and status (simulated profit, net of gas):",
        "  backrun              dry_run       2           0.004 ether  net 0.0038 ether",
        "  backrun              not_sent      1           0.001 ether  net 0.0009 ether",
        "P&L of the would-be sends, net of gas: 0.0038 ether",
    ]


def test_summary_without_a_ledger(tmp_path: Path) -> None:
    assert summarize(tmp_path / "none.db") == "dry run: no ledger written (submit booked nothing)"
