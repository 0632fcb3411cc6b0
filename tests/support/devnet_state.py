"""The tests' deployed devnet: deployed once a session and chain shape, later anvils start from
its state dump (mev_ops.devnet.saved_state, shared with the bench's stacks)."""

from mev_ops.devnet.saved_state import deployed_anvil

__all__ = ["deployed_anvil"]
