"""The config's sections, one pydantic model per YAML top-level key (see `Settings`).

Unknown keys are errors, because a misspelt safety limit that is silently ignored is how bots
lose money. docs/CONFIG.md lists every key.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic_core import PydanticCustomError

from mev_common.messages import STRATEGY_NAMES
from mev_common.settings.addresses import Address
from mev_common.settings.display import NKEY_SEED
from mev_common.settings.units import Port, Wei

SERVICE_NAMES = ("ingest", "detect", "simulate", "submit")


def problem(path: tuple[str | int, ...], value: Any, expected: str) -> PydanticCustomError:
    """An error for a key below the validator's own location (e.g. one service's port).

    Model validators can only fail their whole section; `format_error` appends `path` so the
    line still names the exact key and its value.
    """
    return PydanticCustomError(
        "config_problem", "{expected}", {"path": path, "value": value, "expected": expected}
    )


class Section(BaseModel):
    """Base of every config section: unknown keys are errors, values are not coerced loosely."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class RpcEndpoint(Section):
    # at most 64 characters: ingest names the endpoint a pending tx came from on the bus
    # (`messages.PendingTx.seen_on`), where a longer name would be refused
    name: str = Field(min_length=1, max_length=64)
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
    # polled head (RPC budget): a trade is not sent when its state block is older than
    # block_time_s less this (the next block would likely come first; block_phase.py)
    head_age_margin_s: float = Field(default=0.1, ge=0)
    max_logs_block_range: int = Field(default=50, ge=1)
    block_gas_limit: int = Field(default=30_000_000, ge=21_000)
    # the RPC serves state (eth_call, eth_getStorageAt, ...) at `latest` only (HyperEVM):
    # simulate builds its EVM from checked latest reads, submit reads nonces at `latest`
    latest_state_only: bool = False
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


def _a_path(v: str | None) -> str | None:
    """A credential setting holds where the secret lives, never the secret itself."""
    if v is not None and NKEY_SEED.search(v):
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
    # in flight, not parallel: one EVM runs one simulation at a time; a slot is also held while
    # waiting (a block diff, the block, a backrun ahead): 4 left backruns unfetched at a burst
    simulation_concurrency: int = Field(default=16, ge=1, le=1024)
    decision_timeout_ms: int = Field(default=250, ge=1)
    # a block opportunity (no victim) is valid until the next block: its own, longer budget
    block_decision_timeout_ms: int = Field(default=12_000, ge=1)
    detect_concurrency: int = Field(default=8, ge=1, le=1024)

    @model_validator(mode="after")
    def _block_budget_covers_backruns(self) -> PerformanceSettings:
        if self.block_decision_timeout_ms < self.decision_timeout_ms:
            raise problem(
                ("block_decision_timeout_ms",),
                self.block_decision_timeout_ms,
                f"at least performance.decision_timeout_ms ({self.decision_timeout_ms}): a "
                "block opportunity stays valid until the next block, so it gets at least a "
                "backrun's budget (e.g. the chain's block time in ms)",
            )
        return self


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


class DetectSettings(Section):
    """What detect never trades: tokens (e.g. fee-on-transfer) and pools, by address."""

    deny_tokens: list[Address] = []
    deny_pools: list[Address] = []
    deadline_blocks: int = Field(default=2, ge=1)
    # with stacking on (simulate.stack_depth > 0), also publish the cycle our best backrun of a
    # victim leaves open, sized after it (services/detect/follow_on.py)
    follow_on: bool = True


class SimulateSettings(Section):
    """How simulate proves a trade; see services/simulate."""

    reference_sample_rate: float = Field(default=0.01, ge=0, le=1)
    # pending swaps whose victim state is traced when seen, before detect's opportunity for
    # them arrives (services/simulate/victims.py): at most this many a second; 0: off
    early_victim_traces_per_s: float = Field(default=20.0, ge=0)
    # calls of each RPC endpoint's rate limit the reference check and the pool prefetch (at
    # start, after each refork) leave to victim traces: they never wait behind those
    # (services/simulate/rpc_priority.py)
    victim_trace_reserve: int = Field(default=4, ge=0)
    # a backrun of a victim waiting behind a cheaper lower nonce of its sender bids that nonce's
    # max fee, so it lands behind both (services/simulate/stacking.py); off: refused as
    # `stack_order`. Off by default until detect's crowding check and the signed tip follow
    # the lower bid (a swap tipping between the two is not yet in the plan)
    bid_behind_victim_nonces: bool = False
    quarantine_reverts: int = Field(default=3, ge=1)
    quarantine_window_s: float = Field(default=300.0, gt=0)
    quarantine_s: float = Field(default=900.0, gt=0)
    flash: bool = True
    # backruns proven on top of this many of our unsettled trades through the same pools (of
    # this block, or of the last 2 still behind their pending victim: services/simulate/
    # stacking.py); 0: such a backrun is dropped as superseded
    stack_depth: int = Field(default=2, ge=0, le=8)


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


MAX_LANES = 8


class KeySettings(Section):
    path: str = "data/keys/devnet.key"
    password_env: str | None = None
    password_file: str | None = None
    # Nonce lanes: sender accounts, each its own nonce sequence, so a trade never waits behind
    # an unrelated cheaper one of ours (docs/DEVNET.md). Lane 0 is `path` (the executor's
    # owner); lane i > 0 is `lane_path(i)`, a key the owner authorized with setTrader.
    lanes: int = Field(default=1, ge=1, le=MAX_LANES)

    def lane_path(self, lane: int) -> str:
        """Lane `lane`'s key file: `path` for lane 0, else `<stem>.lane<i><suffix>` beside it
        (data/keys/devnet.key -> data/keys/devnet.lane1.key), same format and password."""
        if lane == 0:
            return self.path
        head, dot, suffix = self.path.rpartition(".")
        if not dot or "/" in suffix:
            return f"{self.path}.lane{lane}"
        return f"{head}.lane{lane}.{suffix}"

    def lane_paths(self) -> list[str]:
        return [self.lane_path(i) for i in range(self.lanes)]


class LoggingSettings(Section):
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    format: Literal["json", "text"] = "json"
