"""Every payload that crosses NATS, in one place, with its schema version `v`.

Why strict: a message is the contract between services that deploy separately. Big integers
(wei, reserves, amounts) travel as decimal strings, because JSON numbers become floats in many
readers and a float loses wei. Addresses are validated and checksummed at the edge so the hot
path can compare strings. Decoding never raises anything but `MessageError`, whose text is the
dead-letter reason.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Annotated, Any, Literal, TypeVar, get_args

import orjson
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    model_validator,
)

from mev_common.wire_types import Address as Address
from mev_common.wire_types import AddressError as AddressError
from mev_common.wire_types import BigInt as BigInt
from mev_common.wire_types import Hash32 as Hash32
from mev_common.wire_types import HexData as HexData
from mev_common.wire_types import Wei as Wei
from mev_common.wire_types import checksum as checksum

SCHEMA_VERSION: Literal[1] = 1
MAX_UINT256 = 2**256 - 1  # the most a tx field (a fee per gas) can hold
# An RPC endpoint's name (`chain.rpc_endpoints[i].name`, as long as settings allow) on the bus
EndpointName = Annotated[str, Field(min_length=1, max_length=64)]

Strategy = Literal["cyclic_arbitrage", "cross_dex_arbitrage", "backrun"]
# The one list of strategy names: settings' `strategies:` keys and config checks read it.
STRATEGY_NAMES: tuple[Strategy, ...] = get_args(Strategy)


class Message(BaseModel):
    """Base of every NATS payload: versioned, strict about unknown fields, immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    v: Literal[1] = SCHEMA_VERSION


