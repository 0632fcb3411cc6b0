"""Opportunity -> proven Bundle, or a counted reason to drop it. Synchronous: the EVM is local.

Runs on the warm EVM (warm.py): behind the victim's effect for a backrun (run once a head and
shared by every backrun of it when it was traced: effects.py), the Executor call from the bot
address with `minProfit` 0 to measure the exact profit and gas; if the decision passes, the
final calldata (with `minProfit` = share of the profit, at least the gas limit's cost plus the
strategy minimum) runs once more, so the bundle's gas is that of the bytes submit will sign.
"""

from __future__ import annotations

import logging
from contextlib import ExitStack
from dataclasses import dataclass, field

from mev_common.executor import ExecHop, encode_execute
from mev_common.messages import Block, Bundle, Opportunity, PendingTx, bundle_id_for
from mev_common.settings import Settings, StrategySettings
from pyrevm import EVM

from services.simulate.decision import decide, fee_cap, gas_for_fee, stack_risk
from services.simulate.engine import (
    SimResult,
    TxSpec,
    account_nonce,
    carried_state,
    profit_balance,
    run_bundle,
    victim_effects,
)
from services.simulate.quarantine import Quarantine, struck_by
from services.simulate.stacking import (
    CARRY_BLOCKS,
    Plan,
    Queued,
    StackBook,
    next_base_bound,
    own_max_fee,
)
from services.simulate.warm import WarmEvm

log = logging.getLogger("mev.simulate")

CALL_GAS = 2_000_000  # gas given to the measuring call; the bundle's limit comes from its use


@dataclass(frozen=True)
class Verdict:
    """`bundle` when it passed; else `reason` (a metric label). `result` is the measuring run
    (None when dropped before simulating); `victim`/`tx` are what ran, for the reference."""

    reason: str
    bundle: Bundle | None = None
    result: SimResult | None = None
    tx: TxSpec | None = None
    victim: TxSpec | None = None
    plan: Plan | None = None  # what ran ahead of tx (stacking.py)
    # gas a backrun run in one journal with its victim under-reports, covered by the budget
    gas_slack: int = 0

    @property
    def plain(self) -> bool:
        """Nothing but its victim ran ahead of tx (the reference re-runs only [victim, tx])."""
        return self.plan is None or len(self.plan.ahead) <= 1


bundle_id = bundle_id_for


def victim_tx(victim: PendingTx) -> TxSpec:
    data = bytes.fromhex(victim.input.removeprefix("0x"))
    return TxSpec(victim.sender, victim.to or "", data, victim.value, victim.gas)


def victim_queued(evm: EVM, victim: PendingTx) -> bool:
    """True when the victim is not its sender's next transaction at the head: another of its
    sender's txs goes first (one detect never saw, e.g. a V3 router swap), whatever its tip, so
    the victim lands after our backrun and the backrun reverts (seen in a chaos run: our tx
    second in the block, the victim seventh, behind its sender's earlier swap)."""
    return account_nonce(evm, victim.sender) != victim.nonce


def _nonsense_fees(victim: PendingTx) -> bool:
    """A max fee under its own tip (a hostile bus: a node refuses such a tx)."""
    tip, cap = victim.max_priority_fee_per_gas, victim.max_fee_per_gas
    return tip is not None and cap is not None and cap < tip


def victim_priority_fee(victim: PendingTx, base_fee: int) -> int:
    if victim.max_priority_fee_per_gas is not None:
        return victim.max_priority_fee_per_gas
    return max(0, (victim.gas_price or 0) - base_fee)


