"""Realistic payloads for the bus scenario: what our pipeline actually puts on NATS.

Why fixed values: the bus hop's cost depends on payload size and validation work, so the
messages carry a real router-swap calldata and a 3-hop opportunity with its victim.
"""

from __future__ import annotations

from eth_abi import encode
from eth_utils import function_signature_to_4byte_selector
from mev_common.messages import Hop, Opportunity, PendingTx

SWAP_EXACT_TOKENS = function_signature_to_4byte_selector(
    "swapExactTokensForTokens(uint256,uint256,address[],address,uint256)"
)
WETH = "0xC02aaA39b223FE8D0A0e5C4F27eAD9083C756Cc2"
USDC = "0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48"
DAI = "0x6B175474E89094C44Da98b954EedeAC495271d0F"
USER = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"


def swap_calldata(amount_in: int, min_out: int, path: list[str], to: str, deadline: int) -> str:
    """Router02 `swapExactTokensForTokens` calldata, as a user's wallet builds it."""
    args = encode(
        ["uint256", "uint256", "address[]", "address", "uint256"],
        [amount_in, min_out, path, to, deadline],
    )
    return "0x" + (SWAP_EXACT_TOKENS + args).hex()


def pending_tx(n: int = 0) -> PendingTx:
    return PendingTx.model_validate(
        {
            "chain_id": 31337,
            "hash": "0x" + f"{n:064x}",
            "from": USER,
            "to": "0x7a250d5630B4cF539739dF2C5dAcb4c659F2488D",
            "nonce": n,
            "gas": 450_000,
            "max_fee_per_gas": 30 * 10**9,
            "max_priority_fee_per_gas": 2 * 10**9,
            "input": swap_calldata(25 * 10**18, 70_000 * 10**6, [WETH, USDC, DAI], USER, 2**40),
        }
    )


def opportunity(n: int = 0) -> Opportunity:
    pools = [
        "0xB4e16d0168e52d35CaCD2c6185b44281Ec28C9Dc",
        "0xAE461cA67B15dc8dc81CE7615e0320dA1A9aB8D5",
        "0xA478c2975Ab1Ea89e8196811F51A7B7Ade33eB11",
    ]
    tokens = [WETH, USDC, DAI, WETH]
    amounts = [3 * 10**18, 9_100 * 10**6, 9_090 * 10**18, 3_010_000_000_000_000_000]
    hops = [
        Hop(pool=pools[i], token_in=tokens[i], token_out=tokens[i + 1], fee_bps=30,
            amount_in=amounts[i], amount_out=amounts[i + 1])
        for i in range(3)
    ]  # fmt: skip
    return Opportunity(
        id=f"opp-{n}",
        chain_id=31337,
        strategy="backrun",
        trigger="0x" + f"{n:064x}",
        block_number=1_000,
        block_hash="0x" + "ab" * 32,
        hops=hops,
        amount_in=amounts[0],
        profit_token=WETH,
        expected_profit=amounts[-1] - amounts[0],
        net_profit_wei=amounts[-1] - amounts[0] - 260_000 * 30 * 10**9,
        gas_estimate=260_000,
        max_fee_per_gas=30 * 10**9,
        deadline_block=1_002,
        victim=pending_tx(n),
    )
