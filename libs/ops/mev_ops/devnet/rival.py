"""A competing searcher on the devnet (`devnet flow --rival LATENCY_MS`): backruns the flow's
pending V2 swaps with a fixed reaction time, so the bench can race our bot against it.

It sees only what the chain's RPC shows anyone: anvil's `newPendingTransactions` (full txs) and
`newHeads` over WebSocket, and the pairs' reserves at each head. For each pending Router02
swap it applies the pending swaps that fee ordering puts first, then the victim, prices every
WETH cycle through the victim's pairs (rival_pricing.py, no code shared with detect), signs an
`execute` on an Executor of its own (same bytecode as ours, its own owner, flash mode, so it
needs only gas money), and sends it LATENCY_MS after it saw the victim (later, if pricing and
signing took longer: `Shot.reaction_ms` says what it really was). It bids what our submit
bids, one wei of tip under the victim's (never a front-run), so on fee-ordered anvil the two
backruns tie and whoever arrived first goes first. Several accounts, one in-flight tx each, so
one backrun never waits behind another's nonce.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import queue
import time
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass, field
from multiprocessing.process import BaseProcess
from typing import Any

import httpx
import orjson
from eth_utils import to_checksum_address
from mev_common.executor import ExecHop, encode_execute
from mev_common.parent_watch import exit_with_parent
from web3 import Web3
from websockets.asyncio.client import connect

from mev_ops.devnet.artifacts import load_artifact
from mev_ops.devnet.deploy import devnet_account
from mev_ops.devnet.rival_pricing import (
    Backrun,
    Market,
    Reserves,
    VictimSwap,
    backrun_fees,
    best_backrun,
    decode_swap,
)
from mev_ops.devnet.sender import GWEI, Sender, create_address, rpc, wait_all

FIRST_ACCOUNT = 10  # mnemonic indices past anvil's 10 funded accounts (0..9 are taken)
ACCOUNTS = 4
FUNDING_WEI = 1_000 * 10**18
GAS_LIMIT = 500_000
# Gas a flash cycle may cost, for the profit floor: 2 pools measured at 215k on the devnet
# (tests/integration/devnet/test_rival.py holds it to this bound); 3 pools, one more pair swap.
GAS_ESTIMATE = {2: 230_000, 3: 300_000}
MIN_PROFIT_WEI = 10**14  # 0.0001 ether over gas, as config/devnet.yaml's backrun.min_profit
GET_RESERVES = "0x0902f1ac"


@dataclass(frozen=True)
class Shot:
    """One backrun the rival sent."""

    victim: str  # victim tx hash
    tx_hash: str
    account: str
    executor: str
    reaction_ms: float  # seen the victim -> sent ours
    expected_profit: int  # gross WETH wei on the state it priced
    hops: int


@dataclass
class RivalStats:
    seen: int = 0  # pending txs received
    swaps: int = 0  # of those, V2 router swaps decoded
    priced: int = 0  # ... with a backrun over the profit floor
    busy: int = 0  # ... skipped: every account had a tx in flight
    shots: list[Shot] = field(default_factory=list)


@dataclass
class _Slot:
    sender: Sender
    executor: str
    in_flight: str | None = None  # tx hash not yet seen in a block


class Rival:
    """`setup()` once (funds accounts, deploys executors), then `start()`/`stop()` per run."""

    def __init__(
        self,
        rpc_url: str,
        deployment: dict[str, Any],
        latency_ms: float,
        *,
        accounts: int = ACCOUNTS,
        min_profit: int = MIN_PROFIT_WEI,
    ) -> None:
        if latency_ms < 0:
            raise ValueError(f"rival latency must be >= 0 ms, not {latency_ms}")
        self.rpc_url = rpc_url
        self.ws_url = rpc_url.replace("http", "ws", 1)
        self.deployment = deployment
        self.latency_ms = latency_ms
        self.min_profit = min_profit
        self.market = Market.from_deployment(deployment)
        self.weth = to_checksum_address(deployment["weth"])
        self.routers: set[str] = {to_checksum_address(d["router"]) for d in deployment["dexes"]}
        self._n_accounts = accounts
        self._slots: list[_Slot] = []
        self._process: BaseProcess | None = None
        self._ready: Any = None  # multiprocessing Events and Queue, made by start()
        self._stop: Any = None
        self._out: Any = None
        self.stats = RivalStats()

    @property
    def executors(self) -> list[str]:
        return [s.executor for s in self._slots]

    @property
    def addresses(self) -> list[str]:
        return [s.sender.address for s in self._slots]

    def setup(self) -> None:
        """Fund the rival's accounts and deploy one Executor each (nonce 0; reused if there)."""
        w3 = Web3(Web3.HTTPProvider(self.rpc_url, request_kwargs={"timeout": 30}))
        build = self.deployment["executor"].get("build", "Executor")
        allow = [(d["factory"], bytes.fromhex(d["init_code_hash"][2:]))
                 for d in self.deployment["dexes"]]  # fmt: skip
        sent = []
        for k in range(self._n_accounts):
            address = devnet_account(FIRST_ACCOUNT + k).address
            rpc(w3, "anvil_setBalance", [address, hex(FUNDING_WEI)])
        for slot in self._attach(w3):
            if slot.sender.nonce == 0:
                owner = slot.sender.address
                tx, _ = slot.sender.deploy(load_artifact(build), [owner, owner, allow], 3_000_000)
                sent.append(tx)
        wait_all(w3, sent)
        for slot in self._attach(w3):
            if len(w3.eth.get_code(to_checksum_address(slot.executor))) == 0:
                raise RuntimeError(f"rival executor {slot.executor} has no code")

    def _attach(self, w3: Web3) -> list[_Slot]:
        """The rival's accounts at their chain nonces, each with its executor's address."""
        chain_id = int(self.deployment["chain_id"])
        self._slots = []
        for k in range(self._n_accounts):
            account = devnet_account(FIRST_ACCOUNT + k)
            sender = Sender(w3, account, chain_id, max_fee=100 * GWEI, tip=GWEI)
            self._slots.append(_Slot(sender, create_address(account.address, 0)))
        return self._slots

    def start(self, timeout_s: float = 30.0) -> None:
        """Run in a process of its own (no GIL shared with the flow's signing) until `stop()`;
        returns once its WebSocket feeds are live."""
        if not self._slots:
            self.setup()
        ctx = multiprocessing.get_context("spawn")
        self._ready, self._stop, self._out = ctx.Event(), ctx.Event(), ctx.Queue()
        args = (self.rpc_url, self.deployment, self.latency_ms, self._n_accounts,
                self.min_profit, self._ready, self._stop, self._out)  # fmt: skip
        self._process = ctx.Process(target=_child, args=args, name="rival", daemon=True)
        self._process.start()
        deadline = time.monotonic() + timeout_s
        while not self._ready.wait(0.1):
            if time.monotonic() > deadline or not self._process.is_alive():
                self.stop()
                raise RuntimeError(f"the rival did not start within {timeout_s} s")
        if not self._out.empty():  # it failed after all: its error is in the queue
            error = self._out.get()
            self.stop()
            raise RuntimeError(f"the rival failed to start: {error}")

    def stop(self) -> RivalStats:
        """Stop the process; its stats (what it sent) come back here."""
        process, self._process = self._process, None
        if process is None:
            return self.stats
        self._stop.set()
        try:
            result = self._out.get(timeout=20)
        except queue.Empty:
            result = "no answer within 20 s"
        process.join(5)
        if process.is_alive():
            process.kill()
            process.join()
        if not isinstance(result, RivalStats):
            raise RuntimeError(f"the rival failed: {result}")
        self.stats = result
        return self.stats


