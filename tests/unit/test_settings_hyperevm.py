"""The hyperevm devnet profile's settings: what it needs, and the door `reset` must keep shut."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml
from mev_common.settings import ConfigError, load_settings

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _no_mev_env(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for name in [n for n in os.environ if n.upper().startswith("MEV_")]:
        monkeypatch.delenv(name)


def profile() -> dict[str, Any]:
    return dict(yaml.safe_load((REPO / "config/devnet-hyperevm.yaml").read_text()))


def problems(tmp_path: Path, config: dict[str, Any]) -> list[str]:
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(config))
    with pytest.raises(ConfigError) as err:
        load_settings(path)
    return err.value.problems


def test_the_shipped_profile_loads() -> None:
    settings = load_settings(REPO / "config/devnet-hyperevm.yaml")
    assert settings.chain.chain_id == 999
    assert settings.chain.pending_feed is False
    assert settings.chain.block_gas_limit == 2_000_000
    assert settings.submit.max_in_flight <= 8
    assert settings.contracts.executor_build == "ExecutorStorageCommit"
    assert settings.devnet is not None and settings.devnet.hardfork == "shanghai"
    assert settings.chain.rpc_endpoints[0].url == f"http://127.0.0.1:{settings.devnet.proxy_port}"


def test_the_default_devnet_is_unchanged() -> None:
    settings = load_settings(REPO / "config/devnet.yaml")
    assert settings.devnet is not None
    assert (settings.devnet.profile, settings.devnet.hardfork) == ("ethereum", None)
    assert (settings.devnet.block_gas_limit, settings.devnet.proxy_port) == (None, None)
    assert settings.contracts.executor_build == "Executor"


def test_hyperevm_profile_needs_a_proxy_port(tmp_path: Path) -> None:
    config = profile()
    del config["devnet"]["proxy_port"]
    assert problems(tmp_path, config) == [
        "devnet.proxy_port: got None; expected a free port for the HyperEVM stand-in"
    ]


def test_reset_on_chain_999_needs_a_local_node(tmp_path: Path) -> None:
    """The door: chain 999 is HyperEVM mainnet's id. `reset` there closes in-flight trades
    unchecked, so it is allowed only when the config starts the node and the RPC is local."""
    remote = copy.deepcopy(profile())
    remote["chain"]["rpc_endpoints"][0]["url"] = "https://rpc.hyperliquid.xyz/evm"
    assert any("database.on_chain_change" in p for p in problems(tmp_path, remote))
    no_devnet = copy.deepcopy(profile())
    del no_devnet["devnet"]
    assert any("database.on_chain_change" in p for p in problems(tmp_path, no_devnet))
