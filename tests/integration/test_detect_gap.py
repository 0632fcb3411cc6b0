"""Detect after a gap in the block stream, with real NATS, real ingest and detect processes and
a real anvil (mining by hand).

A user's swap is pending (detect books it); ingest stops, the swap is mined with another block,
NATS comes back on an empty store and ingest starts over from the next head: detect never
receives the blocks that mined the swap. The user's next swap (nonce + 1, a higher tip) is a
backrun candidate: its backrun must not carry the mined swap as a tx mined ahead of its victim
(`Opportunity.ahead`: simulate would run a tx the chain has already run, on a state that holds
it). Before services/detect/gap.py the book kept the mined swap until it aged out, and the
backrun was published with it ahead.
"""

from __future__ import annotations

import asyncio
import json
import shutil
from collections.abc import Callable
from pathlib import Path

from eth_abi import encode
from mev_common.bus import Bus
from mev_common.messages import Opportunity
from mev_ops.nats_server import start_embedded_nats

from tests.integration.test_detect import SWAP, Chain
from tests.support.devnet_state import deployed_anvil
from tests.support.stack import ServiceProcess, metric_value, node_config, pools_block, stop_all
from tests.support.stream_read import read_until

CHAIN = 31337
GWEI = 10**9
CONSUMED = 'mev_bot_messages_consumed_total{result="ok",stage="detect"}'


async def send_swap(chain: Chain, path: list[str], amount_in: int, tip: int) -> tuple[str, int]:
    """A DEX A router swap from the first user at `tip` per gas; (hash, nonce)."""
    user = chain.deployment["users"][0]
    user = user["address"] if isinstance(user, dict) else user
    args = [amount_in, 0, [chain.token(s) for s in path], user, 2**40]
    data = SWAP + encode(["uint256", "uint256", "address[]", "address", "uint256"], args).hex()
    nonce = int(await chain.rpc("eth_getTransactionCount", [user, "pending"]), 16)
    tx = {
        "from": user, "to": chain.dex("A")["router"], "data": data, "gas": hex(400_000),
        "nonce": hex(nonce), "maxPriorityFeePerGas": hex(tip), "maxFeePerGas": hex(100 * GWEI),
    }  # fmt: skip
    return str(await chain.rpc("eth_sendTransaction", [tx])), nonce


async def until(what: str, cond: Callable[[], bool], timeout_s: float = 30.0) -> None:
    """`cond` polled until true; a health read that times out (a busy detect on a loaded
    machine: one failed so at 2 s under two xdist workers) counts as not yet."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not _polled(cond):
        assert asyncio.get_running_loop().time() < deadline, f"timed out: {what}"
        await asyncio.sleep(0.1)


def _polled(cond: Callable[[], bool]) -> bool:
    try:
        return cond()
    except OSError:  # urllib's timeouts and refused connections
        return False


def released(logs: str) -> bool:
    """Detect held its trades on NATS coming back, and every hold it opened has ended."""
    held = logs.count('"pending view has a gap: trades held"')
    reconnect = '"pending view has a gap: trades held","why":"nats reconnected"' in logs
    return reconnect and logs.count('"pending view whole again"') == held


async def test_a_swap_mined_in_blocks_detect_missed_is_not_run_ahead(tmp_path: Path) -> None:
    node, _ = deployed_anvil(tmp_path, CHAIN, 1, tmp_path / "bot.key", tmp_path / "deployment.json")
    chain = Chain(node, json.loads((tmp_path / "deployment.json").read_text()))
    await chain.rpc("evm_setAutomine", [False])
    server = start_embedded_nats(store_dir=tmp_path / "nats")
    deployment = tmp_path / "deployment.json"
    config = node_config(tmp_path / "run", server.url, CHAIN, node.rpc_url, deployment)
    ingest, detect = (
        ServiceProcess(n, config, tmp_path / f"{n}.log") for n in ("ingest", "detect")
    )
    bus: Bus | None = None
    try:
        for proc in (ingest.start(), detect.start()):
            proc.wait_health(200, timeout_s=30)
        head = await chain.mine()
        await until("detect at the head", lambda: pools_block(detect) == head)
        consumed = metric_value(detect, CONSUMED)
        mined_swap, nonce = await send_swap(chain, ["WETH", "USDC"], 60 * 10**18, 1 * GWEI)
        await until("the swap booked", lambda: metric_value(detect, CONSUMED) > consumed)

        ingest.stop()  # the blocks that mine the swap never reach detect
        assert await chain.mine() == head + 1
        await chain.mine()
        receipt = await chain.rpc("eth_getTransactionReceipt", [mined_swap])
        assert int(receipt["blockNumber"], 16) == head + 1 and receipt["status"] == "0x1"
        server.kill()  # NATS back on an empty store: ingest starts over at the next head
        shutil.rmtree(server.store_dir)
        server.start()
        ingest.start().wait_health(200, timeout_s=30)
        await asyncio.sleep(2.0)  # ingest subscribed to new heads, detect reconnected
        gap = await chain.mine()
        assert gap == head + 3
        await until("detect reloaded after the gap", lambda: pools_block(detect) == gap)
        # NATS came back: trades held until a block mined after it (the gap block, through
        # the reload path) or two block times (services/detect/feed_gap.py)
        await until("trades released", lambda: released(detect.log_path.read_text()))

        # the same user's next swap, tipping more: mined after the first one (its nonce is
        # the chain's next), not behind it; a backrun candidate on the post-gap state
        victim, victim_nonce = await send_swap(chain, ["WETH", "USDC"], 60 * 10**18, 2 * GWEI)
        assert victim_nonce == nonce + 1
        bus = await Bus.connect(server.url, "test", attempts=3)
        found = await read_until(
            bus, f"mev.{CHAIN}.opportunities.>", Opportunity,
            lambda ops: any(o.trigger == victim for o in ops), 20.0,
        )  # fmt: skip
    finally:
        if bus is not None:
            await bus.close()
        stop_all((ingest, detect))
        server.cleanup()
        node.stop()
    backruns = [o for o in found if o.trigger == victim]
    assert backruns, f"no backrun of the swap after the gap:\n{detect.logs()}"
    assert all(o.victim is not None and o.victim.hash == victim for o in backruns)
    # nothing ahead: the only other swap of its sender is on chain already
    assert [[t.hash for t in o.ahead] for o in backruns] == [[] for _ in backruns]
    assert "gap in the block stream" in detect.log_path.read_text()