def _child(
    rpc_url: str, deployment: dict[str, Any], latency_ms: float, accounts: int, min_profit: int,
    ready: Any, stop: Any, out: Any,
) -> None:  # fmt: skip
    """The rival process: its own Rival on the chain's state, until `stop` is set (or its
    parent is gone)."""
    exit_with_parent()
    try:
        rival = Rival(rpc_url, deployment, latency_ms, accounts=accounts, min_profit=min_profit)
        rival._attach(Web3(Web3.HTTPProvider(rpc_url, request_kwargs={"timeout": 10})))
        rival._ready, rival._stop = ready, stop
        asyncio.run(_Loop(rival).main())
        out.put(rival.stats)
    except BaseException as exc:
        out.put(repr(exc))
        ready.set()


@contextlib.contextmanager
def rival_running(
    rpc_url: str, deployment: dict[str, Any], latency_ms: float | None
) -> Iterator[Rival | None]:
    """A rival running for the block's duration (none if `latency_ms` is None); says what it
    did when the block ends, however it ends."""
    if latency_ms is None:
        yield None
        return
    rival = Rival(rpc_url, deployment, latency_ms)
    rival.setup()
    rival.start()
    print(f"rival: {len(rival.addresses)} accounts, reacting {latency_ms:g} ms after a swap")
    try:
        yield rival
    finally:
        stats = rival.stop()
        reactions = sorted(s.reaction_ms for s in stats.shots)
        median = f", median reaction {reactions[len(reactions) // 2]:.1f} ms" if reactions else ""
        print(
            f"rival: saw {stats.swaps} V2 swaps, {stats.priced} worth a backrun, sent "
            f"{len(stats.shots)} ({stats.busy} skipped: every account busy){median}"
        )


