"""A backrun bids its victim's max fee and one wei under its effective tip (services/submit/
fees.py), to the wei.

Fee-ordered anvil mines by max fee per gas, builders by effective tip (min(tip, max fee - base)),
both ties in arrival order. With the victim's max fee a backrun ties it on anvil and, sent after
it, lands right after it and before any later tx bidding the same
(tests/integration/test_backrun_fee_order.py measures anvil); one wei under its effective tip,
a builder can never put it before the victim. The devnet flow's users cap their
max fee at tip + 1e6 wei: the old bid (tip - 1, max fee 2 x base + tip - 1, about tip + 13 wei)
let a later user with the victim's fees land between (a revert: gas lost)."""

from __future__ import annotations

import orjson
import pytest
from mev_common.messages import Bundle, MessageError, decode

from services.submit.fees import FeeRefusal, Fees, bundle_fees

GWEI = 10**9
TIP = 1_800_000_000
VICTIM_MAX = TIP + 10**6  # a devnet flow user's
BASE = 7  # the devnet's base fee (wei)


def fees(cap: int, victim_max: int = VICTIM_MAX, next_base: int = BASE) -> Fees | FeeRefusal:
    return bundle_fees(
        next_base=next_base,
        bundle_cap=cap,
        strategy_cap=50 * GWEI,
        default_priority=GWEI,
        victim_priority=TIP,
        victim_max_fee=victim_max,
    )


def effective_tip(f: Fees, base: int) -> int:
    return min(f.max_priority_fee_per_gas, f.max_fee_per_gas - base)


def test_a_backrun_bids_its_victims_max_fee_one_wei_under_its_tip() -> None:
    ours = fees(cap=VICTIM_MAX)  # detect's cap: the victim's max fee
    assert ours == Fees(max_fee_per_gas=1_801_000_000, max_priority_fee_per_gas=1_799_999_999)
    # before: one wei under the tip, max fee 2 x base + that: 999,987 wei/gas under the victim's
    old = bundle_fees(next_base=BASE, bundle_cap=2 * BASE + TIP, strategy_cap=50 * GWEI,
                      default_priority=GWEI, victim_priority=TIP)  # fmt: skip
    assert old == Fees(max_fee_per_gas=1_800_000_013, max_priority_fee_per_gas=1_799_999_999)


def test_never_above_the_victims_max_fee_whatever_the_cap() -> None:
    """Above it, anvil would mine ours first: a front-run of our own victim."""
    assert fees(cap=20 * GWEI) == Fees(1_801_000_000, 1_799_999_999)
    # a victim capping below 2 x base + tip: the old bid (2 x 7 + tip - 1) was above it; its
    # effective tip is min(tip, tip + 5 - 7) = tip - 2
    assert fees(cap=20 * GWEI, victim_max=TIP + 5) == Fees(1_800_000_005, 1_799_999_997)


def test_a_victim_whose_max_fee_binds_its_tip_is_bid_under_on_the_effective_tip() -> None:
    """max fee 1.8 gwei + 5 at base 1 gwei: the victim tips 0.8 gwei + 5 in effect; we one
    wei less (a tie there would trust arrival at every node we broadcast to)."""
    ours = fees(cap=20 * GWEI, victim_max=TIP + 5, next_base=GWEI)
    assert ours == Fees(1_800_000_005, 800_000_004)
    assert isinstance(ours, Fees) and effective_tip(ours, GWEI) == 800_000_004


def test_a_cap_under_the_victims_max_fee_that_still_pays_its_tip_is_sent() -> None:
    """The trade cannot afford the victim's max fee (detect kept its cap lower): no tie on
    anvil's max fee then, but still one wei under the victim's tip (builders)."""
    ours = fees(cap=TIP + 2 * BASE)
    assert ours == Fees(1_800_000_014, 1_799_999_999)
    assert isinstance(ours, Fees) and effective_tip(ours, BASE) == TIP - 1


def test_a_cap_that_cannot_pay_the_victims_tip_is_refused() -> None:
    assert isinstance(fees(cap=TIP + BASE - 1), Fees)  # leaves exactly tip - 1
    assert fees(cap=TIP + BASE - 2) == FeeRefusal(
        "backrun must tip 1799999999 wei/gas (one under its victim's effective tip), its fee "
        "cap 1800000005 leaves 1799999998 over the base fee 7: it would land behind txs it "
        "was not proven behind"
    )


