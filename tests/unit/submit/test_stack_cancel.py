"""stack_cancel: which in-flight trades stacked on ours are cancelled once ours will not land."""

from __future__ import annotations

from services.submit.stack_cancel import Stacked, stacked_to_cancel

# our first trade b1 (nonce 5) and b2 (nonce 6) stacked on it
B2 = Stacked("b2", 6, frozenset({"b1"}))


def test_base_withdrawn_cancels_the_trade_stacked_on_it() -> None:
    assert stacked_to_cancel("b1", [B2], mined_nonce=5) == ["b2"]


def test_base_landed_or_another_trade_failing_cancels_nothing() -> None:
    # b1 included: cancel_stacked is never asked; another trade of ours failing leaves b2 alone
    assert stacked_to_cancel("b9", [B2], mined_nonce=5) == []
    assert stacked_to_cancel("b1", [], mined_nonce=5) == []


def test_a_stacked_trade_already_mined_is_left_alone() -> None:
    # the chain counts nonce 6: b2 (or something on its nonce) is mined, nothing to replace
    assert stacked_to_cancel("b1", [B2], mined_nonce=7) == []
    assert stacked_to_cancel("b1", [B2], mined_nonce=6) == ["b2"]


def test_two_levels_of_stacking_cancel_both_in_nonce_order() -> None:
    b3 = Stacked("b3", 7, frozenset({"b2"}))  # stands on b2 only: b2's cancel takes it down
    assert stacked_to_cancel("b1", [b3, B2], mined_nonce=5) == ["b2", "b3"]
    b3_both = Stacked("b3", 7, frozenset({"b1", "b2"}))
    assert stacked_to_cancel("b1", [b3_both, B2], mined_nonce=5) == ["b2", "b3"]
    # the middle one withdrawn itself: only what stands on it
    assert stacked_to_cancel("b2", [b3, B2], mined_nonce=5) == ["b3"]


def test_one_proven_to_pay_alone_stands_only_when_none_of_its_bases_can_land() -> None:
    alone = Stacked("b2", 6, frozenset({"b1"}), pays_alone=True)
    assert stacked_to_cancel("b1", [alone], mined_nonce=5) == []
    # on b1 and b0: b0 may still land, a state simulate never ran -> cancelled
    on_two = Stacked("b2", 6, frozenset({"b0", "b1"}), pays_alone=True)
    assert stacked_to_cancel("b1", [on_two], mined_nonce=5) == ["b2"]
    assert stacked_to_cancel("b1", [on_two], mined_nonce=5, gone=["b0"]) == []
    # b3 pays without b1 and b2; b2 does not pay without b1: b2 cancelled first, b3 stands
    b2 = Stacked("b2", 6, frozenset({"b1"}))
    b3 = Stacked("b3", 7, frozenset({"b1", "b2"}), pays_alone=True)
    assert stacked_to_cancel("b1", [b3, b2], mined_nonce=5) == ["b2"]
    # b2 pays alone and stands (it may land): b3 would meet [b2 without b1], never proven
    b2_alone = Stacked("b2", 6, frozenset({"b1"}), pays_alone=True)
    assert stacked_to_cancel("b1", [b3, b2_alone], mined_nonce=5) == ["b3"]


def test_a_trade_whose_cancel_is_already_out_is_not_cancelled_again() -> None:
    out = Stacked("b2", 6, frozenset({"b1"}), cancelled=True)
    b3 = Stacked("b3", 7, frozenset({"b2"}))
    assert stacked_to_cancel("b1", [out], mined_nonce=5) == []
    # ...but it counts as down for what stands on it
    assert stacked_to_cancel("b1", [out, b3], mined_nonce=5) == ["b3"]
