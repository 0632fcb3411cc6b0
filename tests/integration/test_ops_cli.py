"""`mev-bot` operator commands against a real nats-server, a real anvil devnet and the four
real service processes: status lists them, control flags return once the owning service
acknowledged this exact revision (emergency stop, resume, nonce reset by submit; RPC rate and
pool size by every service holding an RpcPool), a command nobody acknowledges says so and
exits 1, and --shutdown-graceful makes every service drain and exit 0."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import nats
import pytest
import yaml
from mev_common.control import ensure_control_bucket
from mev_common.lifecycle_keys import instance_key
from mev_ops.devnet.anvil import AnvilNode, free_port

from tests.conftest import NatsEndpoint
from tests.support.devnet_state import deployed_anvil
from tests.support.stack import REPO, SERVICES, ServiceProcess, stop_all, write_config

CHAIN = 31337
MEV_BOT = str(Path(sys.executable).parent / "mev-bot")

pytestmark = pytest.mark.timeout(180)


def mev_bot(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [MEV_BOT, "--config", str(config), *args],
        capture_output=True, text=True, check=False, timeout=60,
    )  # fmt: skip


@pytest.fixture(scope="module")
def devnet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[AnvilNode, Path]]:
    base = tmp_path_factory.mktemp("ops-devnet")
    node, _ = deployed_anvil(
        base, CHAIN, 1, base / "bot.key", base / "deployment.json", block_time=1
    )
    try:
        yield node, base
    finally:
        node.stop()


@pytest.fixture(scope="module")
def stack(
    devnet: tuple[AnvilNode, Path],
    nats_server: NatsEndpoint,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[Path, list[ServiceProcess]]]:
    node, base = devnet
    tmp = tmp_path_factory.mktemp("ops-stack")
    config = write_config(
        tmp,
        nats_server.url,
        CHAIN,
        chain={"rpc_endpoints": [{"name": "anvil", "url": node.rpc_url}], "block_time_s": 1},
        contracts={"deployment_file": str(base / "deployment.json")},
        keys={"path": str(base / "bot.key")},
    )
    procs = [ServiceProcess(name, config, tmp / f"{name}.log").start() for name in SERVICES]
    try:
        for proc in procs:
            proc.wait_health(200, timeout_s=60)
        yield config, procs
    finally:
        stop_all(procs)


def config_dir(config: Path) -> Path:
    """Where the stack's deployment file is (contracts.deployment_file)."""
    return Path(yaml.safe_load(config.read_text())["contracts"]["deployment_file"]).parent


def wait_all_healthy_in_status(config: Path) -> dict[str, object]:
    """Heartbeats come every 2 s: poll status until all four report ok (bounded, not timed)."""
    for _ in range(100):
        out = mev_bot(config, "status", "--json")
        report = json.loads(out.stdout)
        if out.returncode == 0:
            return report
        time.sleep(0.2)
    raise AssertionError(f"status never all-healthy: {out.stdout}")


def test_status_lists_every_running_service(stack: tuple[Path, list[ServiceProcess]]) -> None:
    config, _ = stack
    report = wait_all_healthy_in_status(config)
    rows = report["instances"]
    assert isinstance(rows, list)
    assert [(r["service"], r["instance"], r["health"], r["version"]) for r in rows] == [
        (name, f"{name}-test", "ok", "0.1.0") for name in SERVICES
    ]
    assert report["missing"] == []
    table = mev_bot(config, "status")
    assert table.returncode == 0
    lines = table.stdout.splitlines()
    assert lines[0].split() == [
        "SERVICE", "INSTANCE", "HEALTH", "READY", "VERSION", "UPTIME", "LAG", "RPC/MIN", "LAST",
        "ERROR",
    ]  # fmt: skip
    assert [line.split()[:3] for line in lines[1:5]] == [
        [name, f"{name}-test", "ok"] for name in SERVICES
    ]
    # submit's sender accounts (one lane here), once it is active: the address, never the key
    bot = json.loads((config_dir(config) / "deployment.json").read_text())["bot"]
    for _ in range(100):  # heartbeats come every 2 s (bounded, not timed)
        lanes = json.loads(mev_bot(config, "status", "--json").stdout)["lanes"]
        if lanes:
            break
        time.sleep(0.2)
    assert [lane["address"] for lane in lanes["submit-test"]] == [bot]
    lines = mev_bot(config, "status").stdout.splitlines()
    assert lines[5].startswith(f"lane 0 of submit-test: {bot} (next nonce ")


