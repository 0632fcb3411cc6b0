"""One real executor bundle on the devnet, built here and not by the simulate service: a large
user swap moves DEX A's WETH price, then the best WETH cycle is sized from the chain's reserves
and encoded with the Executor ABI (contracts/build/Executor.json).

Why independent: scenario 4 compares EVMs on the same call; building the call with the code
under test would hide a simulate bug behind a matching number.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eth_abi import decode, encode
from eth_utils import function_signature_to_4byte_selector
from mev_common.amm.cycles import cycle_reserves, find_cycles
from mev_common.amm.sizing import size_trade
from mev_common.amm.v2 import V2Pool

from bench.samples import swap_calldata
from bench.stack import Stack

EXECUTOR_ABI = Path(__file__).resolve().parents[1] / "contracts" / "build" / "Executor.json"
GET_RESERVES = "0x" + function_signature_to_4byte_selector("getReserves()").hex()


def _abi_type(param: dict[str, Any]) -> str:
    if param["type"].startswith("tuple"):
        inner = ",".join(_abi_type(c) for c in param["components"])
        return f"({inner}){param['type'][len('tuple') :]}"
    return str(param["type"])


def encode_execute(hops: list[tuple[str, str, str, int]], amount_in: int, min_profit: int) -> str:
    """`execute(hops, amountIn, minProfit, flash=false)` from the ABI's own parameter types."""
    abi = json.loads(EXECUTOR_ABI.read_text())["abi"]
    fn = next(x for x in abi if x.get("type") == "function" and x["name"] == "execute")
    types = [_abi_type(p) for p in fn["inputs"]]
    selector = function_signature_to_4byte_selector(f"execute({','.join(types)})")
    return "0x" + (selector + encode(types, [hops, amount_in, min_profit, False])).hex()


@dataclass(frozen=True)
class DevnetBundle:
    executor: str
    owner: str
    data: str
    block: int
    timestamp: int
    base_fee: int
    gas_limit: int
    profit_token: str
    expected_profit: int
    hops: int


def build_bundle(stack: Stack, victim_weth: int = 150 * 10**18) -> DevnetBundle:
    """Mine an imbalancing swap, then the most profitable WETH cycle as an executor call."""
    dep = stack.deployment
    weth = dep["tokens"]["WETH"]["address"]
    usdc = dep["tokens"]["USDC"]["address"]
    user = dep["users"][0]
    user = user["address"] if isinstance(user, dict) else user
    router_a = next(d["router"] for d in dep["dexes"] if d["name"] == "A")
    data = swap_calldata(victim_weth, 0, [weth, usdc], user, 2**40)
    mined = stack.send_mined({"from": user, "to": router_a, "data": data, "gas": "0x61a80"})
    head = stack.rpc("eth_getBlockByNumber", [mined["blockNumber"], False])
    number = int(head["number"], 16)
    pools = []
    for pair in dep["pairs"]:
        raw = stack.rpc("eth_call", [{"to": pair["address"], "data": GET_RESERVES}, hex(number)])
        r0, r1, _ = decode(["uint112", "uint112", "uint32"], bytes.fromhex(raw[2:]))
        pools.append(
            V2Pool(pair["address"], pair["token0"], pair["token1"], r0, r1, pair["fee_bps"])
        )
    by_address = {p.address: p for p in pools}
    balance = int(dep["executor"]["weth_balance"])
    best = None
    for cycle in find_cycles(pools, [weth], max_hops=3):
        trade = size_trade(cycle_reserves(cycle, by_address), balance)
        if trade and (best is None or trade.profit > best[1].profit):
            best = (cycle, trade)
    if best is None:
        raise RuntimeError("no profitable cycle after the imbalancing swap")
    cycle, trade = best
    hops = [(h.pool, h.token_in, h.token_out, by_address[h.pool].fee_bps) for h in cycle.hops]
    return DevnetBundle(
        executor=dep["executor"]["address"],
        owner=dep["executor"]["owner"],
        data=encode_execute(hops, trade.amount_in, 0),
        block=number,
        timestamp=int(head["timestamp"], 16),
        base_fee=int(head.get("baseFeePerGas", "0x0"), 16),
        gas_limit=int(head["gasLimit"], 16),
        profit_token=weth,
        expected_profit=trade.profit,
        hops=len(hops),
    )
