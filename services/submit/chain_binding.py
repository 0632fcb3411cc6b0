"""Which chain instance the ledger (and so the nonces and in-flight trades) belongs to.

Why: a devnet restarted is a new chain with the same chain id. Its nonces start at 0 again and
the old chain's in-flight trades can never be mined there, yet a ledger that only knew the chain
id kept tracking them (pools claimed, cancels re-sent for a nonce the new chain never reaches).
The genesis block hash tells two instances apart. On a mismatch `database.on_chain_change`
decides: `refuse` to start (exit 2, the default; any real chain) or `reset` (devnet only): the
old chain's in-flight trades are closed as `chain_reset` and published like any outcome.

The nonce manager holds no state of its own across restarts (it is synced from the chain and
the ledger's unresolved txs), so binding the ledger binds it too. The control bucket records
the genesis hash next to its values (`<chain>.genesis`), so an operator can see which chain
instance they were set on; the ledger decides, the KV record follows it. The submit lease
bucket holds no chain state: its entries live 3 s (TTL) and name only the holder.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Literal

from mev_common.chain.rpc_pool import RpcPool
from mev_common.control import control_key
from mev_common.kv import BROKER_ERRORS, KeyValue
from mev_common.messages import Outcome
from mev_common.runtime import RefuseToStart

from services.submit.ledger import Ledger

log = logging.getLogger("mev.submit.chain")

GENESIS = "genesis"  # control bucket key (per chain id) holding the genesis hash

Mode = Literal["reset", "refuse"]


@dataclass(frozen=True)
class ChainIdentity:
    chain_id: int
    genesis_hash: str


async def chain_identity(pool: RpcPool, chain_id: int) -> ChainIdentity:
    """The chain id (already verified by `wait_for_chain`) and block 0's hash."""
    block = await pool.call("eth_getBlockByNumber", ["0x0", False])
    if not isinstance(block, dict) or not block.get("hash"):
        raise RefuseToStart("the RPC returned no genesis block (eth_getBlockByNumber 0x0)")
    return ChainIdentity(chain_id, str(block["hash"]).lower())


def binding_action(
    recorded: tuple[int, str] | None, current: ChainIdentity, mode: Mode, ledger_path: str
) -> Literal["bind", "same", "reset"]:
    """Pure: what to do with a ledger bound to `recorded` on chain `current`; raises
    RefuseToStart (naming both genesis hashes and the switch) when the mode says refuse."""
    if recorded is None:
        return "bind"  # a new ledger, or one written before chains were recorded
    chain_id, genesis = recorded
    if (chain_id, genesis) == (current.chain_id, current.genesis_hash):
        return "same"
    if mode == "reset":
        return "reset"
    raise RefuseToStart(
        f"the ledger {ledger_path} belongs to chain {chain_id} with genesis {genesis}, but the "
        f"RPC serves chain {current.chain_id} with genesis {current.genesis_hash} (another "
        "chain instance, e.g. a restarted devnet). Its in-flight trades cannot be checked on "
        "this chain. Point database.path at this chain's ledger, or on a devnet set "
        "database.on_chain_change: reset to close them as chain_reset"
    )


def bind_ledger(ledger: Ledger, current: ChainIdentity, mode: Mode) -> list[Outcome]:
    """Bind the ledger to `current`; returns the outcomes a reset closed (to publish)."""
    recorded = ledger.binding()
    action = binding_action(recorded, current, mode, str(ledger.path))
    if action == "same":
        ledger.bind(current.chain_id, current.genesis_hash)
        return []
    if action == "bind":
        ledger.bind(current.chain_id, current.genesis_hash)
        log.info(
            "ledger bound to chain",
            extra={"fields": {"chain_id": current.chain_id, "genesis": current.genesis_hash}},
        )
        return []
    assert recorded is not None
    reason = (
        f"chain reset: this trade was sent on chain {recorded[0]} genesis {recorded[1]}; "
        f"the node now serves genesis {current.genesis_hash} (database.on_chain_change: reset)"
    )
    closed = ledger.close_for_chain_reset(current.chain_id, current.genesis_hash, reason)
    log.warning(
        "another chain instance: in-flight trades of the old one closed as chain_reset",
        extra={
            "fields": {
                "old_genesis": recorded[1],
                "new_genesis": current.genesis_hash,
                "closed": len(closed),
            }
        },
    )
    return closed


async def record_in_control_bucket(
    control_bucket: Callable[[], Awaitable[KeyValue]], current: ChainIdentity
) -> None:
    """Write the genesis hash next to the control values; warn when they were set on another
    chain instance (they still apply: an emergency stop holds until an operator clears it)."""
    key = control_key(current.chain_id, GENESIS)
    with contextlib.suppress(*BROKER_ERRORS):
        kv = await control_bucket()
        before: str | None = None
        with contextlib.suppress(Exception):  # KeyNotFound: never recorded
            entry = await kv.get(key)
            before = (entry.value or b"").decode() or None
        if before == current.genesis_hash:
            return
        if before is not None:
            log.warning(
                "control values were set on another chain instance; they still apply",
                extra={"fields": {"old_genesis": before, "new_genesis": current.genesis_hash}},
            )
        await kv.put(key, current.genesis_hash.encode())
