"""Settings of every service: one YAML file plus `MEV_`-prefixed environment overrides.

Why one module: the runbook names config keys (strategies.<name>.max_gas_price,
performance.simulation_concurrency, ...) and operators edit one file; every service must read it
the same way and reject the same mistakes. Unknown keys are errors, because a misspelt safety
limit that is silently ignored is how bots lose money.

Env overrides use `__` between levels: `MEV_PERFORMANCE__SIMULATION_CONCURRENCY=8`.
The file comes from `--config`, else `MEV_CONFIG`, else `config/devnet.yaml`.
"""

from __future__ import annotations

import os
import re
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    YamlConfigSettingsSource,
)

DEFAULT_CONFIG = Path("config/devnet.yaml")

_UNITS = {"wei": 1, "gwei": 10**9, "ether": 10**18, "eth": 10**18}
_AMOUNT_RE = re.compile(r"^\s*([0-9]+(?:\.[0-9]+)?)\s*(wei|gwei|ether|eth)?\s*$", re.IGNORECASE)


def parse_wei(value: Any) -> int:
    """Parse an amount in wei: an int, or a string like "50 gwei", "0.01 ether", "123"."""
    if isinstance(value, bool):
        raise ValueError("expected an amount like 50 gwei, 0.01 ether or an integer of wei")
    if isinstance(value, int):
        if value < 0:
            raise ValueError("expected a non-negative amount")
        return value
    if isinstance(value, float):
        raise ValueError("floats are not exact: write the amount as '50 gwei' or an integer of wei")
    if isinstance(value, str):
        match = _AMOUNT_RE.match(value)
        if match:
            number, unit = match.group(1), (match.group(2) or "wei").lower()
            try:
                wei = Decimal(number) * _UNITS[unit]
            except InvalidOperation:  # pragma: no cover - regex guarantees a number
                wei = Decimal("NaN")
            if wei == wei.to_integral_value():
                return int(wei)
            raise ValueError(f"{value!r} is not a whole number of wei")
    raise ValueError("expected an amount like 50 gwei, 0.01 ether or an integer of wei")


Wei = Annotated[int, BeforeValidator(parse_wei)]
Port = Annotated[int, Field(ge=1, le=65535)]


