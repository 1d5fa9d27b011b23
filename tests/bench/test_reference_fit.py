"""bench/reference.py: the fitting arithmetic (no model): fitted on the tuning part only, near misses counted."""

from __future__ import annotations

from bench.reference import MIN_TRUSTED, Grounded, fit, outcome


def ans(key: str, part: str, *, coverage: float, prob: float, correct: bool | None, **kw) -> Grounded:
    body = {"key": key, "part": part, "kind": "fact", "prompt": "q", "reference": "r", "own_text": "a",
            "own_min_token_prob": 0.1, "own_trusted": False, "text": "A.", "correct": correct, "grounded": True,
            "agreed": True, "reason": None, "coverage": coverage, "note": "n", "min_token_prob": prob,
            "finish_reason": "stop", "notes": 5, "latency_ms": 1.0}  # fmt: skip
    return Grounded(**{**body, **kw})


def test_the_rule_trusts_the_most_tuning_answers_with_none_wrong():
    answers = [ans(f"r{n}", "tuning", coverage=1.0, prob=0.6 + n / 100, correct=True) for n in range(MIN_TRUSTED)]
    answers += [ans("w", "tuning", coverage=0.5, prob=0.9, correct=False)]  # refused by coverage, not by prob
    answers += [ans("w2", "tuning", coverage=1.0, prob=0.55, correct=False)]
    rule = fit(answers)
    assert rule == {"min_coverage": 1.0, "min_token_prob": 0.6}  # ties go to the stricter coverage
    # a held-out answer never moves the rule, however wrong
    assert fit([*answers, ans("h", "heldout", coverage=1.0, prob=0.99, correct=False)]) == rule


def test_a_near_miss_given_its_group_s_answer_is_wrong_and_others_are_listed():
    answers = [ans("near:g:0", "heldout", coverage=1.0, prob=0.9, correct=False),
               ans("near:g:1", "heldout", coverage=1.0, prob=0.9, correct=None),
               ans("own", "heldout", coverage=1.0, prob=0.9, correct=False, own_trusted=True),  # never asked
               ans("alone", "heldout", coverage=1.0, prob=0.9, correct=False, agreed=False)]  # fmt: skip
    got = outcome(answers, 0.6, 0.5)
    assert (got["trusted"], got["trusted_wrong"], got["trusted_unjudged"]) == (2, 1, 1)
    assert [u["key"] for u in got["unjudged"]] == ["near:g:1"]


def test_too_few_trusted_answers_fit_nothing():
    answers = [ans(f"r{n}", "tuning", coverage=1.0, prob=0.9, correct=True) for n in range(MIN_TRUSTED - 1)]
    assert fit(answers) is None
