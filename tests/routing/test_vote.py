"""One test per vote rule; each fails when its rule is removed from routing/vote.py."""

from __future__ import annotations

import pytest

from routing.heads.base import Ballot
from routing.vote import answers_agree, length_penalty, vote


def b(head: str, answer: str, confidence: float, **kw) -> Ballot:
    return Ballot(head=head, answer=answer, confidence=confidence, skill_type=head, **kw)


def test_floor_no_ballot_over_min_confidence_is_unsure():
    result = vote([b("agent0", "Paris", 0.74), b("reasoning", "Lyon", 0.6)])
    assert result.unsure and result.winner is None


def test_floor_a_ballot_at_the_floor_wins():
    assert vote([b("agent0", "Paris", 0.75)]).winner.head == "agent0"


def test_floor_is_configurable_upwards():
    assert vote([b("agent0", "Paris", 0.8)], min_confidence=0.9).unsure


@pytest.mark.parametrize(
    "answer",
    ["def custom_function():\n    pass", "# TODO: implement", "Here is a template you can fill in",
     "I don't know.", "As an AI, I cannot", "return 0  # your code here"],
)  # fmt: skip
def test_stub_guard_a_stub_can_never_win(answer):
    result = vote([b("code", answer, 1.0), b("agent0", "something real", 0.5)])
    assert result.scores["code"] == 0.0
    assert result.winner is None


def test_stub_guard_even_with_agreement_a_stub_scores_zero():
    result = vote([b("code", "TODO", 0.9), b("agent0", "TODO", 0.9), b("reasoning", "TODO", 0.9)])
    assert result.winner is None and set(result.scores.values()) == {0.0}


def test_agreement_bonus_is_added_per_agreeing_head_and_capped():
    result = vote([b("agent0", "The answer is 56.", 0.45), b("reasoning", "56", 0.6), b("math", "56", 0.5),
                   b("micro", "56", 0.5)])  # fmt: skip
    assert result.scores["agent0"] == pytest.approx(0.45 + 0.2)  # three agree, capped at 0.2
    assert result.scores["reasoning"] == pytest.approx(0.6 + 0.2)


def test_agreement_bonus_is_what_crosses_the_floor():
    alone = vote([b("reasoning", "56", 0.7)])
    together = vote([b("reasoning", "56", 0.7), b("agent0", "7*8 is 56", 0.45)])
    assert alone.unsure and not together.unsure


def test_disagreeing_heads_get_no_bonus():
    result = vote([b("reasoning", "56", 0.7), b("agent0", "512", 0.45)])
    assert result.unsure and result.scores["reasoning"] == 0.7


def test_length_penalty_a_rambling_answer_loses_to_a_concise_one_of_equal_confidence():
    rambling = "word " * 600
    result = vote([b("agent0", rambling, 0.9), b("knowledge", "Paris is the capital.", 0.9)])
    assert result.winner.head == "knowledge"
    assert result.scores["agent0"] < 0.9
    assert length_penalty(rambling) > 0 and length_penalty("short") == 0


def test_length_penalty_can_push_an_answer_under_the_floor():
    assert vote([b("agent0", "x" * 2000, 0.8)]).unsure


def test_tie_break_prefers_the_verified_head_then_is_deterministic():
    forward = vote([b("agent0", "A", 0.9), b("math", "B", 0.9)])
    backward = vote([b("math", "B", 0.9), b("agent0", "A", 0.9)])
    assert forward.winner.head == backward.winner.head == "math"


def test_tie_break_higher_raw_confidence_wins_an_equal_score():
    # reasoning: 0.8 + 0.1 agreement = 0.9; micro: 0.9 alone -> equal scores, micro has the higher raw confidence
    result = vote([b("reasoning", "Monday", 0.8), b("knowledge", "It was a Monday", 0.5), b("micro", "Tuesday", 0.9)])
    assert result.scores["reasoning"] == result.scores["micro"]
    assert result.winner.head == "micro"


def test_error_and_abstaining_ballots_are_ignored():
    result = vote([b("math", "", 0.0, error="boom"), b("micro", "", 0.0), b("agent0", "Hello!", 0.8)])
    assert result.winner.head == "agent0"
    assert "error" in result.reasons["math"] and result.reasons["micro"] == "abstained"


@pytest.mark.parametrize(
    ("a", "b_", "same"),
    [("56", "The answer is 56.", True), ("56", "560", False), ("1/2", "0.5", True), ("Paris", "paris.", True),
     ("Paris", "Parisian food", False), ("x = 2", "x = 2, x = -2", False), ("5", "3 + 2 = 5", True),
     ("2", "x = 2, x = -2", False), ("Monday", "It was a Monday", True),
     # a number inside a word, number words, a hedge, grouped thousands
     ("H2O", "The chemical formula of water is H2O.", True),
     ("6", "A hexagon has six sides.", True), ("6", "A hexagon has sixty sides.", False),
     ("Approximately 3.14159", "Pi is approximately 3.14159.", True), ("3.14", "Pi is 3.14159.", False),
     ("The Pacific Ocean", "The largest ocean on Earth is the Pacific Ocean.", True),
     ("299,792,458 m/s", "It is about 299,792,458 m/s in a vacuum.", True), ("299792458", "299,792,458 m/s", True),
     ("299,792 km/s", "299,792,458 m/s", False), ("Monday", "It was a Monday in 1990", True),
     ("5 km", "5 km or 8 km", False), ("16 ounces", "One pound is equal to 16 ounces.", True),
     ("100 °C (at sea level)", "Water boils at 100 degrees Celsius.", True), ("32 °F", "It is 0 °F.", False),
     ("299,792,458 metres per second", "about 299,792,458 meters per second", True),
     # one unit written two ways (pint converts one to the other at a factor of exactly 1); another unit is
     # another answer even for the same quantity, and only a number and a unit is a quantity answer
     ("299,792,458 m/s", "299,792,458 metres per second", True), ("2.54 cm", "One inch is 2.54 centimetres.", True),
     ("60 mph", "It is 60 miles per hour.", True), ("1 km", "1000 m", False), ("12 km", "12 miles", False),
     ("5 cm", "5 cm or 2 inches", False), ("2.54 cm", "2.55 centimetres", False),
     ("2.54 cm across", "2.54 centimetres wide and 3 cm deep", False)],
)  # fmt: skip
def test_answers_agree(a, b_, same):
    assert answers_agree(a, b_) is same
    assert answers_agree(b_, a) is same  # in either order, equal lengths included