class Section(BaseModel):
    """Base of every config section: unknown keys are errors, values are not coerced loosely."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class RpcEndpoint(Section):
    name: str = Field(min_length=1)
    url: str
    ws_url: str | None = None
    rate_limit_rps: float = Field(default=25.0, gt=0)
    pool_size: int = Field(default=10, ge=1, le=1000)
    timeout_s: float = Field(default=5.0, gt=0)

    @field_validator("url")
    @classmethod
    def _http(cls, v: str) -> str:
        if not re.match(r"^https?://[^\s/]+", v):
            raise ValueError("expected an http:// or https:// URL")
        return v

    @field_validator("ws_url")
    @classmethod
    def _ws(cls, v: str | None) -> str | None:
        if v is not None and not re.match(r"^wss?://[^\s/]+", v):
            raise ValueError("expected a ws:// or wss:// URL")
        return v


class ChainSettings(Section):
    name: str = Field(min_length=1)
    chain_id: int = Field(ge=1)
    rpc_endpoints: list[RpcEndpoint] = Field(min_length=1)
    pending_feed: bool = True
    block_time_s: float = Field(default=1.0, gt=0)
    max_logs_block_range: int = Field(default=50, ge=1)
    block_gas_limit: int = Field(default=30_000_000, ge=21_000)

    @model_validator(mode="after")
    def _unique_names(self) -> ChainSettings:
        names = [e.name for e in self.rpc_endpoints]
        if len(names) != len(set(names)):
            raise ValueError("rpc_endpoints: every endpoint needs a distinct name")
        return self


class NatsSettings(Section):
    url: str = "nats://127.0.0.1:4222"
    embedded: bool = True
    store_dir: str = "data/nats"
    connect_timeout_s: float = Field(default=5.0, gt=0)
    max_deliver: int = Field(default=5, ge=1)
    ack_wait_s: float = Field(default=30.0, gt=0)
    nak_delay_s: float = Field(default=0.5, ge=0)
    max_payload_bytes: int = Field(default=256 * 1024, ge=1024)

    @field_validator("url")
    @classmethod
    def _nats_url(cls, v: str) -> str:
        if not re.match(r"^(nats|tls)://[^\s/]+:\d+$", v):
            raise ValueError("expected nats://HOST:PORT")
        return v


class ServicePorts(Section):
    health_port: Port
    metrics_port: Port
    replicas: int = Field(default=1, ge=1)


class ServicesSettings(Section):
    host: str = "127.0.0.1"
    shutdown_timeout_s: float = Field(default=10.0, gt=0)
    consume_concurrency: int = Field(default=16, ge=1)
    ingest: ServicePorts = ServicePorts(health_port=8081, metrics_port=9191)
    detect: ServicePorts = ServicePorts(health_port=8082, metrics_port=9192)
    simulate: ServicePorts = ServicePorts(health_port=8083, metrics_port=9193)
    submit: ServicePorts = ServicePorts(health_port=8084, metrics_port=9194)

    @model_validator(mode="after")
    def _distinct_ports(self) -> ServicesSettings:
        seen: dict[int, str] = {}
        for svc in ("ingest", "detect", "simulate", "submit"):
            ports: ServicePorts = getattr(self, svc)
            for kind in ("health_port", "metrics_port"):
                port = getattr(ports, kind)
                if port in seen:
                    raise ValueError(
                        f"{svc}.{kind} {port} is already used by {seen[port]}: "
                        "give every service its own ports"
                    )
                seen[port] = f"{svc}.{kind}"
        return self


class PerformanceSettings(Section):
    simulation_concurrency: int = Field(default=4, ge=1, le=1024)
    decision_timeout_ms: int = Field(default=250, ge=1)
    detect_concurrency: int = Field(default=8, ge=1, le=1024)


class MempoolSettings(Section):
    max_pending_transactions: int = Field(default=10_000, ge=1)
    max_age_s: float = Field(default=60.0, gt=0)
    fetch_concurrency: int = Field(default=32, ge=1)


class StrategySettings(Section):
    enabled: bool = True
    min_profit: Wei = 0
    max_gas_price: Wei
    max_hops: int = Field(default=3, ge=2, le=4)
    gas_limit: int = Field(default=600_000, ge=21_000)
    min_profit_share: float = Field(default=0.9, gt=0, le=1)


_FORBIDDEN_STRATEGIES = {"frontrun", "front_run", "frontrunning", "sandwich", "sandwiching"}


class StrategiesSettings(Section):
    cyclic_arbitrage: StrategySettings | None = None
    cross_dex_arbitrage: StrategySettings | None = None
    backrun: StrategySettings | None = None

    @model_validator(mode="before")
    @classmethod
    def _no_predation(cls, data: Any) -> Any:
        if isinstance(data, dict):
            for key in data:
                if str(key).lower() in _FORBIDDEN_STRATEGIES:
                    raise ValueError(
                        f"strategy {key!r} is not offered: this bot never front-runs or "
                        "sandwiches users (use cyclic_arbitrage, cross_dex_arbitrage, backrun)"
                    )
        return data

    def enabled_names(self) -> list[str]:
        return [n for n in type(self).model_fields if (s := getattr(self, n)) and s.enabled]


def _checksum(v: str) -> str:
    from eth_utils import is_checksum_address, is_hex_address, to_checksum_address

    if not isinstance(v, str) or not is_hex_address(v):
        raise ValueError("expected a 20-byte hex address (0x + 40 hex digits)")
    digits = v[2:]
    if digits != digits.lower() and digits != digits.upper() and not is_checksum_address(v):
        raise ValueError("mixed-case address with a wrong EIP-55 checksum")
    return to_checksum_address(v)


Address = Annotated[str, BeforeValidator(_checksum)]


class DexSettings(Section):
    name: str = Field(min_length=1)
    factory: Address
    router: Address | None = None
    fee_bps: int = Field(default=30, ge=0, lt=10_000)


class ContractsSettings(Section):
    """Where the bot's on-chain pieces are: given here, or read from the devnet deployment."""

    deployment_file: str | None = None
    executor: Address | None = None
    weth: Address | None = None
    dexes: list[DexSettings] = []

    @model_validator(mode="after")
    def _source(self) -> ContractsSettings:
        if self.deployment_file is None and (self.executor is None or not self.dexes):
            raise ValueError(
                "set deployment_file (devnet) or both executor and dexes (a live chain)"
            )
        return self


class DatabaseSettings(Section):
    path: str = "data/mev-bot.db"


class KeySettings(Section):
    path: str = "data/keys/devnet.key"
    password_env: str | None = None
    password_file: str | None = None


class LoggingSettings(Section):
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    format: Literal["json", "text"] = "json"


