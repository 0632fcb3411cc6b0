"""Tracking decisions, key loading and the P&L summary, without a chain or NATS."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from eth_account import Account
from mev_common.messages import Bundle, Outcome
from mev_common.settings import KeySettings

from services.submit.keys import KeyLoadError, load_signer
from services.submit.ledger import Ledger
from services.submit.ledger_records import TxRecord
from services.submit.pnl import pnl_summary
from services.submit.profit import ARBITRAGE_TOPIC, TRANSFER_TOPIC, realized_from_receipt
from services.submit.tracking import Cancel, CheckPool, Settle, Wait, after_pool_check, next_step

KEY = "0x" + "11" * 32
EXECUTOR = "0x" + "ee" * 20
TOKEN = "0x" + "aa" * 20
PAIR = "0x" + "bb" * 20


def trade(**kw: object) -> TxRecord:
    values: dict[str, object] = {
        "hash": "0x" + "01" * 32,
        "bundle_id": "b1",
        "kind": "trade",
        "nonce": 4,
        "max_fee_per_gas": 10,
        "max_priority_fee_per_gas": 1,
        "gas_limit": 300_000,
        "deadline_block": 100,
        "raw": "0x",
        "state": "sent",
        "created_at": 1000.0,
        "sent_at": 1000.0,
    }
    values.update(kw)
    return TxRecord(**values)  # type: ignore[arg-type]


def step(t: TxRecord, cancels: list[TxRecord], receipts: dict, **kw: object) -> object:
    args: dict[str, object] = {"head": 99, "mined_nonce": 4, "now": 1001.0, "receipt_timeout_s": 30}
    args.update(kw)
    return next_step(t, cancels, receipts, **args)  # type: ignore[arg-type]


def test_tracking_settles_waits_and_cancels() -> None:
    t = trade()
    c = trade(hash="0x" + "02" * 32, kind="cancel", sent_at=1001.0)
    assert step(t, [], {t.hash: None}) == Wait()
    assert isinstance(s := step(t, [], {t.hash: {"status": "0x1"}}), Settle)
    assert s.status == "included"
    assert step(t, [], {t.hash: {"status": "0x0"}}).status == "reverted"  # type: ignore[union-attr]
    assert step(t, [], {t.hash: None}, head=100) == Cancel(t)
    assert step(t, [c], {t.hash: None, c.hash: None}, head=101) == Wait()
    assert step(t, [c], {t.hash: None, c.hash: None}, head=101, now=1031.0) == CheckPool()
    replaced = step(t, [c], {t.hash: None, c.hash: {"status": "0x1"}}, head=101)
    assert isinstance(replaced, Settle) and (replaced.status, replaced.mined) == ("replaced", c)
    other = step(t, [], {t.hash: None}, mined_nonce=5)
    assert isinstance(other, Settle) and (other.status, other.mined) == ("replaced", None)


def test_a_withdrawn_trade_without_a_cancel_is_cancelled_before_its_deadline() -> None:
    """The retry of a withdrawal whose cancel was not sent (emergency stop, RPC down)."""
    t = trade()
    c = trade(hash="0x" + "02" * 32, kind="cancel", sent_at=1001.0)
    assert step(t, [], {t.hash: None}, head=50, withdrawn=True) == Cancel(t)
    assert step(t, [c], {t.hash: None, c.hash: None}, head=50, withdrawn=True) == Wait()
    assert step(t, [], {t.hash: None}, head=50) == Wait()
    gone = step(t, [c], {t.hash: None, c.hash: {"status": "0x1"}}, head=50, withdrawn=True)
    assert isinstance(gone, Settle) and gone.reason.startswith("cancelled (withdrawn): nonce 4")
    mined = step(t, [], {t.hash: {"status": "0x1"}}, head=50, withdrawn=True)
    assert isinstance(mined, Settle) and mined.status == "included"


def test_a_trade_whose_nonce_can_never_be_reached_is_dropped_not_cancelled_forever() -> None:
    t = trade(nonce=7)
    c = trade(hash="0x" + "02" * 32, kind="cancel", nonce=7)
    args: dict[str, object] = {"mined_nonce": 4, "receipt_timeout_s": 30}
    # the node still has the cancel and our nonces 4..6 are in flight: outbid it again
    again = after_pool_check(t, [c], known=True, held_nonces={4, 5, 6, 7}, **args)  # type: ignore[arg-type]
    assert again == Cancel(c)
    # known, but nothing of ours below nonce 7 and the chain is at 4: the gap never fills
    gap = after_pool_check(t, [c], known=True, held_nonces={7}, **args)  # type: ignore[arg-type]
    assert isinstance(gap, Settle) and (gap.status, gap.mined) == ("dropped", None)
    assert gap.reason.startswith("nonce 7 is above the chain's count 4 with no tx of ours")
    # unknown to the node: dropped, nonce freed
    gone = after_pool_check(t, [c], known=False, held_nonces={7}, **args)  # type: ignore[arg-type]
    assert isinstance(gone, Settle) and gone.status == "dropped"
    assert "nonce 7 freed (chain count 4)" in gone.reason


def _write(tmp: Path, text: str, mode: int = 0o600) -> KeySettings:
    path = tmp / "k"
    path.write_text(text)
    path.chmod(mode)
    return KeySettings(path=str(path))


def test_hex_key_with_whitespace_and_prefix_loads_and_never_shows(tmp_path: Path) -> None:
    signer = load_signer(_write(tmp_path, f"  {KEY}\n"))
    assert signer.address == Account.from_key(KEY).address
    assert KEY[2:] not in repr(signer) + str(signer)


def test_keystore_with_password_from_env_or_file(tmp_path: Path) -> None:
    keystore = json.dumps(Account.encrypt(KEY, "pw", kdf="pbkdf2", iterations=2))
    cfg = _write(tmp_path, keystore).model_copy(update={"password_env": "MEV_TEST_PW"})
    assert load_signer(cfg, {"MEV_TEST_PW": "pw"}).address == Account.from_key(KEY).address
    with pytest.raises(KeyLoadError, match=r"\$MEV_TEST_PW \(keys.password_env\) is not set"):
        load_signer(cfg, {})
    with pytest.raises(KeyLoadError, match="wrong keystore password"):
        load_signer(cfg, {"MEV_TEST_PW": "nope"})
    pw = tmp_path / "pw"
    pw.write_text("pw\n")
    pw.chmod(0o600)
    cfg = cfg.model_copy(update={"password_env": None, "password_file": str(pw)})
    assert load_signer(cfg, {}).address == Account.from_key(KEY).address


def test_group_readable_key_is_refused(tmp_path: Path) -> None:
    with pytest.raises(KeyLoadError, match="has mode 0640; it must be 0600"):
        load_signer(_write(tmp_path, KEY, 0o640))


def _transfer(src: str, dst: str, amount: int) -> dict[str, object]:
    pad = "0x" + "00" * 12
    return {
        "address": TOKEN,
        "topics": [TRANSFER_TOPIC, pad + src[2:], pad + dst[2:]],
        "data": hex(amount),
    }


def test_realized_profit_from_transfer_logs_and_event() -> None:
    event = {
        "address": EXECUTOR,
        "topics": [ARBITRAGE_TOPIC, "0x" + "00" * 12 + TOKEN[2:]],
        "data": "0x" + (500).to_bytes(32, "big").hex() + (7).to_bytes(32, "big").hex() + "00" * 32,
    }
    receipt = {
        "status": "0x1",
        "gasUsed": hex(100),
        "effectiveGasPrice": hex(3),
        "logs": [_transfer(EXECUTOR, PAIR, 500), _transfer(PAIR, EXECUTOR, 507), event],
    }
    realized = realized_from_receipt(receipt, EXECUTOR, TOKEN)
    assert (realized.profit, realized.event_profit, realized.gas_cost) == (7, 7, 300)
    reverted = realized_from_receipt({**receipt, "status": "0x0"}, EXECUTOR, TOKEN)
    assert (reverted.profit, reverted.gas_cost) == (0, 300)


def test_pnl_summary_counts_profit_and_gas(tmp_path: Path) -> None:
    db = tmp_path / "ledger.db"
    assert pnl_summary(db).outcomes == {}
    ledger = Ledger(db)
    for i, (status, profit, gas) in enumerate(
        [("included", 7, 300), ("reverted", 0, 200), ("not_sent", 0, 0), ("dry_run", 9, 0)]
    ):
        bundle = Bundle(
            id=f"b{i}", opportunity_id="o", chain_id=1, strategy="backrun", block_number=1,
            profit_token=TOKEN,
        )  # fmt: skip
        outcome = Outcome(
            bundle_id=bundle.id, chain_id=1, strategy="backrun", status=status,
            realized_profit=profit,
        )  # fmt: skip
        ledger.book(bundle, outcome, gas_cost=gas)
    ledger.close()
    s = pnl_summary(db)
    assert s.outcomes == {"included": 1, "reverted": 1, "not_sent": 1, "dry_run": 1}
    assert (s.realized_profit, s.would_be_profit, s.gas_spent_wei) == ({TOKEN: 7}, {TOKEN: 9}, 500)
    assert (s.success_rate, s.net_profit_wei(TOKEN), s.bundles) == (0.5, -493, 4)
    assert pnl_summary(db, strategy="cyclic_arbitrage").outcomes == {}
