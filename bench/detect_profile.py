"""Detect's per-trigger CPU, in process: the pending-swap path from payload bytes to the
encoded opportunities, with no NATS and no chain, so a profile shows detect's own work.

Why in process: on a shared 2-core machine a bus round trip's latency moves with everyone's
load, while CPU per trigger barely does; this separates "detect is slow" from "the machine is
busy". The pools are the devnet's (mev_ops.devnet.layout, one seed) at their planned deposits,
the triggers bench/swaps.py's real backrun candidates (distinct senders, nonce 0, rising tips),
V2 and V3 in the devnet flow's mix (`--v3-share 0`: V2 only). Its V3 pools sit at their
factories' CREATE2 addresses, so detect matches a SwapRouter swap to them as on the devnet.
What the bus would carry is encoded as the bus would (`messages.encode`), then dropped.

    python -m bench.detect_profile [--n 3000] [--v3-share 0.35] [--profile] [--top 30]
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import hashlib
import os
import pstats
import time
from dataclasses import dataclass, field
from math import isqrt, sqrt
from pathlib import Path
from typing import Any

from eth_utils import to_checksum_address
from mev_common.amm.v2 import V2Pool, pair_key
from mev_common.amm.v3 import TICK_SPACING, V3Pool
from mev_common.amm.v3_math import get_tick_at_sqrt_ratio
from mev_common.chain.contracts import ChainContracts, Dex, TokenInfo, V3Dex
from mev_common.chain.pools import UNISWAP_V3_INIT_CODE_HASH, v3_pool_address
from mev_common.envelope import Envelope
from mev_common.messages import Block, PendingTx, decode, encode
from mev_common.settings import Settings, load_settings
from mev_ops.devnet.flow_plan import V3_SHARE
from mev_ops.devnet.layout import TOKENS, TOKENS_BY_SYMBOL, plan_pools, plan_v3_pools
from pydantic import BaseModel

from bench.stats import quantile
from bench.swaps import pending_swaps
from services.detect.service import Detector

CONFIG = Path(__file__).resolve().parents[1] / "config" / "devnet.yaml"
CHAIN_ID = 31337


def _address(label: str) -> str:
    return to_checksum_address(hashlib.sha256(label.encode()).digest()[:20])


def devnet_like(
    seed: int = 1,
) -> tuple[dict[str, Any], list[tuple[V2Pool, str]], list[V3Pool]]:
    """A deployment dict (what bench/swaps.py reads), the devnet's V2 pools at their deposits
    and its V3 pools (each position's liquidity approximated from its USD size)."""
    tokens: dict[str, dict[str, Any]] = {
        t.symbol: {"address": _address(f"token:{t.symbol}"), "decimals": t.decimals} for t in TOKENS
    }
    dexes = [{"name": name, "router": _address(f"router:{name}"),
              "factory": _address(f"factory:{name}")} for name in ("A", "B")]  # fmt: skip
    v3_dexes = [{"name": name, "factory": _address(f"v3-factory:{name}"),
                 "swap_router": _address(f"swap-router:{name}")}
                for name in ("A", "B")]  # fmt: skip
    pools = []
    for spec in plan_pools(seed):
        a, b = tokens[spec.symbol_a]["address"], tokens[spec.symbol_b]["address"]
        token0, token1 = pair_key(a, b)
        r0, r1 = (spec.amount_a, spec.amount_b) if token0 == a else (spec.amount_b, spec.amount_a)
        address = _address(f"pair:{spec.dex}:{spec.symbol_a}:{spec.symbol_b}")
        pools.append((V2Pool(address, token0, token1, r0, r1, 30), spec.dex))
    factories = {d["name"]: d["factory"] for d in v3_dexes}
    v3_pools = [_v3_pool(spec, tokens, factories[spec.dex]) for spec in plan_v3_pools(seed)]
    symbols = {t["address"]: s for s, t in tokens.items()}
    listed = [{"dex": spec.dex, "address": p.address, "fee": p.fee, "token0": p.token0,
               "token1": p.token1, "symbol0": symbols[p.token0], "symbol1": symbols[p.token1]}
              for spec, p in zip(plan_v3_pools(seed), v3_pools, strict=True)]  # fmt: skip
    deployment = {"chain_id": CHAIN_ID, "tokens": tokens, "dexes": dexes,
                  "v3_dexes": v3_dexes, "v3_pools": listed}  # fmt: skip
    return deployment, pools, v3_pools


def _v3_pool(spec: Any, tokens: dict[str, Any], factory: str) -> V3Pool:
    a, b = TOKENS_BY_SYMBOL[spec.symbol_a], TOKENS_BY_SYMBOL[spec.symbol_b]
    address_a, address_b = tokens[a.symbol]["address"], tokens[b.symbol]["address"]
    t0, t1 = (a, b) if pair_key(address_a, address_b)[0] == address_a else (b, a)
    price = t0.usd_price / t1.usd_price * 10 ** (t1.decimals - t0.decimals) * spec.offset
    sqrt_price = isqrt(int(price * 2**192))
    spacing = TICK_SPACING[spec.fee]
    tick = get_tick_at_sqrt_ratio(sqrt_price)
    address = v3_pool_address(factory, address_a, address_b, spec.fee, UNISWAP_V3_INIT_CODE_HASH)
    pool = V3Pool(address, *pair_key(address_a, address_b), spec.fee, spacing, sqrt_price, tick, 0)
    for position in spec.positions:
        low = get_tick_at_sqrt_ratio(isqrt(int(price * (1 - position.down) * 2**192)))
        high = get_tick_at_sqrt_ratio(isqrt(int(price * (1 + position.up) * 2**192)))
        low, high = low // spacing * spacing, (high // spacing + 1) * spacing
        amount1 = position.usd / t1.usd_price * 10**t1.decimals
        liquidity = int(amount1 / (sqrt(price) * (1 - sqrt(1 - position.down))))
        pool = pool.modify_position(low, high, liquidity)
    return pool


@dataclass
class _Bus:
    """Encodes what detect publishes, as the real bus does, and counts it."""

    published: dict[str, int] = field(default_factory=dict)

    async def publish(self, subject: str, message: BaseModel, **_: Any) -> None:
        encode(message)
        kind = subject.split(".")[2]
        self.published[kind] = self.published.get(kind, 0) + 1

    async def publish_core(self, subject: str, message: BaseModel) -> None:
        await self.publish(subject, message)

    async def publish_later(
        self, subject: str, message: BaseModel, **_: Any
    ) -> asyncio.Future[None]:
        """As `publish`, the stream's ack already in (the consume loop would await it)."""
        await self.publish(subject, message)
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done


@dataclass
class _Runtime:
    settings: Settings
    bus: _Bus
    stop: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def chain_id(self) -> int:
        return self.settings.chain.chain_id

    def add_check(self, name: str, fn: Any) -> None:
        pass


def detector(seed: int = 1) -> tuple[Detector, dict[str, Any], _Bus]:
    """A loaded Detector over the devnet-like pools, its head one block in."""
    deployment, pools, v3_pools = devnet_like(seed)
    settings = load_settings(CONFIG)
    contracts = ChainContracts(
        executor=_address("executor"),
        weth=deployment["tokens"]["WETH"]["address"],
        dexes=tuple(Dex(d["name"], d["factory"], d["router"], 30) for d in deployment["dexes"]),
        v3_dexes=tuple(
            V3Dex(d["name"], d["factory"], router=d["swap_router"]) for d in deployment["v3_dexes"]
        ),
    )
    bus = _Bus()
    found = Detector(_Runtime(settings, bus), None, contracts)  # type: ignore[arg-type]
    found.tokens = {
        t["address"]: TokenInfo(t["address"], s, t["decimals"])
        for s, t in deployment["tokens"].items()
    }
    found.registry.load(pools, 1, "0x" + "11" * 32, v3_pools)
    found.rebuild_index()
    found.loaded = True
    found.head = Block(chain_id=CHAIN_ID, number=1, hash="0x" + "11" * 32,
                       parent_hash="0x" + "00" * 32, timestamp=int(time.time()),
                       base_fee_per_gas=10**9)  # fmt: skip
    return found, deployment, bus


async def feed(
    found: Detector, payloads: list[tuple[str, bytes]], hits: list[bool] | None = None
) -> list[float]:
    """Each payload decoded and handled as the consumer does; CPU µs per trigger (process
    time: what others' load on a shared machine barely moves, unlike wall time). `hits`: one
    flag a trigger, whether it yielded an opportunity."""
    out = []
    for tx_hash, payload in payloads:
        before = found.pending_with_opportunity
        started = time.process_time_ns()
        message = decode(PendingTx, payload)
        env = Envelope(message, "mempool", tx_hash, tx_hash, time.time_ns())
        await found.on_pending(env)
        out.append((time.process_time_ns() - started) / 1e3)
        if hits is not None:
            hits.append(found.pending_with_opportunity > before)
    return out


def measure(
    n: int, seed: int = 8, profile: bool = False, top: int = 30, v3_share: float = V3_SHARE
) -> dict[str, Any]:
    found, deployment, bus = detector()
    payloads = pending_swaps(deployment, n + 200, seed=seed, v3_share=v3_share)
    asyncio.run(feed(found, payloads[:200]))  # warm caches, as the bench's first step does
    bus.published.clear()
    profiler = cProfile.Profile() if profile else None
    if profiler:
        profiler.enable()
    cpu0 = time.process_time()
    hits: list[bool] = []
    samples = asyncio.run(feed(found, payloads[200:], hits))
    cpu = time.process_time() - cpu0
    if profiler:
        profiler.disable()
        pstats.Stats(profiler).sort_stats("tottime").print_stats(top)
        pstats.Stats(profiler).sort_stats("cumulative").print_stats(top)
    kinds = [_to_v3(found, p) for _, p in payloads[200:]]
    v2 = [s for s, k in zip(samples, kinds, strict=True) if not k]
    v3 = [s for s, k in zip(samples, kinds, strict=True) if k]
    return {
        "n": n,
        "v3_share": v3_share,
        "n_v3": len(v3),
        "v2_p50_us": quantile(v2, 0.5) if v2 else None,
        "v2_p95_us": quantile(v2, 0.95) if v2 else None,
        "v3_p50_us": quantile(v3, 0.5) if v3 else None,
        "v3_p95_us": quantile(v3, 0.95) if v3 else None,
        "hits_v2": sum(h for h, k in zip(hits, kinds, strict=True) if not k),
        "hits_v3": sum(h for h, k in zip(hits, kinds, strict=True) if k),
        "cpu_us": cpu / n * 1e6,
        "samples": samples,  # CPU µs of each trigger
        "p50_us": quantile(samples, 0.5),
        "p95_us": quantile(samples, 0.95),
        "published": dict(bus.published),
        "load": os.getloadavg(),
    }


def _to_v3(found: Detector, payload: bytes) -> bool:
    return decode(PendingTx, payload).to in found.v3_routers.by_router


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=3000)
    parser.add_argument("--v3-share", type=float, default=V3_SHARE)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--top", type=int, default=30)
    args = parser.parse_args()
    result = measure(args.n, profile=args.profile, top=args.top, v3_share=args.v3_share)
    result.pop("samples")
    print(result)


if __name__ == "__main__":
    main()