class DevnetSettings(Section):
    seed: int = 1
    port: Port = 8545
    block_time_s: int = Field(default=1, ge=1)
    flow_rate: float = Field(default=4.0, gt=0)


_SECRET_KEYS = re.compile(r"(password|secret|token|api_key)", re.IGNORECASE)


class Settings(BaseSettings):
    """The whole configuration. Sections mirror the YAML top-level keys."""

    model_config = SettingsConfigDict(
        env_prefix="MEV_",
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
    database: DatabaseSettings = DatabaseSettings()
    keys: KeySettings = KeySettings()
    logging: LoggingSettings = LoggingSettings()
    devnet: DevnetSettings | None = None

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        yaml_file = _CURRENT_FILE.get("path") or DEFAULT_CONFIG
        return (
            init_settings,
            env_settings,
            YamlConfigSettingsSource(settings_cls, yaml_file=yaml_file, deep_merge=True),
        )


# The file to read, set by load_settings: keeps pydantic-settings' source hook signature intact.
_CURRENT_FILE: dict[str, Path | None] = {"path": None}


class ConfigError(Exception):
    """The config is invalid; `problems` holds one human line per problem."""

    def __init__(self, path: Path, problems: list[str]) -> None:
        super().__init__(f"{path}: " + "; ".join(problems))
        self.path = path
        self.problems = problems


def resolve_config_path(explicit: str | os.PathLike[str] | None = None) -> Path:
    if explicit:
        return Path(explicit)
    return Path(os.environ.get("MEV_CONFIG") or DEFAULT_CONFIG)


def _read_yaml(path: Path) -> None:
    """Fail early with a clear line on a missing file or broken YAML (pydantic would not say)."""
    import yaml

    if not path.is_file():
        raise ConfigError(path, [f"config file {path} not found: pass --config PATH or set MEV_CONFIG"])
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError(path, [f"not valid YAML{where}: {getattr(exc, 'problem', exc)}"]) from exc
    if data is not None and not isinstance(data, dict):
        raise ConfigError(path, ["the top level must be a mapping of sections (chain:, nats:, ...)"])


def format_error(err: dict[str, Any]) -> str:
    """One line: key path, the bad value, what is expected."""
    loc = ".".join(str(p) for p in err.get("loc", ()) if p != "__root__")
    kind = err.get("type", "")
    value = err.get("input")
    msg = str(err.get("msg", "")).removeprefix("Value error, ")
    if kind == "extra_forbidden":
        return f"{loc}: unknown key (value {_show(value)}); remove it or fix its spelling"
    if kind == "missing":
        return f"{loc}: required key is missing"
    return f"{loc or '(top level)'}: got {_show(value)}; expected {_expectation(msg)}"


def _expectation(msg: str) -> str:
    msg = msg[0].lower() + msg[1:] if msg else msg
    for prefix in ("input should be ", "expected "):
        if msg.startswith(prefix):
            return msg[len(prefix) :]
    return msg


def _show(value: Any) -> str:
    if isinstance(value, dict):
        return "a mapping"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def load_settings(path: str | os.PathLike[str] | None = None) -> Settings:
    """Load and validate; raise ConfigError listing every problem, never a traceback."""
    cfg = resolve_config_path(path)
    _read_yaml(cfg)
    _CURRENT_FILE["path"] = cfg
    try:
        return Settings()  # type: ignore[call-arg]
    except ValidationError as exc:
        raise ConfigError(cfg, [format_error(dict(e)) for e in exc.errors()]) from None
    finally:
        _CURRENT_FILE["path"] = None


def masked_dump(settings: Settings) -> dict[str, Any]:
    """The effective config for display: secrets and URL credentials masked."""

    def mask(key: str, value: Any) -> Any:
        if isinstance(value, dict):
            return {k: mask(k, v) for k, v in value.items()}
        if isinstance(value, list):
            return [mask(key, v) for v in value]
        if isinstance(value, str):
            if _SECRET_KEYS.search(key):
                return "***"
            if key.endswith("url"):
                return mask_url(value)
        return value

    return mask("", settings.model_dump(mode="json"))


def mask_url(url: str) -> str:
    """Hide credentials and API tokens in an RPC URL: keep scheme, host and port only."""
    m = re.match(r"^([a-z]+://)(?:[^@/]*@)?([^/?#]+)(.*)$", url)
    if not m:
        return "***"
    scheme, host, rest = m.groups()
    return f"{scheme}{host}" + ("/***" if rest.strip("/") else "")
