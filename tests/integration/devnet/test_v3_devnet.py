"""The devnet's V3 side: pools where the periphery finds them, liquidity over several ranges, and
swaps through SwapRouter and quotes from QuoterV2 equal to our exact model of the pool."""

from __future__ import annotations

import asyncio

import pytest
from eth_abi import decode, encode
from eth_utils import function_signature_to_4byte_selector
from mev_common.amm.v3 import V3Pool
from mev_common.amm.v3_math import get_sqrt_ratio_at_tick
from mev_common.chain.pools import UNISWAP_V3_INIT_CODE_HASH, v3_pool_address
from mev_common.chain.v3_pools import fetch_v3_pools, http_batch_caller
from mev_common.messages import PendingTx
from mev_common.messages import decode as decode_message
from mev_ops.devnet.flow import EXACT_INPUT_SINGLE

from bench.swaps import fund_senders, pending_swaps
from tests.integration.devnet.conftest import DEADLINE, Devnet

QUOTE = function_signature_to_4byte_selector(
    "quoteExactInputSingle((address,address,uint256,uint24,uint160))"
)
SWAP_PARAMS = "(address,address,uint24,address,uint256,uint256,uint256,uint160)"


def read(devnet: Devnet, addresses: list[str]) -> list[V3Pool]:
    block = devnet.w3.eth.block_number
    return asyncio.run(fetch_v3_pools(http_batch_caller(devnet.node.rpc_url), addresses, block))


def test_v3_pools_are_where_the_periphery_looks_with_liquidity_in_ranges(devnet: Devnet) -> None:
    d = devnet.deployment
    assert [x["name"] for x in d["v3_dexes"]] == ["A", "B"]
    assert len(d["v3_pools"]) == 42
    assert {p["fee"] for p in d["v3_pools"]} == {500, 3000, 10000}
    factories = {x["name"]: x["factory"] for x in d["v3_dexes"]}
    for dex in d["v3_dexes"]:
        assert dex["init_code_hash"] == UNISWAP_V3_INIT_CODE_HASH
        for key in ("factory", "swap_router", "quoter", "position_manager"):
            assert len(devnet.w3.eth.get_code(dex[key])) > 0
    for spec, pool in zip(
        d["v3_pools"], read(devnet, [p["address"] for p in d["v3_pools"]]), strict=True
    ):
        assert spec["address"] == v3_pool_address(
            factories[spec["dex"]], spec["token0"], spec["token1"], spec["fee"],
            UNISWAP_V3_INIT_CODE_HASH,
        )  # fmt: skip
        assert (pool.token0, pool.token1, pool.fee) == (spec["token0"], spec["token1"], spec["fee"])
        assert pool.liquidity > 0 and len(pool.ticks) >= 6, spec["name"]  # 4 overlapping ranges


@pytest.mark.usefixtures("chain_snapshot")
@pytest.mark.parametrize("name", ["A:WETH/USDC:500", "B:WETH/USDC:10000", "A:WBTC/USDC:3000"])
def test_swap_router_and_quoter_equal_our_model(devnet: Devnet, name: str) -> None:
    d = devnet.deployment
    spec = next(p for p in d["v3_pools"] if p["name"] == name)
    dex = next(x for x in d["v3_dexes"] if x["name"] == spec["dex"])
    (pool,) = read(devnet, [spec["address"]])
    user = devnet.user(3)
    crossed = 0
    for zero_for_one, usd in ((True, 900_000), (False, 2_000)):
        symbol_in = spec["symbol0"] if zero_for_one else spec["symbol1"]
        symbol_out = spec["symbol1"] if zero_for_one else spec["symbol0"]
        token_in = d["tokens"][symbol_in]["address"]
        token_out = d["tokens"][symbol_out]["address"]
        decimals = d["tokens"][symbol_in]["decimals"]
        price = {"WETH": 3000, "WBTC": 60_000}.get(symbol_in, 1)
        amount_in = usd * 10**decimals // price
        if zero_for_one:  # enough to move the price 2.5 %: out of the narrow range
            far = get_sqrt_ratio_at_tick(pool.tick - 250)
            amount_in = min(pool.swap(True, 10**40, far).amount0, 2 * amount_in)
        ours = pool.swap(zero_for_one, amount_in)
        crossed += ours.ticks_crossed
        expected_out = -(ours.amount1 if zero_for_one else ours.amount0)
        quote_args = encode(["(address,address,uint256,uint24,uint160)"],
                            [(token_in, token_out, amount_in, spec["fee"], 0)])  # fmt: skip
        raw = devnet.w3.eth.call({"to": dex["quoter"], "data": QUOTE + quote_args})
        amount_out, sqrt_after, _, _ = decode(["uint256", "uint160", "uint32", "uint256"], raw)
        assert (amount_out, sqrt_after) == (expected_out, ours.sqrt_price_x96)
        before = devnet.balance(symbol_out, user.address)
        params = (token_in, token_out, spec["fee"], user.address, DEADLINE, amount_in,
                  expected_out, 0)  # fmt: skip
        data = EXACT_INPUT_SINGLE + encode([SWAP_PARAMS], [params])
        receipt = devnet.w3.eth.wait_for_transaction_receipt(
            user.send(dex["swap_router"], data, 600_000)
        )
        assert receipt["status"] == 1
        assert devnet.balance(symbol_out, user.address) - before == expected_out
        pool = pool.after_swap(ours.sqrt_price_x96, ours.tick, ours.liquidity)
        assert read(devnet, [spec["address"]]) == [pool]
    assert crossed >= 1  # up to $1.8M leaves the narrowest range of each of these pools


@pytest.mark.usefixtures("chain_snapshot")
def test_bench_victims_run_on_the_devnets_routers(devnet: Devnet) -> None:
    """Bench's synthetic victims (bench/swaps.py, the flow's V2:V3 mix, paid in ETH as bench's
    tick-to-trade load sends them) each succeed from their funded sender on the real
    Router02s and SwapRouters, with an output: the calldata is what the routers accept."""
    swaps = pending_swaps(devnet.deployment, 20, seed=12, eth_in=True)
    fund_senders(devnet.node.rpc_url, 12, 20, 10**21)
    v3_routers = {x["swap_router"] for x in devnet.deployment["v3_dexes"]}
    kinds = {"v2": 0, "v3": 0}
    for _, payload in swaps:
        tx = decode_message(PendingTx, payload)
        call = {"from": tx.sender, "to": tx.to, "data": tx.input, "value": tx.value,
                "gas": tx.gas}  # fmt: skip
        out = devnet.w3.eth.call(call)  # raises on a revert
        if tx.to in v3_routers:
            kinds["v3"] += 1
            assert decode(["uint256"], out)[0] > 0
        else:
            kinds["v2"] += 1
            amounts = decode(["uint256[]"], out)[0]
            assert amounts[0] == tx.value and amounts[-1] > 0
    assert kinds == {"v2": 13, "v3": 7}
