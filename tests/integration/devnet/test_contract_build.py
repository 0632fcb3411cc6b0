"""The committed contract artifacts are exactly what the pinned solc-js builds from the sources."""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path

from mev_common.devnet.artifacts import node_modules, repo_root

CONTRACTS = ("Executor", "DevToken")


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
        source = (root / "contracts" / f"{name}.sol").read_bytes()
        assert artifact["sourceSha256"] == hashlib.sha256(source).hexdigest()
        assert artifact["compiler"]["version"].startswith("0.8.37+")
        assert artifact["bytecode"].startswith("0x") and artifact["deployedBytecode"].startswith(
            "0x"
        )


def test_documented_selector_matches_the_abi() -> None:
    from eth_utils import function_signature_to_4byte_selector

    selector = function_signature_to_4byte_selector(
        "execute((address,address,address,uint256)[],uint256,uint256,bool)"
    ).hex()
    assert f"selector `0x{selector}`" in (repo_root() / "contracts/Executor.sol").read_text()
