"""A deployed devnet in a third of a second instead of ~6: `deploy_devnet` runs once per
process (a test session, a `python -m bench` run) and chain shape, anvil's state is dumped
(anvil_dumpState), and every later anvil of that shape starts from the dump (--load-state).
The tests (tests/support/devnet_state.py) and the bench's stacks (bench/stack.py) share it.

The deploy is deterministic but for the bot and lane keys (random, created by the first
deploy), which are copied with the state (0600), so a loaded chain is the deployed one: same
addresses, balances, nonces, blocks, logs and receipts; only its block timestamps lag the wall
clock by the dump's age. Each caller still gets an anvil of its own. A caller that brings its
own key gets a real deploy (the executor's owner is that key), and
tests/integration/devnet/test_deploy.py deploys from nothing.
"""

from __future__ import annotations

import atexit
import gzip
import json
import os
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from mev_ops.devnet.anvil import AnvilNode, free_port, start_anvil
from mev_ops.devnet.deploy import IDLE_BASE_FEE_WEI, deploy_devnet


@dataclass(frozen=True)
class _Shape:
    chain_id: int
    seed: int
    executor_build: str
    hardfork: str | None
    gas_limit: int | None
    lanes: int  # extra nonce lanes (keys.lanes - 1), funded and authorized by the deploy


_states: dict[_Shape, Path] = {}
_root: Path | None = None


def deployed_anvil(
    data_dir: Path,
    chain_id: int,
    seed: int,
    key_path: Path,
    out_path: Path,
    *,
    block_time: int | None = None,
    executor_build: str = "Executor",
    hardfork: str | None = None,
    gas_limit: int | None = None,
    lane_paths: Sequence[Path] = (),
) -> tuple[AnvilNode, dict[str, Any]]:
    """A fresh anvil holding the devnet deployment: what `start_anvil(..., None, data_dir)` then
    `deploy_devnet(...)` give, with the bot key at `key_path`, the extra lanes' keys at
    `lane_paths` and the deployment at `out_path`.
    `block_time` is the interval mining set afterwards (None: automine stays on)."""
    shape = _Shape(chain_id, seed, executor_build, hardfork, gas_limit, len(lane_paths))
    saved = _states.get(shape)
    keys = [key_path, *lane_paths]
    own_key = any(k.exists() for k in keys)
    if saved is None or own_key:
        node = start_anvil(free_port(), chain_id, None, data_dir, hardfork=hardfork,
                           gas_limit=gas_limit)  # fmt: skip
        try:
            deployment = deploy_devnet(
                node.rpc_url, chain_id, seed, key_path, out_path, block_time=None,
                executor_build=executor_build, lane_paths=lane_paths,
            )  # fmt: skip
            if saved is None and not own_key:
                _states[shape] = _save(node, keys, out_path)
        except BaseException:
            node.stop()
            raise
    else:
        for k, path in enumerate(keys):
            _copy_private(saved / f"key{k}", path)
        out_path.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(saved / "deployment.json", out_path)
        deployment = json.loads(out_path.read_text())
        node = start_anvil(free_port(), chain_id, None, data_dir, hardfork=hardfork,
                           gas_limit=gas_limit, load_state=saved / "state.json")  # fmt: skip
        # anvil's clock restarts at the wall time, so a block stamped head + 1 s (what tests and
        # simulate assume for the next block) would be refused: the clock resumes at the head.
        head = _rpc(node.rpc_url, "eth_getBlockByNumber", ["latest", False])
        _rpc(node.rpc_url, "evm_setTime", [int(head["timestamp"], 16)])
        # the deploy's last act (the idle base fee for the next block) is not in the dump
        _rpc(node.rpc_url, "anvil_setNextBlockBaseFeePerGas", [hex(IDLE_BASE_FEE_WEI)])
    if block_time is not None:
        _rpc(node.rpc_url, "evm_setIntervalMining", [block_time])
    return node, deployment


def _save(node: AnvilNode, keys: list[Path], out_path: Path) -> Path:
    """Dump the just-deployed chain, its bot and lane keys and deployment file into the
    process's store (removed at exit)."""
    global _root
    if _root is None:
        _root = Path(tempfile.mkdtemp(prefix="mev-devnet-state-"))
        atexit.register(shutil.rmtree, _root, True)
    target = Path(tempfile.mkdtemp(dir=_root))
    dump = _rpc(node.rpc_url, "anvil_dumpState", [])  # 0x + gzipped JSON
    (target / "state.json").write_bytes(gzip.decompress(bytes.fromhex(dump[2:])))
    for k, path in enumerate(keys):
        _copy_private(path, target / f"key{k}")
    shutil.copyfile(out_path, target / "deployment.json")
    return target


def _copy_private(source: Path, dest: Path) -> None:
    """Copy a key file, mode 0600 from its creation (never readable by others, even briefly)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(source.read_text())


def _rpc(url: str, method: str, params: list[Any]) -> Any:
    reply = httpx.post(
        url, json={"jsonrpc": "2.0", "id": 1, "method": method, "params": params}, timeout=60
    ).json()
    if "error" in reply:
        raise RuntimeError(f"{method}: {reply['error']}")
    return reply["result"]
