"""Pass-through detection of the platform skeleton: one opportunity per trigger, no search.

It proves the bus contract (ids, headers, exactly-once) before any AMM logic exists. The
detect issue replaces it with pool state, exact V2 math and the cycle search. Ids are derived
from the trigger, so a redelivered trigger republishes the same id and JetStream dedups it.
"""

from __future__ import annotations

from mev_common.messages import Block, Opportunity, PendingTx

ZERO_HASH = "0x" + "00" * 32


def opportunity_for_pending(tx: PendingTx, head: Block | None) -> Opportunity:
    return Opportunity(
        id=f"backrun:{tx.hash}",
        chain_id=tx.chain_id,
        strategy="backrun",
        trigger=tx.hash,
        block_number=head.number if head else 0,
        block_hash=head.hash if head else ZERO_HASH,
    )


def opportunity_for_block(block: Block) -> Opportunity:
    return Opportunity(
        id=f"cyclic_arbitrage:{block.hash}",
        chain_id=block.chain_id,
        strategy="cyclic_arbitrage",
        trigger=block.hash,
        block_number=block.number,
        block_hash=block.hash,
    )
