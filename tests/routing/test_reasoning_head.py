"""The reasoning head: word problems answered by a program the model writes, run in the real sandbox, and
trusted only when the model's worked steps end in the same number (the model is stubbed with fixed replies:
it is an external boundary)."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest

from inference.backends.base import Generation
from routing.cascade import run_council
from routing.heads import council
from routing.heads.base import HeadContext
from routing.heads.reasoning import (
    AGREED_CONFIDENCE,
    PROGRAM_SYSTEM_PROMPT,
    WORDS_SYSTEM_PROMPT,
    ReasoningHead,
    allowed_constants,
    final_number,
    format_number,
    is_word_problem,
    problem_numbers,
    program_code,
    unfounded_literals,
    unused_numbers,
)
from routing.vote import DEFAULT_MIN_CONFIDENCE

PROBLEM = "A pen costs $3. Sam buys 4 pens and pays with a $20 bill. How much change does he get, in dollars?"
GREEDY = "```python\ndef solution():\n    return 20 - 3 * 4\n```"
STEPWISE = "```python\ndef solution():\n    price = 3\n    pens = 4\n    paid = 20\n    return paid - price * pens\n```"
CHATTY = "Here:\n```python\ndef solution():\n    print('working')\n    cost = 3 * 4\n    return float(20 - cost)\n```"
WRONG = "```python\ndef solution():\n    return 20 - 3\n```"
IMAGINED = "```python\ndef solution():\n    tax = 0.08\n    return 20 - 3 * 4 * (1 + tax)\n```"


def model(*texts: str, seen: list[dict] | None = None, finish: str = "stop"):
    replies = list(texts)

    def generate(messages, **params) -> Generation:
        if seen is not None:
            seen.append({"system": messages[0]["content"], **params})
        return Generation(text=replies.pop(0), prompt_tokens=1, completion_tokens=1, finish_reason=finish,
                          latency_ms=1.0)  # fmt: skip

    return generate


def ask(*texts: str, prompt: str = PROBLEM, seen: list[dict] | None = None):
    return ReasoningHead().answer(prompt, HeadContext(generate=model(*texts, seen=seen)))


# --------------------------------------------------------------------------- which prompts
@pytest.mark.parametrize(
    "prompt",
    [
        PROBLEM,
        "The average of four numbers is 26. Three of the numbers are 3, 24 and 24. What is the fourth number?",
        "A tank holds 1,200 litres and fills at 40 litres a minute. How long does it take to fill?",
        "Calculate the total cost of 3 books at 12 dollars each",
    ],
)
def test_word_problems_with_numbers_reach_the_head(prompt: str) -> None:
    assert is_word_problem(prompt)


@pytest.mark.parametrize(
    "prompt",
    [
        "What is the capital of France?",
        "Who won the 2087 FIFA World Cup?",  # one number: nothing to work out
        "Write a python function add(a, b) that returns a + b. For example add(2, 3) -> 5.",  # the code head's
        "I bought 3 apples and 2 pears today.",  # not a question
        "x" * 700 + " 1 2?",
    ],
)
def test_other_prompts_do_not(prompt: str) -> None:
    assert not is_word_problem(prompt)


def test_numbers_in_digits_and_words() -> None:
    assert problem_numbers("The average of four numbers is 26. A tank of 1,200 litres costs $3.50.") == [
        Decimal(4),
        Decimal(26),
        Decimal(1200),
        Decimal("3.50"),
    ]


def test_a_program_may_use_the_problems_numbers_percentages_of_them_and_common_factors() -> None:
    allowed = allowed_constants("A jacket costs $40. It is discounted by 10%. What does it cost?")
    code = "def solution():\n    return 40 * 0.9 * 1 + 0 * 60 / 100 + 40 * 0.1\n"
    assert unfounded_literals(code, allowed) == []
    assert unfounded_literals("def solution():\n    return 40 * 1.08\n", allowed) == ["1.08"]
    assert unfounded_literals("def solution(:\n", allowed) == ["<does not parse>"]
    no_percent = allowed_constants("A jacket costs $40 and a hat $15. What do both cost?")
    assert unfounded_literals("def solution():\n    return 40 * 0.85\n", no_percent) == ["0.85"]


@pytest.mark.parametrize(("value", "text"), [(16.0, "16"), (39.6000000001, "39.6"), (2 / 3, "0.666667"), (-4.0, "-4")])
def test_numbers_are_written_plainly(value: float, text: str) -> None:
    assert format_number(value) == text


# --------------------------------------------------------------------------- the evidence
def test_a_program_and_worked_steps_that_agree_are_trusted() -> None:
    seen: list[dict] = []
    ballot = ask(CHATTY, "4 pens cost 4 x 3 = 12 dollars, and 20 - 12 = 8.\n\nAnswer: $8", seen=seen)
    assert ballot.answer == "8"
    assert ballot.confidence == AGREED_CONFIDENCE >= DEFAULT_MIN_CONFIDENCE
    assert ballot.evidence["agree"] is True
    assert ballot.evidence["program"]["result"] == 8.0 and ballot.evidence["words"]["result"] == 8.0
    # two greedy answers to two different requests: a program, then steps in words
    assert [s["system"] for s in seen] == [PROGRAM_SYSTEM_PROMPT, WORDS_SYSTEM_PROMPT]
    assert all(s["temperature"] == 0.0 for s in seen)


@pytest.mark.parametrize(
    "words",
    [
        "20 - 3 = 17.\n\nAnswer: 17",  # a different number
        "The change depends on the shop.",  # no number
        "4 pens cost 12, so the answer is",  # cut off (finish_reason 'length' below)
    ],
    ids=["differs", "no-number", "cut-off"],
)
def test_steps_that_do_not_confirm_the_program_leave_it_below_the_floor(words: str) -> None:
    finish = "length" if words.endswith("is") else "stop"
    ballot = ReasoningHead().answer(PROBLEM, HeadContext(generate=model(GREEDY, words, finish=finish)))
    assert ballot.answer == "8" and ballot.confidence < DEFAULT_MIN_CONFIDENCE
    assert ballot.evidence["agree"] is False


def test_a_program_with_a_number_of_its_own_counts_for_nothing_and_the_words_are_not_asked() -> None:
    seen: list[dict] = []
    ballot = ask(IMAGINED, "Answer: 7.04", seen=seen)
    assert ballot.answer == "" and ballot.confidence == 0.0
    assert ballot.evidence["program"]["unfounded"] == ["0.08"]
    assert len(seen) == 1


def test_only_what_solution_uses_is_run_and_checked() -> None:
    reply = (
        "```python\ndef helper(a, b):\n    return a * b\n\ndef solution():\n    return 20 - helper(3, 4)\n\n"
        "def check_solution():\n    assert solution() == 45.0\n\ncheck_solution()\nprint(solution())\n```"
    )
    code = program_code(reply)
    assert "helper" in code and "check_solution" not in code and "print" not in code
    assert ask(reply, "Answer: 8").confidence == AGREED_CONFIDENCE
    # a reply that lost its opening fence
    assert "solution" in program_code("def solution():\n    return 20 - 3 * 4\n```\n")


@pytest.mark.parametrize(
    ("text", "number"),
    [
        ("Answer: \\boxed{110}", 110.0),
        ("so 60 / 3 = 20.\n\nAnswer: 20 minutes", 20.0),
        ("**Answer:** $1,200.50", 1200.5),
        ("Therefore, the fourth number is \\(\\boxed{51}\\).", 51.0),
        ("Answer: 1/3", None),  # a fraction is not read as its numerator
        ("It takes a while.", None),
    ],
)
def test_the_number_worked_steps_end_in(text: str, number: float | None) -> None:
    assert final_number(text) == number


@pytest.mark.parametrize(
    ("reply", "error"),
    [
        ("```python\ndef solution():\n    return None\n```", "returned None"),
        ("```python\ndef solution():\n    return '8'\n```", "returned str"),
        ("```python\ndef solution():\n    return 20 / 0\n```", "raised ZeroDivisionError"),
        ("```python\ndef solution():\n    while True:\n        pass\n```", "timeout"),
        ("The answer is 8.", "no solution() that parses"),
    ],
    ids=["none", "text", "raises", "loops", "no-code"],
)
def test_a_program_that_gives_no_number_gives_no_answer(reply: str, error: str) -> None:
    ballot = ask(reply, "Answer: 8")
    assert ballot.answer == "" and ballot.confidence == 0.0
    assert ballot.evidence["program"]["error"].startswith(error)


@pytest.fixture
def with_reasoning(settings: Any) -> Iterator[None]:
    settings.SWARM_REASONING_HEAD = True
    council.cache_clear()
    yield
    council.cache_clear()


def test_the_head_is_in_the_council_only_when_switched_on(settings: Any) -> None:
    council.cache_clear()
    try:
        settings.SWARM_REASONING_HEAD = False
        assert [head.name for head in council()[1]] == ["code", "agent0"]
        council.cache_clear()
        settings.SWARM_REASONING_HEAD = True
        assert [head.name for head in council()[1]] == ["code", "reasoning", "agent0"]
    finally:
        council.cache_clear()


def decide(*replies: str):
    fast, llm = council()
    return run_council(PROBLEM, fast_heads=list(fast), llm_heads=list(llm), generate=model(*replies), max_tokens=64,
                       temperature=0.0, min_confidence=DEFAULT_MIN_CONFIDENCE)  # fmt: skip


@pytest.mark.usefixtures("with_reasoning")
def test_the_council_asks_the_reasoning_head_and_trusts_its_agreed_answer() -> None:
    decision = decide(STEPWISE, "Answer: 8", "Sam gets $8 in change.")
    assert decision.route == "council" and decision.winner_head == "reasoning" and decision.answer == "8"
    assert "agrees with agent0" in decision.reasons["reasoning"]


@pytest.mark.usefixtures("with_reasoning")
def test_without_agreement_the_council_stays_unsure() -> None:
    assert decide(WRONG, "Answer: 8", "Sam gets $17 in change.").route == "unsure"


def test_without_a_model_or_a_sandbox_the_head_abstains(monkeypatch: pytest.MonkeyPatch) -> None:
    from routing.heads import code as code_head

    assert ReasoningHead().answer(PROBLEM, HeadContext()).evidence == {"abstained": "no local model"}
    monkeypatch.setattr(code_head, "sandbox_status", lambda: {"ok": False, "reason": "bwrap not found"})
    seen: list[dict] = []
    ballot = ask(GREEDY, "Answer: 8", seen=seen)
    assert ballot.evidence == {"abstained": "sandbox unavailable: bwrap not found"} and seen == []


def test_a_program_that_leaves_out_a_stated_number_counts_for_nothing_and_the_words_are_not_asked() -> None:
    # Both ways forgot the 9: the program and the words agree on 34, and the answer is 25.
    prompt = "James is 17 years old. In 9 years his cousin will be 2 times as old as James is now. How old is she now?"
    seen: list[dict] = []
    forgot = "```python\ndef solution():\n    james = 17\n    return james * 2\n```"
    ballot = ReasoningHead().answer(
        prompt, HeadContext(generate=model(forgot, "17 x 2 = 34.\n\nAnswer: 34", seen=seen))
    )
    assert ballot.answer == "" and ballot.confidence == 0.0
    assert ballot.evidence["program"]["unused"] == ["9"] and len(seen) == 1
    complete = "```python\ndef solution():\n    return 17 * 2 - 9\n```"
    assert ReasoningHead().answer(prompt, HeadContext(generate=model(complete, "Answer: 25"))).answer == "25"


@pytest.mark.parametrize(
    ("code", "prompt", "unused"),
    [
        (
            "def solution():\n    return 70 + 40\n",
            "A train goes 70 km/h for 1 hour, then 40 km/h for 1 hour. How far?",
            [],
        ),
        ("def solution():\n    return 40 * 0.9\n", "A $40 jacket is 10% off. What does it cost?", []),
        ("def solution():\n    return 40 * (1 - 10 / 100)\n", "A $40 jacket is 10% off. What does it cost?", []),
        ("def solution():\n    return 40\n", "A $40 jacket is 10% off. What does it cost?", ["10"]),
        (
            "def solution():\n    return 4 * 26 - 3\n",
            "The average of four numbers is 26. One is 3. What is the sum of the rest?",
            [],
        ),
        ("def solution(:\n", "Sam has 3 pens and buys 4. How many now?", ["3", "4"]),
    ],
    ids=["times-one-left-out", "share", "share-written-out", "percent-left-out", "number-word", "does-not-parse"],
)
def test_unused_numbers(code: str, prompt: str, unused: list[str]) -> None:
    assert unused_numbers(code, prompt) == unused
