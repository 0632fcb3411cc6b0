"""`make bench` at its tiniest: every scenario runs and hands back well-formed, finite numbers.

No speed thresholds (DESIGN §9: targets are benchmarks, not timed tests). A scenario whose stage
has not landed reports why; scenario 5 runs our side even without the degenbot venv.
"""

from __future__ import annotations

import importlib
import json
from pathlib import Path

import pytest

from bench import report
from bench.__main__ import SCENARIOS, run_one
from bench.burst import MAKE_RUN_FLOW_RATE, burst_sizes
from bench.results import ScenarioResult


@pytest.mark.parametrize("module_name", SCENARIOS, ids=lambda m: m.rsplit(".", 1)[-1])
def test_scenario_tiny(module_name: str) -> None:
    result = run_one(module_name, tiny=True)
    module = importlib.import_module(module_name)
    assert result.key == module.KEY and result.title == module.TITLE
    if not result.available:
        assert result.reason and not result.reason.startswith("failed"), result.reason
        return
    assert result.rows, "an available scenario reports at least one row"
    for row in result.rows:
        assert row.metric and row.unit
        assert row.ours is not None and row.ours.runs >= 1
    assert result.all_finite()
    json.dumps(result.to_json(), default=str)
    if result.key in ("throughput", "tick_to_trade"):
        # latencies are exact samples: every ms row says how many observations it rests on
        for row in result.rows:
            if row.unit == "ms":
                assert row.ours.samples >= 1, row
    if result.key == "throughput":
        # the synthetic triggers are backrun candidates: detect published for most of them
        counts = result.details["1 detect candidates"]
        assert counts["triggers"] == 50 + 100  # the two tiny steps, 0.5 s each
        assert counts["with_opportunity"] >= counts["triggers"] // 2, counts
        assert all("triggers in" in r.note for r in result.rows if "detect at" in r.metric)
    if result.key == "tick_to_trade":
        for rate in (20, 100):  # the tiny synthetic loads, 1 s each
            synthetic = result.details[f"synthetic {rate} triggers/s"]
            assert synthetic["triggers"] == rate
            assert synthetic["with_opportunity"] >= synthetic["triggers"] // 2, synthetic
            assert synthetic["opportunities"] >= synthetic["with_opportunity"]
        # the backrun flow's real swaps are backrun candidates: rows by trigger, counts beside
        backrun = [r for r in result.rows if r.metric.startswith("backrun flow")]
        assert any(r.metric.endswith("seen → opportunity") for r in backrun)
        assert all("swaps" in r.note for r in backrun)
        assert all("< 200 observations" in r.note for r in result.rows if r.ours.samples < 200)
        # the flow's burst shape: Poisson at make run's rate, at most one swap per user a block
        sizes = burst_sizes(3, MAKE_RUN_FLOW_RATE, 8, seed=41)
        assert result.details["burst"]["sent"] == sum(sizes) > 3
        assert any("sent to node → opportunity" in r.metric for r in result.rows)
    if result.key == "profit_capture":
        assert [r.metric for r in result.rows] == [
            "residual with ÷ without bot, net of gas at base fee + tip",
            "residual with ÷ without bot, net of base fee only",
            "flow swaps identical in both runs",
            "bot realized profit (net of gas)",
        ]
        details = result.details
        assert details["blocks"] == 6 and len(details["per_block_with_tip_wei"]) == 6
        # the same seeded swaps in both runs (the clock may send one more in either)
        assert details["same_swaps"] == min(details["sent"]) > 0
        assert abs(details["sent"][0] - details["sent"][1]) <= 3, details["sent"]
        assert details["rejected"] == [0, 0]


def test_report_files(tmp_path: Path) -> None:
    from datetime import UTC, datetime

    from bench import figure
    from bench.results import Row
    from bench.stats import Summary

    results = [
        ScenarioResult("demo", "Demo", rows=[Row("m", "ms", Summary(1.0, 2.0, 3), "base",
                                                 Summary(0.5, 1.0, 3), 2.0, "ours/base")],
                       samples={"stage": [0.1, 0.2, 0.3]}),
        ScenarioResult.unavailable("later", "Later", "not landed"),
    ]  # fmt: skip
    started = datetime.now(UTC)
    json_path, md_path = report.write(results, started, "tiny", tmp_path)
    table = md_path.read_text()
    assert "| 1 | Demo | m | 1.00 / 2.00 ms | base | 0.5 / 1.00 ms | 2.00× (ours/base) |" in table
    assert "not available: not landed" in table
    exact_row = Row("e", "ms", Summary(1.0, 2.0, 1, 250))
    assert "1.00 / 2.00 ms (n=250)" in report.markdown(
        [ScenarioResult("x", "X", rows=[exact_row])], started, "tiny"
    )
    assert json.loads(json_path.read_text())["scenarios"][0]["rows"][0]["ours"]["p95"] == 2.0
    png = figure.draw(results, tmp_path / "latest.png", "test")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_math_scenario_without_degenbot_venv(monkeypatch: pytest.MonkeyPatch) -> None:
    """A fresh clone has no degenbot venv: our side still runs and the row says why."""
    from bench.scenarios import amm_peer

    monkeypatch.setattr(amm_peer, "PEER_PYTHON", Path("/nonexistent/python"))
    result = amm_peer.run(tiny=True)
    assert result.rows and result.all_finite()
    assert all(row.baseline is None and "degenbot venv absent" in row.note for row in result.rows)


