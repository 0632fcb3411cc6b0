"""Which pools simulate prefetches, and again after a refork (prefetch_queue.py): a pool the
warm EVM's current database holds is never queued, one on its way is queued once, and a
refork (a new EVM, empty) queues every known pool again, the most recently wanted first. On
an RPC without forks (latest reads only) the reload after a refork reads every discovered pool
again itself: nothing is queued twice. No chain: pyrevm EVMs forked from a URL never asked."""

from __future__ import annotations

from mev_common.messages import Block

from services.simulate.engine import TxSpec
from services.simulate.prefetch import PoolProbe
from services.simulate.prefetch_queue import PrefetchQueue
from services.simulate.reference import AccountState
from services.simulate.warm import WarmEvm

A, B = "0x" + "a" * 40, "0x" + "b" * 40
P1, P2, P3 = ("0x" + c * 40 for c in "123")
HEAD = Block(chain_id=1, number=5, hash="0x" + "11" * 32, parent_hash="0x" + "22" * 32,
             timestamp=1_000)  # fmt: skip
TX = TxSpec("0x" + "f" * 40, P1, b"", 0, 100_000)


def queued(queue: PrefetchQueue) -> list[str]:
    out = []
    while not queue.queue.empty():
        out.append(queue.queue.get_nowait().pair)
    return out


def load(warm: WarmEvm, pair: str) -> None:
    """What a prefetch does when its trace is loaded (prefetch.prefetch_pool)."""
    assert warm.head is not None
    assert warm.load(warm.head, {pair: AccountState(0, 1, b"")}, {pair: (A, B)}, {})


def test_a_refork_queues_every_known_pool_again_most_recent_first() -> None:
    warm = WarmEvm("http://127.0.0.1:1", 1, "0x" + "e" * 40)  # never connected to
    queue = PrefetchQueue(warm)
    warm.on_fork = queue.forked
    warm.fork(HEAD)
    for pair in (P1, P2, P1, P3):  # P1 again while on its way: queued once
        queue.want(PoolProbe(pair, A, B))
    assert queued(queue) == [P1, P2, P3]
    for pair in (P1, P2, P3):
        load(warm, pair)
        queue.done(pair)
    queue.want(PoolProbe(P2, A, B))  # held by this EVM: nothing to do, but P2 is now the latest
    assert queued(queue) == [] and warm.loaded == {P1, P2, P3}
    warm.advance(HEAD.model_copy(update={"reorg": True}))
    assert warm.loaded == set() and warm.pair_tokens.keys() == {P1, P2, P3}  # known, not held
    assert queued(queue) == [P2, P3, P1] and queue.requeued == 3
    # a pool on its way when the EVM reforks is not queued twice (its load checks the head)
    warm.fork(HEAD, "V3 pool changed")
    assert queued(queue) == [] and queue.requeued == 3
    for pair in (P1, P2, P3):
        queue.done(pair)
    warm.fork(HEAD, "block diff not applied in time")
    assert queued(queue) == [P2, P3, P1] and queue.requeued == 6


def test_pools_remembered_are_bounded_least_recent_first_out() -> None:
    warm = WarmEvm("http://127.0.0.1:1", 1, "0x" + "e" * 40)
    queue = PrefetchQueue(warm, limit=2)
    warm.on_fork = queue.forked
    warm.fork(HEAD)
    for pair in (P1, P2, P3):
        queue.want(PoolProbe(pair, A, B))
        queue.done(pair)
    assert list(queue.known) == [P2, P3]
    queued(queue)
    warm.fork(HEAD, "reorg")
    assert queued(queue) == [P3, P2]


def test_latest_reads_only_leave_a_refork_to_the_reload() -> None:
    warm = WarmEvm(None, 1, "0x" + "e" * 40)
    queue = PrefetchQueue(warm)
    warm.on_fork = queue.forked
    warm.fork(HEAD)
    queue.want(PoolProbe(P1, A, B))
    assert queued(queue) == [P1]
    warm.pair_tokens[P1] = (A, B)  # discovered (latest_state.discover)
    warm.latest_state[P1] = AccountState(0, 1, b"")
    queue.done(P1)
    warm.fork(HEAD, "reorg")
    assert warm.reload_needed and queued(queue) == [] and queue.requeued == 0


def test_a_refork_forgets_all_that_describes_the_old_evms_database() -> None:
    """Every piece of warm state about what the EVM's database holds starts again with the
    new EVM; what is known of the chain that never changes (pairs' tokens, tokens' balance
    mappings) stays."""
    warm = WarmEvm("http://127.0.0.1:1", 1, "0x" + "e" * 40)
    warm.fork(HEAD)
    old = warm.evm
    warm.pending[HEAD.number] = {P2}  # a diff awaited: loads are marked with their block
    later = HEAD.model_copy(update={"number": 6})
    warm.head = later
    code = bytes.fromhex("602a60005260206000f3")
    assert warm.load(later, {P1: AccountState(0, 1, code, {0: 7})}, {P1: (A, B)}, {})
    warm.touched[TX] = [(P1, 0)]
    warm.dirty_v3.add(P3)
    assert warm.loaded and warm.codes.codes and warm.synced and warm.accounts_at
    warm.advance(later.model_copy(update={"reorg": True}))
    assert warm.evm is not old and warm.last_refork_reason == "reorg"
    assert (warm.loaded, warm.codes.codes, warm.synced, warm.accounts_at) == (set(), {}, {}, {})
    assert (warm.pending, warm.dirty_v3, warm.touched, warm.effects.entries) == ({}, set(), {}, {})
    assert warm.pair_tokens == {P1: (A, B)} and not warm.holds(P1)
