"""A victim's Router02 swap replayed on pool copies, with the router's and pairs' reverts."""

from __future__ import annotations

from eth_abi import encode
from eth_utils import function_signature_to_4byte_selector, to_checksum_address
from mev_common.amm.backrun import AppliedSwap, apply_router_swap
from mev_common.amm.v2 import V2Pool, pair_key
from mev_common.chain.router_calls import SIGNATURES, RouterSwap, decode_router_call

WETH = to_checksum_address("0xc02aaa39b223fe8d0a0e5c4f27ead9083c756cc2")
USDC = to_checksum_address("0xa0b86991c6218b36c1d19d4a2e9eb0ce3606eb48")
DAI = to_checksum_address("0x6b175474e89094c44da98b954eedeac495271d0f")
TO = to_checksum_address("0x000000000000000000000000000000000000bEEF")
E18, E6 = 10**18, 10**6
DEADLINE = 1_700_000_000

# token0 is the lower address: USDC < WETH, DAI < USDC.
WETH_USDC = V2Pool("0x" + "11" * 20, USDC, WETH, 15_000_000 * E6, 5_000 * E18)
USDC_DAI = V2Pool("0x" + "22" * 20, DAI, USDC, 10_000_000 * E18, 10_000_000 * E6)
POOLS = {pair_key(p.token0, p.token1): p for p in (WETH_USDC, USDC_DAI)}


def out_997(amount_in: int, reserve_in: int, reserve_out: int) -> int:
    """UniswapV2Library.getAmountOut as written in Solidity."""
    return amount_in * 997 * reserve_out // (reserve_in * 1000 + amount_in * 997)


def in_997(amount_out: int, reserve_in: int, reserve_out: int) -> int:
    """UniswapV2Library.getAmountIn as written in Solidity."""
    return reserve_in * amount_out * 1000 // ((reserve_out - amount_out) * 997) + 1


def victim(
    kind: str, first: int, second: int | None, path: list[str], value: int = 0
) -> RouterSwap:
    """Decode calldata built from the real signature, as detect receives it."""
    signature = SIGNATURES[kind]  # type: ignore[index]
    types = signature[signature.index("(") + 1 : -1].split(",")
    amounts = [first] if second is None else [first, second]
    data = function_signature_to_4byte_selector(signature) + encode(
        types, [*amounts, path, TO, DEADLINE]
    )
    swap = decode_router_call(data, value)
    assert swap is not None
    return swap


def test_exact_in_two_hops() -> None:
    usdc = out_997(E18, 5_000 * E18, 15_000_000 * E6)
    dai = out_997(usdc, 10_000_000 * E6, 10_000_000 * E18)
    assert (usdc, dai) == (2990403713, 2980543872823434155450)  # golden
    swap = victim("swapExactTokensForTokens", E18, dai, [WETH, USDC, DAI])
    applied = apply_router_swap(swap, POOLS)
    assert applied == AppliedSwap(
        (E18, usdc, dai),
        {
            WETH_USDC.address: WETH_USDC._replace(
                reserve0=15_000_000 * E6 - usdc, reserve1=5_001 * E18
            ),
            USDC_DAI.address: USDC_DAI._replace(
                reserve0=10_000_000 * E18 - dai, reserve1=10_000_000 * E6 + usdc
            ),
        },
    )
    assert POOLS[pair_key(WETH, USDC)] is WETH_USDC  # inputs untouched
    # One wei more than it gets: the victim's own slippage limit reverts it.
    assert (
        apply_router_swap(
            victim("swapExactTokensForTokens", E18, dai + 1, [WETH, USDC, DAI]), POOLS
        )
        is None
    )


def test_exact_out_uses_get_amounts_in_and_the_input_limit() -> None:
    want = 3_000 * E18
    usdc = in_997(want, 10_000_000 * E6, 10_000_000 * E18)
    weth = in_997(usdc, 5_000 * E18, 15_000_000 * E6)
    swap = victim("swapTokensForExactTokens", want, weth, [WETH, USDC, DAI])
    applied = apply_router_swap(swap, POOLS)
    assert applied is not None and applied.amounts == (weth, usdc, want)
    assert applied.pools[USDC_DAI.address].reserve0 == 10_000_000 * E18 - want
    assert applied.pools[WETH_USDC.address].reserve1 == 5_000 * E18 + weth
    too_tight = victim("swapTokensForExactTokens", want, weth - 1, [WETH, USDC, DAI])
    assert apply_router_swap(too_tight, POOLS) is None


