"""Whether a bundle may be signed, and exactly what: the money-safety gate, a pure function.

Submit signs with the bot key whatever this gate lets through, so it trusts nothing a bundle
says: the transaction is rebuilt from the bundle's calldata and checked against the config
(executor, chain, strategy caps, allowlisted profit tokens, pairs derived from configured
factories) and against the chain head submit read itself. The result is a refusal reason or
a `SendPlan` holding the exact transaction (only the nonce is added when it is signed).
Every refusal becomes a `not_sent` outcome with its reason, so each bundle is accounted for.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from mev_common.chain.contracts import ChainContracts, V3Dex
from mev_common.chain.pools import v2_pair_address, v3_pool_address
from mev_common.executor import ExecuteCall, decode_execute, encode_execute
from mev_common.messages import Bundle, Outcome
from mev_common.settings import STRATEGY_NAMES, Settings, StrategySettings

from services.submit.fees import FeeRefusal, bundle_fees
from services.submit.limits import Limits, Spend, send_refusal


@dataclass(frozen=True)
class KnownFactory:
    name: str
    factory: str
    init_code_hash: str
    fee_bps: int


@dataclass(frozen=True)
class Policy:
    """What submit may sign, from the config and the deployment (never from a message)."""

    chain_id: int
    executor: str
    profit_tokens: frozenset[str]
    factories: tuple[KnownFactory, ...]
    strategies: Mapping[str, StrategySettings | None]
    deadline_blocks: int
    priority_fee: int
    limits: Limits
    v3_factories: tuple[V3Dex, ...] = ()

    @classmethod
    def from_settings(cls, settings: Settings, contracts: ChainContracts) -> Policy:
        tokens = {t.lower() for t in settings.submit.profit_tokens}
        if contracts.weth:
            tokens.add(contracts.weth.lower())
        return cls(
            chain_id=settings.chain.chain_id,
            executor=contracts.executor,
            profit_tokens=frozenset(tokens),
            factories=tuple(
                KnownFactory(d.name, d.factory, d.init_code_hash, d.fee_bps)
                for d in contracts.dexes
            ),
            strategies={n: getattr(settings.strategies, n) for n in STRATEGY_NAMES},
            deadline_blocks=settings.detect.deadline_blocks,
            priority_fee=settings.submit.priority_fee,
            limits=Limits.from_settings(settings.submit),
            v3_factories=tuple(contracts.v3_dexes),
        )


@dataclass(frozen=True)
class ChainHead:
    """The latest block as submit read it from its RPC endpoints."""

    number: int
    next_base_fee: int


@dataclass(frozen=True)
class Refusal:
    reason: str
    trip: bool = False  # a loss limit: the emergency stop trips with this reason


@dataclass(frozen=True)
class SendPlan:
    """The exact transaction to sign (EIP-1559), less its nonce."""

    chain_id: int
    to: str
    data: str
    gas: int
    max_fee_per_gas: int
    max_priority_fee_per_gas: int
    value: int = 0
    pools: frozenset[str] = field(default_factory=frozenset)

    @property
    def max_cost(self) -> int:
        """The most this tx can spend on gas."""
        return self.gas * self.max_fee_per_gas

    def tx(self, nonce: int) -> dict[str, Any]:
        return {
            "type": 2,
            "chainId": self.chain_id,
            "nonce": nonce,
            "to": self.to,
            "value": self.value,
            "data": self.data,
            "gas": self.gas,
            "maxFeePerGas": self.max_fee_per_gas,
            "maxPriorityFeePerGas": self.max_priority_fee_per_gas,
        }


def decide(bundle: Bundle, policy: Policy, head: ChainHead, spend: Spend) -> Refusal | SendPlan:
    """The transaction to sign for `bundle` on top of `head`, or why none may be."""
    reason = _envelope_refusal(bundle, policy, head)
    if reason is not None:
        return Refusal(reason)
    try:
        call = decode_execute(bytes.fromhex(bundle.data[2:]))
    except Exception as exc:  # eth-abi raises its own errors for truncated or odd data
        return Refusal(f"data is not an executor call: {exc}")
    strategy = policy.strategies[bundle.strategy]
    assert strategy is not None  # _envelope_refusal refused a disabled strategy
    reason = _calldata_refusal(bundle, call, strategy) or _route_refusal(call, policy)
    if reason is not None:
        return Refusal(reason)
    fees = bundle_fees(
        next_base=head.next_base_fee,
        bundle_cap=bundle.max_fee_per_gas,
        strategy_cap=strategy.max_gas_price,
        default_priority=policy.priority_fee,
        bundle_priority=bundle.max_priority_fee_per_gas,
        victim_priority=bundle.victim_priority_fee if bundle.victim_tx_hash else None,
        victim_max_fee=bundle.victim_max_fee_per_gas if bundle.victim_tx_hash else None,
        bid_max_fee=bundle.bid_max_fee_per_gas,
    )
    if isinstance(fees, FeeRefusal):
        return Refusal(fees.reason)
    plan = SendPlan(
        chain_id=policy.chain_id,
        to=policy.executor,
        data=bundle.data,
        gas=bundle.gas_limit,
        max_fee_per_gas=fees.max_fee_per_gas,
        max_priority_fee_per_gas=fees.max_priority_fee_per_gas,
        pools=frozenset(hop.pair for hop in call.hops),
    )
    if call.min_profit < plan.max_cost:
        return Refusal(
            f"calldata minProfit {call.min_profit} is below the gas it may cost "
            f"({plan.gas} gas x {plan.max_fee_per_gas} wei = {plan.max_cost}): "
            "the trade could land at a net loss"
        )
    over = send_refusal(policy.limits, spend, plan.max_cost)
    if over is not None:
        return Refusal(over, trip=True)
    return plan


def _envelope_refusal(bundle: Bundle, policy: Policy, head: ChainHead) -> str | None:
    """The transaction fields and the bundle's claims, before decoding the calldata.

    A tx sent now lands in block head + 1 at the earliest, so a deadline below that is stale;
    a deadline beyond head + deadline_blocks was not computed on a recent block."""
    if bundle.chain_id != policy.chain_id:
        return f"bundle for chain {bundle.chain_id}, this submitter signs for {policy.chain_id}"
    if bundle.to is None or bundle.data in ("", "0x"):
        return "bundle has no executor call (to/data missing)"
    if bundle.to != policy.executor:
        return f"bundle.to {bundle.to} is not the configured executor {policy.executor}"
    if bundle.value != 0:
        return f"bundle.value is {bundle.value} wei: an executor call never carries value"
    strategy = policy.strategies.get(bundle.strategy)
    if strategy is None or not strategy.enabled:
        return f"strategy {bundle.strategy} is not enabled"
    if bundle.gas_limit <= 0:
        return "bundle has no gas limit"
    if bundle.gas_limit > strategy.gas_limit:
        return (
            f"gas limit {bundle.gas_limit} above strategies.{bundle.strategy}.gas_limit "
            f"{strategy.gas_limit}"
        )
    if bundle.deadline_block <= 0:
        return "bundle has no deadline block"
    if head.number + 1 > bundle.deadline_block:
        return f"deadline block {bundle.deadline_block} passed (head {head.number})"
    if bundle.block_number < head.number:
        # proven on a state the chain has left (simulate drops an opportunity not at its head
        # for the same reason; this one reached us after the next block): a block trade lands
        # behind swaps detect stopped checking it against at the new block, a backrun behind a
        # victim the new block may have mined (bench's backrun flow, lanes 3: one of each,
        # proven on block N, sent at N + 1, reverted)
        return f"proven on block {bundle.block_number}, head is {head.number}: its state is gone"
    if bundle.deadline_block > head.number + policy.deadline_blocks:
        return (
            f"deadline block {bundle.deadline_block} is more than detect.deadline_blocks "
            f"({policy.deadline_blocks}) past the chain head {head.number}"
        )
    if bundle.net_profit_wei <= 0:
        return f"net profit {bundle.net_profit_wei} is not positive"
    if bundle.simulated_profit <= 0:
        return f"simulated profit {bundle.simulated_profit} is not positive"
    token = (bundle.profit_token or "").lower()
    if token not in policy.profit_tokens:
        return f"profit token {bundle.profit_token} is not allowlisted (submit.profit_tokens)"
    if (bundle.victim_sender is None) != (bundle.victim_nonce is None) or (
        bundle.victim_sender is not None and bundle.victim_tx_hash is None
    ):
        return "victim_sender and victim_nonce come together, and only with victim_tx_hash"
    return None


def _calldata_refusal(bundle: Bundle, call: ExecuteCall, strategy: StrategySettings) -> str | None:
    """The calldata must say exactly what the bundle claims (its numbers were what simulate
    proved), and be a closed cycle the strategy allows."""
    hops = call.hops
    if encode_execute(hops, call.amount_in, call.min_profit, call.flash).hex() != bundle.data[2:]:
        return "data is not an executor call: bytes beyond the encoded execute arguments"
    if not 2 <= len(hops) <= strategy.max_hops:
        return f"{len(hops)} hops; strategies.{bundle.strategy}.max_hops is {strategy.max_hops}"
    if call.min_profit < 1:
        return "calldata minProfit is 0: the chain would not enforce a profit"
    if call.min_profit != bundle.min_profit:
        return f"calldata minProfit {call.min_profit} is not the bundle's {bundle.min_profit}"
    if call.min_profit > bundle.simulated_profit:
        return (
            f"calldata minProfit {call.min_profit} above the simulated profit "
            f"{bundle.simulated_profit}"
        )
    if call.flash != bundle.flash:
        return f"calldata flash={call.flash} is not the bundle's flash={bundle.flash}"
    if bundle.profit_token is None or hops[0].token_in.lower() != bundle.profit_token.lower():
        return f"profit token {bundle.profit_token} is not the first hop's input {hops[0].token_in}"
    for i, hop in enumerate(hops):
        following = hops[(i + 1) % len(hops)]
        if hop.token_out != following.token_in:
            return f"hop {i} ends in {hop.token_out}, hop {(i + 1) % len(hops)} starts with " + (
                f"{following.token_in}: not a closed cycle"
            )
    return None


# CREATE2 addresses are pure functions of their arguments, and a run trades through a few
# hundred pools at most: each is derived once (two keccaks and a checksum, ~30 us a call, three
# factories a hop), not per bundle on the tick-to-trade path.
_v2_pair = lru_cache(maxsize=8192)(v2_pair_address)
_v3_pool = lru_cache(maxsize=8192)(v3_pool_address)


def _route_refusal(call: ExecuteCall, policy: Policy) -> str | None:
    """Every pool is the CREATE2 pair of a configured factory for the hop's two tokens (a V3
    hop: the CREATE2 pool of a configured V3 factory for its two tokens and fee tier)."""
    for i, hop in enumerate(call.hops):
        if hop.kind == "v3":
            if not any(
                _v3_pool(f.factory, hop.token_in, hop.token_out, hop.fee_pips,
                                f.init_code_hash) == hop.pair
                for f in policy.v3_factories
            ):  # fmt: skip
                return (
                    f"hop {i} pool {hop.pair} is not the {hop.token_in}/{hop.token_out} "
                    f"{hop.fee_pips}-pip pool of any configured V3 factory"
                )
            continue
        match = next(
            (
                f
                for f in policy.factories
                if _v2_pair(f.factory, hop.token_in, hop.token_out, f.init_code_hash) == hop.pair
            ),
            None,
        )
        if match is None:
            return (
                f"hop {i} pool {hop.pair} is not the {hop.token_in}/{hop.token_out} pair of any "
                "configured factory"
            )
        if hop.fee_bps != match.fee_bps:
            return f"hop {i} fee {hop.fee_bps} bps; {match.name} pairs charge {match.fee_bps}"
    return None


def not_sent(bundle: Bundle, reason: str) -> Outcome:
    return Outcome(
        bundle_id=bundle.id,
        chain_id=bundle.chain_id,
        strategy=bundle.strategy,
        status="not_sent",
        reason=reason,
    )