ACK = re.compile(r"acknowledged by ([\w/]+) ([\w, -]+) in ")
RPC_HOLDERS = "ingest/detect/simulate/submit"  # every service with an RpcPool acknowledges


@pytest.mark.parametrize(
    ("args", "key_value", "service"),
    [
        (["--emergency-stop"], "emergency_stop=1", "submit"),
        (["--resume"], "emergency_stop=0", "submit"),
        (["--adjust-rpc-rate", "0.8"], "rpc_rate_factor=0.8", RPC_HOLDERS),
        (["--adjust-rpc-pool-size", "5"], "rpc_pool_size=5", RPC_HOLDERS),
    ],
)
def test_control_flag_returns_once_the_owning_service_acknowledged(
    stack: tuple[Path, list[ServiceProcess]], args: list[str], key_value: str, service: str
) -> None:
    config, _ = stack
    wait_all_healthy_in_status(config)
    out = mev_bot(config, *args)
    assert out.returncode == 0, out.stderr
    assert f"{CHAIN}.{key_value} (revision " in out.stdout
    match = ACK.search(out.stdout)
    assert match is not None, out.stdout
    instances = ", ".join(sorted(f"{name}-test" for name in service.split("/")))
    assert match.groups() == (service, instances)


def test_emergency_stop_shows_in_status_and_resume_clears_it(
    stack: tuple[Path, list[ServiceProcess]],
) -> None:
    config, _ = stack
    assert mev_bot(config, "--emergency-stop").returncode == 0
    assert (
        json.loads(mev_bot(config, "status", "--json").stdout)["control"]["emergency_stop"] == "1"
    )
    assert mev_bot(config, "--resume").returncode == 0
    assert (
        json.loads(mev_bot(config, "status", "--json").stdout)["control"]["emergency_stop"] == "0"
    )


def test_reset_nonce_is_acknowledged_by_submit(stack: tuple[Path, list[ServiceProcess]]) -> None:
    config, _ = stack
    out = mev_bot(config, "--reset-nonce")
    assert out.returncode == 0, out.stderr
    assert "nonce reset" in out.stdout and "acknowledged by submit submit-test" in out.stdout


def test_a_flag_nobody_acknowledges_says_so_and_exits_1(
    nats_server: NatsEndpoint, tmp_path: Path
) -> None:
    config = write_config(tmp_path, nats_server.url, 7777)  # a chain no service runs
    out = mev_bot(config, "--adjust-rpc-rate", "0.5", "--timeout", "1s")
    assert out.returncode == 1
    assert out.stdout == ""
    assert out.stderr.startswith("mev-bot: 7777.rpc_rate_factor=0.5 (revision ")
    assert out.stderr.rstrip().endswith(
        f"is set, but not acknowledged within 1s by any {RPC_HOLDERS} instance: is "
        f"{RPC_HOLDERS} running? (`mev-bot status`)"
    )


def test_an_emergency_stop_with_no_submit_running_holds_and_exits_0(
    nats_server: NatsEndpoint, tmp_path: Path
) -> None:
    """The runbook's `mev-bot --emergency-stop` by hand with no submit running: the flag is
    set and every submit that starts reads it before its lease, so the stop holds. Before, it
    exited 1 ("set, but not acknowledged ... is submit running?"): a runbook step that failed."""
    config = write_config(tmp_path, nats_server.url, 7781)  # a chain no service runs
    out = mev_bot(config, "--emergency-stop", "--timeout", "1s")
    assert (out.returncode, out.stderr) == (0, "")
    assert re.fullmatch(
        r"mev-bot: emergency stop set: 7781\.emergency_stop=1 \(revision \d+\) is set; no "
        r"submit is running to acknowledge it \(no fresh heartbeat, no lease held\); any "
        r"submit that starts reads it first and refuses to trade until `mev-bot --resume`\n",
        out.stdout,
    ), out.stdout
    assert json.loads(mev_bot(config, "status", "--json").stdout)["control"] == {
        "emergency_stop": "1",
        "nonce_reset": "-",
        "rpc_pool_size": "-",
        "rpc_rate_factor": "-",
    }


