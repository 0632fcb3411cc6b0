"""`deploy_devnet` from nothing on a real anvil: a complete, reproducible deployment that routes."""

from __future__ import annotations

import json
import re
import stat
from itertools import combinations, pairwise
from pathlib import Path

import pytest
from mev_ops.devnet.anvil import free_port, start_anvil
from mev_ops.devnet.deploy import deploy_devnet
from mev_ops.devnet.layout import plan_pools

from tests.integration.devnet.conftest import CHAIN_ID, DEADLINE, SEED, Devnet


def test_deployment_file_is_complete(devnet: Devnet) -> None:
    d = devnet.deployment
    assert json.loads(devnet.deployment_path.read_text()) == d
    assert (d["chain_id"], d["seed"]) == (CHAIN_ID, SEED)
    assert 0 < d["deploy_block"] <= d["ready_block"]
    assert {s: t["decimals"] for s, t in d["tokens"].items()} == {
        "WETH": 18, "USDC": 6, "USDT": 6, "DAI": 18, "WBTC": 8,
    }  # fmt: skip
    assert d["weth"] == d["tokens"]["WETH"]["address"]
    assert [x["name"] for x in d["dexes"]] == ["A", "B"]
    for dex in d["dexes"]:
        assert dex["fee_bps"] == 30
        assert dex["init_code_hash"].endswith("845f")  # the mainnet hash Router02 hard-codes
        for key in ("factory", "router"):
            assert len(devnet.w3.eth.get_code(dex[key])) > 0
    assert len(d["pairs"]) >= 8
    for dex in ("A", "B"):
        edges = {frozenset((p["symbol0"], p["symbol1"])) for p in d["pairs"] if p["dex"] == dex}
        triangles = [
            t
            for t in combinations(d["tokens"], 3)
            if all(frozenset(e) in edges for e in combinations(t, 2))
        ]
        assert len(triangles) >= 2, dex
    # each pool holds exactly what the seed's layout deposits (a fresh V2 pair's reserves
    # are its first deposit), so a deployment that skipped or mis-sized one fails here
    planned = {(p.dex, p.symbol_a, p.symbol_b): (p.amount_a, p.amount_b) for p in plan_pools(SEED)}
    assert len(planned) == len(d["pairs"])
    for pair in d["pairs"]:
        key = next(
            k
            for k in planned
            if k[0] == pair["dex"] and set(k[1:]) == {pair["symbol0"], pair["symbol1"]}
        )
        assert devnet.reserves(pair, key[1]) == planned[key], pair["name"]


def test_executor_is_owned_by_the_funded_bot_key(devnet: Devnet) -> None:
    key_text = devnet.key_path.read_text().strip()
    assert re.fullmatch(r"[0-9a-f]{64}", key_text)
    assert stat.S_IMODE(devnet.key_path.stat().st_mode) == 0o600
    bot = devnet.deployment["bot"]
    assert devnet.bot().address == bot
    assert devnet.executor.functions.owner().call() == bot
    # funded with 1,000 ETH; its first two transactions allowlist the V3 factories
    assert devnet.w3.eth.get_transaction_count(bot) == 2
    assert 999 * 10**18 < devnet.w3.eth.get_balance(bot) < 1_000 * 10**18
    assert devnet.balance("WETH", devnet.executor.address) == 10 * 10**18
    v3 = [
        (d["factory"], bytes.fromhex(d["init_code_hash"][2:]))
        for d in devnet.deployment["v3_dexes"]
    ]
    assert [tuple(f) for f in devnet.executor.functions.v3Factories().call()] == v3


@pytest.mark.usefixtures("chain_snapshot")
@pytest.mark.parametrize("dex", ["A", "B"])
@pytest.mark.parametrize("path", [("WETH", "USDC"), ("USDC", "WBTC"), ("DAI", "USDC", "WETH")])
def test_swaps_route_through_each_routers_own_pairs(
    devnet: Devnet, dex: str, path: tuple[str, ...]
) -> None:
    user = devnet.user(5)
    first = devnet.deployment["tokens"][path[0]]
    amount_in = 1_000 * 10 ** first["decimals"] // (3000 if path[0] == "WETH" else 1)
    expected = devnet.expected_out([(dex, a, b) for a, b in pairwise(path)], amount_in)
    before = devnet.balance(path[-1], user.address)
    router = devnet.router(dex)
    addresses = [devnet.deployment["tokens"][s]["address"] for s in path]
    assert router.functions.getAmountsOut(amount_in, addresses).call()[-1] == expected
    data = router.encode_abi(
        "swapExactTokensForTokens", [amount_in, expected, addresses, user.address, DEADLINE]
    )
    receipt = devnet.w3.eth.wait_for_transaction_receipt(user.send(router.address, data, 400_000))
    assert receipt["status"] == 1
    assert devnet.balance(path[-1], user.address) - before == expected


def test_same_seed_deploys_the_same_devnet(devnet: Devnet, tmp_path: Path) -> None:
    """A second chain from nothing with the same seed and key: an identical deployment."""
    node = start_anvil(free_port(), CHAIN_ID, None, tmp_path)
    try:
        again = deploy_devnet(
            node.rpc_url, CHAIN_ID, SEED, devnet.key_path, tmp_path / "d.json", block_time=None
        )
        assert again == devnet.deployment
    finally:
        node.stop()