def test_v3_math_scenario_without_degenbot_venv(monkeypatch: pytest.MonkeyPatch) -> None:
    """The V3 scenario too: our side runs, every row says the peer is absent."""
    from bench.scenarios import amm_peer, amm_v3_peer

    monkeypatch.setattr(amm_peer, "PEER_PYTHON", Path("/nonexistent/python"))
    result = amm_v3_peer.run(tiny=True)
    assert len(result.rows) >= 2 and result.all_finite()
    assert all(row.baseline is None and "degenbot venv absent" in row.note for row in result.rows)


def test_capture_oracle_search_is_exhaustive_on_small_pools() -> None:
    """The oracle's integer search finds the same best profit as trying every input."""
    import random

    from bench.oracle.swap_math import Leg, best_input, cycle_profit

    rng = random.Random(6)
    for _ in range(60):
        hops = rng.choice((2, 3))
        legs = tuple(
            Leg(rng.randint(1_000, 9_000), rng.randint(1_000, 9_000), 30) for _ in range(hops)
        )
        best = max(cycle_profit(x, legs) for x in range(legs[-1].reserve_out + 1))
        assert best_input(legs)[1] == max(best, 0)


def test_capture_oracle_cycles_on_devnet_pairs() -> None:
    """Seven pairs on two DEXes: 8 two-pool and 48 three-pool cycles from WETH, pools distinct."""
    from bench.oracle.cycles import find_cycles

    links = (
        "WETH/USDC",
        "WETH/USDT",
        "WETH/DAI",
        "USDC/USDT",
        "USDC/DAI",
        "WETH/WBTC",
        "WBTC/USDC",
    )
    pairs = [
        {"dex": dex, "address": f"{dex}-{link}", "fee_bps": 30, "token0": a, "token1": b,
         "symbol0": a, "symbol1": b}
        for dex in ("A", "B")
        for link in links
        for a, b in [link.split("/")]
    ]  # fmt: skip
    cycles = find_cycles(pairs, "WETH", max_hops=3)
    assert sorted(len(c.hops) for c in cycles) == [2] * 8 + [3] * 48
    for cycle in cycles:
        assert cycle.hops[0].token_in == cycle.hops[-1].token_out == "WETH"
        assert len({h.pair for h in cycle.hops}) == len(cycle.hops)


def test_capture_settle_closes_a_v2_gap() -> None:
    """Settle takes every V2 cycle that nets > 0, each hop through a Router02 with the oracle's
    exact output as its minimum (so a mispriced pool would revert it), until none is left."""
    from mev_ops.devnet.artifacts import load_artifact
    from mev_ops.devnet.deploy import devnet_account
    from mev_ops.devnet.sender import Sender, wait_all
    from web3 import Web3

    from bench.oracle.chain_state import fetch_base_fees, fetch_reserves
    from bench.oracle.cycles import find_cycles
    from bench.oracle.opportunity import best_after_block
    from bench.oracle.settle import FAR_DEADLINE, settle
    from bench.stack import devnet_stack

    with devnet_stack(block_time=None) as stack:
        rpc_url, deployment = stack.node.rpc_url, stack.deployment
        w3 = Web3(Web3.HTTPProvider(rpc_url))
        # open a gap: 300,000 USDC into WETH on DEX B (the deployer holds the rest of the supply)
        deployer = Sender(w3, devnet_account(0), int(deployment["chain_id"]))
        router = w3.eth.contract(abi=load_artifact("UniswapV2Router02").abi)
        tokens = deployment["tokens"]
        path = [tokens["USDC"]["address"], tokens["WETH"]["address"]]
        data = router.encode_abi(
            "swapExactTokensForTokens", [300_000 * 10**6, 0, path, deployer.address, FAR_DEADLINE]
        )
        dex_b = next(d for d in deployment["dexes"] if d["name"] == "B")
        wait_all(w3, [deployer.send(dex_b["router"], data, 300_000)])
        pairs = [p["address"] for p in deployment["pairs"]]
        cycles = find_cycles(deployment["pairs"], deployment["weth"])

        def best_now() -> object:
            head = w3.eth.block_number
            reserves = fetch_reserves(rpc_url, pairs, [head])[head]
            return best_after_block(head, cycles, reserves, fetch_base_fees(rpc_url, [head])[head])

        assert best_now() is not None
        taken = settle(rpc_url, deployment, None)
        assert taken and "B:WETH>USDC" in taken[0], taken
        assert best_now() is None
