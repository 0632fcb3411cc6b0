"""Settings: every invalid config yields its exact one-line error; valid files load; env wins."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from mev_common.settings import (
    ConfigError,
    format_wei,
    load_settings,
    mask_url,
    masked_dump,
    parse_wei,
)

from tests.unit.settings_cases import INVALID, Mutation

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _no_mev_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """A developer's MEV_* variables must not change what these tests see."""
    import os

    for name in [n for n in os.environ if n.upper().startswith("MEV_")]:
        monkeypatch.delenv(name)


def base() -> dict[str, Any]:
    """A small valid devnet config; each case breaks one thing."""
    return {
        "chain": {
            "name": "devnet",
            "chain_id": 31337,
            "rpc_endpoints": [{"name": "anvil", "url": "http://127.0.0.1:8545"}],
        },
        "strategies": {
            "cyclic_arbitrage": {"min_profit": "0.0001 ether", "max_gas_price": "50 gwei"}
        },
        "contracts": {"deployment_file": "data/devnet/deployment.json"},
    }


def write(tmp_path: Path, config: Any) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def problems_of(path: Path) -> list[str]:
    with pytest.raises(ConfigError) as err:
        load_settings(path)
    assert err.value.path == path
    return err.value.problems


@pytest.mark.parametrize(
    ("mutate", "expected"), [c[1:] for c in INVALID], ids=[c[0] for c in INVALID]
)
def test_invalid_config_names_key_value_and_expectation(
    tmp_path: Path, mutate: Mutation, expected: list[str]
) -> None:
    config = base()
    mutate(config)
    assert problems_of(write(tmp_path, config)) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("chain:\n  name: x\n   bad: [\n",
         "not valid YAML at line 3, column 7: mapping values are not allowed here"),
        ("chain:\n  chain_id: 1\n  chain_id: 2\n",
         "not valid YAML at line 3, column 3: duplicate key 'chain_id'"),
        ("- chain\n- nats\n",
         "(top level): got a list; expected a mapping of sections (chain:, nats:...)"),
        ("42\n", "(top level): got 42; expected a mapping of sections (chain:, nats:...)"),
    ],
    ids=["broken YAML", "duplicate key", "list at top level", "scalar at top level"],
)  # fmt: skip
def test_unparseable_file_is_one_line_with_its_position(
    tmp_path: Path, text: str, expected: str
) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(text)
    assert problems_of(path) == [expected]


