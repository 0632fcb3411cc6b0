"""What submit does with a bundle. Skeleton: nothing is ever sent; the outcome says why."""

from __future__ import annotations

from mev_common.messages import Bundle, Outcome

NOT_SENT_REASON = "pass-through skeleton: no executor call in bundle, nothing sent"


def outcome_for_unsendable(bundle: Bundle) -> Outcome:
    return Outcome(
        bundle_id=bundle.id,
        chain_id=bundle.chain_id,
        strategy=bundle.strategy,
        status="not_sent",
        reason=NOT_SENT_REASON,
    )
