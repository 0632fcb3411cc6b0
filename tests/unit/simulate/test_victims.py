"""Victim traces started when the pending swap is seen (services/simulate/victims.py): which
swaps get one (EarlyGate), that a loaded victim holds for its head only (VictimLoads), and how
an opportunity shares, redoes or refuses a trace (VictimTraces.load_victim)."""

from __future__ import annotations

import asyncio

from eth_abi import encode
from mev_common.messages import PendingTx

from services.simulate.prefetch import VictimLoads
from services.simulate.victims import FLOOR_TOKENS, EarlyGate, SizeFloors, VictimTraces

ROUTER = "0x" + "11" * 20
OTHER = "0x" + "22" * 20
WETH, USDC, DAI = "0x" + "44" * 20, "0x" + "55" * 20, "0x" + "66" * 20


def eth_swap(path: tuple[str, ...] = (WETH, USDC)) -> str:
    """Router02 swapExactETHForTokens(amountOutMin, path, to, deadline): the input is the value."""
    args = encode(["uint256", "address[]", "address", "uint256"], [1, list(path), OTHER, 2**40])
    return "0x7ff36ab5" + args.hex()


def token_swap(amount: int, path: tuple[str, ...]) -> str:
    """Router02 swapExactTokensForTokens(amountIn, amountOutMin, path, to, deadline)."""
    types = ["uint256", "uint256", "address[]", "address", "uint256"]
    return "0x38ed1739" + encode(types, [amount, 1, list(path), OTHER, 2**40]).hex()


def exact_input_single(amount: int, token_in: str, token_out: str) -> str:
    """SwapRouter exactInputSingle((tokenIn, tokenOut, fee, recipient, deadline, amountIn,
    amountOutMinimum, sqrtPriceLimitX96))."""
    types = ["(address,address,uint24,address,uint256,uint256,uint256,uint160)"]
    return (
        "0x414bf389" + encode(types, [(token_in, token_out, 500, OTHER, 2**40, amount, 1, 0)]).hex()
    )


def pending(
    n: int, to: str | None = ROUTER, data: str | None = None, value: int = 10**18
) -> PendingTx:
    return PendingTx.model_validate(
        {"chain_id": 1, "hash": "0x" + f"{n:064x}", "from": "0x" + "33" * 20, "to": to,
         "nonce": 0, "gas": 300_000, "input": eth_swap() if data is None else data,
         "value": value}
    )  # fmt: skip


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_gate_admits_router_swaps_within_rate() -> None:
    clock = Clock()
    gate = EarlyGate(2.0, frozenset({ROUTER.upper().replace("0X", "0x")}), 2, clock)
    assert not gate.admit(pending(1, to=OTHER))  # not a router: no victim of ours
    assert not gate.admit(pending(2, to=None))  # a deployment
    assert not gate.admit(pending(3, data="0x"))  # a plain transfer
    assert gate.admit(pending(4)) and gate.admit(pending(5))  # the burst: 2 tokens
    assert not gate.admit(pending(6))  # over the budget: traced when its opportunity comes
    clock.now += 0.5  # 1 token back at 2 a second
    assert gate.admit(pending(7)) and not gate.admit(pending(8))
    clock.now += 10.0
    assert gate.admit(pending(9)) and gate.admit(pending(10)) and not gate.admit(pending(11))


def test_a_burst_waits_for_slots_in_order() -> None:
    async def scenario() -> list[int]:
        gate = EarlyGate(100.0, frozenset({ROUTER}), max_in_flight=2)
        traces = Scripted(["loaded"] * 4, gate)
        hints = asyncio.ensure_future(_deliver(traces, [pending(n) for n in range(1, 5)]))
        await asyncio.sleep(0.01)
        started = traces.traces  # 2 running, the 3rd hint waits for a slot
        traces.release.set()
        await hints
        await asyncio.gather(*traces.victim_calls.values())
        return [started, traces.traces, gate.slots._value]

    assert asyncio.run(scenario()) == [2, 4, 2]


async def _deliver(traces: Scripted, txs: list[PendingTx]) -> None:
    for tx in txs:  # as the subscription does: one hint after the other
        await traces.on_pending(tx)


def test_floor_is_the_first_quartile_of_recent_victims() -> None:
    sizes = SizeFloors()
    for n in (5, 1, 8, 2, 7, 3, 6, 4):  # 8 victims of 1..8 ETH: the quartile is the 3rd smallest
        sizes.learn(pending(n, value=n * 10**18))
    assert sizes.floors == {WETH.lower(): 3 * 10**18}
    assert not sizes.likely(pending(20, value=3 * 10**18 - 1)) and sizes.likely(
        pending(21, value=3 * 10**18)
    )
    for n in range(30, 62):  # the window holds the last FLOOR_WINDOW (32) victims only
        sizes.learn(pending(n, value=10 * 10**18))
    assert sizes.floors == {WETH.lower(): 10 * 10**18}