def test_nonsense_victim_fees_are_refused() -> None:
    assert fees(cap=20 * GWEI, victim_max=TIP - 1) == FeeRefusal(
        "victim's max fee 1799999999 is below its priority fee 1800000000"
    )
    assert fees(cap=20 * GWEI, victim_max=TIP, next_base=TIP + 1) == FeeRefusal(
        "base fee 1800000001 above the victim's max fee 1800000000"
    )
    assert fees(cap=20 * GWEI, victim_max=TIP, next_base=TIP) == FeeRefusal(
        "victim tips 0 wei/gas over the base fee 1800000000: nothing to bid under"
    )


BUNDLE = {"v": 1, "id": "b", "opportunity_id": "o", "chain_id": 1, "strategy": "backrun",
          "block_number": 5, "victim_tx_hash": "0x" + "ab" * 32,
          "victim_priority_fee": str(TIP)}  # fmt: skip


def test_a_bundle_carries_the_victims_max_fee_exactly() -> None:
    bundle = decode(Bundle, orjson.dumps({**BUNDLE, "victim_max_fee_per_gas": str(VICTIM_MAX)}))
    assert bundle.victim_max_fee_per_gas == 1_801_000_000
    assert decode(Bundle, orjson.dumps(BUNDLE)).victim_max_fee_per_gas is None  # older simulate


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"victim_max_fee_per_gas": str(TIP - 1)},
         "(root): victim_max_fee_per_gas 1799999999 is below victim_priority_fee 1800000000: "
         "no valid tx bids so"),
        ({"victim_max_fee_per_gas": str(2**256)},
         f"(root): victim_max_fee_per_gas {2**256} does not fit a tx (max 2**256 - 1)"),
        ({"victim_max_fee_per_gas": "-1"},
         "victim_max_fee_per_gas: Input should be greater than or equal to 0"),
        ({"victim_max_fee_per_gas": "1", "victim_priority_fee": None, "victim_tx_hash": None},
         "(root): victim_max_fee_per_gas needs victim_tx_hash and victim_priority_fee"),
        ({"victim_max_fee_per_gas": str(VICTIM_MAX), "bid_max_fee_per_gas": str(VICTIM_MAX)},
         f"(root): bid_max_fee_per_gas {VICTIM_MAX} must be under victim_max_fee_per_gas"),
        ({"bid_max_fee_per_gas": "8"},
         "(root): bid_max_fee_per_gas 8 must be under victim_max_fee_per_gas"),
        ({"victim_max_fee_per_gas": str(VICTIM_MAX), "bid_max_fee_per_gas": "0"},
         "(root): bid_max_fee_per_gas 0 must be under victim_max_fee_per_gas"),
    ],
)  # fmt: skip
def test_a_hostile_bus_cannot_send_nonsense_victim_fees(
    fields: dict[str, str | None], reason: str
) -> None:
    payload = {k: v for k, v in {**BUNDLE, **fields}.items() if v is not None}
    with pytest.raises(MessageError) as err:
        decode(Bundle, orjson.dumps(payload))
    assert str(err.value) == f"invalid Bundle: {reason}"


def bid_fees(bid: int, next_base: int = BASE) -> Fees | FeeRefusal:
    return bundle_fees(next_base=next_base, bundle_cap=bid, strategy_cap=50 * GWEI,
                       default_priority=GWEI, victim_priority=TIP, victim_max_fee=VICTIM_MAX,
                       bid_max_fee=bid)  # fmt: skip


def test_a_backrun_behind_a_cheaper_nonce_of_its_victims_sender_bids_that_nonces_max_fee() -> None:
    """simulate proved it at `Bundle.bid_max_fee_per_gas` (services/simulate/stacking.py): that
    max fee, one wei under the victim's effective tip at it. Before, the victim's fees with a
    cap of the bid: tip - 1 does not fit under 1 gwei, refused."""
    assert bid_fees(GWEI + 10**6) == Fees(1_001_000_000, 1_000_999_992)
    assert bid_fees(BASE + 1) == Fees(BASE + 1, 0)  # the least mineable: 1 wei over the base
    assert bid_fees(BASE) == FeeRefusal(f"victim tips 0 wei/gas over the base fee {BASE}: "
                                        "nothing to bid under")  # fmt: skip
    low = {**BUNDLE, "victim_max_fee_per_gas": str(VICTIM_MAX), "bid_max_fee_per_gas": "9"}
    assert decode(Bundle, orjson.dumps(low)).bid_max_fee_per_gas == 9
