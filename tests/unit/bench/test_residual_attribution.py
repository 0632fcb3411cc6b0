"""bench.attribution: each block's residual gets the cause of the furthest stage reached by an
opportunity through its cycle's pools, at the block before; hand-built cases, exact sums."""

from __future__ import annotations

from bench.attribution import BlockGap, OppRecord, attribute, fold, table, v3_ahead

P1, P2, P3 = "0xp1", "0xp2", "0xp3"
CYCLE = frozenset({P1, P2})
MIN = 10**14


def opp(
    block: int, pools: frozenset[str] = CYCLE, backrun: bool = False, **kw: object
) -> OppRecord:
    return OppRecord(f"o{block}{sorted(pools)}{kw}", block, pools, backrun, **kw)  # type: ignore[arg-type]


def test_furthest_stage_names_the_cause() -> None:
    gaps = [BlockGap(b, 10**16, CYCLE) for b in range(10, 16)]  # 10's gap opened in block 10
    opps = [
        opp(9, sim_result="pass", outcome="included", outcome_block=10),  # not a cause of 10's
        opp(9, backrun=True, sim_result="stale_timeout"),
        opp(
            9,
            backrun=True,
            sim_result="pass",
            outcome="not_sent",
            outcome_reason="pool 0xabc is in our unsettled trade bundle:0xdef",
        ),
        opp(10, sim_result="superseded"),
        opp(11, sim_result="pass", outcome="reverted"),
        opp(12, sim_result="pass", outcome="included", outcome_block=13),
        opp(13, frozenset({P3}), sim_result="stale_timeout"),  # other pools: not this gap's
    ]
    rows = attribute(gaps, opps, MIN, set())
    assert rows == [
        (10, 10**16, "backrun: refused in submit: pool 0x… is in our unsettled trade bundle:0x…"),
        (11, 10**16, "block opportunity: dropped in simulate: superseded"),
        (12, 10**16, "block opportunity: sent: reverted"),
        (13, 10**16, "block opportunity: landed, gap remained"),
        (14, 10**16, "no opportunity published"),  # open at 13's end too, nothing at 13
        (15, 10**16, "no opportunity published"),
    ]
    # ours landed and the backrun of a later swap through the same pools was superseded
    both = [
        opp(9, backrun=True, sim_result="pass", outcome="included", outcome_block=10),
        opp(9, backrun=True, sim_result="superseded"),
    ]
    assert attribute(gaps[:1], both, MIN, set()) == [
        (10, 10**16, "backrun: landed, gap remained; also backrun: dropped in simulate: superseded")
    ]
    # without the backruns, 10's gap (new in block 10) had no backrun, whatever landed in it
    assert attribute(gaps[:1], opps[:1], MIN, set()) == [
        (10, 10**16, "gap opened in block, no backrun")
    ]


def test_no_opportunity_split_by_min_profit_new_gap_and_v3() -> None:
    other = frozenset({P2, P3})
    gaps = [
        BlockGap(20, 5 * 10**13, CYCLE),  # below min profit
        BlockGap(21, 0, frozenset()),
        BlockGap(22, 10**16, CYCLE),  # nothing left at 21: opened in 22
        BlockGap(23, 10**16, other),  # another cycle than 22's: opened in 23, behind a V3 swap
        BlockGap(24, 10**16, other),  # still open: a block opportunity could have closed it
    ]
    rows = attribute(gaps, [], MIN, {23})
    assert rows == [
        (20, 5 * 10**13, "below min profit"),
        (22, 10**16, "gap opened in block, no backrun"),
        (23, 10**16, "gap opened in block, behind a V3 swap"),
        (24, 10**16, "no opportunity published"),
    ]
    assert table(rows) == [
        ("gap opened in block, no backrun", 1, 10**16),
        ("gap opened in block, behind a V3 swap", 1, 10**16),
        ("no opportunity published", 1, 10**16),
        ("below min profit", 1, 5 * 10**13),
    ]


def test_fold_and_v3_ahead() -> None:
    assert fold("proven on block 12, before our trade through 0xAb12 landed in block 13") == (
        "proven on block N, before our trade through 0x… landed in block N"
    )
    # block 5: sender 1's V2 swap follows its own V3 swap; block 6: the V3 swap comes after
    assert v3_ahead({5: [(1, True), (2, False), (1, False)], 6: [(1, False), (1, True)]}) == {5}
