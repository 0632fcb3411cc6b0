"""The devnet rival on a real anvil with 1 s blocks: it sees the flow's pending swaps over the
node's WebSocket and lands backruns right behind them, never ahead (checked on the chain)."""

from __future__ import annotations

import time
from typing import Any

from eth_utils import keccak
from mev_ops.devnet.rival import GAS_ESTIMATE, Rival
from mev_ops.devnet.sender import Sender

from tests.integration.devnet.conftest import Devnet

ARBITRAGE_TOPIC = "0x" + keccak(text="Arbitrage(address,uint256,uint256,uint256)").hex()


def _weth_of(devnet: Devnet, owners: list[str]) -> int:
    return sum(devnet.balance("WETH", o) for o in owners)


VICTIMS = 3
VICTIM_TIP = 10**9
# Large enough to open a backrun on the thinner DEX B whatever the seed's offsets.
VICTIM_WETH = 60 * 10**18


def _swap_and_wait(devnet: Devnet, user: Sender, path: list[str]) -> str:
    """One user swap on DEX B's router, sent just after a block is mined (so the rival has
    most of the next block's second to react: one sent late in a block let the backrun land a
    block after its victim), mined with what follows."""
    router = devnet.router("B")
    data = router.encode_abi("swapExactTokensForTokens", [VICTIM_WETH, 0, path, user.address,
                                                          2**40])  # fmt: skip
    mined = int(devnet.rpc("eth_blockNumber", []), 16)
    while (head := int(devnet.rpc("eth_blockNumber", []), 16)) == mined:
        time.sleep(0.01)
    tx_hash = user.send(router.address, data, 300_000, 0, VICTIM_TIP, VICTIM_TIP + 10**6)
    while int(devnet.rpc("eth_blockNumber", []), 16) < head + 2:
        time.sleep(0.05)
    return "0x" + tx_hash.hex().removeprefix("0x")


def test_rival_lands_backruns_right_behind_their_victims(devnet: Devnet) -> None:
    """Three large user swaps, each alone in its block: three backruns, each the next tx after
    its victim, each realising to the wei the profit the rival priced."""
    snapshot = devnet.rpc("evm_snapshot", [])
    url = devnet.node.rpc_url
    weth, usdc = (devnet.deployment["tokens"][s]["address"] for s in ("WETH", "USDC"))
    try:
        devnet.rpc("evm_setIntervalMining", [1])
        rival = Rival(url, devnet.deployment, latency_ms=10)
        rival.setup()
        first = int(devnet.rpc("eth_blockNumber", []), 16) + 1
        weth_before = _weth_of(devnet, rival.executors)
        user = devnet.user(1)
        rival.start()
        try:
            victims = [_swap_and_wait(devnet, user, [weth, usdc]) for _ in range(VICTIMS)]
        finally:
            stats = rival.stop()
        end = int(devnet.rpc("eth_blockNumber", []), 16)
        rival_from = {a.lower() for a in rival.addresses}
        executors = {e.lower() for e in rival.executors}
        mined: dict[str, dict[str, Any]] = {}  # tx hash -> receipt, every rival tx on chain
        arbitrage: dict[str, int] = {}  # tx hash -> profit of a rival executor's Arbitrage event
        position: dict[str, tuple[int, int]] = {}  # any tx hash -> (block, index)
        for number in range(first, end + 1):
            for receipt in devnet.rpc("eth_getBlockReceipts", [hex(number)]):
                tx_hash = receipt["transactionHash"]
                position[tx_hash] = (number, int(receipt["transactionIndex"], 16))
                if receipt["from"].lower() in rival_from:
                    mined[tx_hash] = receipt
                for log in receipt["logs"]:
                    if log["address"].lower() in executors and log["topics"][0] == ARBITRAGE_TOPIC:
                        arbitrage[tx_hash] = int(log["data"][2 + 64 : 2 + 128], 16)
        weth_after = _weth_of(devnet, rival.executors)
    finally:
        devnet.rpc("evm_setAutomine", [True])
        assert devnet.rpc("evm_revert", [snapshot]) is True

    shots = {s.tx_hash: s for s in stats.shots}
    assert (stats.swaps, stats.priced, len(shots)) == (VICTIMS, VICTIMS, VICTIMS), stats
    assert sorted(s.victim for s in shots.values()) == sorted(victims)
    # every tx the rival sent was mined and succeeded, and it sent nothing else
    assert set(mined) == set(shots) == set(arbitrage)
    assert all(int(r["status"], 16) == 1 for r in mined.values())
    for tx_hash, shot in shots.items():
        block, index = position[shot.victim]
        assert position[tx_hash] == (block, index + 1)  # right behind, never ahead
        assert arbitrage[tx_hash] == shot.expected_profit  # priced to the wei
        assert shot.reaction_ms >= 10.0
        # the profit floor's gas figure is not below what the cycle costs
        assert int(mined[tx_hash]["gasUsed"], 16) <= GAS_ESTIMATE[shot.hops]
    assert weth_after - weth_before == sum(arbitrage.values()) > 0
