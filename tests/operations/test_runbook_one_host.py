"""docs/RUNBOOK.md walked by an operator on one host (issue 15), against one live `mev-bot run`
stack (embedded NATS, anvil devnet, swap flow, the four services) on random ports, shared by
the module: every `bash one-host` line of the runbook with its exact exit code and output, and
each mistake the issue found: `--adjust-rpc-rate 80` (exit 2, KV unchanged, every service
still running), a bad value written straight to the KV (rejected, ingest keeps running), an
unreadable emergency stop (treated as STOPPED), restore with submit running (refused, nothing
lost), a dry run beside the live stack (exit 2, untouched). Then, the stack stopped by the
runbook's own `--shutdown-graceful`, every `bash one-host-after-stop` line, and the dry run's
P&L against the sum of its distinct opportunities' net profit in its ledger."""

from __future__ import annotations

import asyncio
import json
import re
import signal
import sqlite3
import subprocess
import time
import urllib.request
from collections.abc import Iterator

import nats
import pytest
from mev_common import control, nats_auth
from mev_common.executor import decode_execute
from mev_common.messages import Bundle
from mev_common.settings import format_wei

from tests.operations.runbook import Line, Site, make_site, runbook_lines
from tests.support.stack import SERVICES

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

INSTANCES = ", ".join(f"{name}-0" for name in sorted(SERVICES))
RPC_ACK = f"acknowledged by ingest/detect/simulate/submit {INSTANCES} in "

# What each runbook line must print (stdout + stderr), keyed by a fragment of the line.
EXPECTED = {
    "mev-bot status\n": "ingest    ingest-0    ok      yes",
    "curl -sf http://127.0.0.1:{submit_health}/health": '"service":"submit"',
    "for port in": "",
    "grep '^mev_bot_status '": "mev_bot_status 1.0",
    "(profit_eth_per_hour|bundle_success_rate)": "mev_bot_bundle_success_rate ",
    "grep -c '^mev_bot_detection_latency_seconds_bucket'": "",
    "grep -c '^mev_bot_strategy_success_rate'": "",
    "grep -c mev_bot_bundle_success_rate": "0",
    "--validate-config\n": "config/devnet.yaml: valid",
    "--validate-config --verbose": "rpc          anvil http://127.0.0.1:{anvil}: chain id 31337",
    "grep '^mev_bot_gas_price '": "mev_bot_gas_price ",
    "grep '^mev_bot_mempool_size '": "mev_bot_mempool_size ",
    "grep '^mev_bot_rpc_requests_per_second '": "mev_bot_rpc_requests_per_second ",
    "--adjust-rpc-rate 80": "rpc rate factor must be in (0, 10]; 80 % is 0.8",
    "--adjust-rpc-rate 0.8": RPC_ACK,
    "--adjust-rpc-rate 1\n": "rpc rate factor set: 31337.rpc_rate_factor=1 (revision ",
    "--emergency-stop": "emergency stop active: 31337.emergency_stop=1 (revision ",
    '"emergency_stop":"1"': "1",
    "--resume": "emergency stop cleared: sends resume",
    "validate-deployment.sh devnet": "deployment valid",
    "backup.sh -o backups/daily  # exit 1": "backup: key NOT backed up (skipped)",
    "MEV_BACKUP_PASSPHRASE=test-only-passphrase scripts/backup.sh": "(AES256)",
    "--adjust-rpc-pool-size 50": "rpc pool size set: 31337.rpc_pool_size=50",
    "--dry-run --duration 60s": "refusing the dry run: a stack is already running",
    "--reset-nonce": "nonce reset: 31337.nonce_reset=",
    "restore.sh -b backups/daily/database-$(date -u +%Y%m%d).db  # exit 3": (
        "restore: refusing: a service holds the ledger data/mev-bot.db open"
    ),
    "--shutdown-graceful": "all 4 instances drained and exited",
}
EXPECTED_AFTER_STOP = {
    "restore.sh": "restore: PRAGMA integrity_check: ok",
    "disaster-recovery.sh": "disaster-recovery: dr/config/devnet.yaml validates",
    "--dry-run --duration 20s": "P&L of the would-be sends, net of gas: ",
}


