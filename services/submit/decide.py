"""Whether a bundle may be sent at all: the money-safety gate before fees, nonces and keys.

Every refusal becomes a `not_sent` outcome with this reason, so each bundle is accounted for.
"""

from __future__ import annotations

from mev_common.messages import Bundle, Outcome


def refusal_reason(bundle: Bundle, *, chain_id: int, executor: str, head: int) -> str | None:
    """None if the bundle may be sent on top of block `head`; else why not.

    A tx sent now lands in block head + 1 at the earliest, so a bundle whose deadline is
    below that is stale: its profit was proven on state that is gone."""
    if bundle.chain_id != chain_id:
        return f"bundle for chain {bundle.chain_id}, this submitter signs for {chain_id}"
    if bundle.to is None or bundle.data in ("", "0x"):
        return "bundle has no executor call (to/data missing)"
    if bundle.to != executor:
        return f"bundle.to {bundle.to} is not the configured executor {executor}"
    if bundle.gas_limit <= 0:
        return "bundle has no gas limit"
    if bundle.deadline_block <= 0:
        return "bundle has no deadline block"
    if head + 1 > bundle.deadline_block:
        return f"deadline block {bundle.deadline_block} passed (head {head})"
    if bundle.net_profit_wei <= 0:
        return f"net profit {bundle.net_profit_wei} is not positive"
    if bundle.simulated_profit <= 0:
        return f"simulated profit {bundle.simulated_profit} is not positive"
    return None


def not_sent(bundle: Bundle, reason: str) -> Outcome:
    return Outcome(
        bundle_id=bundle.id,
        chain_id=bundle.chain_id,
        strategy=bundle.strategy,
        status="not_sent",
        reason=reason,
    )
