"""Where the devnet's binaries and bytecode come from: the pinned npm packages and our build.

Uniswap bytecode is read from deploy/devnet/node_modules at deploy time (never copied into the
repo); our contracts come from contracts/build/, written by deploy/devnet/compile.js.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

_MARKER = Path("deploy/devnet/package.json")


class ToolchainMissing(RuntimeError):
    """The npm toolchain is not installed: `make setup` runs `npm ci` in deploy/devnet."""


@dataclass(frozen=True)
class Artifact:
    name: str
    abi: list[dict[str, Any]]
    bytecode: bytes


@cache
def repo_root() -> Path:
    """The checkout holding deploy/devnet: $MEV_REPO_ROOT, else up from here, else up from cwd."""
    if env := os.environ.get("MEV_REPO_ROOT"):
        return Path(env)
    for start in (Path(__file__).resolve(), Path.cwd().resolve()):
        for parent in (start, *start.parents):
            if (parent / _MARKER).is_file():
                return parent
    raise ToolchainMissing(f"no {_MARKER} above {Path(__file__).parent} or the current directory")


def node_modules() -> Path:
    path = repo_root() / "deploy/devnet/node_modules"
    if not path.is_dir():
        raise ToolchainMissing(f"{path} is missing: run `make setup` (npm ci in deploy/devnet)")
    return path


def anvil_binary() -> Path:
    return node_modules() / "@foundry-rs/anvil-linux-amd64/bin/anvil"


_UNISWAP = {
    "UniswapV2Factory": "@uniswap/v2-core/build/UniswapV2Factory.json",
    "UniswapV2Pair": "@uniswap/v2-core/build/UniswapV2Pair.json",
    "UniswapV2Router02": "@uniswap/v2-periphery/build/UniswapV2Router02.json",
    "WETH9": "@uniswap/v2-periphery/build/WETH9.json",
    "UniswapV3Factory": "@uniswap/v3-core/artifacts/contracts/UniswapV3Factory.sol",
    "UniswapV3Pool": "@uniswap/v3-core/artifacts/contracts/UniswapV3Pool.sol",
    "SwapRouter": "@uniswap/v3-periphery/artifacts/contracts/SwapRouter.sol",
    "QuoterV2": "@uniswap/v3-periphery/artifacts/contracts/lens/QuoterV2.sol",
    "NonfungiblePositionManager": "@uniswap/v3-periphery/artifacts/contracts/"
    "NonfungiblePositionManager.sol",
}


@cache
def load_artifact(name: str) -> Artifact:
    """A Uniswap artifact (by contract name) or one of ours (contracts/build/<name>.json)."""
    if name in _UNISWAP:
        path = _UNISWAP[name]
        if path.endswith(".sol"):  # a hardhat artifacts folder (V3): <Name>.sol/<Name>.json
            path = f"{path}/{name}.json"
        data = json.loads((node_modules() / path).read_text())
    else:
        data = json.loads((repo_root() / "contracts/build" / f"{name}.json").read_text())
    code = data["bytecode"]
    return Artifact(name=name, abi=data["abi"], bytecode=bytes.fromhex(code.removeprefix("0x")))