class Log(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    address: Address
    topics: list[Hash32]
    data: HexData
    log_index: int = Field(ge=0)
    tx_hash: Hash32
    block_number: int | None = Field(default=None, ge=0)  # set when a Block spans several


class Block(Message):
    """A new head with the Sync/Swap logs of tracked pools; `reorg` marks a replaced branch."""

    chain_id: int = Field(ge=1)
    number: int = Field(ge=0)
    hash: Hash32
    parent_hash: Hash32
    timestamp: int = Field(ge=0)
    base_fee_per_gas: Wei = 0
    gas_limit: int = Field(default=0, ge=0)
    gas_used: int = Field(default=0, ge=0)
    logs: list[Log] = []
    reorg: bool = False
    # Under an RPC budget (HyperEVM) ingest polls the head every few blocks and one message
    # carries the logs of every block since the last one it published: `logs_from` is the
    # first of them and each log names its block. None: this block's logs only.
    logs_from: int | None = Field(default=None, ge=0)
    # Polled head (HyperEVM): the earliest wall time (ns) this block can have been produced,
    # estimated from the polls (mev_common.chain.block_phase); None: not known (not locked,
    # or a WebSocket feed). Submit refuses a trade whose state the next block has likely
    # replaced by the time its tx reaches the node.
    produced_at_ns: int | None = Field(default=None, ge=0)

    @property
    def first_number(self) -> int:
        """The first block whose logs this message carries."""
        return self.number if self.logs_from is None else self.logs_from

    def logs_after(self, number: int) -> list[Log]:
        """The logs of blocks after `number` (what a state already at `number` still needs)."""
        return [lg for lg in self.logs if lg.block_number is None or lg.block_number > number]


class PendingTx(Message):
    """A pending transaction to a known router or pair (candidate backrun victim)."""

    chain_id: int = Field(ge=1)
    hash: Hash32
    sender: Address = Field(alias="from")
    to: Address | None = None
    nonce: int = Field(ge=0)
    value: Wei = 0
    gas: int = Field(ge=0)
    gas_price: Wei | None = None
    max_fee_per_gas: Wei | None = None
    max_priority_fee_per_gas: Wei | None = None
    input: HexData = "0x"
    raw: HexData | None = None
    # the RPC endpoint that served it to ingest: that node held it first, so a backrun of it
    # is sent there alone (services/submit/sender.py); None from an older ingest
    seen_on: EndpointName | None = None

    @property
    def fee_cap(self) -> int | None:
        """Its max fee per gas (a legacy tx's gas price): fee-ordered anvil's sort key, and what
        a backrun of it bids (services/submit/fees.py); None if it carries neither."""
        return self.max_fee_per_gas if self.max_fee_per_gas is not None else self.gas_price


class Hop(BaseModel):
    """One swap through one pool: `amount_out` is what the pool's exact math promises.

    `kind` is the pool design: "v2" (constant product) or "v3" (concentrated liquidity, whose
    fee tier in pips is `fee_bps * 100`: 500 -> 5, 3000 -> 30, 10000 -> 100)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["v2", "v3"] = "v2"
    pool: Address
    token_in: Address
    token_out: Address
    fee_bps: int = Field(ge=0, lt=10_000)
    amount_in: Wei
    amount_out: Wei


class Opportunity(Message):
    """An arbitrage found by detect, computed at `block_number`/`block_hash` (for a backrun:
    on that state with `victim` applied first). `expected_profit` is gross, in `profit_token`
    units; `net_profit_wei` is after `gas_estimate` at `max_fee_per_gas`."""

    id: str = Field(min_length=1, max_length=128)
    chain_id: int = Field(ge=1)
    strategy: Strategy
    trigger: Hash32
    block_number: int = Field(ge=0)
    block_hash: Hash32
    # Pass-through skeletons emit no hops yet; the detect issue makes a path of >= 2 hops.
    hops: list[Hop] = []
    amount_in: Wei = 0
    profit_token: Address | None = None
    expected_profit: BigInt = 0
    net_profit_wei: BigInt = 0
    gas_estimate: int = Field(default=0, ge=0)
    max_fee_per_gas: Wei = 0
    deadline_block: int = Field(default=0, ge=0)
    victim: PendingTx | None = None
    # the victim's sender's pending txs with lower nonces (the chain mines them first), when
    # detect holds them whole: simulate runs them before the victim (services/simulate/stacking.py)
    ahead: list[PendingTx] = Field(default_factory=list, max_length=8)
    # a follow-on backrun (services/detect/follow_on.py) is sized on the state after this
    # opportunity's trade: simulate proves it only stacked on that trade's bundle
    follows: str | None = Field(default=None, min_length=1, max_length=128)


class Bundle(Message):
    """A trade simulate proved profitable at `block_number`: the executor call, ready to sign.

    `to`/`data`/`gas_limit`/`value` are the transaction (from the bot key). `simulated_profit` is
    the exact balance gain in `profit_token` units the local EVM measured, `simulated_gas_used`
    its gas; `min_profit` is what the calldata makes the contract enforce. `max_fee_per_gas` is
    the fee cap the decision assumed: submit never bids above it. For a backrun, the victim's
    hash, priority fee and max fee let submit bid the victim's own fees, so fee ordering puts us
    right after it (services/submit/fees.py).
    """

    id: str = Field(min_length=1, max_length=128)
    opportunity_id: str = Field(min_length=1, max_length=128)
    chain_id: int = Field(ge=1)
    strategy: Strategy
    block_number: int = Field(ge=0)
    block_hash: Hash32 | None = None
    to: Address | None = None
    data: HexData = "0x"
    value: Wei = 0
    gas_limit: int = Field(default=0, ge=0)
    flash: bool = False
    profit_token: Address | None = None
    simulated_gas_used: int = Field(default=0, ge=0)
    simulated_profit: BigInt = 0
    net_profit_wei: BigInt = 0
    min_profit: Wei = 0
    max_fee_per_gas: Wei = 0
    max_priority_fee_per_gas: Wei = 0
    victim_tx_hash: Hash32 | None = None
    victim_priority_fee: Wei | None = None
    # the victim's sender and nonce: a victim replaced by its sender (same nonce, another tx
    # mined) never gets a receipt; submit withdraws our backrun when that nonce is used
    # (services/submit/late_victims.py)
    victim_sender: Address | None = None
    victim_nonce: int | None = Field(default=None, ge=0, le=2**64 - 1)
    # the victim's max fee per gas (its gas price if legacy); None from an older simulate
    victim_max_fee_per_gas: Wei | None = None
    # a backrun whose victim waits for cheaper lower nonces of its sender bids the least of
    # their max fees, under the victim's, so it lands behind them and the victim (simulate
    # proved it in that order: services/simulate/stacking.py); None: the victim's max fee
    bid_max_fee_per_gas: Wei | None = None
    # the endpoint ingest saw the victim on (`PendingTx.seen_on`): the one node known to hold
    # it, so the only one our backrun may reach (another would mine ours before or without it)
    victim_seen_on: EndpointName | None = None
    deadline_block: int = Field(default=0, ge=0)
    # our earlier trades (bundle ids, unsettled) this backrun was proven on top of: submit sends
    # it with the next nonce only while every one of them is in flight (services/simulate/
    # stacking.py, services/submit/conflicts.py)
    after_bundles: list[Annotated[str, Field(min_length=1, max_length=128)]] = Field(
        default_factory=list, max_length=8
    )
    # simulate ran these bytes without the trades in `after_bundles` too and they still paid
    # minProfit: if one of those does not land, submit lets this one stand; otherwise (False,
    # the default) it cancels it (services/submit/stack_cancel.py)
    pays_alone: bool = False

    @model_validator(mode="after")
    def _victim_fees(self) -> Bundle:
        """A victim's max fee comes with its hash and tip, and a max fee pays its own tip;
        where the victim was seen comes with its hash (a block trade names no node)."""
        if self.victim_seen_on is not None and self.victim_tx_hash is None:
            raise ValueError("victim_seen_on needs victim_tx_hash")
        max_fee, tip = self.victim_max_fee_per_gas, self.victim_priority_fee
        bid = self.bid_max_fee_per_gas
        if bid is not None and (max_fee is None or not 0 < bid < max_fee):
            raise ValueError(f"bid_max_fee_per_gas {bid} must be under victim_max_fee_per_gas")
        if max_fee is None:
            return self
        if self.victim_tx_hash is None or tip is None:
            raise ValueError("victim_max_fee_per_gas needs victim_tx_hash and victim_priority_fee")
        if max_fee > MAX_UINT256:
            raise ValueError(f"victim_max_fee_per_gas {max_fee} does not fit a tx (max 2**256 - 1)")
        if max_fee < tip:
            raise ValueError(
                f"victim_max_fee_per_gas {max_fee} is below victim_priority_fee {tip}: "
                "no valid tx bids so"
            )
        return self


def trigger_kind(victim: object | None) -> Literal["pending", "block"]:
    """What an opportunity (or its bundle) answers: a pending swap (a backrun names its victim:
    `Opportunity.victim`, `Bundle.victim_tx_hash`) or a block. The latency metrics' `trigger`
    label: a block trigger's seen is ingest's head, so its path holds the block's log fetch and
    whole search, a different quantity from a pending swap's."""
    return "block" if victim is None else "pending"


def bundle_id_for(opportunity_id: str) -> str:
    """The bundle id simulate gives an opportunity's bundle (submit finds it by this too)."""
    plain = f"bundle:{opportunity_id}"
    if len(plain) <= 128:
        return plain
    return "bundle:" + hashlib.sha256(opportunity_id.encode()).hexdigest()


class Withdrawal(Message):
    """Detect learned that a published backrun will meet another state (a later pending swap
    tipping at least as much goes through its pools first): do not send it, or cancel it."""

    opportunity_id: str = Field(min_length=1, max_length=128)
    chain_id: int = Field(ge=1)
    reason: str


class PeerBet(BaseModel):
    """One backrun a detect replica decided on a victim (services/detect/peer_bets.py)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    tip: Wei  # what it bids: its victim's tip
    pools: list[Address] = Field(min_length=1, max_length=8)
    block: int = Field(ge=0)  # the head it was decided at
    doomed_at: int | None = Field(default=None, ge=1)  # the stream sequence of a swap ahead


class PeerQuestion(Message):
    """A detect replica asks its peers what they decided on these pending swaps (core NATS)."""

    chain_id: int = Field(ge=1)
    replica: str = Field(min_length=1, max_length=64)
    victims: list[Hash32] = Field(min_length=1, max_length=16)


class PeerAnswer(Message):
    """What the replica that searched `victim` (stream sequence `seq`) decided: its backruns,
    none if it published none (core NATS; a replica checks it against its own book)."""

    chain_id: int = Field(ge=1)
    replica: str = Field(min_length=1, max_length=64)
    victim: Hash32
    seq: int = Field(ge=1)
    bets: list[PeerBet] = Field(default_factory=list, max_length=16)


OutcomeStatus = Literal[
    "included", "reverted", "dropped", "replaced", "not_sent", "dry_run", "chain_reset"
]


class Outcome(Message):
    """What happened to a bundle; `realized_profit` is signed (gas can make it negative)."""

    bundle_id: str = Field(min_length=1, max_length=128)
    chain_id: int = Field(ge=1)
    strategy: Strategy
    status: OutcomeStatus
    tx_hash: Hash32 | None = None
    block_number: int | None = Field(default=None, ge=0)
    gas_used: int = Field(default=0, ge=0)
    effective_gas_price: Wei = 0
    realized_profit: BigInt = 0
    reason: str = ""


class DeadLetter(Message):
    """A message a stage could not take: why, where from, and (a bounded prefix of) what."""

    stage: str
    subject: str
    reason: str
    payload_size: int = Field(ge=0)
    payload_sha256: str
    payload_prefix: str
    headers: dict[str, str] = {}
    deliveries: int = Field(default=1, ge=1)


M = TypeVar("M", bound=BaseModel)

DEAD_LETTER_PREFIX_BYTES = 4096


class MessageError(ValueError):
    """The payload cannot be decoded or validated: the message goes to the dead-letter subject."""


def encode(message: BaseModel) -> bytes:
    return orjson.dumps(message.model_dump(mode="json", by_alias=True, exclude_none=True))


def decode(model: type[M], payload: bytes, max_bytes: int | None = None) -> M:
    """Parse and validate, or raise MessageError with a one-line reason."""
    if max_bytes is not None and len(payload) > max_bytes:
        raise MessageError(f"payload of {len(payload)} bytes exceeds the limit of {max_bytes}")
    try:
        data = orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        raise MessageError(f"not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise MessageError(f"expected a JSON object, got {type(data).__name__}")
    version = data.get("v")
    if version != SCHEMA_VERSION:
        raise MessageError(
            f"unsupported schema version v={version!r}: this build reads v={SCHEMA_VERSION}"
        )
    fast = _FAST.get(model)  # a hand check of the hot messages (message_fast), else pydantic
    if fast is not None and (message := fast(data)) is not None:
        return message  # type: ignore[return-value]
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise MessageError(f"invalid {model.__name__}: {describe_errors(exc)}") from None


# model -> a hand check returning the model pydantic would make, or None to ask pydantic
_FAST: dict[type[BaseModel], Callable[[dict[str, Any]], BaseModel | None]] = {}


def describe_errors(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors()[:5]:
        loc = ".".join(str(p) for p in err["loc"]) or "(root)"
        parts.append(f"{loc}: {str(err['msg']).removeprefix('Value error, ')}")
    more = len(exc.errors()) - 5
    return "; ".join(parts) + (f"; and {more} more" if more > 0 else "")


# registers its hand checks in _FAST (it reads the validators above, so it is imported last)
from mev_common import message_fast  # noqa: E402, F401
