"""Routes through the devnet's V3 pools and V2 pairs, with their exact expected outputs from our
models (mev_common.amm.v3, written and tested independently of the Executor): what the
Executor's V3 tests compare the chain against."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from mev_common.chain.v3_pools import fetch_v3_pools, http_batch_caller
from mev_common.executor import ExecHop

from tests.integration.devnet.conftest import Devnet, amount_out


@dataclass(frozen=True)
class Leg:
    """A swap through a devnet pool: `pool` is "A:WETH/USDC:500" (V3) or "A:WETH/USDC" (V2)."""

    pool: str
    token_in: str
    token_out: str

    @property
    def v3(self) -> bool:
        return self.pool.count(":") == 2


def v3_spec(devnet: Devnet, name: str) -> dict[str, Any]:
    """The deployment entry of a V3 pool, by "dex:sym/sym:fee" in either token order."""
    dex, symbols, fee = name.split(":")
    a, b = symbols.split("/")
    return next(
        p
        for p in devnet.deployment["v3_pools"]
        if p["dex"] == dex and p["fee"] == int(fee) and {p["symbol0"], p["symbol1"]} == {a, b}
    )


def v2_spec(devnet: Devnet, name: str) -> dict[str, Any]:
    dex, symbols = name.split(":")
    a, b = symbols.split("/")
    return devnet.pair(dex, a, b)


def exec_hops(devnet: Devnet, legs: list[Leg]) -> list[ExecHop]:
    tokens = devnet.deployment["tokens"]
    hops = []
    for leg in legs:
        a, b = tokens[leg.token_in]["address"], tokens[leg.token_out]["address"]
        if leg.v3:
            spec = v3_spec(devnet, leg.pool)
            hops.append(ExecHop(spec["address"], a, b, spec["fee"] // 100, "v3"))
        else:
            hops.append(ExecHop(v2_spec(devnet, leg.pool)["address"], a, b, 30))
    return hops


def expected_outputs(devnet: Devnet, legs: list[Leg], amount_in: int) -> list[int]:
    """Each leg's output for `amount_in` into the first, on the chain's latest state (each pool
    appears once in a route, so one state read serves all legs)."""
    block = devnet.w3.eth.block_number
    outs, amount = [], amount_in
    for leg in legs:
        if leg.v3:
            spec = v3_spec(devnet, leg.pool)
            caller = http_batch_caller(devnet.node.rpc_url)
            (pool,) = asyncio.run(fetch_v3_pools(caller, [spec["address"]], block))
            zero_for_one = spec["symbol0"] == leg.token_in
            result = pool.swap(zero_for_one, amount)
            paid, got = (
                (result.amount0, result.amount1)
                if zero_for_one
                else (result.amount1, result.amount0)
            )
            assert paid == amount, f"{leg.pool} cannot take {amount} (liquidity ends first)"
            amount = -got
        else:
            amount = amount_out(amount, *devnet.reserves(v2_spec(devnet, leg.pool), leg.token_in))
        outs.append(amount)
    return outs