async def test_an_emergency_stop_a_running_submit_did_not_acknowledge_exits_1(
    nats_server: NatsEndpoint, tmp_path: Path
) -> None:
    """A submit that could send (a fresh heartbeat here; only its lease: test_rotate_keys) and
    did not acknowledge: the stop is not known to hold, exit 1 naming it."""
    config = write_config(tmp_path, nats_server.url, 7782)
    nc = await nats.connect(nats_server.url)
    try:
        kv = await ensure_control_bucket(nc.jetstream())
        # fresh for the whole test, however loaded the machine
        beat = {"service": "submit", "instance": "submit-mute", "version": "0.1.0",
                "status": "ok", "uptime_s": 5.0, "ready": True, "checks": {},
                "ts": time.time() + 30}  # fmt: skip
        await kv.put(instance_key(7782, "submit", "submit-mute"), json.dumps(beat).encode())
        out = mev_bot(config, "--emergency-stop", "--timeout", "1s")
        assert (out.returncode, out.stdout) == (1, "")
        assert out.stderr.rstrip().endswith(
            "is set, but not acknowledged within 1s by submit-mute: is submit running? "
            "(`mev-bot status`)"
        ), out.stderr
    finally:
        await nc.close()


def test_status_without_services_exits_1(nats_server: NatsEndpoint, tmp_path: Path) -> None:
    config = write_config(tmp_path, nats_server.url, 7778)
    out = mev_bot(config, "status")
    assert out.returncode == 1
    assert "(no service instance has a heartbeat in the control KV)" in out.stdout
    assert "no healthy instance of: ingest, detect, simulate, submit" in out.stdout


def test_unreachable_nats_is_one_line_and_exit_1(tmp_path: Path) -> None:
    config = write_config(tmp_path, f"nats://127.0.0.1:{free_port()}", 7779)
    out = mev_bot(config, "status")
    assert out.returncode == 1
    assert out.stderr.startswith("mev-bot: cannot reach NATS at nats://127.0.0.1:")
    assert len(out.stderr.strip().splitlines()) == 1


def test_validate_deployment_script_passes_on_the_running_stack(
    stack: tuple[Path, list[ServiceProcess]],
) -> None:
    config, _ = stack
    wait_all_healthy_in_status(config)
    ports = yaml.safe_load(config.read_text())["services"]
    urls = " ".join(f"http://127.0.0.1:{ports[n]['metrics_port']}/metrics" for n in SERVICES)
    out = subprocess.run(  # no variables: the script finds the checkout's Python and CLI
        [str(REPO / "scripts/validate-deployment.sh"), "devnet", "--config", str(config)],
        capture_output=True, text=True, check=False, timeout=60,
        env={k: v for k, v in os.environ.items() if not k.startswith("MEV_")},
    )  # fmt: skip
    assert out.returncode == 0, out.stdout + out.stderr
    lines = out.stdout.splitlines()
    assert [line for line in lines if line.startswith("ok: http")] == [
        f"ok: {url} exports mev_bot_status" for url in urls.split()
    ]
    streams = [line.split(":")[1].split()[1] for line in lines if line.startswith("ok: stream ")]
    assert streams == ["MEMPOOL", "BLOCKS", "OPPORTUNITIES", "BUNDLES", "OUTCOMES", "DEAD"]
    assert lines[-1] == "deployment valid"


def test_shutdown_graceful_drains_every_service_with_exit_0(
    stack: tuple[Path, list[ServiceProcess]],
) -> None:
    config, procs = stack
    wait_all_healthy_in_status(config)
    out = mev_bot(config, "--shutdown-graceful")
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines()[-1] == (
        "mev-bot: all 4 instances drained and exited: detect.detect-test, "
        "ingest.ingest-test, simulate.simulate-test, submit.submit-test"
    )
    assert [(p.name, p.wait(30)) for p in procs] == [(name, 0) for name in SERVICES]
    assert mev_bot(config, "status").returncode == 1  # heartbeats removed on the way out


async def test_a_killed_instance_shows_stale_then_is_left_out(
    nats_server: NatsEndpoint, tmp_path: Path
) -> None:
    """A SIGKILLed instance cannot delete its heartbeat: status marks it stale, later omits it."""
    config = write_config(tmp_path, nats_server.url, 7780)
    nc = await nats.connect(nats_server.url)
    try:
        kv = await ensure_control_bucket(nc.jetstream())
        now = time.time()
        for instance, age in (("submit-recent", 20.0), ("submit-old", 400.0)):
            beat = {"service": "submit", "instance": instance, "version": "0.1.0",
                    "status": "ok", "uptime_s": 5.0, "ready": True, "checks": {},
                    "ts": now - age}  # fmt: skip
            await kv.put(instance_key(7780, "submit", instance), json.dumps(beat).encode())
    finally:
        await nc.close()
    out = mev_bot(config, "status", "--json")
    assert out.returncode == 1
    report = json.loads(out.stdout)
    assert [(r["instance"], r["health"][:5]) for r in report["instances"]] == [
        ("submit-recent", "stale")
    ]
    assert report["missing"] == ["ingest", "detect", "simulate", "submit"]