def test_eth_variants_take_the_value_and_check_weth_ends() -> None:
    usdc = out_997(2 * E18, 5_000 * E18, 15_000_000 * E6)
    swap = victim("swapExactETHForTokens", usdc, None, [WETH, USDC], value=2 * E18)
    applied = apply_router_swap(swap, POOLS, weth=WETH)
    assert applied is not None and applied.amounts == (2 * E18, usdc)
    assert apply_router_swap(swap, POOLS, weth=DAI) is None  # INVALID_PATH
    need = in_997(1_000 * E6, 5_000 * E18, 15_000_000 * E6)
    exact = victim("swapETHForExactTokens", 1_000 * E6, None, [WETH, USDC], value=need)
    assert apply_router_swap(exact, POOLS).amounts == (need, 1_000 * E6)  # type: ignore[union-attr]
    short = victim("swapETHForExactTokens", 1_000 * E6, None, [WETH, USDC], value=need - 1)
    assert apply_router_swap(short, POOLS) is None
    to_eth = victim("swapExactTokensForETH", 3_000 * E6, 0, [USDC, WETH])
    assert apply_router_swap(to_eth, POOLS, weth=WETH).amounts == (  # type: ignore[union-attr]
        3_000 * E6,
        out_997(3_000 * E6, 15_000_000 * E6, 5_000 * E18),
    )
    assert apply_router_swap(to_eth, POOLS, weth=USDC) is None


def test_fee_on_transfer_variants_match_plain_ones_for_plain_tokens() -> None:
    plain = victim("swapExactTokensForTokens", E18, 0, [WETH, USDC, DAI])
    fot = victim("swapExactTokensForTokensSupportingFeeOnTransferTokens", E18, 0, [WETH, USDC, DAI])
    assert apply_router_swap(fot, POOLS) == apply_router_swap(plain, POOLS)
    eth_fot = victim(
        "swapExactETHForTokensSupportingFeeOnTransferTokens", 0, None, [WETH, USDC], value=E18
    )
    assert apply_router_swap(eth_fot, POOLS).amounts == (  # type: ignore[union-attr]
        E18,
        out_997(E18, 5_000 * E18, 15_000_000 * E6),
    )
    greedy = victim("swapExactTokensForETHSupportingFeeOnTransferTokens", E6, E18, [USDC, WETH])
    assert apply_router_swap(greedy, POOLS) is None


def test_same_pair_twice_prices_upfront_except_fee_on_transfer_variants() -> None:
    usdc = out_997(10 * E18, 5_000 * E18, 15_000_000 * E6)
    # getAmountsOut reads both hops' reserves before any swap...
    upfront = out_997(usdc, 15_000_000 * E6, 5_000 * E18)
    # ...the fee-on-transfer router reads them after the first swap.
    live = out_997(usdc, 15_000_000 * E6 - usdc, 5_010 * E18)
    assert live > upfront
    plain = apply_router_swap(
        victim("swapExactTokensForTokens", 10 * E18, 0, [WETH, USDC, WETH]), POOLS
    )
    assert plain is not None and plain.amounts == (10 * E18, usdc, upfront)
    assert plain.pools[WETH_USDC.address].reserve1 == 5_010 * E18 - upfront
    fot_kind = "swapExactTokensForTokensSupportingFeeOnTransferTokens"
    fot = apply_router_swap(victim(fot_kind, 10 * E18, 0, [WETH, USDC, WETH]), POOLS)
    assert fot is not None and fot.amounts == (10 * E18, usdc, live)


def test_the_pair_checks_k_at_its_own_fee() -> None:
    cheap_pools = {key: pool._replace(fee_bps=25) for key, pool in POOLS.items()}
    swap = victim("swapExactTokensForTokens", E18, 0, [WETH, USDC])
    assert apply_router_swap(swap, cheap_pools, fee_bps=30) is not None  # pays more fee: fine
    assert apply_router_swap(swap, cheap_pools, fee_bps=25) is not None
    assert apply_router_swap(swap, POOLS, fee_bps=25) is None  # UniswapV2: K


def test_reverting_or_unknown_victims_give_none() -> None:
    swap = victim("swapExactTokensForTokens", E18, 0, [WETH, USDC, DAI])
    assert apply_router_swap(swap, POOLS, timestamp=DEADLINE) is not None
    assert apply_router_swap(swap, POOLS, timestamp=DEADLINE + 1) is None  # EXPIRED
    assert apply_router_swap(victim("swapExactTokensForTokens", E18, 0, [WETH, DAI]), POOLS) is None
    assert apply_router_swap(victim("swapExactTokensForTokens", E18, 0, [WETH]), POOLS) is None
    assert apply_router_swap(victim("swapExactTokensForTokens", 0, 0, [WETH, USDC]), POOLS) is None
    # 1 wei of WETH buys 0 USDC: the pair refuses INSUFFICIENT_OUTPUT_AMOUNT even with no limit.
    assert apply_router_swap(victim("swapExactTokensForTokens", 1, 0, [WETH, USDC]), POOLS) is None
    with_value = victim("swapExactTokensForTokens", E18, 0, [WETH, USDC], value=1)
    assert apply_router_swap(with_value, POOLS) is None  # not payable
    drain = victim("swapTokensForExactTokens", 15_000_000 * E6, 2**200, [WETH, USDC])
    assert apply_router_swap(drain, POOLS) is None