def test_floors_learn_the_smallest_victim_per_input_token() -> None:
    sizes = SizeFloors()
    small, big = pending(1, value=10**17), pending(2, value=5 * 10**18)
    assert sizes.likely(small) and sizes.likely(big)  # no victim of WETH yet: trace every swap
    sizes.learn(pending(3, value=10**18))
    assert not sizes.likely(small) and sizes.likely(big) and sizes.likely(pending(4))
    sizes.learn(pending(5, value=3 * 10**18))  # a larger victim never raises the floor
    assert sizes.likely(pending(6, value=10**18))
    # per input token, in its own units; V3's SwapRouter decoded too
    usdc_small = pending(7, data=token_swap(50 * 10**6, (USDC, WETH)), value=0)
    assert sizes.likely(usdc_small)  # USDC has no floor yet
    sizes.learn(pending(8, data=exact_input_single(1_000 * 10**6, USDC, DAI), value=0))
    assert not sizes.likely(usdc_small)
    assert sizes.likely(pending(9, data=exact_input_single(2_000 * 10**6, USDC, WETH), value=0))
    assert sizes.floors == {WETH.lower(): 10**18, USDC.lower(): 1_000 * 10**6}
    assert not sizes.likely(pending(10, data="0xdeadbeef"))  # not a swap: no victim of ours
    assert not sizes.likely(pending(11, data="0x7ff36ab5" + "00" * 32))  # malformed


def test_floors_hold_a_bounded_number_of_tokens() -> None:
    sizes = SizeFloors()
    tokens = ["0x" + f"{n:040x}" for n in range(1, FLOOR_TOKENS + 2)]
    for n, token in enumerate(tokens):  # a hostile bus naming ever new input tokens
        sizes.learn(pending(n, data=token_swap(10**18, (token, USDC)), value=0))
    assert len(sizes.floors) == FLOOR_TOKENS and tokens[-1] not in sizes.floors
    assert sizes.likely(pending(99, data=token_swap(1, (tokens[-1], USDC)), value=0))


def test_gate_traces_only_swaps_at_their_floor() -> None:
    gate = EarlyGate(100.0, frozenset({ROUTER}))
    gate.sizes.learn(pending(1, value=10**18))
    assert not gate.admit(pending(2, value=10**18 - 1))
    assert gate.bucket is not None and gate.bucket.try_take() == 0  # no token spent on it
    assert gate.admit(pending(3, value=10**18))


def test_gate_off_at_rate_zero() -> None:
    gate = EarlyGate(0.0, frozenset({ROUTER}))
    assert gate.bucket is None and not gate.admit(pending(1))


def test_victim_loads_hold_for_their_head_only() -> None:
    loads = VictimLoads()
    assert loads.needed("0xa", forks=1, head=10)
    loads.done("0xa", ok=True)
    assert not loads.needed("0xa", forks=1, head=10)
    assert loads.needed("0xa", forks=1, head=11)  # a new head: its EOA state may have moved
    loads.done("0xa", ok=True)
    assert not loads.needed("0xa", forks=1, head=11)
    assert loads.needed("0xa", forks=2, head=11)  # a refork at the same head forgets too


class Scripted(VictimTraces):
    """load_victim's logic over scripted trace outcomes (no RPC, no EVM)."""

    def __init__(self, outcomes: list[str], gate: EarlyGate | None = None) -> None:
        self.outcomes = outcomes
        self.traces = 0
        self.victim_calls = {}
        self.early = gate
        self.release = asyncio.Event()

    async def trace_victim(self, victim: PendingTx) -> str:
        self.traces += 1
        await self.release.wait()
        return self.outcomes.pop(0)


def test_opportunity_shares_the_early_trace() -> None:
    async def scenario() -> tuple[bool, bool, int, int]:
        gate = EarlyGate(10.0, frozenset({ROUTER}))
        traces = Scripted(["loaded"], gate)
        victim = pending(1)
        await traces.on_pending(victim)  # seen: the trace starts at once
        assert gate.slots._value == 1 and traces.traces == 0  # scheduled, not yet run
        first = asyncio.ensure_future(traces.load_victim(victim))
        second = asyncio.ensure_future(traces.load_victim(victim))  # another cycle, same victim
        await asyncio.sleep(0)
        traces.release.set()
        a, b = await first, await second
        await asyncio.sleep(0)
        return a, b, traces.traces, gate.slots._value

    assert asyncio.run(scenario()) == (True, True, 1, 2)  # one trace for all three


def test_a_trace_a_block_overtook_is_redone_once_and_unfunded_drops() -> None:
    async def run(outcomes: list[str]) -> tuple[bool, int]:
        traces = Scripted(outcomes)
        traces.release.set()
        ok = await traces.load_victim(pending(1))
        return ok, traces.traces

    assert asyncio.run(run(["moved", "loaded"])) == (True, 2)
    assert asyncio.run(run(["moved", "unfunded"])) == (False, 2)
    assert asyncio.run(run(["unfunded"])) == (False, 1)
    assert asyncio.run(run(["timeout"])) == (True, 1)  # lazily read, as without the trace
    assert asyncio.run(run(["moved", "moved", "loaded"])) == (True, 2)  # once, not forever
