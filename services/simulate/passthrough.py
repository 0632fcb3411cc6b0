"""Pass-through simulation of the platform skeleton: every opportunity becomes a bundle with no
call in it (submit never sends such a bundle). The simulate issue replaces it with pyrevm."""

from __future__ import annotations

from mev_common.messages import Bundle, Opportunity


def bundle_for(opp: Opportunity) -> Bundle:
    return Bundle(
        id=f"bundle:{opp.id}",
        opportunity_id=opp.id,
        chain_id=opp.chain_id,
        strategy=opp.strategy,
        block_number=opp.block_number,
    )
