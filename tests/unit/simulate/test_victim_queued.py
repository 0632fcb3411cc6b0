"""A backrun is sized on its victim running first; a victim that is not its sender's next
transaction at the head lands behind that sender's earlier one, after our backrun: dropped."""

from __future__ import annotations

from mev_common.messages import PendingTx
from pyrevm import EVM, AccountInfo

from services.simulate.simulator import victim_queued

SENDER = "0x" + "c1" * 20


def victim(nonce: int) -> PendingTx:
    return PendingTx(chain_id=31337, hash="0x" + "ee" * 32, sender=SENDER, nonce=nonce, gas=300_000)


def test_only_the_senders_next_transaction_is_backrun() -> None:
    evm = EVM()
    evm.insert_account_info(SENDER, AccountInfo(balance=10**18, nonce=5))
    assert not victim_queued(evm, victim(5))  # next: it runs first, then our backrun
    assert victim_queued(evm, victim(6))  # nonce 5 of its sender, unseen by us, goes first
    assert victim_queued(evm, victim(4))  # already used: it never lands


def test_the_check_leaves_the_sender_out_of_the_journal_so_a_new_trace_refreshes_it() -> None:
    """A plain evm.basic() kept the sender loaded: WarmEvm.load skips live accounts, so the
    nonce stayed at the first read and later victims of that user were dropped as queued."""
    evm = EVM()
    evm.insert_account_info(SENDER, AccountInfo(balance=10**18, nonce=5))
    assert not victim_queued(evm, victim(5))
    assert SENDER.lower() not in {a.lower() for a in evm.journal_state}
    evm.insert_account_info(SENDER, AccountInfo(balance=10**18, nonce=6))  # traced at the head
    assert not victim_queued(evm, victim(6))
