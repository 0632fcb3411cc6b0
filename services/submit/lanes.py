"""Nonce lanes: which of our sender accounts a trade goes out on. The choice is pure.

The chain mines one account's txs in nonce order, so on one account a trade sent while a
cheaper trade of ours is unsettled lands behind it, and behind every tx bidding between the two,
which it was not proven behind (services/submit/conflicts.py): it is refused. With several
accounts (`keys.lanes`; lane 0 is the executor's owner, the others its traders) that rule holds
per lane: a trade goes on a lane where no unsettled trade would make it wait. A trade stacked on
earlier trades of ours (`Bundle.after_bundles`) must follow them in nonce order, as simulate
proved it: it goes on their lane, and is refused if they sit on different lanes (no one nonce
order puts it after all of them). Pool conflicts stay global (PoolClaims).

Among the lanes it may go on: one with a nonce free first, then one with no broadcast of ours
still unanswered (a trade on it would wait for that answer: a refused send gives its nonce back,
and a later nonce already taken would leave a gap no tx fills), then the one with the fewest
unsettled trades, then the lowest index (with one lane: exactly the single-key rule).

Simulate runs `execute` as the owner (lane 0); from a trader (lanes 1+) it costs exactly
TRADER_EXTRA_GAS more, so a trade on those lanes is priced and booked with that (`on_lane`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field

from mev_common.executor import TRADER_EXTRA_GAS
from mev_common.messages import Bundle

from services.submit.keys import Signer
from services.submit.nonces import NonceManager
from services.submit.trade_bundles import TradeBundles


def waits_behind(tips: Mapping[str, int], tip: int | None, bundle_id: str) -> str | None:
    """Why a trade bidding `tip` would wait behind one of `tips` (bundle -> priority fee, our
    unsettled trades on one nonce sequence), or None."""
    if tip is None:
        return None
    below = sorted(b for b, t in tips.items() if t < tip and b != bundle_id)
    if not below:
        return None
    return (
        f"our unsettled trade {below[0]} bids {tips[below[0]]} < {tip} wei/gas: "
        "this one (a later nonce) would land behind it and every tx bidding between"
    )


@dataclass(frozen=True)
class LaneLoad:
    """What the choice needs of one lane."""

    index: int
    tips: Mapping[str, int]  # our unsettled trades on this lane -> their priority fee
    nonce_blocked: str | None = None  # why no nonce can be taken on it now, or None
    sending: bool = False  # a broadcast on it awaits its answer (`Lane.unanswered`)


def choose_lane(
    bundle_id: str, tip: int, after: frozenset[str], lanes: Sequence[LaneLoad]
) -> int | str:
    """The lane index for a trade bidding `tip` standing on our trades `after`, or why none."""
    candidates = list(lanes)
    if after:
        holding = sorted({lane.index for lane in lanes if after & lane.tips.keys()})
        if len(holding) > 1:
            return (
                f"proven on top of our trades on lanes {holding}: no one nonce order puts it "
                "after all of them"
            )
        if holding:
            candidates = [lane for lane in lanes if lane.index == holding[0]]
    reasons: list[str] = []
    fit: list[LaneLoad] = []
    for lane in candidates:
        why = waits_behind(lane.tips, tip, bundle_id)
        if why is None:
            fit.append(lane)
        else:
            reasons.append(why)
    if not fit:
        return reasons[0]
    best = min(
        fit,
        key=lambda lane: (lane.nonce_blocked is not None, lane.sending, len(lane.tips), lane.index),
    )
    return best.index


def on_lane(bundle: Bundle, lane: int) -> Bundle:
    """`bundle` as sent from lane `lane`: on a trader's lane its gas (used and limit) is
    TRADER_EXTRA_GAS more and its net that gas at its fee cap less, as simulate would have
    found running it from that key; lane 0 (the owner, whom simulate ran it as) as it is."""
    if lane == 0:
        return bundle
    extra = TRADER_EXTRA_GAS
    return bundle.model_copy(
        update={
            "gas_limit": bundle.gas_limit + extra,
            "simulated_gas_used": bundle.simulated_gas_used + extra,
            "net_profit_wei": bundle.net_profit_wei - extra * bundle.max_fee_per_gas,
        }
    )


@dataclass
class Lane:
    """One sender account: its key, its own nonce sequence, the bundles of its trades in
    flight (read once each, for the tracking pass), and the trade whose broadcast awaits its
    answer (at most one: no nonce is taken on a lane while one does)."""

    index: int
    signer: Signer
    nonces: NonceManager
    bundles: TradeBundles = field(default_factory=TradeBundles)
    unanswered: str | None = None  # the tx hash whose broadcast awaits its answer
    answered: asyncio.Event = field(default_factory=asyncio.Event)  # set: none awaits one

    def __post_init__(self) -> None:
        self.answered.set()

    @property
    def address(self) -> str:
        return self.signer.address

    def sending(self, tx_hash: str) -> None:
        """`tx_hash` is being broadcast: the lane takes no nonce until `answer`."""
        self.unanswered = tx_hash
        self.answered.clear()

    def answer(self) -> None:
        """The broadcast was answered and what its answer means for the nonce is booked."""
        self.unanswered = None
        self.answered.set()


class UnknownSender(LookupError):
    """A ledger tx from an address that is none of the configured lanes' keys."""


class Lanes:
    """The configured lanes, in order; lane 0 is `keys.path`."""

    def __init__(self, signers: Sequence[Signer], max_in_flight: int) -> None:
        self.all = [Lane(i, s, NonceManager(max_in_flight)) for i, s in enumerate(signers)]
        self._by_address = {lane.address.lower(): lane for lane in self.all}

    def __iter__(self) -> Iterator[Lane]:
        return iter(self.all)

    def __getitem__(self, index: int) -> Lane:
        return self.all[index]

    def __len__(self) -> int:
        return len(self.all)

    def of(self, sender: str) -> Lane:
        """The lane that sent a tx; '' (a row written before lanes existed) is lane 0, the one
        key there was."""
        if not sender:
            return self.all[0]
        lane = self._by_address.get(sender.lower())
        if lane is None:
            raise UnknownSender(
                f"a tx of ours in flight was sent by {sender}, which is none of the keys.lanes "
                f"keys ({len(self.all)} lanes): configure that key's lane again until it settles"
            )
        return lane

    def loads(self, tips: Mapping[str, int], lane_of: Mapping[str, int]) -> list[LaneLoad]:
        """Each lane's unsettled trades (from PoolClaims' tips and lanes) and nonce state."""
        per: list[dict[str, int]] = [{} for _ in self.all]
        for bundle_id, tip in tips.items():
            per[lane_of.get(bundle_id, 0)][bundle_id] = tip
        return [
            LaneLoad(
                lane.index, per[lane.index], lane.nonces.blocked(), lane.unanswered is not None
            )
            for lane in self.all
        ]