def test_empty_file_lists_every_required_section(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text("")
    assert problems_of(path) == [
        "chain: missing; expected a section with name, chain_id, rpc_endpoints (required)",
        "strategies: missing; expected a section (required)",
        "contracts: missing; expected a section (required)",
    ]


def test_missing_file(tmp_path: Path) -> None:
    assert problems_of(tmp_path / "nope.yaml") == [
        "file not found: pass --config PATH or set MEV_CONFIG"
    ]


def test_invalid_env_override_names_the_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MEV_PERFORMANCE__SIMULATION_CONCURRENCY", "abc")
    assert problems_of(write(tmp_path, base())) == [
        "performance.simulation_concurrency: got 'abc' "
        "(from MEV_PERFORMANCE__SIMULATION_CONCURRENCY); expected an integer"
    ]


def test_unknown_env_key_inside_a_section(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MEV_MEMPOOL__MAX_PENDING", "5")
    assert problems_of(write(tmp_path, base())) == [
        "mempool.max_pending: unknown key (from MEV_MEMPOOL__MAX_PENDING); did you mean "
        "max_pending_transactions?"
    ]


def test_env_overrides_win_over_the_file_and_keep_sibling_keys(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = base()
    config["performance"] = {"simulation_concurrency": 2, "decision_timeout_ms": 100}
    monkeypatch.setenv("MEV_PERFORMANCE__SIMULATION_CONCURRENCY", "9")
    monkeypatch.setenv("MEV_STRATEGIES__CYCLIC_ARBITRAGE__MAX_GAS_PRICE", "7 gwei")
    monkeypatch.setenv("MEV_CHAIN__CHAIN_ID", "999")
    settings = load_settings(write(tmp_path, config))
    assert settings.performance.simulation_concurrency == 9
    assert settings.performance.decision_timeout_ms == 100
    assert settings.strategies.cyclic_arbitrage is not None
    assert settings.strategies.cyclic_arbitrage.max_gas_price == 7 * 10**9
    assert settings.strategies.cyclic_arbitrage.min_profit == 10**14
    assert (settings.chain.chain_id, settings.chain.name) == (999, "devnet")


def test_mev_config_selects_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = base()
    config["chain"]["name"] = "from-env"
    monkeypatch.setenv("MEV_CONFIG", str(write(tmp_path, config)))
    assert load_settings().chain.name == "from-env"


def test_devnet_config_loads() -> None:
    settings = load_settings(REPO / "config/devnet.yaml")
    assert (settings.chain.name, settings.chain.chain_id) == ("devnet", 31337)
    assert settings.services.separate_hosts is False
    assert settings.strategies.enabled_names() == [
        "cyclic_arbitrage",
        "cross_dex_arbitrage",
        "backrun",
    ]
    assert settings.contracts.deployment_file == "data/devnet/deployment.json"


def test_production_config_loads_with_every_runbook_key() -> None:
    settings = load_settings(REPO / "config/production.yaml")
    chain = settings.chain
    assert (chain.name, chain.chain_id, chain.pending_feed) == ("hyperevm", 999, False)
    assert [(e.name, e.url, e.ws_url) for e in chain.rpc_endpoints] == [
        ("hyperliquid-official", "https://rpc.hyperliquid.xyz/evm", None),
        ("hyperevm-runbook", "https://rpc.hyperevm.org", None),
    ]
    assert [e.rate_limit_rps * 60 for e in chain.rpc_endpoints] == [96.0, 96.0]
    assert (chain.max_logs_block_range, chain.block_gas_limit) == (50, 2_000_000)
    assert settings.services.separate_hosts is True
    for name in ("ingest", "detect", "simulate", "submit"):
        ports = getattr(settings.services, name)
        assert (ports.health_port, ports.metrics_port) == (8080, 9090)
    assert settings.performance.simulation_concurrency == 16
    assert settings.performance.decision_timeout_ms == 250
    assert settings.mempool.max_pending_transactions == 10_000
    assert settings.strategies.cyclic_arbitrage is not None
    assert settings.strategies.cyclic_arbitrage.max_gas_price == 10 * 10**9
    assert settings.strategies.cross_dex_arbitrage is not None
    assert settings.strategies.cross_dex_arbitrage.max_gas_price == 10 * 10**9
    assert settings.strategies.backrun is not None
    assert settings.strategies.backrun.max_gas_price == 10 * 10**9
    assert settings.strategies.enabled_names() == ["cyclic_arbitrage", "cross_dex_arbitrage"]
    assert settings.database.path == "/data/mev-bot.db"
    assert settings.keys.path == "/app/keys/production.key"
    assert settings.nats.url == "nats://nats:4222"
    assert [d.name for d in settings.contracts.dexes] == ["hyperswap_v2", "second_v2_dex"]


@pytest.mark.parametrize(
    ("value", "wei"),
    [
        (0, 0),
        (123, 123),
        ("123", 123),
        ("50 gwei", 50 * 10**9),
        ("0.01 ether", 10**16),
        ("1.5 ETH", 15 * 10**17),
        ("0.1 gwei", 10**8),
    ],
)
def test_parse_wei(value: object, wei: int) -> None:
    assert parse_wei(value) == wei


@pytest.mark.parametrize(
    ("wei", "text"),
    [(0, "0 wei"), (50 * 10**9, "50 gwei"), (10**14, "0.0001 ether"), (15 * 10**17, "1.5 ether")],
)
def test_format_wei(wei: int, text: str) -> None:
    assert format_wei(wei) == text


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("http://127.0.0.1:8545", "http://127.0.0.1:8545"),
        ("https://rpc.hyperevm.org/", "https://rpc.hyperevm.org"),
        ("https://eth.example.io/v2/Sup3rSecretKey", "https://eth.example.io/***"),
        ("https://rpc.example.org?apikey=abc", "https://rpc.example.org/***"),
        ("wss://user:pass@ws.example.org:8546/x", "wss://***@ws.example.org:8546/***"),
        ("nats://bot:hunter2@nats:4222", "nats://***@nats:4222"),
        ("not a url", "***"),
    ],
)
def test_mask_url(url: str, shown: str) -> None:
    assert mask_url(url) == shown


def test_masked_dump_hides_passwords_and_url_tokens(tmp_path: Path) -> None:
    config = base()
    config["chain"]["rpc_endpoints"][0]["url"] = "https://rpc.example.org/v2/Sup3rSecretKey"
    config["chain"]["rpc_endpoints"][0]["ws_url"] = "wss://rpc.example.org/ws/Sup3rSecretKey"
    config["nats"] = {"url": "nats://bot:hunter2@nats:4222"}
    config["keys"] = {"path": "/app/keys/k", "password_env": "MEV_KEY_PASSWORD"}
    dump = masked_dump(load_settings(write(tmp_path, config)))
    endpoint = dump["chain"]["rpc_endpoints"][0]
    assert (endpoint["url"], endpoint["ws_url"]) == (
        "https://rpc.example.org/***",
        "wss://rpc.example.org/***",
    )
    assert dump["nats"]["url"] == "nats://***@nats:4222"
    # Where the password lives is shown (operators need it); a password itself never is.
    assert dump["keys"] == {
        "path": "/app/keys/k",
        "password_env": "MEV_KEY_PASSWORD",
        "password_file": None,
        "lanes": 1,
    }
    text = json.dumps(dump)
    assert "Sup3rSecretKey" not in text
    assert "hunter2" not in text


def test_strategies_section_has_one_key_per_strategy_name() -> None:
    """One list of names: the messages' Strategy literal; the section's keys must match it."""
    from mev_common.messages import STRATEGY_NAMES
    from mev_common.settings import StrategiesSettings

    assert STRATEGY_NAMES == ("cyclic_arbitrage", "cross_dex_arbitrage", "backrun")
    assert tuple(StrategiesSettings.model_fields) == STRATEGY_NAMES


def test_one_block_parser_reads_hex_quantities() -> None:
    from mev_common.chain.rpc_blocks import block_from_rpc

    raw = {
        "number": "0x10",
        "hash": "0x" + "ab" * 32,
        "parentHash": "0x" + "cd" * 32,
        "timestamp": "0x64",
        "baseFeePerGas": "0x3b9aca00",
        "gasLimit": "0x1c9c380",
        "gasUsed": "0x5208",
    }
    block = block_from_rpc(31337, raw)
    assert (block.chain_id, block.number, block.timestamp) == (31337, 16, 100)
    assert (block.base_fee_per_gas, block.gas_limit, block.gas_used) == (10**9, 30_000_000, 21_000)