@dataclass
class Simulator:
    settings: Settings
    warm: WarmEvm
    bot: str
    weth: str | None
    quarantine: Quarantine
    stacks: StackBook = field(init=False)  # this block's pending victims and trades of ours
    # backruns simulate refused, by opportunity id -> its block: a follow-on of one of them
    # meets its victim without it (follows_refused)
    refused: dict[str, int] = field(init=False, default_factory=dict)

    def __post_init__(self) -> None:
        self.stacks = StackBook(
            self.settings.simulate.stack_depth,
            bid_under=self.settings.simulate.bid_behind_victim_nonces,
        )

    def simulate(self, opp: Opportunity, now: float, book: StackBook | None = None) -> Verdict:
        """With `book`, a backrun runs on what it meets in its block (stacking.py: the pending
        victims and our trades ahead of it, which also checks the victim's nonce) and a
        published bundle joins the book; without, on [victim]."""
        if opp.victim is not None and _nonsense_fees(opp.victim):
            return Verdict("victim_fees_invalid")  # no node takes it; submit could not bid it
        verdict = self._planned(opp, now, book)
        if book is not None and verdict.bundle is not None:
            self.took(book, opp, verdict)
        if book is not None and opp.victim is not None and verdict.bundle is None:
            self.refused[opp.id] = opp.block_number
        if book is not None and opp.victim is not None and verdict.reason == "victim_reverted":
            if verdict.plain:
                book.forget(opp.block_number, opp.victim.hash)
        return verdict

    def _planned(self, opp: Opportunity, now: float, book: StackBook | None) -> Verdict:
        plan = self.plan(book, opp) if book is not None else None
        if isinstance(plan, str):
            return Verdict(plan)
        if opp.follows is not None and (plan is None or bundle_id(opp.follows) not in plan.after):
            # sized on the state after a trade of ours that is not under it: while that one
            # may still be published (not simulated yet) the state is unknown; once refused at
            # this block it never lands, and the follow-on is proven on what its plan meets
            if plan is None or not self.follows_refused(opp):
                return Verdict("follow_on_alone")
        return self._simulate(opp, now, plan)

    def follows_refused(self, opp: Opportunity) -> bool:
        """The backrun `opp` was sized behind was refused here at `opp`'s block (both come from
        one detection of one victim): it is never sent, so `opp` meets its victim without it."""
        return opp.follows is not None and self.refused.get(opp.follows) == opp.block_number

    def _simulate(self, opp: Opportunity, now: float, plan: Plan | None) -> Verdict:
        strategy: StrategySettings | None = getattr(self.settings.strategies, opp.strategy)
        if strategy is None or not strategy.enabled:
            return Verdict("strategy_disabled")
        if len(opp.hops) < 2 or opp.profit_token is None:
            return Verdict("no_path")
        wrong_token = self.weth is not None and opp.profit_token != self.weth
        if opp.profit_token != opp.hops[0].token_in or wrong_token:
            return Verdict("profit_not_weth")  # profit must be in wei to pay gas with it
        touched = [h.pool for h in opp.hops] + [h.token_out for h in opp.hops]
        if self.quarantine.blocked(touched, now):
            return Verdict("quarantined")
        if opp.strategy == "backrun" and opp.victim is None:
            return Verdict("no_victim")
        if opp.victim is not None and self.warm.evm is not None and plan is None:
            if victim_queued(self.warm.evm, opp.victim):
                return Verdict("victim_queued")
        self.warm.refresh([h.pool for h in opp.hops if h.kind == "v3"])
        evm = self.warm.evm
        assert evm is not None
        flash = self.settings.simulate.flash
        hops = [ExecHop.of(h) for h in opp.hops]
        executor = self.warm.executor
        tx = TxSpec(self.bot, executor, encode_execute(hops, opp.amount_in, 0, flash), 0, CALL_GAS)
        victim = victim_tx(opp.victim) if opp.victim is not None else None
        ahead = plan.ahead if plan is not None and victim is not None else victim
        # a victim run alone ahead, traced at the head: every slot it touches is carried (any
        # route), and its effect is the same for every backrun of it (effects.py: run once a
        # head). Else carried_slots (V2 pairs' storage only) for the txs ahead, run here; else
        # (a V3 route, a token not prefetched, behind other txs) the one-journal fallback
        txs_ahead = (ahead,) if isinstance(ahead, TxSpec) else ahead
        single = txs_ahead[0] if txs_ahead is not None and len(txs_ahead) == 1 else None
        carried = self.warm.carried_by([single]) if single is not None else None
        shared = carried is not None
        if carried is None and all(h.kind == "v2" for h in opp.hops):
            carried = self.warm.carried_slots([(h.pool, h.token_in, h.token_out) for h in opp.hops])

        # what the txs ahead leave in `carried`: the same for tx and final_tx, so both runs
        # share one victim run, one carried-state write each way and one balance read
        effects: list[list[int] | SimResult] = []
        start: list[int] = []  # the executor's profit-token balance on that state
        held = ExitStack()  # the carried state, from the first run to the end of the final

        def run(spec: TxSpec) -> SimResult:
            assert evm is not None and opp.profit_token is not None
            if ahead is not None and carried is not None:
                if not effects:
                    before = None
                    if shared and single is not None:
                        after, before = self.warm.effects.of(evm, single, carried)
                    else:
                        after = victim_effects(evm, ahead, carried)
                    effects.append(after)
                    if not isinstance(after, SimResult):
                        held.enter_context(carried_state(evm, carried, after, before))
                        start.append(profit_balance(evm, opp.profit_token, executor))
                if isinstance(effects[0], SimResult):
                    return effects[0]
                return run_bundle(evm, spec, opp.profit_token, executor, balance_before=start[0])
            # nothing known to carry (victim not traced): victim and tx in one journal (gas
            # low by ~28k a pool the victim moved: decision's BACKRUN_COLD_BIAS covers one)
            return run_bundle(evm, spec, opp.profit_token, executor, ahead)

        with held:
            result = run(tx)
            if result.victim_failed:
                return Verdict("victim_reverted", None, result, tx, victim)
            if not result.success:
                name = result.revert.name if result.revert else "unknown"
                if plan is not None and len(plan.ahead) > 1:
                    # detect sized it on [victim] alone; on the txs ahead it may lose: not the
                    # pools' fault (striking quarantined every pool of a busy block in scenario 6)
                    return Verdict(f"stack_reverted:{name}", None, result, tx, victim, plan)
                if plan is not None and opp.follows is not None:
                    # sized behind a trade of ours that was refused: mis-sized, not the pools'
                    # fault either (three such reverts once quarantined every USDC cycle)
                    return Verdict(f"follow_on_reverted:{name}", None, result, tx, victim, plan)
                struck = self.strike(opp, result, now)
                log.warning(
                    "simulation reverted",
                    extra={"fields": {
                        "opportunity": opp.id, "block": opp.block_number, "revert": name,
                        "args": [str(a) for a in (result.revert.args if result.revert else ())],
                        "pools": [h.pool for h in opp.hops], "amount_in": str(opp.amount_in),
                        "expected_profit": str(opp.expected_profit),
                        "victim": opp.victim.hash if opp.victim else None,
                        "ahead": len(plan.ahead) if plan is not None else None,
                        "head": self.warm.head.number if self.warm.head else None,
                        "quarantined": struck,
                    }},
                )  # fmt: skip
                return Verdict(f"reverted:{name}", None, result, tx, victim)
            # a plan bidding under the victim's max fee (stacking.py): gas at that bid
            priced = opp if plan is None or plan.bid is None else opp.model_copy(
                update={"max_fee_per_gas": plan.bid})  # fmt: skip
            decision = decide(priced, strategy, result.profit, result.gas_used)
            if not decision.ok:
                return Verdict(decision.reason, None, result, tx, victim)
            data = encode_execute(hops, opp.amount_in, decision.min_profit, flash)
            final_tx = TxSpec(self.bot, executor, data, 0, CALL_GAS)
            final = run(final_tx)
        if not final.success or final.profit != result.profit:
            return Verdict("final_mismatch", None, final, final_tx, victim)
        if final.gas_used > decision.gas_limit:
            return Verdict("final_mismatch", None, final, final_tx, victim)
        # The calldata carries `decision`'s minProfit, which covers `decision`'s gas limit at
        # the fee cap: the bundle keeps both; the final bytes' gas only confirms the net.
        check = decide(priced, strategy, final.profit, final.gas_used)
        if not check.ok:
            return Verdict(check.reason, None, final, final_tx, victim)
        pays_alone = False  # stacked on nothing: no earlier trade of ours to be without
        if plan is not None and plan.stacked:
            # our earlier trade may not land first (cancelled, withdrawn): the same bytes on
            # the state without ours either still pay minProfit or revert; that revert's gas
            # at the fee cap must not exceed what the trade nets when it lands
            alone = run_bundle(evm, final_tx, opp.profit_token, executor, plan.without_ours)
            cap, limit = decision.max_fee_per_gas, decision.gas_limit
            if stack_risk(alone, check.net_profit_wei, cap, limit) is not None:
                return Verdict("stack_risky", None, alone, final_tx, victim)
            pays_alone = alone.success
        env = self.warm.env
        base_fee = env.base_fee if env else 0
        priority = (
            victim_priority_fee(opp.victim, base_fee)
            if opp.victim is not None
            else self.settings.submit.priority_fee
        )
        bundle = Bundle(
            id=bundle_id(opp.id),
            opportunity_id=opp.id,
            chain_id=opp.chain_id,
            strategy=opp.strategy,
            block_number=opp.block_number,
            block_hash=opp.block_hash,
            to=executor,
            data="0x" + data.hex(),
            value=0,
            gas_limit=decision.gas_limit,
            flash=flash,
            profit_token=opp.profit_token,
            simulated_gas_used=final.gas_used,
            simulated_profit=final.profit,
            net_profit_wei=check.net_profit_wei,
            min_profit=decision.min_profit,
            max_fee_per_gas=decision.max_fee_per_gas,
            max_priority_fee_per_gas=min(priority, decision.max_fee_per_gas),
            victim_tx_hash=opp.victim.hash if opp.victim else None,
            victim_priority_fee=(victim_priority_fee(opp.victim, base_fee) if opp.victim else None),
            victim_sender=opp.victim.sender if opp.victim else None,
            victim_nonce=opp.victim.nonce if opp.victim else None,
            victim_max_fee_per_gas=opp.victim.fee_cap if opp.victim else None,
            bid_max_fee_per_gas=plan.bid if plan is not None else None,
            victim_seen_on=opp.victim.seen_on if opp.victim else None,
            deadline_block=opp.deadline_block,
            after_bundles=list(plan.after) if plan is not None else [],
            pays_alone=pays_alone,
        )
        # the one-journal fallback (run() above) leaves the victim's slots warm: the budget's
        # bias over the simulated gas is what the chain may charge on top
        exact = ahead is None or carried is not None
        slack = 0 if exact else gas_for_fee(final.gas_used, True, len(hops)) - final.gas_used
        return Verdict("published", bundle, final, final_tx, victim, plan, slack)

    def plan(self, book: StackBook, opp: Opportunity) -> Plan | str | None:
        """What a backrun meets in its block (stacking.py), or why it is dropped; None for a
        block opportunity. Registers its victim as pending at the opportunity's block."""
        evm, strategy = self.warm.evm, getattr(self.settings.strategies, opp.strategy, None)
        if opp.victim is None or evm is None or strategy is None:
            return None
        env = self.warm.env
        base = env.base_fee if env else 0
        v = opp.victim
        pools = frozenset(h.pool.lower() for h in opp.hops)
        victim = Queued(v.hash, v.sender, v.max_fee_per_gas or v.gas_price or 0, pools,
                        victim_tx(v), nonce=v.nonce)  # fmt: skip
        book.saw(opp.block_number, victim)
        for t in opp.ahead:  # its sender's lower nonces, which the chain mines first
            fee = t.max_fee_per_gas or t.gas_price or 0
            book.saw(opp.block_number, Queued(t.hash, t.sender, fee, frozenset(), victim_tx(t),
                                              nonce=t.nonce))  # fmt: skip
        # our max fee is the victim's (exact); without it 2 x next base + tip, estimated at the
        # head's (moves <= 1/8): a margin for that and for other txs' order
        book.margin = base // 4 + 1
        fee = own_max_fee(victim_priority_fee(v, base), base, fee_cap(opp, strategy), v.fee_cap)
        ours = Queued(bundle_id(opp.id), self.bot, fee, pools, victim.tx,
                      bundle_id(opp.id), nonce=1 << 62, behind=v.hash)  # fmt: skip
        nonces: dict[str, int] = {}

        def nonce_at_head(sender: str) -> int:
            if sender not in nonces:
                nonces[sender] = account_nonce(evm, sender)
            return nonces[sender]

        # a bid under the victim's lower nonces must leave a tip over the next base fee
        least = next_base_bound(base) + 1
        plan = book.plan(opp.block_number, victim, ours, nonce_at_head(v.sender), nonce_at_head,
                         least)  # fmt: skip
        if isinstance(plan, Plan) and plan.bid is not None and v.fee_cap is None:
            return "stack_order"  # a bid under a victim bidding nothing submit cannot sign
        return plan

    def took(self, book: StackBook, opp: Opportunity, verdict: Verdict) -> None:
        """A published bundle is one of our pending trades at its block."""
        bundle, tx = verdict.bundle, verdict.tx
        if bundle is None or tx is None:
            return
        env = self.warm.env
        base = env.base_fee if env else 0
        # own_max_fee bids a victim's fees; a block trade bids the configured tip itself
        victim_tip = bundle.victim_priority_fee
        priority = victim_tip if victim_tip is not None else self.settings.submit.priority_fee + 1
        fee = own_max_fee(priority, base, bundle.max_fee_per_gas, bundle.victim_max_fee_per_gas)
        pools = frozenset(h.pool.lower() for h in opp.hops)
        book.took(opp.block_number, Queued(bundle.id, self.bot, fee, pools, tx, bundle.id,
                                           0, bundle.victim_tx_hash))  # fmt: skip

    def on_block(self, block: Block) -> None:
        """A new head: the stack book keeps our trades whose victim missed it (stacking.py);
        refusals older than the book's carry are forgotten."""
        self.stacks.roll(block.number, {entry.tx_hash.lower() for entry in block.logs})
        old = block.number - CARRY_BLOCKS
        self.refused = {k: b for k, b in self.refused.items() if b >= old}

    def strike(self, opp: Opportunity, result: SimResult, now: float) -> list[str]:
        revert = result.revert
        hops = [(h.pool, h.token_out) for h in opp.hops]
        name, args = (revert.name, revert.args) if revert is not None else (None, ())
        return self.quarantine.strike(struck_by(hops, opp.profit_token, name, args), now)
