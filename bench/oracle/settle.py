"""Close the deployment's seeded V2 price gaps before a flow, the same way in every run.

Why: the devnet's pools start a little off their reference prices, a one-off gap. Left open,
a run without the bot would carry it in every block's residual and flatter the bot's ratio;
taken by the bot, it would leave the with-bot run from another state. Here the deployer takes
the oracle's own best cycle, hop by hop through each DEX's Router02, until none nets more than
the gas it costs: same deployment, same trades, same state. Each hop's `amountOutMin` is the
oracle's exact output, so a pool the oracle prices wrongly reverts the settle.
"""

from __future__ import annotations

from typing import Any

from mev_ops.devnet.artifacts import load_artifact
from mev_ops.devnet.deploy import devnet_account
from mev_ops.devnet.sender import Sender, rpc, wait_all
from web3 import Web3

from bench.oracle.chain_state import fetch_base_fees, fetch_reserves
from bench.oracle.cycles import Cycle, find_cycles
from bench.oracle.opportunity import best_after_block
from bench.oracle.swap_math import Leg, amount_out

MAX_ROUNDS = 40
FAR_DEADLINE = 2**40
SETTLE_WETH = 10_000 * 10**18
HOP_GAS = 200_000


def settle(rpc_url: str, deployment: dict[str, Any], block_time: int | None) -> list[str]:
    """Take every V2 cycle that nets > 0 at the base fee, best first; returns the cycles
    taken. Mines each transaction at once (automine), then restores `block_time` mining."""
    w3 = Web3(Web3.HTTPProvider(rpc_url, request_kwargs={"timeout": 30}))
    deployer = Sender(w3, devnet_account(0), int(deployment["chain_id"]))
    routers = {d["name"]: d["router"] for d in deployment["dexes"]}
    dex_of = {p["address"]: p["dex"] for p in deployment["pairs"]}
    pairs = [p["address"] for p in deployment["pairs"]]
    cycles = find_cycles(deployment["pairs"], deployment["weth"], max_hops=3)
    by_name = {c.name: c for c in cycles}
    router = w3.eth.contract(abi=load_artifact("UniswapV2Router02").abi)
    weth = w3.eth.contract(address=deployment["weth"], abi=load_artifact("WETH9").abi)
    taken: list[str] = []
    rpc(w3, "evm_setAutomine", [True])
    try:
        rpc(w3, "anvil_setBalance", [deployer.address, hex(2 * SETTLE_WETH)])
        wait_all(w3, [deployer.send(weth.address, weth.encode_abi("deposit"), 100_000,
                                    value=SETTLE_WETH)])  # fmt: skip
        for _ in range(MAX_ROUNDS):
            head = w3.eth.block_number
            reserves = fetch_reserves(rpc_url, pairs, [head])[head]
            # the next block's base fee is fixed by the head's; the tip is ours to pick (0)
            base_fee = fetch_base_fees(rpc_url, [head])[head]
            best = best_after_block(head, cycles, reserves, base_fee)
            if best is None:
                break
            _take(w3, deployer, router, routers, dex_of, by_name[best.cycle], best.amount_in,
                  reserves)  # fmt: skip
            taken.append(f"{best.cycle} in {best.amount_in} net {best.net_wei}")
    finally:
        if block_time is not None:
            rpc(w3, "evm_setIntervalMining", [block_time])
    return taken


def _take(
    w3: Web3,
    deployer: Sender,
    router: Any,
    routers: dict[str, str],
    dex_of: dict[str, str],
    cycle: Cycle,
    amount_in: int,
    reserves: dict[str, tuple[int, int]],
) -> None:
    """One hop per transaction, each for exactly the oracle's output of the previous hop."""
    amount = amount_in
    for hop in cycle.hops:
        r0, r1 = reserves[hop.pair]
        zero_in = hop.token_in.lower() < hop.token_out.lower()
        out = amount_out(amount, Leg(r0, r1, hop.fee_bps) if zero_in else Leg(r1, r0, hop.fee_bps))
        data = router.encode_abi(
            "swapExactTokensForTokens",
            [amount, out, [hop.token_in, hop.token_out], deployer.address, FAR_DEADLINE],
        )
        wait_all(w3, [deployer.send(routers[dex_of[hop.pair]], data, HOP_GAS)])
        amount = out
