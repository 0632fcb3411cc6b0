"""The whole configuration (`Settings`) and where its values come from: kwargs, MEV_* env, file."""

from __future__ import annotations

from contextvars import ContextVar
from pathlib import Path
from typing import Any

from pydantic import model_validator
from pydantic_settings import (
    BaseSettings,
    InitSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from mev_common.messages import STRATEGY_NAMES
from mev_common.settings.contracts import ContractsSettings
from mev_common.settings.devnet import DevnetSettings
from mev_common.settings.sections import (
    DEVNET_CHAIN_IDS,
    ChainSettings,
    DatabaseSettings,
    DetectSettings,
    KeySettings,
    LoggingSettings,
    MempoolSettings,
    NatsSettings,
    PerformanceSettings,
    ServicesSettings,
    SimulateSettings,
    StrategiesSettings,
    StrategySettings,
    SubmitSettings,
    problem,
)

DEFAULT_CONFIG = Path("config/devnet.yaml")
ENV_PREFIX = "MEV_"

# The parsed YAML of the file being loaded: pydantic-settings builds sources without arguments.
FILE_DATA: ContextVar[dict[str, Any] | None] = ContextVar("mev_config_data", default=None)


class Settings(BaseSettings):
    """The whole configuration. Sections mirror the YAML top-level keys."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter="__",
        extra="forbid",
        frozen=True,
    )

    chain: ChainSettings
    nats: NatsSettings = NatsSettings()
    services: ServicesSettings = ServicesSettings()
    performance: PerformanceSettings = PerformanceSettings()
    mempool: MempoolSettings = MempoolSettings()
    strategies: StrategiesSettings
    contracts: ContractsSettings
    detect: DetectSettings = DetectSettings()
    simulate: SimulateSettings = SimulateSettings()
    submit: SubmitSettings = SubmitSettings()
    database: DatabaseSettings = DatabaseSettings()
    keys: KeySettings = KeySettings()
    logging: LoggingSettings = LoggingSettings()
    devnet: DevnetSettings | None = None

    @model_validator(mode="after")
    def _fits_in_a_block(self) -> Settings:
        # HyperEVM small blocks hold 2M gas: an arb that does not fit never lands.
        for name in STRATEGY_NAMES:
            strategy: StrategySettings | None = getattr(self.strategies, name)
            if strategy is not None and strategy.gas_limit > self.chain.block_gas_limit:
                raise problem(
                    ("strategies", name, "gas_limit"),
                    strategy.gas_limit,
                    f"at most chain.block_gas_limit ({self.chain.block_gas_limit}): "
                    "a trade must fit in one block",
                )
        return self

    @model_validator(mode="after")
    def _reset_only_on_a_devnet(self) -> Settings:
        # A real chain never changes its genesis: a mismatch there is a misconfigured RPC or
        # ledger, and closing its in-flight trades unchecked would hide money on the wire.
        if (
            self.database.on_chain_change == "reset"
            and self.chain.chain_id not in DEVNET_CHAIN_IDS
            and not self._local_stand_in()
        ):
            raise problem(
                ("database", "on_chain_change"),
                "reset",
                f"reset is for local devnets only (chain ids {sorted(DEVNET_CHAIN_IDS)}); "
                f"chain {self.chain.chain_id} must use refuse",
            )
        return self

    def _local_stand_in(self) -> bool:
        """A devnet profile standing in for a real chain id (HyperEVM's 999): the config starts
        the node itself and every RPC endpoint is on this host, so no real chain is reached."""
        local = ("http://127.0.0.1:", "http://localhost:")
        return self.devnet is not None and all(
            e.url.startswith(local) for e in self.chain.rpc_endpoints
        )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Earlier sources win: explicit kwargs, then MEV_* env, then the file.
        file_data = FILE_DATA.get() or {}
        return (init_settings, env_settings, InitSettingsSource(settings_cls, file_data))
