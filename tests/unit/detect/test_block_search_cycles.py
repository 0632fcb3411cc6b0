"""A gap detect found and nobody closed is searched again at the next block."""

from __future__ import annotations

from mev_common.amm.cycles import Cycle, CycleHop, CycleIndex
from mev_common.amm.sizing import CycleTrade

from services.detect.search import Found, block_search_cycles

WETH, USDC, DAI = "0xweth", "0xusdc", "0xdai"


def _cycle(*hops: tuple[str, str, str]) -> Cycle:
    return Cycle(tuple(CycleHop(*h) for h in hops))


def test_a_found_cycle_is_searched_again_though_none_of_its_pools_changed() -> None:
    open_gap = _cycle(("A-weth/usdc", WETH, USDC), ("B-usdc/dai", USDC, DAI),
                      ("A-dai/weth", DAI, WETH))  # fmt: skip
    other = _cycle(("A-weth/usdc", WETH, USDC), ("B-usdc/weth", USDC, WETH))
    elsewhere = _cycle(("A-weth/wbtc", WETH, "0xwbtc"), ("B-wbtc/weth", "0xwbtc", WETH))
    index = CycleIndex([open_gap, other, elsewhere])
    found = [Found("cyclic_arbitrage", open_gap, CycleTrade(10, (20, 30, 40), 30), 1, 1)]
    # the next block changed only the WBTC pair on B: the open gap comes back, and only it
    assert block_search_cycles(index, {"B-wbtc/weth"}, found) == [elsewhere, open_gap]
    # found again although its pool changed too: searched once
    assert block_search_cycles(index, {"B-usdc/dai"}, found) == [open_gap]
    # nothing found last block: only what changed
    assert block_search_cycles(index, {"B-wbtc/weth"}, []) == [elsewhere]
