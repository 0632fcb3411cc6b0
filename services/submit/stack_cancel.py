"""Which trades stacked on one of ours to cancel once that one will not land. Pure.

A backrun proven on top of our earlier in-flight trades (`Bundle.after_bundles`) was proven on
two states only: every one of them landing first (the stack), or none of them (simulate's
`pays_alone` run). When one of them is withdrawn, cancelled, reverted, replaced or dropped, the
stack's state is gone. The stacked trade is then cancelled (a 21k-gas self-transfer on its nonce
at a bumped fee, about a tenth of a ~200k-gas revert), unless simulate proved it still pays
minProfit without them AND none of them can land any more (the state is then exactly the one
it was proven on; keeping it keeps its profit, a cancel would spend gas to forgo it). A cancelled
trade is itself a base that will not land: trades stacked on it follow, in nonce order (a base
always holds a lower nonce than what stands on it, so each is decided after its bases). A trade
whose nonce the chain already counts is mined (or replaced): nothing can be cancelled there.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class Stacked:
    """An in-flight trade of ours standing on earlier trades of ours."""

    bundle_id: str
    nonce: int
    after: frozenset[str]  # the bundle ids it was proven on top of
    pays_alone: bool = False  # simulate: its bytes pay minProfit without any of `after`
    cancelled: bool = False  # a cancel of it is already out (withdrawn, past its deadline)


def stacked_to_cancel(
    failed: str,
    trades: Iterable[Stacked],
    *,
    mined_nonce: int,
    gone: Iterable[str] = (),
) -> list[str]:
    """The bundle ids to cancel, in nonce order, now that our trade `failed` will not land.
    `gone` are other trades of ours known not to land (withdrawn, settled not included);
    `mined_nonce` is the chain's confirmed tx count of our address."""
    trades = sorted(trades, key=lambda t: t.nonce)
    down = {failed, *gone} | {t.bundle_id for t in trades if t.cancelled}
    out: list[str] = []
    for t in trades:
        if t.cancelled or t.nonce < mined_nonce or not t.after & down:
            continue
        if t.pays_alone and t.after <= down:
            continue  # meets exactly the state simulate proved it pays on
        out.append(t.bundle_id)
        down.add(t.bundle_id)
    return out
