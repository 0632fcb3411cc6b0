"""Opportunity -> proven Bundle, or a counted reason to drop it. Synchronous: the EVM is local.

Runs on the warm EVM (warm.py): the victim first for a backrun, then the Executor call from
the bot address with `minProfit` 0 to measure the exact profit and gas; if the decision passes,
the final calldata (with `minProfit` = share of the profit, at least the gas limit's cost plus
the strategy minimum) runs once more, so the bundle's gas is that of the bytes submit will sign.
"""

from __future__ import annotations

from dataclasses import dataclass

from mev_common.executor import ExecHop, encode_execute
from mev_common.messages import Bundle, Opportunity, PendingTx, bundle_id_for
from mev_common.settings import Settings, StrategySettings
from pyrevm import EVM

from services.simulate.decision import decide
from services.simulate.engine import SimResult, TxSpec, run_after, run_bundle, victim_effects
from services.simulate.quarantine import Quarantine
from services.simulate.warm import WarmEvm

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


bundle_id = bundle_id_for


def victim_tx(victim: PendingTx) -> TxSpec:
    data = bytes.fromhex(victim.input.removeprefix("0x"))
    return TxSpec(victim.sender, victim.to or "", data, victim.value, victim.gas)


def victim_queued(evm: EVM, victim: PendingTx) -> bool:
    """True when the victim is not its sender's next transaction at the head: another of its
    sender's txs goes first (one detect never saw, e.g. a V3 router swap), whatever its tip, so
    the victim lands after our backrun and the backrun reverts (seen in a chaos run: our tx
    second in the block, the victim seventh, behind its sender's earlier swap)."""
    return int(evm.basic(victim.sender).nonce) != victim.nonce


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

    def simulate(self, opp: Opportunity, now: float) -> Verdict:
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
        if opp.victim is not None and self.warm.evm is not None:
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
        # carried_slots knows V2 pairs' storage only: a V3 route takes the one-journal fallback
        v2_only = all(h.kind == "v2" for h in opp.hops)
        pools = [(h.pool, h.token_in, h.token_out) for h in opp.hops]
        carried = self.warm.carried_slots(pools) if v2_only else None

        effects: list[list[int] | SimResult] = []  # the victim's, run once for both runs

        def run(spec: TxSpec) -> SimResult:
            assert evm is not None and opp.profit_token is not None
            if victim is not None and carried is not None:
                if not effects:
                    effects.append(victim_effects(evm, victim, carried))
                after = effects[0]
                if isinstance(after, SimResult):
                    return after
                return run_after(evm, spec, opp.profit_token, executor, carried, after)
            # a token not prefetched yet: victim and tx in one journal (gas a little low for a
            # backrun, which decision's BACKRUN_COLD_BIAS covers)
            return run_bundle(evm, spec, opp.profit_token, executor, victim)

        result = run(tx)
        if result.victim_failed:
            return Verdict("victim_reverted", None, result, tx, victim)
        if not result.success:
            self.strike(opp, result, now)
            name = result.revert.name if result.revert else "unknown"
            return Verdict(f"reverted:{name}", None, result, tx, victim)
        decision = decide(opp, strategy, result.profit, result.gas_used)
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
        check = decide(opp, strategy, final.profit, final.gas_used)
        if not check.ok:
            return Verdict(check.reason, None, final, final_tx, victim)
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
            deadline_block=opp.deadline_block,
        )
        return Verdict("published", bundle, final, final_tx, victim)

    def strike(self, opp: Opportunity, result: SimResult, now: float) -> list[str]:
        addresses = [h.pool for h in opp.hops]
        addresses += [h.token_out for h in opp.hops if h.token_out != opp.profit_token]
        revert = result.revert
        if revert is not None and revert.name == "TransferFailed" and revert.args:
            token = str(revert.args[0])
            if token.lower() != (opp.profit_token or "").lower():
                addresses.append(_checksum(token))
        return self.quarantine.strike(addresses, now)


def _checksum(address: str) -> str:
    from eth_utils import to_checksum_address

    return to_checksum_address(address)
