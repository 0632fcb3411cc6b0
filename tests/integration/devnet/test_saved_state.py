"""The saved deployment with nonce lanes (mev_ops.devnet.saved_state, what the bench's stacks
start from): a loaded chain is the deployed one, lane keys and their trader rights included."""

from __future__ import annotations

import stat
from pathlib import Path
from typing import Any

from mev_ops.devnet.anvil import AnvilNode
from mev_ops.devnet.artifacts import load_artifact
from mev_ops.devnet.keys import load_or_create_key
from mev_ops.devnet.saved_state import deployed_anvil
from web3 import Web3

from bench.stack import make_run_lanes
from tests.integration.devnet.conftest import CHAIN_ID, SEED


def _chain(base: Path, lanes: int) -> tuple[dict[str, Any], list[Path], Web3, AnvilNode]:
    keys = [base / "bot.key", *(base / f"bot.lane{i}.key" for i in range(1, lanes))]
    node, deployment = deployed_anvil(
        base, CHAIN_ID, SEED, keys[0], base / "d.json", lane_paths=keys[1:]
    )
    return deployment, keys, Web3(Web3.HTTPProvider(node.rpc_url)), node


def test_loaded_chain_has_the_lanes_of_the_deployed_one(tmp_path: Path) -> None:
    lanes = make_run_lanes()  # the bench's shape: a second deploy in one session is not needed
    assert lanes > 1
    first = _chain(tmp_path / "a", lanes)
    try:
        second = _chain(tmp_path / "b", lanes)
        try:
            assert second[0] == first[0] and len(second[0]["traders"]) == lanes - 1
            for key_a, key_b in zip(first[1], second[1], strict=True):
                assert key_b.read_text() == key_a.read_text()
                assert stat.S_IMODE(key_b.stat().st_mode) == 0o600
            w3_a, w3_b = first[2], second[2]
            executor = w3_b.eth.contract(
                address=second[0]["executor"]["address"], abi=load_artifact("Executor").abi
            )
            for path, trader in zip(second[1][1:], second[0]["traders"], strict=True):
                assert load_or_create_key(path).address == trader
                assert executor.functions.isTrader(trader).call() is True
                assert w3_b.eth.get_balance(trader) == w3_a.eth.get_balance(trader) > 0
                assert w3_b.eth.get_transaction_count(trader) == 0
            owner = load_or_create_key(second[1][0]).address
            assert w3_b.eth.get_balance(owner) == w3_a.eth.get_balance(owner)
            assert w3_b.eth.block_number == w3_a.eth.block_number
        finally:
            second[3].stop()
    finally:
        first[3].stop()