class _Loop:
    """The rival's event loop: heads refresh the state, each pending swap may become a shot."""

    def __init__(self, rival: Rival) -> None:
        self.r = rival
        self.reserves: Reserves = {}
        self.head = 0
        self.pending: dict[str, tuple[int, VictimSwap]] = {}  # hash -> (max fee, swap)
        self.client = httpx.AsyncClient(timeout=10)
        self.tasks: set[asyncio.Task[None]] = set()

    async def main(self) -> None:
        await self.refresh("latest")
        async with connect(self.r.ws_url, open_timeout=5, max_size=2**24) as ws:
            ids: dict[str, int] = {}
            for i, params in enumerate((["newHeads"], ["newPendingTransactions", True])):
                request = {"jsonrpc": "2.0", "id": i, "method": "eth_subscribe", "params": params}
                await ws.send(orjson.dumps(request).decode())
            while len(ids) < 2:
                reply = orjson.loads(await asyncio.wait_for(ws.recv(), 5))
                if "error" in reply:
                    raise RuntimeError(f"rival subscribe: {reply['error']}")
                ids[reply["result"]] = reply["id"]
            self.r._ready.set()  # both feeds are live: the flow may start
            while not self.r._stop.is_set():
                try:
                    frame = await asyncio.wait_for(ws.recv(), 0.1)
                except TimeoutError:
                    continue
                seen = time.perf_counter()
                inner = orjson.loads(frame).get("params") or {}
                kind = ids.get(str(inner.get("subscription")))
                if kind == 0:  # off the feed's path: swaps keep their seen time meanwhile
                    self.spawn(self.refresh(inner["result"]["number"]))
                elif kind == 1 and isinstance(inner["result"], dict):
                    self.on_pending(inner["result"], seen)
        if self.tasks:
            await asyncio.wait(self.tasks, timeout=5)
        await self.client.aclose()

    async def call(self, calls: list[tuple[str, list[Any]]]) -> list[Any]:
        body = [{"jsonrpc": "2.0", "id": i, "method": m, "params": p}
                for i, (m, p) in enumerate(calls)]  # fmt: skip
        replies = sorted((await self.client.post(self.r.rpc_url, json=body)).json(),
                         key=lambda x: x["id"])  # fmt: skip
        for reply in replies:
            if "error" in reply:
                raise RuntimeError(f"rival rpc: {reply['error']}")
        return [reply["result"] for reply in replies]

    async def refresh(self, block: str) -> None:
        """Reserves of every pair at `block`, its fee numbers, and what it mined."""
        pairs = list(self.r.market.pairs)
        calls: list[tuple[str, list[Any]]] = [("eth_getBlockByNumber", [block, False])]
        calls += [("eth_call", [{"to": p, "data": GET_RESERVES}, block]) for p in pairs]
        header, *words = await self.call(calls)
        number = int(header["number"], 16)
        if number < self.head:
            return  # a later head's refresh finished first
        self.head = number
        for pair, word in zip(pairs, words, strict=True):
            raw = bytes.fromhex(word[2:])
            self.reserves[pair] = (int.from_bytes(raw[:32]), int.from_bytes(raw[32:64]))
        mined = set(header["transactions"])
        for tx_hash in mined & set(self.pending):
            del self.pending[tx_hash]
        for slot in self.r._slots:
            if slot.in_flight in mined:
                slot.in_flight = None

    def on_pending(self, tx: dict[str, Any], seen: float) -> None:
        stats = self.r.stats
        stats.seen += 1
        if to_checksum_address(tx["from"]) in self.r.addresses:
            return
        swap = decode_swap(tx.get("to"), tx["input"], int(tx["value"], 16), self.r.routers)
        if swap is None:
            return
        stats.swaps += 1
        max_fee = int(tx.get("maxFeePerGas") or tx["gasPrice"], 16)
        tip = int(tx.get("maxPriorityFeePerGas") or tx["gasPrice"], 16)
        state = dict(self.reserves)
        # what fee ordering mines before the victim (higher max fee), then the victim
        for other_fee, other in sorted(self.pending.values(), key=lambda p: -p[0]):
            if other_fee > max_fee:
                self.r.market.apply(state, other)
        self.pending[tx["hash"]] = (max_fee, swap)
        touched = self.r.market.apply(state, swap)
        if not touched:
            return
        fee_cap, our_tip = backrun_fees(tip, max_fee)
        gas_cost = GAS_ESTIMATE[3] * fee_cap
        plan = best_backrun(self.r.market, state, self.r.weth, set(touched),
                            self.r.min_profit + gas_cost)  # fmt: skip
        if plan is None:
            return
        stats.priced += 1
        slot = next((s for s in self.r._slots if s.in_flight is None), None)
        if slot is None:
            stats.busy += 1
            return
        raw = slot.sender.sign(slot.executor, _calldata(plan, gas_cost), GAS_LIMIT, 0, our_tip,
                               fee_cap)  # fmt: skip
        tx_hash = "0x" + Web3.keccak(raw).hex().removeprefix("0x")
        slot.in_flight = tx_hash
        self.spawn(self.send_at(seen, raw, tx["hash"], tx_hash, slot, plan))

    def spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(work)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def send_at(
        self, seen: float, raw: bytes, victim: str, tx_hash: str, slot: _Slot, plan: Backrun
    ) -> None:
        delay = seen + self.r.latency_ms / 1000 - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        sent = time.perf_counter()
        try:
            await self.call([("eth_sendRawTransaction", ["0x" + raw.hex()])])
        except (RuntimeError, httpx.HTTPError):
            # a timed-out send may still have reached the node: then it is a shot, and its
            # nonce is used (re-using it would be a second tx the stats never saw)
            if not await self._known(tx_hash):
                slot.in_flight = None  # refused: the nonce was not used
                slot.sender.nonce -= 1
                return
        self.r.stats.shots.append(
            Shot(victim, tx_hash, slot.sender.address, slot.executor,
                 (sent - seen) * 1000, plan.profit, len(plan.hops))
        )  # fmt: skip

    async def _known(self, tx_hash: str) -> bool:
        with contextlib.suppress(RuntimeError, httpx.HTTPError):
            (found,) = await self.call([("eth_getTransactionByHash", [tx_hash])])
            return found is not None
        return True  # unknown either way: keep the nonce spent rather than send two on it


def _calldata(plan: Backrun, min_profit: int) -> bytes:
    hops = [ExecHop(h.pair, h.token_in, h.token_out, h.fee_bps) for h in plan.hops]
    return encode_execute(hops, plan.amount_in, min_profit, True)
