"""A small world for the gate's unit tests: config, contracts and a bundle that passes."""

from __future__ import annotations

from typing import Any

from eth_utils import to_checksum_address
from mev_common.chain.contracts import ChainContracts, Dex
from mev_common.chain.pools import UNISWAP_V2_INIT_CODE_HASH, v2_pair_address
from mev_common.executor import ExecHop, encode_execute
from mev_common.messages import Bundle
from mev_common.settings import Settings

from services.submit.decide import ChainHead, Policy

GWEI = 10**9
CHAIN = 31337
EXECUTOR = to_checksum_address("0x" + "ee" * 20)
WETH = to_checksum_address("0x" + "0a" * 20)
USDC = to_checksum_address("0x" + "0b" * 20)
FACTORY_A = to_checksum_address("0x" + "fa" * 20)
FACTORY_B = to_checksum_address("0x" + "fb" * 20)
PAIR_A = v2_pair_address(FACTORY_A, WETH, USDC, UNISWAP_V2_INIT_CODE_HASH)
PAIR_B = v2_pair_address(FACTORY_B, USDC, WETH, UNISWAP_V2_INIT_CODE_HASH)
HEAD = ChainHead(number=100, next_base_fee=GWEI)
GAS = 400_000
PROFIT = 10**17


def settings(**submit: Any) -> Settings:
    strategy = {"min_profit": "0.0001 ether", "max_gas_price": "50 gwei", "gas_limit": 600_000}
    return Settings(
        chain={"name": "t", "chain_id": CHAIN, "rpc_endpoints": [{"name": "a", "url": "http://x"}]},
        strategies={
            "cyclic_arbitrage": {**strategy, "max_hops": 3},
            "cross_dex_arbitrage": {**strategy, "max_hops": 2},
            "backrun": {**strategy, "enabled": False},
        },
        contracts={
            "executor": EXECUTOR,
            "weth": WETH,
            "dexes": [{"name": "A", "factory": FACTORY_A}],
        },
        submit={"priority_fee": "1 gwei", **submit},
    )  # type: ignore[call-arg]


CONTRACTS = ChainContracts(
    executor=EXECUTOR,
    weth=WETH,
    dexes=(Dex("A", FACTORY_A, None, 30), Dex("B", FACTORY_B, None, 30)),
)


def policy(**submit: Any) -> Policy:
    return Policy.from_settings(settings(**submit), CONTRACTS)


def calldata(
    hops: list[tuple[str, str, str, int]] | None = None,
    amount_in: int = 5 * 10**18,
    min_profit: int = PROFIT,
    flash: bool = False,
) -> str:
    rows = hops or [(PAIR_A, WETH, USDC, 30), (PAIR_B, USDC, WETH, 30)]
    return "0x" + encode_execute([ExecHop(*r) for r in rows], amount_in, min_profit, flash).hex()


def bundle(**fields: Any) -> Bundle:
    values: dict[str, Any] = {
        "id": "bundle:o1",
        "opportunity_id": "o1",
        "chain_id": CHAIN,
        "strategy": "cross_dex_arbitrage",
        "block_number": HEAD.number,
        "to": EXECUTOR,
        "data": calldata(),
        "gas_limit": GAS,
        "profit_token": WETH,
        "simulated_gas_used": 150_000,
        "simulated_profit": PROFIT,
        "net_profit_wei": PROFIT - GAS * 20 * GWEI,
        "min_profit": PROFIT,
        "max_fee_per_gas": 20 * GWEI,
        "deadline_block": HEAD.number + 2,
    }
    values.update(fields)
    return Bundle(**values)
