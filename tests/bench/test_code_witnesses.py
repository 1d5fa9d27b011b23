"""bench/code_witnesses.py: every candidate's outcome on the probes (the real sandbox), and the trust rules
compared offline on kept rows."""

from __future__ import annotations

import pytest

from bench import code_witnesses as cw
from routing.heads.code import MIN_PROBES
from routing.sandbox import sandbox_status

RIGHT = "def half(n):\n    return n // 2\n"
WRONG = "def half(n):\n    return n / 2\n"
PROBES = [("half", "((4,), {})"), ("half", "((5,), {})"), ("half", "(('x',), {})"), ("half", "((1000000000,), {})")]


@pytest.mark.skipif(not sandbox_status()["ok"], reason="needs the bubblewrap sandbox")
def test_probe_outcomes_keep_each_candidates_result_per_probe() -> None:
    rows = cw.probe_outcomes([RIGHT, WRONG, "x = 1\n", "def half(n):\n    while True:\n        pass\n"], PROBES)
    assert rows is not None and len(rows) == len(PROBES)
    assert rows[0][:3] == ["int:2", "float:2.0", "undefined"]
    assert rows[1][:2] == ["int:2", "float:2.5"]
    assert rows[2][0] == rows[2][1] == "raised:TypeError"
    assert rows[0][3].startswith("timeout")


def row(*columns: list[str], witnesses: list[bool], hidden: bool = True) -> dict:
    """A kept row: the answer passed the prompt's tests; `columns` are the outcomes per probe."""
    return {"task_id": "HumanEval/0", "answer": {"prompt_tests": True, "hidden": hidden},
            "witnesses": [{"prompt_tests": ok, "hidden": ok} for ok in witnesses],
            "outcomes": [list(probe) for probe in zip(*columns, strict=True)]}  # fmt: skip


A = ["int:1"] * MIN_PROBES
B = ["int:1"] * (MIN_PROBES - 1) + ["int:2"]


def test_the_heads_rule_is_decided_by_the_first_witness_that_passes_the_prompts_tests() -> None:
    assert cw.rule_first_witness(row(A, B, A, witnesses=[False, True])) is True  # the first is no witness
    assert cw.rule_first_witness(row(A, B, A, witnesses=[True, True])) is False  # the first disagrees
    assert cw.rule_first_witness(row(A, A, witnesses=[True], hidden=False)) is True


def test_two_agreeing_witnesses_outvote_one_that_disagrees_but_not_two() -> None:
    assert cw.rule_two_of_three(row(A, B, A, A, witnesses=[True, True, True])) is True
    assert cw.rule_two_of_three(row(A, B, A, witnesses=[True, True])) is False  # one for, one against
    assert cw.rule_two_of_three(row(A, B, B, A, A, witnesses=[True, True, True, True])) is False  # 2 for, 2 against
    assert cw.rule_two_of_three(row(A, A, witnesses=[True])) is False  # one witness is not two


def test_both_raising_different_errors_and_timeouts_are_not_counted() -> None:
    raised = ["raised:TypeError", *A[1:]]
    other = ["raised:ValueError", *A[1:]]
    assert cw._compared(row(raised, other, witnesses=[True]), 1) == (MIN_PROBES - 1, MIN_PROBES - 1, 0)
    assert cw._compared(row(["timeout:None", *A[1:]], A, witnesses=[True]), 1) == (MIN_PROBES - 1, MIN_PROBES - 1, 0)
    # a witness raising where the answer returns is its refusal; the answer raising where it returns differs
    assert cw._compared(row(A, other, witnesses=[True]), 1) == (MIN_PROBES - 1, MIN_PROBES - 1, 1)
    assert cw._compared(row(other, A, witnesses=[True]), 1) == (MIN_PROBES, MIN_PROBES - 1, 0)


def test_a_candidate_refusing_as_many_probes_as_it_answers_is_no_witness() -> None:
    half = ["raised:ValueError"] * (MIN_PROBES // 2) + A[MIN_PROBES // 2 :]
    assert cw._valid(row(A, half, A, witnesses=[True, True])) == [2]
    assert cw.rule_votes(row(A, half, witnesses=[True])) is False
    assert cw.rule_votes(row(A, half, A, witnesses=[True, True])) is True  # the next candidate is drawn


def test_rules_report_what_each_trusts_and_what_of_it_fails_the_hidden_tests() -> None:
    rows = [row(A, A, witnesses=[True], hidden=False), row(A, B, A, A, witnesses=[True, True, True]),
            {"task_id": "HumanEval/9", "answer": {"prompt_tests": False, "hidden": False}}]  # fmt: skip
    rows[1]["task_id"] = "HumanEval/1"
    figures = cw.rules(rows)
    before = {"trusted": 1, "trusted_pass": 0, "trusted_fail": ["HumanEval/0"]}
    assert figures["first_witness (the head before)"] == before
    assert figures["votes, 3 candidates"] == {
        "trusted": 2,
        "trusted_pass": 1,
        "trusted_fail": ["HumanEval/0"],
    }
    assert figures["two_witnesses_agree"] == {"trusted": 1, "trusted_pass": 1, "trusted_fail": []}
    assert figures["answer_passes_hidden"] == 1


def test_the_votes_replay_the_heads_order_and_stopping() -> None:
    assert cw.rule_votes(row(A, B, A, A, witnesses=[True, True, True])) is True  # outvoted
    assert cw.rule_votes(row(A, B, B, A, witnesses=[True, True, True]), limit=3) is False  # two against: stops
    assert cw.rule_votes(row(A, B, A, B, A, witnesses=[True, True, True, True]), limit=3) is False  # 1 for, 2 against
    assert cw.rule_votes(row(A, B, B, A, A, witnesses=[True] * 4), limit=4) is False  # 0 for, 2 against: two more can't
    assert cw.rule_votes(row(A, B, A, B, A, A, witnesses=[True] * 5), limit=5) is True  # 3 for, 2 against
    assert cw.rule_votes(row(A, A, A, A, witnesses=[False, False, True])) is True  # the third is the witness


def test_an_answer_drawn_past_the_heads_limit_counts_only_for_the_every_draw_rule() -> None:
    late = row(A, A, witnesses=[True])
    late["answers_passed"] = [False] * cw.head.MAX_ANSWERS + [True]  # passed at the (MAX_ANSWERS + 1)th draw
    early = row(A, A, witnesses=[True])
    early["answers_passed"] = [False, True]
    assert not cw.answer_within(late, cw.head.MAX_ANSWERS) and cw.answer_within(early, cw.head.MAX_ANSWERS)
    assert cw.answer_within(row(A, A, witnesses=[True]), 1)  # written before answers were kept
    figures = cw.rules([late, early])
    assert figures["votes (the head now: MAX_ANSWERS answers, MAX_WITNESSES candidates)"]["trusted"] == 1
    assert figures["votes, every answer and candidate drawn"]["trusted"] == 2
