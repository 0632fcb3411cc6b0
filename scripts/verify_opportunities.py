#!/usr/bin/env python3
"""Watch `mev.<chain>.opportunities.>` and re-check each one against the chain.

For every block-triggered opportunity it reads each hop's pool reserves at the opportunity's
block (eth_call getReserves at that block) and recomputes every hop's output with its own
Uniswap V2 formula, then compares amounts and profit to the wei. Backrun opportunities are
computed on a state that includes a still-pending victim, so they are listed, not checked.

    .venv/bin/python scripts/verify_opportunities.py [--config config/devnet.yaml] [--count 20]

Exit 0 if every checked opportunity matched, 1 otherwise. This is the NATS-CLI-free version of
`nats sub 'mev.31337.opportunities.>'` plus a recomputation.
"""

from __future__ import annotations

import argparse
import asyncio
import sys

import httpx
import nats
from eth_abi import decode
from mev_common.messages import Opportunity
from mev_common.messages import decode as decode_message
from mev_common.nats_auth import OPERATOR, connect_options
from mev_common.settings import load_settings

GET_RESERVES = "0x0902f1ac"
TOKEN0 = "0x0dfe1681"


def amount_out(amount_in: int, reserve_in: int, reserve_out: int, fee_bps: int) -> int:
    with_fee = amount_in * (10_000 - fee_bps)
    return with_fee * reserve_out // (reserve_in * 10_000 + with_fee)


def call(client: httpx.Client, url: str, to: str, data: str, block: int) -> bytes:
    body = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "eth_call",
        "params": [{"to": to, "data": data}, hex(block)],
    }
    return bytes.fromhex(client.post(url, json=body).json()["result"][2:])


def recompute(client: httpx.Client, url: str, opp: Opportunity) -> list[str]:
    """Differences between the opportunity and the chain, as lines (empty: it matches)."""
    problems = []
    amount = opp.amount_in
    for i, hop in enumerate(opp.hops):
        r0, r1, _ = decode(
            ["uint112", "uint112", "uint32"],
            call(client, url, hop.pool, GET_RESERVES, opp.block_number),
        )
        (token0,) = decode(["address"], call(client, url, hop.pool, TOKEN0, opp.block_number))
        reserve_in, reserve_out = (r0, r1) if token0.lower() == hop.token_in.lower() else (r1, r0)
        amount = amount_out(amount, reserve_in, reserve_out, hop.fee_bps)
        if amount != hop.amount_out:
            problems.append(f"hop {i}: chain gives {amount}, opportunity says {hop.amount_out}")
    if amount - opp.amount_in != opp.expected_profit:
        problems.append(
            f"profit: chain gives {amount - opp.amount_in}, opportunity says {opp.expected_profit}"
        )
    return problems


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    parser.add_argument("--config", default=None)
    parser.add_argument("--count", type=int, default=20, help="stop after this many (0: never)")
    parser.add_argument("--timeout", type=float, default=120.0, help="give up after seconds")
    args = parser.parse_args()
    settings = load_settings(args.config)
    url = settings.chain.rpc_endpoints[0].url
    nc = await nats.connect(settings.nats.url, **connect_options(settings.nats, OPERATOR))
    sub = await nc.jetstream().subscribe(
        f"mev.{settings.chain.chain_id}.opportunities.>", ordered_consumer=True
    )
    checked = failed = 0
    loop = asyncio.get_running_loop()
    deadline = loop.time() + args.timeout
    with httpx.Client(timeout=10) as client:
        while args.count == 0 or checked < args.count:
            try:
                msg = await sub.next_msg(timeout=max(0.1, deadline - loop.time()))
            except TimeoutError:
                break
            opp = decode_message(Opportunity, msg.data)
            route = " -> ".join(h.pool[:10] for h in opp.hops)
            head = (
                f"block {opp.block_number} {opp.strategy:<19} in {opp.amount_in} "
                f"profit {opp.expected_profit} net {opp.net_profit_wei} via {route}"
            )
            if opp.strategy == "backrun":
                print(f"SKIP  {head} (computed after pending {opp.trigger[:10]})")
                continue
            problems = recompute(client, url, opp)
            checked += 1
            failed += bool(problems)
            print(("MISMATCH " if problems else "OK    ") + head)
            for line in problems:
                print(f"      {line}")
    await nc.close()
    print(f"{checked} checked, {failed} mismatched")
    return 1 if failed or checked == 0 else 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
