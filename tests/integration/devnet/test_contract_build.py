"""The committed contract artifacts are exactly what the pinned solc-js builds from the sources."""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path

from eth_utils import function_signature_to_4byte_selector
from mev_ops.devnet.artifacts import load_artifact, node_modules, repo_root
from web3 import Web3

CONTRACTS = (
    "Executor",
    "ExecutorStorageCommit",
    "DevToken",
    "AttackerPair",
    "AttackerFactory",
    "AttackerToken",
    "AttackerV3Pool",
    "AttackerV3Factory",
)


def test_recompiling_gives_byte_identical_artifacts(tmp_path: Path) -> None:
    root = repo_root()
    node_modules()  # a clear error if npm ci has not run
    subprocess.run(
        ["node", str(root / "deploy/devnet/compile.js"), "--out", str(tmp_path)],
        check=True,
        capture_output=True,
    )
    for name in CONTRACTS:
        committed = (root / "contracts/build" / f"{name}.json").read_bytes()
        assert (tmp_path / f"{name}.json").read_bytes() == committed, f"{name}: rebuild differs"
        artifact = json.loads(committed)
        source = (root / artifact["sourceName"]).read_bytes()
        assert artifact["sourceSha256"] == hashlib.sha256(source).hexdigest()
        assert artifact["compiler"]["version"].startswith("0.8.37+")
        assert artifact["bytecode"].startswith("0x") and artifact["deployedBytecode"].startswith(
            "0x"
        )


def test_calldata_layout_is_as_documented() -> None:
    """The NatSpec layout is what simulate/submit may hand-encode: check it word by word."""
    abi = load_artifact("Executor").abi
    hops = [
        (f"0x{1:040x}", f"0x{2:040x}", f"0x{3:040x}", 30),
        (f"0x{4:040x}", f"0x{3:040x}", f"0x{2:040x}", 25),
    ]
    data = Web3().eth.contract(abi=abi).encode_abi("execute", [hops, 7, 5, True])
    raw = bytes.fromhex(data[2:])
    selector = function_signature_to_4byte_selector(
        "execute((address,address,address,uint256)[],uint256,uint256,bool)"
    )
    assert (
        f"selector `0x{selector.hex()}`" in (repo_root() / "contracts/ExecutorBase.sol").read_text()
    )
    assert raw[:4] == selector
    words = [
        int.from_bytes(raw[4 + 32 * i : 4 + 32 * (i + 1)]) for i in range((len(raw) - 4) // 32)
    ]
    assert words[:5] == [0x80, 7, 5, 1, 2]  # offset of hops, amountIn, minProfit, flash, n
    assert words[5:9] == [1, 2, 3, 30]  # hops[0] at 0xa0
    assert words[9:13] == [4, 3, 2, 25]  # hops[1] at 0xa0 + 0x80
    assert len(words) == 13


def test_both_executor_builds_have_the_same_interface() -> None:
    """The storage-slot build is a drop-in for the transient one (build flag, same API)."""
    assert load_artifact("ExecutorStorageCommit").abi == load_artifact("Executor").abi
