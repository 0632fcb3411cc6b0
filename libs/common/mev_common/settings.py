"""Settings of every service: one YAML file plus `MEV_`-prefixed environment overrides.

Why one module: the runbook names config keys (strategies.<name>.max_gas_price,
performance.simulation_concurrency, ...) and operators edit one file; every service must read it
the same way and reject the same mistakes. Unknown keys are errors, because a misspelt safety
limit that is silently ignored is how bots lose money.

Env overrides use `__` between levels: `MEV_PERFORMANCE__SIMULATION_CONCURRENCY=8`; they win
over the file. The file comes from `--config`, else `MEV_CONFIG`, else `config/devnet.yaml`.
Every problem becomes one line "key.path: got <value>; expected <what>" (see `format_error`).
docs/CONFIG.md lists every key.
"""

from __future__ import annotations

import difflib
import os
import re
import types
import typing
from contextvars import ContextVar
from decimal import Decimal
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
from pydantic_core import PydanticCustomError
from pydantic_settings import (
    BaseSettings,
    InitSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from mev_common.chain.pools import UNISWAP_V2_INIT_CODE_HASH

DEFAULT_CONFIG = Path("config/devnet.yaml")
ENV_PREFIX = "MEV_"
SERVICE_NAMES = ("ingest", "detect", "simulate", "submit")

_UNITS = {"wei": 1, "gwei": 10**9, "ether": 10**18, "eth": 10**18}
_AMOUNT_RE = re.compile(r"^\s*([0-9]+(?:\.[0-9]+)?)\s*(wei|gwei|ether|eth)?\s*$", re.IGNORECASE)
_AMOUNT_HINT = "an amount like '50 gwei', '0.01 ether' or an integer of wei"


def problem(path: tuple[str | int, ...], value: Any, expected: str) -> PydanticCustomError:
    """An error for a key below the validator's own location (e.g. one service's port).

    Model validators can only fail their whole section; `format_error` appends `path` so the
    line still names the exact key and its value.
    """
    return PydanticCustomError(
        "config_problem", "{expected}", {"path": path, "value": value, "expected": expected}
    )


def parse_wei(value: Any) -> int:
    """Parse an amount in wei: an int, or a string like "50 gwei", "0.01 ether", "123".

    Floats are refused: 0.1 ether as a float is not exactly 10**17 wei.
    """
    if isinstance(value, bool):
        raise ValueError(f"expected {_AMOUNT_HINT}")
    if isinstance(value, int):
        if value < 0:
            raise ValueError("expected a non-negative amount")
        return value
    if isinstance(value, float):
        raise ValueError(f"expected {_AMOUNT_HINT} (a float is not exact)")
    if isinstance(value, str):
        match = _AMOUNT_RE.match(value)
        if match:
            number, unit = match.group(1), (match.group(2) or "wei").lower()
            wei = Decimal(number) * _UNITS[unit]
            if wei == wei.to_integral_value():
                return int(wei)
            raise ValueError("expected a whole number of wei")
    raise ValueError(f"expected {_AMOUNT_HINT}")


def format_wei(wei: int) -> str:
    """An exact, readable amount for summaries: ether from 0.00001, gwei from 0.0001 gwei."""
    for unit, floor in (("ether", 10**13), ("gwei", 10**5)):
        if wei >= floor:
            text = format(Decimal(wei) / _UNITS[unit], "f")
            return f"{text.rstrip('0').rstrip('.') if '.' in text else text} {unit}"
    return f"{wei} wei"


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
    # JSON-RPC calls per minute all services together may make (None: unlimited), split by
    # service; each process counts its own share (mev_common/chain/budget.py).
    rpc_budget_per_minute: int | None = Field(default=None, ge=1)
    rpc_budget_shares: dict[Literal["ingest", "detect", "simulate", "submit"], float] = {
        "ingest": 0.4,
        "detect": 0.2,
        "simulate": 0.2,
        "submit": 0.2,
    }

    @model_validator(mode="after")
    def _budget_shares(self) -> ChainSettings:
        total = sum(self.rpc_budget_shares.values())
        if any(v <= 0 for v in self.rpc_budget_shares.values()) or total > 1.0 + 1e-9:
            raise problem(
                ("rpc_budget_shares",),
                self.rpc_budget_shares,
                "a share > 0 per service, all together at most 1",
            )
        return self

    @model_validator(mode="after")
    def _unique_names(self) -> ChainSettings:
        seen: set[str] = set()
        for i, endpoint in enumerate(self.rpc_endpoints):
            if endpoint.name in seen:
                raise problem(
                    ("rpc_endpoints", i, "name"), endpoint.name, "a name no other endpoint uses"
                )
            seen.add(endpoint.name)
        return self


_NKEY_SEED = re.compile(r"S[A-Z][A-Z2-7]{56}")


def _a_path(v: str | None) -> str | None:
    """A credential setting holds where the secret lives, never the secret itself."""
    if v is not None and _NKEY_SEED.search(v):
        raise ValueError("a path to the seed file, not the seed itself (keep it in a 0600 file)")
    return v


class NatsTlsSettings(Section):
    """TLS to NATS: the CA that signed the server's certificate; a client certificate and key
    if the server verifies clients (both or neither)."""

    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None

    @model_validator(mode="after")
    def _pair(self) -> NatsTlsSettings:
        if (self.cert_file is None) != (self.key_file is None):
            missing = "key_file" if self.key_file is None else "cert_file"
            raise problem((missing,), None, "cert_file and key_file together (or neither)")
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
    # A NATS cluster: every server's URL (the client fails over between them); empty: `url`.
    urls: list[str] = Field(default_factory=list)
    # Stream and KV replicas: 1 on one server, 3 on a three-node JetStream cluster.
    replicas: int = Field(default=1, ge=1, le=5)
    # A consumer with work waiting and no ack for this long turns /health 503.
    consumer_stall_s: float = Field(default=30.0, gt=0)
    # nkey seed files, one per user (<dir>/<user>.nk); None: connect without credentials
    credentials_dir: str | None = None
    # one service's seed file (overrides credentials_dir; e.g. MEV_NATS__CREDENTIALS_FILE)
    credentials_file: str | None = None
    tls: NatsTlsSettings | None = None

    _paths = field_validator("credentials_dir", "credentials_file")(_a_path)

    @field_validator("url")
    @classmethod
    def _nats_url(cls, v: str) -> str:
        if not re.match(r"^(nats|tls)://[^\s/]+:\d+$", v):
            raise ValueError("expected nats://HOST:PORT or tls://HOST:PORT")
        return v

    @field_validator("urls")
    @classmethod
    def _nats_urls(cls, v: list[str]) -> list[str]:
        for url in v:
            if not re.match(r"^(nats|tls)://[^\s/]+:\d+$", url):
                raise ValueError(f"{url!r}: expected a list of nats://HOST:PORT")
        return v

    @property
    def servers(self) -> list[str]:
        """What the client connects to: `urls` if given, else `[url]`."""
        return list(self.urls) or [self.url]


class ServicePorts(Section):
    health_port: Port
    metrics_port: Port
    replicas: int = Field(default=1, ge=1)


class ServicesSettings(Section):
    """Where each service listens.

    On one host (`mev-bot run`) every port must be distinct. In containers (compose, the
    runbook's 8080/9090) each service has its own network namespace, so `separate_hosts: true`
    allows the same ports across services; a service's own two ports must still differ.
    """

    host: str = "127.0.0.1"
    separate_hosts: bool = False
    shutdown_timeout_s: float = Field(default=10.0, gt=0)
    consume_concurrency: int = Field(default=16, ge=1)
    ingest: ServicePorts = ServicePorts(health_port=8081, metrics_port=9191)
    detect: ServicePorts = ServicePorts(health_port=8082, metrics_port=9192)
    simulate: ServicePorts = ServicePorts(health_port=8083, metrics_port=9193)
    submit: ServicePorts = ServicePorts(health_port=8084, metrics_port=9194)

    @model_validator(mode="after")
    def _distinct_ports(self) -> ServicesSettings:
        seen: dict[int, str] = {}
        for svc in SERVICE_NAMES:
            ports: ServicePorts = getattr(self, svc)
            if ports.health_port == ports.metrics_port:
                raise problem(
                    (svc, "metrics_port"),
                    ports.metrics_port,
                    f"a port other than services.{svc}.health_port",
                )
            if self.separate_hosts:
                continue
            for kind in ("health_port", "metrics_port"):
                port = getattr(ports, kind)
                if port in seen:
                    raise problem(
                        (svc, kind),
                        port,
                        f"a port not used by services.{seen[port]} (on one host every service "
                        "needs its own ports; set services.separate_hosts: true for containers)",
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


STRATEGY_NAMES = ("cyclic_arbitrage", "cross_dex_arbitrage", "backrun")
# Any spelling of these is refused outright, even with enabled: false: the bot never harms the
# users whose swaps it sees, and an "unknown key" message would suggest a typo to fix.
_PREDATORY = re.compile(r"front[\s_-]*run|sandwich", re.IGNORECASE)


class StrategiesSettings(Section):
    cyclic_arbitrage: StrategySettings | None = None
    cross_dex_arbitrage: StrategySettings | None = None
    backrun: StrategySettings | None = None

    @model_validator(mode="before")
    @classmethod
    def _no_predation(cls, data: Any) -> Any:
        if isinstance(data, dict):
            for key, value in data.items():
                if _PREDATORY.search(str(key)):
                    raise problem(
                        (str(key),),
                        value,
                        f"one of {', '.join(STRATEGY_NAMES)}: this bot never front-runs "
                        "or sandwiches users",
                    )
        return data

    def enabled_names(self) -> list[str]:
        return [n for n in type(self).model_fields if (s := getattr(self, n)) and s.enabled]


def _checksum(v: Any) -> str:
    from eth_utils import is_checksum_address, is_hex_address, to_checksum_address

    if not isinstance(v, str) or not is_hex_address(v):
        raise ValueError("expected a 20-byte hex address (0x + 40 hex digits)")
    digits = v[2:]
    if digits != digits.lower() and digits != digits.upper() and not is_checksum_address(v):
        raise ValueError(
            "expected an address whose mixed case matches its EIP-55 checksum "
            "(a wrong checksum usually means a typo)"
        )
    return to_checksum_address(v)


Address = Annotated[str, BeforeValidator(_checksum)]
ZERO_ADDRESS = "0x" + "0" * 40


def is_placeholder_address(address: str) -> bool:
    """Addresses below 2**32 are precompiles or system slots, never a deployed DEX or executor:
    config/production.yaml uses them as visible placeholders."""
    return int(address, 16) < 2**32


def _code_hash(v: Any) -> str:
    if not isinstance(v, str) or not re.match(r"^0x[0-9a-fA-F]{64}$", v):
        raise ValueError("expected a 32-byte hash: 0x followed by 64 hex digits")
    return v.lower()


class DexSettings(Section):
    name: str = Field(min_length=1)
    factory: Address
    router: Address | None = None
    fee_bps: int = Field(default=30, ge=0, lt=10_000)
    # keccak of the pair creation code: submit derives every pair address from it (CREATE2)
    init_code_hash: Annotated[str, BeforeValidator(_code_hash)] = UNISWAP_V2_INIT_CODE_HASH


class ContractsSettings(Section):
    """Where the bot's on-chain pieces are: given here, or read from the devnet deployment."""

    deployment_file: str | None = None
    executor: Address | None = None
    weth: Address | None = None
    dexes: list[DexSettings] = []
    # devnet deploy: "ExecutorStorageCommit" for chains without TSTORE (pre-Cancun, HyperEVM)
    executor_build: Literal["Executor", "ExecutorStorageCommit"] = "Executor"

    @model_validator(mode="after")
    def _source(self) -> ContractsSettings:
        if self.executor == ZERO_ADDRESS:
            raise problem(("executor",), self.executor, "a deployed contract, not the zero address")
        if self.deployment_file is None and (self.executor is None or not self.dexes):
            raise ValueError(
                "expected deployment_file (devnet) or both executor and dexes (a live chain)"
            )
        return self


class DetectSettings(Section):
    """What detect never trades: tokens (e.g. fee-on-transfer) and pools, by address."""

    deny_tokens: list[Address] = []
    deny_pools: list[Address] = []
    deadline_blocks: int = Field(default=2, ge=1)


class SimulateSettings(Section):
    """How simulate proves a trade; see services/simulate."""

    reference_sample_rate: float = Field(default=0.01, ge=0, le=1)
    quarantine_reverts: int = Field(default=3, ge=1)
    quarantine_window_s: float = Field(default=300.0, gt=0)
    quarantine_s: float = Field(default=900.0, gt=0)
    flash: bool = True


class SubmitSettings(Section):
    """How submit sends; `dry_run` signs and books but never sends."""

    dry_run: bool = False
    max_in_flight: int = Field(default=8, ge=1, le=64)
    priority_fee: Wei = 10**9
    receipt_timeout_s: float = Field(default=30.0, gt=0)
    # Money safety (services/submit/decide.py, limits.py): what submit signs whoever asks.
    profit_tokens: list[Address] = []  # besides contracts.weth, which is always allowed
    max_tx_cost: Wei = 10**17  # gas_limit x max_fee_per_gas of one trade
    daily_gas_budget: Wei = 10**18  # worst-case gas of the UTC day's txs
    daily_loss_limit: Wei = 10**17  # gas spent minus native-token profit over the UTC day
    max_consecutive_reverts: int = Field(default=3, ge=1)
    max_cancels_per_nonce: int = Field(default=3, ge=0)


# Local test chains (anvil/hardhat 31337, ganache 1337): a restart there is a new chain.
DEVNET_CHAIN_IDS = frozenset({1337, 31337})


class DatabaseSettings(Section):
    path: str = "data/mev-bot.db"
    # The ledger/nonces/KV meet another chain instance (same chain id, other genesis hash):
    # `refuse` to start, or `reset`: close the old chain's in-flight trades as chain_reset.
    on_chain_change: Literal["reset", "refuse"] = "refuse"
    # Booked receipts newer than this many blocks are re-checked against the canonical chain.
    reorg_depth: int = Field(default=64, ge=0, le=10_000)


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
    # "hyperevm": anvil at HyperEVM's limits behind the RPC stand-in (docs/DEVNET.md).
    profile: Literal["ethereum", "hyperevm"] = "ethereum"
    hardfork: str | None = None  # anvil --hardfork, e.g. shanghai (no transient storage)
    block_gas_limit: int | None = Field(default=None, ge=21_000)  # anvil --gas-limit
    proxy_port: Port | None = None  # hyperevm: the stand-in's port, the bot's RPC URL
    proxy_budget_per_minute: int = Field(default=100, ge=1)  # calls per minute per client IP

    @model_validator(mode="after")
    def _proxy(self) -> DevnetSettings:
        if self.profile == "hyperevm" and self.proxy_port is None:
            raise problem(("proxy_port",), None, "a free port for the HyperEVM stand-in")
        if self.proxy_port is not None and self.proxy_port == self.port:
            raise problem(("proxy_port",), self.proxy_port, "a port other than devnet.port")
        return self


# The parsed YAML of the file being loaded: pydantic-settings builds sources without arguments.
_FILE_DATA: ContextVar[dict[str, Any] | None] = ContextVar("mev_config_data", default=None)


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
        file_data = _FILE_DATA.get() or {}
        return (init_settings, env_settings, InitSettingsSource(settings_cls, file_data))


class ConfigError(Exception):
    """The config is invalid; `problems` holds one human line per problem (without the path)."""

    def __init__(self, path: Path, problems: list[str]) -> None:
        super().__init__(f"{path}: " + "; ".join(problems))
        self.path = path
        self.problems = problems


def resolve_config_path(explicit: str | os.PathLike[str] | None = None) -> Path:
    if explicit:
        return Path(explicit)
    return Path(os.environ.get("MEV_CONFIG") or DEFAULT_CONFIG)


def _yaml_loader() -> type:
    """A safe loader that refuses duplicate keys: YAML keeps the last one silently, which
    would let a second `max_gas_price:` quietly replace the first."""
    import yaml

    class StrictLoader(yaml.SafeLoader):
        def construct_mapping(self, node: Any, deep: bool = False) -> dict[Any, Any]:
            seen: set[Any] = set()
            for key_node, _ in node.value:
                key = self.construct_object(key_node, deep=deep)
                if key in seen:
                    raise yaml.constructor.ConstructorError(
                        None, None, f"duplicate key {key!r}", key_node.start_mark
                    )
                seen.add(key)
            return super().construct_mapping(node, deep=deep)

    return StrictLoader


def read_config_file(path: Path) -> dict[str, Any]:
    """Parse the YAML file; a missing file, broken YAML or a non-mapping is one clear line."""
    import yaml

    if not path.is_file():
        raise ConfigError(path, ["file not found: pass --config PATH or set MEV_CONFIG"])
    try:
        data = yaml.load(path.read_text(), Loader=_yaml_loader())  # a SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError(
            path, [f"not valid YAML{where}: {getattr(exc, 'problem', exc)}"]
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(path, [f"cannot read the file: {exc}"]) from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(
            path,
            [f"(top level): got {_kind(data)}; expected a mapping of sections (chain:, nats:...)"],
        )
    return data


def load_settings(path: str | os.PathLike[str] | None = None) -> Settings:
    """Load and validate; raise ConfigError listing every problem, never a traceback."""
    cfg = resolve_config_path(path)
    token = _FILE_DATA.set(read_config_file(cfg))
    try:
        return Settings()  # type: ignore[call-arg]
    except ValidationError as exc:
        raise ConfigError(cfg, [format_error(dict(e)) for e in exc.errors()]) from None
    finally:
        _FILE_DATA.reset(token)


# ---- one line per problem -------------------------------------------------------------------

_SECRET_KEY = re.compile(r"(password|secret|token|api_key|private_key)", re.IGNORECASE)
_REFERENCE_KEY = re.compile(r"_(env|file|path)$")  # names where a secret lives, not the secret
_EXPECTATIONS = {
    "int_parsing": "an integer",
    "int_type": "an integer",
    "int_from_float": "an integer",
    "float_parsing": "a number",
    "float_type": "a number",
    "bool_parsing": "true or false",
    "bool_type": "true or false",
    "string_type": "a string",
    "list_type": "a list",
    "string_too_short": "a non-empty string",
}


def format_error(err: dict[str, Any]) -> str:
    """One line: key path, the bad value (secrets masked), its env origin, what is expected."""
    loc = tuple(p for p in err.get("loc", ()) if p != "__root__")
    kind = err.get("type", "")
    value = err.get("input")
    ctx = err.get("ctx") or {}
    if kind == "config_problem":
        loc = loc + tuple(ctx["path"])
        value = ctx["value"]
    key = dotted(loc)
    origin = _env_origin(loc)
    got = f"{_show(loc, value)}{origin}"
    if kind == "extra_forbidden":
        return f"{key}: unknown key{origin or ''}; {_known_keys(loc)}"
    if kind == "missing":
        return f"{key}: missing; expected {_describe(loc)} (required)"
    return f"{key}: got {got}; expected {_expectation(kind, str(err.get('msg', '')), ctx)}"


def dotted(loc: tuple[str | int, ...]) -> str:
    """`strategies.backrun.max_gas_price`, list items as `rpc_endpoints[0]`."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def _expectation(kind: str, msg: str, ctx: dict[str, Any]) -> str:
    if kind == "config_problem":
        return str(ctx["expected"])
    bounds = {"greater_than_equal": ">=", "greater_than": ">", "less_than_equal": "<=",
              "less_than": "<"}  # fmt: skip
    if kind in bounds:
        limit = next(iter(ctx.values()), "?")
        return f"a number {bounds[kind]} {limit}"
    if kind in _EXPECTATIONS:
        return _EXPECTATIONS[kind]
    if kind in ("model_type", "dict_type", "model_attributes_type"):
        return "a mapping of keys"
    if kind == "too_short":
        return f"at least {ctx.get('min_length', 1)} item(s)"
    msg = msg.removeprefix("Value error, ")
    msg = msg[0].lower() + msg[1:] if msg else msg
    for prefix in ("input should be ", "expected "):
        if msg.startswith(prefix):
            return msg[len(prefix) :]
    return msg


def _env_origin(loc: tuple[str | int, ...]) -> str:
    """' (from MEV_X__Y)' when an env var set this key or a section holding it."""
    names = [p for p in loc if isinstance(p, str)]
    for i in range(len(names), 0, -1):
        var = ENV_PREFIX + "__".join(names[:i]).upper()
        if any(k.upper() == var for k in os.environ):
            return f" (from {var})"
    return ""


def _kind(value: Any) -> str:
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return _short(repr(value))


def _short(text: str) -> str:
    return text if len(text) <= 60 else text[:57] + "..."


def _show(loc: tuple[str | int, ...], value: Any) -> str:
    """The bad value for an error line: never a secret, never a URL's credentials."""
    last = next((p for p in reversed(loc) if isinstance(p, str)), "")
    if isinstance(value, str):
        if _NKEY_SEED.search(value) or (
            _SECRET_KEY.search(last) and not _REFERENCE_KEY.search(last)
        ):
            return "'***'"
        if last.endswith("url") or "://" in value:
            return repr(mask_url(value))
    return _kind(value)


def _model_at(loc: tuple[str | int, ...]) -> type[BaseModel] | None:
    """The pydantic model describing the value at `loc` (None for a leaf)."""
    model: type[BaseModel] | None = Settings
    for part in loc:
        if model is None:
            return None
        if isinstance(part, int):
            continue
        field = model.model_fields.get(part)
        model = _model_of(field.annotation) if field else None
    return model


def _model_of(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType, list, Annotated):
        for arg in typing.get_args(annotation):
            found = _model_of(arg)
            if found is not None:
                return found
    return None


def _describe(loc: tuple[str | int, ...]) -> str:
    model = _model_at(loc)
    if model is None:
        return "a value" if loc[-1:] != ("max_gas_price",) else _AMOUNT_HINT
    required = [n for n, f in model.model_fields.items() if f.is_required()]
    return "a section" + (f" with {', '.join(required)}" if required else "")


def _known_keys(loc: tuple[str | int, ...]) -> str:
    parent = _model_at(loc[:-1])
    if parent is None:
        return "remove it or fix its spelling"
    names = list(parent.model_fields)
    close = difflib.get_close_matches(str(loc[-1]), names, n=1)
    if close:
        return f"did you mean {close[0]}?"
    return f"expected one of {', '.join(names)}"


# ---- display --------------------------------------------------------------------------------


def masked_dump(settings: Settings) -> dict[str, Any]:
    """The effective config for display: secrets and URL credentials masked."""

    def mask(key: str, value: Any) -> Any:
        if isinstance(value, dict):
            return {k: mask(k, v) for k, v in value.items()}
        if isinstance(value, list):
            return [mask(key, v) for v in value]
        if isinstance(value, str):
            if _NKEY_SEED.search(value) or (
                _SECRET_KEY.search(key) and not _REFERENCE_KEY.search(key)
            ):
                return "***"
            if key.endswith("url") or "://" in value:
                return mask_url(value)
        return value

    return typing.cast(dict[str, Any], mask("", settings.model_dump(mode="json")))


def mask_url(url: str) -> str:
    """Hide credentials and API tokens in a URL: keep scheme, host and port only.

    Providers put keys in the path (`/v2/<key>`), the query (`?apikey=`) or the userinfo, so
    everything after the host is replaced and userinfo becomes `***@`.
    """
    m = re.match(r"^([A-Za-z][A-Za-z0-9+.-]*://)(?:([^@/?#]*)@)?([^/?#]*)(.*)$", url)
    if not m:
        return "***"
    scheme, userinfo, host, rest = m.groups()
    creds = "***@" if userinfo is not None else ""
    return f"{scheme}{creds}{host}" + ("/***" if rest.strip("/") else "")
