"""Settings of every service: one YAML file plus `MEV_`-prefixed environment overrides.

Why one package: the runbook names config keys (strategies.<name>.max_gas_price,
performance.simulation_concurrency, ...) and operators edit one file; every service must read it
the same way and reject the same mistakes. Unknown keys are errors, because a misspelt safety
limit that is silently ignored is how bots lose money.

Env overrides use `__` between levels: `MEV_PERFORMANCE__SIMULATION_CONCURRENCY=8`; they win
over the file. The file comes from `--config`, else `MEV_CONFIG`, else `config/devnet.yaml`.
Every problem becomes one line "key.path: got <value>; expected <what>" (see `format_error`).
docs/CONFIG.md lists every key.

By concern: `sections` (the schema of each YAML section), `model` (the whole `Settings` and
its sources), `loader` (reading the file), `errors` (one line per problem), `display`
(masking secrets), `units` (wei amounts). Import names from here.
"""

from mev_common.messages import STRATEGY_NAMES
from mev_common.settings.addresses import ZERO_ADDRESS, Address, is_placeholder_address
from mev_common.settings.contracts import ContractsSettings, DexSettings
from mev_common.settings.devnet import DevnetSettings
from mev_common.settings.display import mask_url, masked_dump
from mev_common.settings.errors import dotted, format_error
from mev_common.settings.loader import (
    ConfigError,
    load_settings,
    read_config_file,
    resolve_config_path,
)
from mev_common.settings.model import DEFAULT_CONFIG, ENV_PREFIX, Settings
from mev_common.settings.sections import (
    DEVNET_CHAIN_IDS,
    SERVICE_NAMES,
    ChainSettings,
    DatabaseSettings,
    DetectSettings,
    KeySettings,
    LoggingSettings,
    MempoolSettings,
    NatsSettings,
    NatsTlsSettings,
    PerformanceSettings,
    RpcEndpoint,
    Section,
    ServicePorts,
    ServicesSettings,
    SimulateSettings,
    StrategiesSettings,
    StrategySettings,
    SubmitSettings,
    problem,
)
from mev_common.settings.units import Port, Wei, format_wei, parse_wei

__all__ = [
    "DEFAULT_CONFIG",
    "DEVNET_CHAIN_IDS",
    "ENV_PREFIX",
    "SERVICE_NAMES",
    "STRATEGY_NAMES",
    "ZERO_ADDRESS",
    "Address",
    "ChainSettings",
    "ConfigError",
    "ContractsSettings",
    "DatabaseSettings",
    "DetectSettings",
    "DevnetSettings",
    "DexSettings",
    "KeySettings",
    "LoggingSettings",
    "MempoolSettings",
    "NatsSettings",
    "NatsTlsSettings",
    "PerformanceSettings",
    "Port",
    "RpcEndpoint",
    "Section",
    "ServicePorts",
    "ServicesSettings",
    "Settings",
    "SimulateSettings",
    "StrategiesSettings",
    "StrategySettings",
    "SubmitSettings",
    "Wei",
    "dotted",
    "format_error",
    "format_wei",
    "is_placeholder_address",
    "load_settings",
    "mask_url",
    "masked_dump",
    "parse_wei",
    "problem",
    "read_config_file",
    "resolve_config_path",
]
