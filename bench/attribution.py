"""Why the bot left each block's residual: the pipeline's own records, block by block. Pure.

Scenario 6 says how much the bot leaves (bench.oracle.residual); this says why, so the largest
cause is the one fixed. A residual at the end of block N could only have been taken by a trade
in block N: a block opportunity on N-1's end state or a backrun of one of N's swaps, both
published with `block_number == N-1`. Of those through a pool of the oracle's best cycle (only
backruns when the gap was not open at N-1's end: a block opportunity cannot close a gap opened
in its own block), the furthest one got decides the cause, prefixed `backrun: ` or `block
opportunity: `, in pipeline order:

- `landed, gap remained`: our trade landed in N and a gap was still left (a later swap in N,
  or a trade through other pools of the cycle); `; also <cause>` names another opportunity's
  fate (e.g. the backrun of a later swap in N `superseded` by ours);
- `sent: <status>`: signed and sent, then reverted, dropped or replaced;
- `refused in submit: <reason>`: a `not_sent` outcome in the ledger;
- `dropped in simulate: <result>`: simulate's per-opportunity result (its DEBUG log line);
- otherwise no such opportunity was published: `below min profit` when the oracle's best net
  is under the strategy minimum, `gap opened in block, behind a V3 swap` when a user swap mined
  in N followed the same sender's V3 swap in N (detect drops a backrun behind an unseen earlier
  nonce), `gap opened in block, no backrun` when the cycle's gap was not open at N-1's end
  (only a backrun could close it), else `no opportunity published`.

Numbers and addresses in a reason are folded (`N`, `0x…`) so reasons group.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

# furthest stage first: the earliest of these an opportunity reached names the cause
STAGES = ("landed", "sent", "refused", "simulate")


@dataclass(frozen=True)
class OppRecord:
    """One published opportunity, and how far it got."""

    id: str
    block: int  # the state it was priced on (N-1 for a trade in N)
    pools: frozenset[str]
    backrun: bool
    sim_result: str | None = None  # simulate's result ("pass", "stale_timeout", ...)
    outcome: str | None = None  # the ledger's status for its bundle ("included", "not_sent"...)
    outcome_reason: str = ""
    outcome_block: int | None = None


@dataclass(frozen=True)
class BlockGap:
    """The oracle's residual at the end of `block` with the bot."""

    block: int
    net_wei: int
    pools: frozenset[str]  # the best cycle's pairs


def fold(reason: str) -> str:
    """A reason without its particulars: hex runs become 0x…, numbers N."""
    reason = re.sub(r"\d+", "N", re.sub(r"0x[0-9a-fA-F]+", "\0", reason))
    return reason.replace("\0", "0x…")[:90]


def _stage(opp: OppRecord, block: int) -> tuple[int, str]:
    if opp.outcome == "included" and opp.outcome_block == block:
        return 0, "landed, gap remained"
    if opp.outcome in ("included", "reverted", "dropped", "replaced"):
        status = opp.outcome if opp.outcome != "included" else "landed in another block"
        return 1, f"sent: {status}"
    if opp.outcome == "not_sent":
        return 2, f"refused in submit: {fold(opp.outcome_reason)}"
    if opp.outcome is not None:  # dry_run, chain_reset
        return 2, f"submit: {opp.outcome}"
    if opp.sim_result is not None:
        return 3, f"dropped in simulate: {opp.sim_result}"
    return 4, "published, no simulate record"


def cause(
    gap: BlockGap,
    opps: Iterable[OppRecord],
    min_profit_wei: int,
    open_before: bool,
    behind_v3: bool,
) -> str:
    """Why `gap` was left (see the module docstring). `open_before`: the same cycle's gap was
    left at the previous block's end too; `behind_v3`: a user swap mined in this block followed
    the same sender's V3 swap in it."""
    # a gap opened in this block can only be closed by a backrun: a block opportunity on the
    # block before (ours may even have landed in it) is not a cause
    reached = [
        (*_stage(o, gap.block), "backrun" if o.backrun else "block opportunity")
        for o in opps
        if o.block == gap.block - 1 and o.pools & gap.pools and (open_before or o.backrun)
    ]
    if reached:
        first = min(reached)
        others = sorted({f"{k}: {w}" for _, w, k in reached} - {f"{first[2]}: {first[1]}"})
        if first[0] == 0 and others:  # ours landed: say what became of the others
            return f"{first[2]}: {first[1]}; also {others[0]}"
        return f"{first[2]}: {first[1]}"
    if gap.net_wei < min_profit_wei:
        return "below min profit"
    if not open_before:
        v3 = "gap opened in block, behind a V3 swap"
        return v3 if behind_v3 else "gap opened in block, no backrun"
    return "no opportunity published"


def attribute(
    gaps: Sequence[BlockGap],
    opps: Sequence[OppRecord],
    min_profit_wei: int,
    v3_ahead_blocks: set[int],
) -> list[tuple[int, int, str]]:
    """(block, residual wei, cause) for every block with a residual."""
    by_block: dict[int, list[OppRecord]] = {}
    for o in opps:
        by_block.setdefault(o.block, []).append(o)
    left = {g.block: g for g in gaps if g.net_wei > 0}
    out = []
    for g in gaps:
        if g.net_wei <= 0:
            continue
        before = left.get(g.block - 1)
        open_before = before is not None and before.pools == g.pools
        why = cause(g, by_block.get(g.block - 1, []), min_profit_wei, open_before,
                    g.block in v3_ahead_blocks)  # fmt: skip
        out.append((g.block, g.net_wei, why))
    return out


def table(rows: Iterable[tuple[int, int, str]]) -> list[tuple[str, int, int]]:
    """(cause, blocks, summed wei), largest sum first."""
    sums: dict[str, list[int]] = {}
    for _, wei, why in rows:
        entry = sums.setdefault(why, [0, 0])
        entry[0] += 1
        entry[1] += wei
    return sorted(((k, n, w) for k, (n, w) in sums.items()), key=lambda r: -r[2])


def v3_ahead(mined: Mapping[int, Sequence[tuple[int, bool]]]) -> set[int]:
    """Blocks where a sender's V2 swap followed its own V3 swap: `mined[block]` lists
    (sender, is_v3) in mining order."""
    out = set()
    for block, swaps in mined.items():
        v3_senders: set[int] = set()
        for sender, is_v3 in swaps:
            if is_v3:
                v3_senders.add(sender)
            elif sender in v3_senders:
                out.add(block)
    return out