def expected_output(site: Site, line: Line, table: dict[str, str]) -> str:
    keyed = f"{line.command}\n"
    for fragment, output in table.items():
        if site.rewrite(fragment.format(**site.ports)) in site.rewrite(keyed):
            return output.format(**site.ports)
    raise AssertionError(f"runbook line without an expected output in this test: {line.command}")


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Site:
    return make_site(tmp_path_factory.mktemp("one-host"))


@pytest.fixture(scope="module")
def stack(site: Site) -> Iterator[subprocess.Popen[bytes]]:
    """`make run`'s stack: `mev-bot run` from the site, until every service is healthy and
    submit has its ledger open."""
    log = open(site.root / "run.log", "wb")
    proc = subprocess.Popen(
        [str(site.root / ".venv/bin/mev-bot"), "run"],
        cwd=site.root, stdout=log, stderr=subprocess.STDOUT, env=site.env(),
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            assert proc.poll() is None, run_log(site)
            ready = site.mev_bot("status").returncode == 0 and site.db.exists()
            if ready and submit_active(site):
                break
            time.sleep(1.0)
        else:
            raise AssertionError(f"stack never healthy:\n{run_log(site)}")
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        log.close()


def run_log(site: Site) -> str:
    return (site.root / "run.log").read_text(errors="replace")[-6000:]


def health(site: Site, service: str) -> dict[str, object]:
    url = f"http://127.0.0.1:{site.ports[f'{service}_health']}/health"
    with urllib.request.urlopen(url, timeout=2) as resp:
        body: dict[str, object] = json.loads(resp.read())
        return body


def submit_active(site: Site) -> bool:
    try:
        checks = health(site, "submit")["checks"]
    except OSError:
        return False
    return isinstance(checks, dict) and "ledger" in checks


def control_values(site: Site) -> dict[str, object]:
    out = site.mev_bot("status", "--json")
    report: dict[str, dict[str, object]] = json.loads(out.stdout)
    return report["control"]


def all_running(site: Site, stack: subprocess.Popen[bytes]) -> None:
    assert stack.poll() is None, run_log(site)
    for service in SERVICES:
        assert health(site, service)["status"] == "ok", service


async def kv_put_and_ack(site: Site, name: str, value: bytes, instance: str) -> tuple[int, str]:
    """Put a raw value straight into the control KV (no CLI), and return the revision and
    the ack `instance` records for it."""
    seed = nats_auth.seed_path(site.root / "data" / "nats-auth", nats_auth.OPERATOR)
    nc = await nats.connect(
        f"nats://127.0.0.1:{site.ports['nats']}",
        nkeys_seed=str(seed),
        inbox_prefix=nats_auth.inbox_prefix(nats_auth.OPERATOR),
    )  # as the operator: only it may write control keys
    try:
        kv = await nc.jetstream().key_value("mev-control")
        revision = await kv.put(control.control_key(site.chain_id, name), value)
        key = control.ack_key(site.chain_id, name, instance)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                entry = await kv.get(key)
                applied, reason = control.parse_ack(entry.value)
                if applied >= revision:
                    return revision, reason or ""
            except Exception:  # not acked yet
                pass
            await asyncio.sleep(0.2)
        raise AssertionError(f"{instance} never acked {name} revision {revision}")
    finally:
        await nc.close()


def test_runbook_marks_a_one_host_line_for_every_procedure() -> None:
    live, after = runbook_lines("one-host"), runbook_lines("one-host-after-stop")
    assert len(live) >= 20 and len(after) == 3
    commands = "\n".join(line.command for line in live)
    for needed in ("8080", "9090"):  # the container ports: refused on one host
        assert needed not in commands
    assert [line.exit_code for line in live if line.exit_code] == [1, 2, 1, 2, 3]


def test_rpc_rate_80_is_refused_and_every_service_keeps_running(
    site: Site, stack: subprocess.Popen[bytes]
) -> None:
    before = control_values(site)
    out = site.mev_bot("--adjust-rpc-rate", "80")
    assert out.returncode == 2
    assert out.stdout == ""
    assert out.stderr.endswith(
        "mev-bot: error: argument --adjust-rpc-rate: rpc rate factor must be in (0, 10]; "
        "80 % is 0.8\n"
    )
    assert control_values(site) == before  # nothing written to the KV
    time.sleep(2.0)
    all_running(site, stack)


async def test_a_bad_value_written_to_the_kv_is_rejected_and_ingest_keeps_running(
    site: Site, stack: subprocess.Popen[bytes]
) -> None:
    revision, reason = await kv_put_and_ack(site, control.RPC_RATE_FACTOR, b"80", "ingest-0")
    assert reason == "rpc rate factor must be in (0, 10]; 80 % is 0.8"
    for instance in ("detect-0", "simulate-0", "submit-0"):
        revision, other = await kv_put_and_ack(site, control.RPC_RATE_FACTOR, b"80", instance)
        assert other == reason
    await asyncio.sleep(3.0)  # the old crash took well under a second
    assert control_values(site)["rpc_rate_factor"] == (
        "80 (REJECTED by the services: rpc rate factor must be in (0, 10]; 80 % is 0.8)"
    )
    all_running(site, stack)
    log = (site.root / "run.log").read_text(errors="replace")  # whole: busy logs scroll fast
    assert "control value rejected: ignored" in log and "exited unexpectedly" not in log
    # and the CLI sets a good value again, acknowledged by all four
    out = site.mev_bot("--adjust-rpc-rate", "1")
    assert out.returncode == 0, out.stderr
    assert RPC_ACK in out.stdout
    # a newer revision than the last rejected one (the bucket's sequence also counts the acks
    # and heartbeats in between, so only the order is exact)
    set_at = re.search(r"rpc_rate_factor=1 \(revision (\d+)", out.stdout)
    assert set_at is not None, out.stdout
    assert int(set_at.group(1)) > revision


async def test_an_unreadable_emergency_stop_means_stopped(
    site: Site, stack: subprocess.Popen[bytes]
) -> None:
    _, reason = await kv_put_and_ack(site, control.EMERGENCY_STOP, b"maybe", "submit-0")
    assert reason == "emergency stop must be 1 or 0, got 'maybe': treated as STOPPED (fail safe)"
    checks = health(site, "submit")["checks"]
    assert isinstance(checks, dict)
    assert checks["emergency_stop"]["detail"] == "ACTIVE: nothing is sent"
    out = site.mev_bot("--resume")
    assert out.returncode == 0, out.stderr
    checks = health(site, "submit")["checks"]
    assert isinstance(checks, dict) and checks["emergency_stop"]["detail"] == "off"
    all_running(site, stack)


def test_restore_with_submit_running_refuses_and_loses_nothing(
    site: Site, stack: subprocess.Popen[bytes]
) -> None:
    backup = site.run("MEV_BACKUP_PASSPHRASE=p scripts/backup.sh -o backups/mistake")
    assert backup.returncode == 0, backup.stderr
    (db_backup,) = (site.root / "backups/mistake").glob("database-*.db")
    inode = site.db.stat().st_ino
    rows = sqlite3.connect(site.db).execute("SELECT COUNT(*) FROM bundles").fetchone()[0]
    out = site.run(f"scripts/restore.sh -b {db_backup}")
    assert out.returncode == 3
    assert out.stderr.startswith(
        "restore: refusing: a service holds the ledger data/mev-bot.db open"
    )
    assert out.stderr.rstrip().endswith("(nothing was changed; --force overrides)")
    assert site.db.stat().st_ino == inode  # the live file was not replaced
    after = sqlite3.connect(site.db).execute("SELECT COUNT(*) FROM bundles").fetchone()[0]
    assert after >= rows
    assert submit_active(site)


def test_dry_run_beside_the_live_stack_exits_2_without_touching_it(
    site: Site, stack: subprocess.Popen[bytes]
) -> None:
    dry_ledger = site.root / "data/mev-bot.dry-run.db"
    out = site.mev_bot("--dry-run", "--duration", "5s")
    assert out.returncode == 2
    assert out.stdout == ""
    assert out.stderr.startswith(
        "mev-bot: refusing the dry run: a stack is already running on this config's ports "
        f"(NATS 127.0.0.1:{site.ports['nats']}; ingest health 127.0.0.1:"
    )
    assert "Nothing was started or changed." in out.stderr
    assert "Traceback" not in out.stderr
    assert not dry_ledger.exists()
    all_running(site, stack)


def latest_block(site: Site) -> dict[str, str]:
    body = json.dumps(
        {"jsonrpc": "2.0", "id": 1, "method": "eth_getBlockByNumber", "params": ["latest", False]}
    ).encode()
    request = urllib.request.Request(
        f"http://127.0.0.1:{site.ports['anvil']}", body, {"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=2) as resp:
        block: dict[str, str] = json.loads(resp.read())["result"]
        return block


def gauge(site: Site, service: str, name: str) -> float | None:
    url = f"http://127.0.0.1:{site.ports[f'{service}_metrics']}/metrics"
    with urllib.request.urlopen(url, timeout=2) as resp:
        for line in resp.read().decode().splitlines():
            if line.startswith(f"{name} "):
                return float(line.split()[1])
    return None


def test_gas_price_is_next_base_fee_plus_priority_and_only_submits(
    site: Site, stack: subprocess.Popen[bytes]
) -> None:
    """mev_bot_gas_price means what its help says: the coming block's base fee (EIP-1559
    from the latest block) plus submit.priority_fee (3.5 gwei in config/devnet.yaml)."""
    from services.submit.fees import next_base_fee

    for other in ("ingest", "detect", "simulate"):
        assert gauge(site, other, "mev_bot_gas_price") is None
    seen = []
    for _ in range(40):
        before = latest_block(site)
        value = gauge(site, "submit", "mev_bot_gas_price")
        after = latest_block(site)
        if before["number"] == after["number"]:
            base = next_base_fee(
                int(before["baseFeePerGas"], 16), int(before["gasUsed"], 16),
                int(before["gasLimit"], 16),
            )  # fmt: skip
            expected = base + 3_500_000_000
            seen.append((value, expected))
            if value == expected:
                return
        time.sleep(0.3)
    raise AssertionError(f"gas price never base + priority: {seen}")


def test_every_one_host_line_of_the_runbook(site: Site, stack: subprocess.Popen[bytes]) -> None:
    """In document order; the last one (`--shutdown-graceful`) ends the stack cleanly."""
    for line in runbook_lines("one-host"):
        out = site.run(line.command)
        said = out.stdout + out.stderr
        assert out.returncode == line.exit_code, f"{line.command}\n{said}\n{run_log(site)}"
        assert expected_output(site, line, EXPECTED) in said, f"{line.command}\n{said}"
    assert stack.wait(timeout=60) == 0, run_log(site)


def test_every_after_stop_line_of_the_runbook(site: Site) -> None:
    for line in runbook_lines("one-host-after-stop"):
        out = site.run(line.command, timeout_s=300)
        said = out.stdout + out.stderr
        assert out.returncode == line.exit_code, f"{line.command}\n{said[-4000:]}"
        assert expected_output(site, line, EXPECTED_AFTER_STOP) in said, said[-4000:]


def test_dry_run_pnl_is_the_sum_of_distinct_opportunities_net(site: Site) -> None:
    """Recomputed here from the dry-run ledger, independently of ops/dry_run.py: each distinct
    executor call (pools, tokens, amount in) once, at simulate's net_profit_wei."""
    ledger = site.root / "data/mev-bot.dry-run.db"
    from mev_ops.dry_run import summarize

    printed = summarize(ledger).splitlines()[-1]
    db = sqlite3.connect(ledger)
    rows = db.execute(
        "SELECT b.payload, b.net_profit_wei FROM bundles b JOIN outcomes o "
        "ON o.bundle_id = b.id WHERE o.status = 'dry_run' ORDER BY o.booked_at"
    ).fetchall()
    assert rows, f"the dry run booked no would-be send, nothing to compare:\n{summarize(ledger)}"
    seen: set[object] = set()
    total = 0
    for payload, net in rows:
        bundle = Bundle.model_validate_json(payload)
        call = decode_execute(bytes.fromhex(bundle.data[2:]))
        key = (bundle.to, call.hops, call.amount_in, call.flash)
        if key not in seen:
            seen.add(key)
            total += int(net)
    wei = f"-{format_wei(-total)}" if total < 0 else format_wei(total)
    assert printed == f"P&L of the would-be sends, net of gas: {wei}"
