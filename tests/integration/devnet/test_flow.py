"""The seeded user flow on a real anvil: same seed, same signed transactions; swaps succeed."""

from __future__ import annotations

from mev_ops.devnet.flow import run_flow

from tests.integration.devnet.conftest import Devnet

SWAPS = 24


def run(devnet: Devnet, seed: int) -> list[str]:
    """Run the flow from the current state, then put the chain back as it was."""
    snapshot = devnet.rpc("evm_snapshot", [])
    try:
        report = run_flow(
            devnet.node.rpc_url, devnet.deployment, seed, rate=400.0, max_swaps=SWAPS, emit=None
        )
    finally:
        assert devnet.rpc("evm_revert", [snapshot]) is True
    # automine: nothing else trades, so the users' limits hold and every swap lands
    assert (len(report.tx_hashes), report.mined, report.reverted) == (SWAPS, SWAPS, 0)
    assert {i.dex for i in report.intents} == {"A", "B"}
    assert {len(i.path) for i in report.intents} == {2, 3}
    return report.tx_hashes


def test_same_seed_sends_the_same_transactions(devnet: Devnet) -> None:
    first = run(devnet, seed=7)
    assert run(devnet, seed=7) == first
    assert run(devnet, seed=8) != first
