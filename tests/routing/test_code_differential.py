"""The code head's evidence beyond the prompt: doctest examples, probes, and a second solution compared with
the first in the real sandbox (the model is stubbed with fixed replies: it is an external boundary)."""

from __future__ import annotations

import ast
import json
import time
from pathlib import Path

import pytest

from inference.backends.base import Generation
from routing.heads import code as code_head
from routing.heads.base import HeadContext
from routing.heads.code import (
    MAX_PROBES,
    MIN_PROBES,
    CodeHead,
    derive_probes,
    derive_tests,
    doctest_examples,
    extract_code,
    extract_solution,
    mutations,
    public_ballots,
    stated_examples,
)
from routing.vote import DEFAULT_MIN_CONFIDENCE

HUMANEVAL_STYLE = '''from typing import List


def below_zero(operations: List[int]) -> bool:
    """ Detect whether the balance falls below zero.
    >>> below_zero([1, 2, 3])
    False
    >>> below_zero([1, 2, -4,
    ...             5])
    True
    >>> print(below_zero([]))
    False
    >>> x = below_zero([1])
    >>> below_zero([1, -1])
    False"""
'''


# --------------------------------------------------------------------------- doctest examples
def test_doctest_examples_in_a_docstring_become_asserts() -> None:
    assert doctest_examples(HUMANEVAL_STYLE) == [
        ("below_zero([1, 2, 3])", "False"),
        ("below_zero([1, 2, -4,\n            5])", "True"),
        ("below_zero([1, -1])", "False"),  # the closing quotes end the value; print(...) and statements are skipped
    ]
    tests = derive_tests(HUMANEVAL_STYLE)
    assert tests[0] == "assert (below_zero([1, 2, 3])) == (False), 'below_zero([1, 2, 3])'"
    assert len(tests) == 3 and all(ast.parse(test) for test in tests)


@pytest.mark.parametrize(
    ("prompt", "expected"),
    [
        # a comment after the call: the assert is built on one line, where it would swallow the rest
        ("    >>> area([3, 4])  # a 3 by 4 rectangle\n    12\n", ["assert (area([3, 4])) == (12), 'area([3, 4])'"]),
        # an "assert" line that is not Python is left out (it would fail the script, right code included);
        # its example is still read
        (
            "assert pick([1, 2]) => [2]\nassert pick([3]) == [3]\n",
            [
                "assert pick([3]) == [3]",
                "assert pick([1, 2]) == [2], 'pick([1, 2])'",
                "assert pick([3]) == [3], 'pick([3])'",
            ],
        ),
        # an example whose arguments are names, not literals, cannot be run
        ("For example: twice(x) -> 4, twice(2) -> 4.\n", ["assert twice(2) == 4, 'twice(2)'"]),
        # a list or dict value holds commas: the value is the shortest literal, not the text before the first comma
        (
            "For example unique_sorted([3, 1, 3]) -> [1, 3]. Also count('aab') -> {'a': 2, 'b': 1}, f(1) -> 2; done",
            [
                "assert unique_sorted([3, 1, 3]) == [1, 3], 'unique_sorted([3, 1, 3])'",
                "assert count('aab') == {'a': 2, 'b': 1}, \"count('aab')\"",
                "assert f(1) == 2, 'f(1)'",
            ],
        ),
    ],
    ids=["doctest-comment", "assert-not-python", "example-not-literal", "example-value-with-commas"],
)
def test_derived_tests_are_python_that_can_run(prompt: str, expected: list[str]) -> None:
    tests = derive_tests(prompt)
    assert tests == expected
    assert all(ast.parse(test) for test in tests)


@pytest.mark.parametrize(
    ("prompt", "expected"),
    [
        (">>> add(2, 3)\n5\n", [("add(2, 3)", "5")]),
        ("    >>> split('a b')\n    ['a',\n     'b']\n\n", [("split('a b')", "['a', 'b']")]),
        ("    >>> f(1)\n    3\n>>> f(2)\n4\n", [("f(1)", "3"), ("f(2)", "4")]),
        (">>> f(1)\nsome text, not a value\n", []),
        (">>> f(1)\n\n3\n", []),  # a blank line: no expected value
        (">>> f(1\n2\n", []),  # the call does not parse
        (">>> f(1)\n__import__('os').system('x')\n", []),  # only literal values
    ],
    ids=["bare", "indented-multiline", "two", "not-a-literal", "blank", "broken-call", "not-literal-call"],
)
def test_doctest_parsing(prompt: str, expected: list[tuple[str, str]]) -> None:
    assert doctest_examples(prompt) == expected


@pytest.mark.parametrize(
    ("prompt", "expected"),
    [
        # the arrows of kata-style statements, `=`, and lower-case constants
        (
            "Examples:\n  pairs([1, 2]) ==> 1\n  pairs([]) \u279e 0\n  odd(3) => true\n  halve(8) = 4\n",
            [
                "assert pairs([1, 2]) == 1, 'pairs([1, 2])'",
                "assert pairs([]) == 0, 'pairs([])'",
                "assert odd(3) == True, 'odd(3)'",
                "assert halve(8) == 4, 'halve(8)'",
            ],
        ),
        # a comment after the value, and "# returns"
        (
            "double(2) -> 4 # two twos\nshout('a')   # returns 'A'\n",
            ["assert double(2) == 4, 'double(2)'", "assert shout('a') == 'A', \"shout('a')\""],
        ),
        # `x = f(1)` is an assignment, `f(1) = y` with a value that is no literal is prose: neither is an example
        ("total = add(1, 2)\nadd(x, 2) = x + 2\nadd(1, 2) = three\n", []),
    ],
    ids=["arrows-and-constants", "comments", "assignment-is-no-example"],
)
def test_example_notations(prompt: str, expected: list[str]) -> None:
    assert derive_tests(prompt) == expected


LEETCODE_STYLE = '''def first_words(sentence: str, k: int) -> str:
    """Return the first k words of sentence.

    Example 1:
        Input: sentence = "a b c", k = 2
        Output: "a b"
    Example 2:
        Input:
            sentence : "x y"
            k : 1
        Output: "x" # the first word
    Example 3:
        Input: s = "q r", count = 2
        Output: "q r"
    Example 4:
        Input: "z", 1
        Output: "z"
    Example 5:
        Input: n = 3
        Output: "never: too few values for the parameters, by name"
    """


def digits(num):
    """For num = "AB" the output should be 1.
    For num = 147, the sum of its digits is 12 the output should be 12.
    For x = 1, y = 2 the output should be 2.
    """
'''


def test_examples_that_state_input_and_output_call_the_function_defined_before_them() -> None:
    assert stated_examples(LEETCODE_STYLE) == [
        ("first_words(sentence='a b c', k=2)", '"a b"'),
        ("first_words(sentence='x y', k=1)", '"x"'),
        ("first_words('q r', 2)", '"q r"'),  # other names, as many values as parameters: by position
        ("first_words('z', 1)", '"z"'),
        ("digits(num='AB')", "1"),
        ("digits(num=147)", "12"),  # the longest prefix that reads as arguments
    ]  # n = 3 names no parameter of first_words and is one value of two; x, y: two values of digits' one
    tests = derive_tests(LEETCODE_STYLE)
    assert "assert first_words(sentence='a b c', k=2) == \"a b\", \"first_words(sentence='a b c', k=2)\"" in tests
    assert len(tests) == 6 and all(ast.parse(test) for test in tests)


def test_examples_that_call_no_function_of_the_answer_are_dropped_but_asserts_are_kept() -> None:
    prompt = "Note that ord('a') = 97, and Helper(2) is 3.\nshift('a') -> 'b'\nassert False, 'always'\n"
    assert len(derive_tests(prompt)) == 4
    assert derive_tests(prompt, {"shift"}) == ["assert False, 'always'", "assert shift('a') == 'b', \"shift('a')\""]
    assert derive_tests(prompt, set()) == ["assert False, 'always'"]


# --------------------------------------------------------------------------- probes
def _calls(probes: list[tuple[str, str]]) -> list[tuple[tuple, dict]]:
    return [ast.literal_eval(call) for _, call in probes]


@pytest.mark.parametrize(
    ("value", "kind"),
    [(7, int), (2.5, float), ("Abc", str), ([1, 2], list), ((1, "a"), tuple), ({"a": 1}, dict), (True, bool)],
)
def test_mutations_keep_the_type(value: object, kind: type) -> None:
    changed = mutations(value)
    assert changed and all(type(v) is kind for v in changed)
    assert any(v != value for v in changed)


def test_probes_vary_the_examples_arguments_keep_types_and_skip_the_examples() -> None:
    tests = ["assert f(3, 'ab') == 5", "assert f(3, 'ab') == 5, 'again'", "assert other(1) == 2"]
    probes = derive_probes(tests, {"f"})
    calls = _calls(probes)
    assert {name for name, _ in probes} == {"f"}  # only the asked-for function
    assert ((3, "ab"), {}) not in calls  # the example itself is not a probe
    assert len(calls) == len({repr(c) for c in calls})  # deduplicated
    assert all(type(a) is int and type(b) is str and kw == {} for (a, b), kw in calls)
    assert ((4, "ab"), {}) in calls and ((3, ""), {}) in calls and ((3, "ba"), {}) in calls


def test_probes_are_capped_and_shared_out_across_examples() -> None:
    tests = [f"assert f([{i}, {i + 1}, {i + 2}], {i}, 'xyz') == 0" for i in range(5)]
    probes = derive_probes(tests, {"f"})
    assert len(probes) == MAX_PROBES
    firsts = {ast.literal_eval(call)[0][1] for _, call in probes[:5]}
    assert firsts == {0, 1, 2, 3, 4}  # round-robin: every example contributes before any gives a second


def test_no_probes_without_literal_arguments() -> None:
    assert derive_probes(["assert f(x) == 1", "assert f(*[1]) == 1", "assert g(1) == 2"], {"f"}) == []


def test_dedup_tells_int_float_and_bool_apart() -> None:
    probes = derive_probes(["assert f(1) == 1", "assert f(1.0) == 1", "assert f(True) == 1"], {"f"})
    kinds = {type(args[0]) for args, _ in _calls(probes)}
    assert kinds == {int, float, bool}


# --------------------------------------------------------------------------- the confidence
def model(*texts: str, seen: list[dict] | None = None):
    replies = list(texts)

    def generate(messages, **params) -> Generation:
        if seen is not None:
            seen.append({"system": messages[0]["content"], **params})
        return Generation(text=replies.pop(0), prompt_tokens=1, completion_tokens=1, finish_reason="stop",
                          latency_ms=1.0)  # fmt: skip

    return generate


PROMPT = (
    "Write a python function clamp_sum(xs, cap) returning min(sum(xs), cap). For example clamp_sum([1, 2], 10) -> 3."
)
FIRST = "```python\ndef clamp_sum(xs, cap):\n    return min(sum(xs), cap)\n```"
SAME = "```python\ndef clamp_sum(xs, cap):\n    total = 0\n    for x in xs:\n        total += x\n    return total if total < cap else cap\n```"  # noqa: E501
# Passes the example (3 < 10) but differs once the sum reaches the cap.
WRONG = "```python\ndef clamp_sum(xs, cap):\n    return sum(xs)\n```"


def ask(*texts: str, prompt: str = PROMPT, seen: list[dict] | None = None, deadline: float | None = None):
    return CodeHead().answer(prompt, HeadContext(generate=model(*texts, seen=seen), deadline=deadline))


# The model's reply to "add(a, b)", seen from a fresh stack: the usage block is the longer one.
WITH_USAGE = ("```python\ndef add(a, b):\n    return a + b\n```\nUsage:\n"
              "```python\nresult = add(2, 3)\nprint(result)  # Output: 5\n```")  # fmt: skip


def test_the_block_that_defines_the_function_is_the_answer_not_a_longer_usage_example() -> None:
    assert extract_code(WITH_USAGE).startswith("result")  # the longest block, whatever it holds
    assert extract_solution(WITH_USAGE) == "def add(a, b):\n    return a + b"
    assert extract_solution("```python\nprint(1)\n```") == "print(1)"  # no definition: the longest block
    same = "```python\ndef add(a, b):\n    return sum((a, b))\n```\n```python\nprint(add(1, 1))  # 2, as expected\n```"
    ballot = ask(
        WITH_USAGE, same, prompt="Write a python function add(a, b) that returns a + b. For example add(2, 3) -> 5."
    )
    assert ballot.answer == "def add(a, b):\n    return a + b" and ballot.confidence == code_head.PASSED_CONFIDENCE


def test_agreeing_solutions_are_trusted_and_the_second_is_sampled_differently() -> None:
    seen: list[dict] = []
    ballot = ask(FIRST, SAME, seen=seen)
    diff = ballot.evidence["differential"]
    assert ballot.confidence == 0.9 > DEFAULT_MIN_CONFIDENCE
    assert diff["agree"] is True and diff["probes_run"] == diff["probes_agreed"] >= MIN_PROBES
    assert diff["disagreement"] is None and diff["second_tests_failed"] == 0
    assert len(seen) == 2 and seen[0]["system"] != seen[1]["system"]
    assert seen[1]["temperature"] > 0 and seen[1]["seed"] == code_head.SECOND_SEED


def test_a_disagreement_is_below_the_floor_and_shown_without_values() -> None:
    ballot = ask(FIRST, WRONG, WRONG).as_dict()
    diff = ballot["evidence"]["differential"]
    assert ballot["confidence"] == code_head.DISAGREED_CONFIDENCE < DEFAULT_MIN_CONFIDENCE
    assert diff["votes"] == {"agree": 0, "disagree": 2} and diff["witnesses_drawn"] == 2
    assert diff["agree"] is False and diff["probes_agreed"] < diff["probes_run"]
    shown = diff["disagreement"]
    assert shown["probe"].startswith("clamp_sum(") and shown["first"] == shown["second"] == "returned int"
    assert diff["output"]["disagreement"]["first"][2] != diff["output"]["disagreement"]["second"][2]  # staff: values
    public = public_ballots([ballot])[0]["evidence"]
    assert "output" not in public["differential"] and "output" not in public["sandbox"]


FAILS = "```python\ndef clamp_sum(xs, cap):\n    return 0\n```"


def test_an_answer_failing_the_prompt_tests_is_redrawn_and_never_gets_a_second_solution() -> None:
    seen: list[dict] = []
    ballot = ask(*[FAILS] * code_head.MAX_ANSWERS, seen=seen)
    assert ballot.confidence == 0.05 and "differential" not in ballot.evidence
    assert ballot.answer == extract_code(FAILS) and ballot.evidence["answers_drawn"] == code_head.MAX_ANSWERS
    assert len(seen) == code_head.MAX_ANSWERS
    # the greedy answer first, then samples under the same instruction, each with a seed of its own
    assert {call["system"] for call in seen} == {code_head.SYSTEM_PROMPT}
    assert "seed" not in seen[0] and all(call["temperature"] > 0 for call in seen[1:])
    assert len({call["seed"] for call in seen[1:]}) == code_head.MAX_ANSWERS - 1


def test_a_redrawn_answer_that_passes_the_prompt_tests_is_the_answer_and_still_needs_a_witness() -> None:
    seen: list[dict] = []
    trusted = ask(FAILS, "no code here", FIRST, SAME, seen=seen)
    assert trusted.answer == extract_code(FIRST) and trusted.evidence["answers_drawn"] == 3
    assert trusted.confidence == code_head.PASSED_CONFIDENCE
    assert seen[3]["system"] == code_head.SECOND_SYSTEM_PROMPT  # the witness, drawn once the answer passed
    disagreed = ask(FAILS, FIRST, WRONG, WRONG)
    assert disagreed.answer == extract_code(FIRST) and disagreed.confidence == code_head.DISAGREED_CONFIDENCE


def test_no_answer_is_redrawn_past_the_heads_time(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(code_head, "REDRAW_WITHIN_S", 0.0)
    seen: list[dict] = []
    assert ask(FAILS, FIRST, SAME, seen=seen).confidence == 0.05 and len(seen) == 1


@pytest.mark.parametrize(
    ("second", "error"),
    [
        ("```python\ndef clamp_sum(xs, cap):\n    return 4\n```", "AssertionError"),
        ("no code here", "no clamp_sum() that parses"),
        (
            "```python\ndef clamp_sum(xs, cap):\n    return min(sum(xs), cap)\nraise KeyError('x')\n```",
            "defining: KeyError",
        ),
    ],
    ids=["fails-the-prompt-tests", "no-function", "raises-when-defined"],
)
def test_second_solutions_that_are_no_witness_leave_the_answer_unsure(second: str, error: str) -> None:
    seen: list[dict] = []
    ballot = ask(FIRST, *[second] * code_head.MAX_WITNESSES, seen=seen)
    assert ballot.confidence == code_head.UNCORROBORATED_CONFIDENCE < DEFAULT_MIN_CONFIDENCE
    assert ballot.evidence["differential"]["second_error"] == error
    assert ballot.evidence["differential"]["witnesses_drawn"] == code_head.MAX_WITNESSES == len(seen) - 1
    seeds = [call["seed"] for call in seen[1:]]
    assert len(set(seeds)) == len(seeds)  # each candidate drawn with a seed of its own


@pytest.mark.parametrize("no_witness", ["```python\ndef clamp_sum(xs, cap):\n    return 4\n```", "no code here"])
def test_a_witness_drawn_after_one_that_was_not_decides(no_witness: str) -> None:
    trusted = ask(FIRST, no_witness, SAME)
    assert trusted.confidence == code_head.PASSED_CONFIDENCE
    assert trusted.evidence["differential"]["witnesses_drawn"] == 2
    disagreed = ask(FIRST, no_witness, WRONG, WRONG)  # after one against, two more could still outvote it
    assert disagreed.confidence == code_head.DISAGREED_CONFIDENCE
    assert disagreed.evidence["differential"]["votes"] == {"agree": 0, "disagree": 2}


def test_a_disagreement_is_outvoted_only_by_two_agreeing_witnesses() -> None:
    seen: list[dict] = []
    ballot = ask(FIRST, WRONG, SAME, SAME, seen=seen)
    diff = ballot.evidence["differential"]
    assert ballot.confidence == code_head.PASSED_CONFIDENCE and len(seen) == 4
    assert diff["votes"] == {"agree": 2, "disagree": 1} and diff["agree"] is True and diff["disagreement"] is None
    seen.clear()
    ballot = ask(FIRST, WRONG, SAME, WRONG, seen=seen)  # one for, two against
    assert ballot.confidence == code_head.DISAGREED_CONFIDENCE and len(seen) == 4
    assert ballot.evidence["differential"]["disagreement"] is not None
    seen.clear()
    ballot = ask(FIRST, WRONG, WRONG, SAME, seen=seen)  # two against: one more could not outvote them
    assert ballot.confidence == code_head.DISAGREED_CONFIDENCE and len(seen) == 3


@pytest.mark.parametrize(
    ("votes", "trusted"),
    [((1, 0), True), ((0, 0), False), ((1, 1), False), ((2, 1), True), ((2, 2), False), ((3, 2), True),
     ((0, 1), False)],
)  # fmt: skip
def test_trusted_by(votes: tuple[int, int], trusted: bool) -> None:
    assert code_head.trusted_by({"agree": votes[0], "disagree": votes[1]}) is trusted


def test_no_candidate_is_redrawn_past_the_heads_time(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(code_head, "REDRAW_WITHIN_S", 0.0)
    seen: list[dict] = []
    ballot = ask(FIRST, "no code here", SAME, seen=seen)
    assert ballot.confidence == code_head.UNCORROBORATED_CONFIDENCE and len(seen) == 2


class ModelClock:
    """The head's clock, advanced only by the model: each generation takes `seconds` (sandbox runs none)."""

    def __init__(self, seconds: float) -> None:
        self.now, self.seconds = 1000.0, seconds

    def perf_counter(self) -> float:
        return self.now

    def model(self, *texts: str, seen: list[dict]):
        fast = model(*texts, seen=seen)

        def generate(messages, **params) -> Generation:
            self.now += self.seconds
            return fast(messages, **params)

        return generate


def test_with_the_councils_deadline_no_draw_starts_that_would_not_end_by_it(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = ModelClock(seconds=10.0)
    monkeypatch.setattr(code_head, "time", clock)
    seen: list[dict] = []
    # The first answer ends at +10; a witness (10 s, the longest draw so far) fits before +25 and ends at
    # +20; the next would end at +30: it is not started, so the outvoting witnesses never come.
    ctx = HeadContext(generate=clock.model(FIRST, WRONG, SAME, SAME, seen=seen), deadline=clock.now + 25.0)
    ballot = CodeHead().answer(PROMPT, ctx)
    assert len(seen) == 2 and ballot.confidence == code_head.DISAGREED_CONFIDENCE
    seen.clear()  # with time for them, they come and outvote it
    ctx = HeadContext(generate=clock.model(FIRST, WRONG, SAME, SAME, seen=seen), deadline=clock.now + 45.0)
    ballot = CodeHead().answer(PROMPT, ctx)
    assert len(seen) == 4 and ballot.confidence == code_head.PASSED_CONFIDENCE
    seen.clear()  # the sampled answers that replace a failing one are held to the same rule
    ctx = HeadContext(generate=clock.model(FAILS, FAILS, FIRST, SAME, seen=seen), deadline=clock.now + 15.0)
    ballot = CodeHead().answer(PROMPT, ctx)
    assert len(seen) == 1 and ballot.confidence == code_head.FAILED_CONFIDENCE
    # a deadline that leaves no time for a second solution: the answer cannot be trusted
    seen.clear()
    ctx = HeadContext(generate=clock.model(FIRST, SAME, seen=seen), deadline=clock.now + 15.0)
    ballot = CodeHead().answer(PROMPT, ctx)
    assert len(seen) == 1 and ballot.confidence == code_head.UNCORROBORATED_CONFIDENCE < DEFAULT_MIN_CONFIDENCE
    assert ballot.evidence["differential"]["second_error"] == "no time left for a second solution"
    assert ballot.evidence["differential"]["witnesses_drawn"] == 0


def test_a_far_deadline_lets_every_draw_run_past_the_window_without_one(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(code_head, "REDRAW_WITHIN_S", 0.0)  # the window that applies without a deadline
    seen: list[dict] = []
    ballot = ask(FAILS, FIRST, WRONG, SAME, SAME, seen=seen, deadline=time.perf_counter() + 60.0)
    assert len(seen) == 5 and ballot.confidence == code_head.PASSED_CONFIDENCE
    assert ballot.evidence["answers_drawn"] == 2
    assert ballot.evidence["differential"]["votes"] == {"agree": 2, "disagree": 1}


def test_draw_schedule_limits() -> None:
    now = time.perf_counter()
    assert code_head.DrawSchedule.for_head(now, 100.0, None).limit == now + code_head.REDRAW_WITHIN_S
    assert code_head.DrawSchedule.for_head(now, 100.0, now + 500.0).limit == now + 100.0  # the head's own timeout
    assert code_head.DrawSchedule.for_head(now, 100.0, now + 5.0).limit == now + 5.0
    soft, hard = code_head.DrawSchedule(now - 1.0, hard=False), code_head.DrawSchedule(now - 1.0, hard=True)
    assert soft.allows(first_witness=True) and not soft.allows() and not hard.allows(first_witness=True)
    schedule = code_head.DrawSchedule(time.perf_counter() + 10.0, hard=True)
    assert schedule.allows()
    schedule.took(time.perf_counter() - 11.0)  # a draw that took 11 s: another would not end in time
    assert not schedule.allows() and schedule.longest_s >= 11.0


def test_no_probes_means_no_trust() -> None:
    prompt = "Write a python function now_ms().\nassert now_ms() > 0\n"
    seen: list[dict] = []
    ballot = CodeHead().answer(prompt, HeadContext(generate=model("def now_ms():\n    return 1", seen=seen)))
    assert ballot.confidence == code_head.UNCORROBORATED_CONFIDENCE  # no arguments: nothing to vary
    assert ballot.evidence["differential"]["probes_derived"] == 0 and len(seen) == 1  # no second generation


def test_too_few_probes_run_is_not_enough(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(code_head, "MIN_PROBES", 1000)
    ballot = ask(FIRST, SAME)
    assert ballot.evidence["differential"]["agree"] is True
    assert ballot.confidence == code_head.UNCORROBORATED_CONFIDENCE


def test_same_exception_type_is_agreement() -> None:
    prompt = "Write a python function head(xs) returning the first item. For example head([4, 5]) -> 4."
    first = "def head(xs):\n    return xs[0]"
    second = "def head(xs):\n    for x in xs:\n        return x\n    raise IndexError('empty')"
    ballot = CodeHead().answer(prompt, HeadContext(generate=model(first, second)))
    assert ballot.evidence["differential"]["agree"] is True and ballot.confidence == 0.9


def test_both_refusing_an_input_with_different_exceptions_is_evidence_neither_way() -> None:
    prompt = "Write a python function head(xs) returning the first item. For example head([4, 5]) -> 4."
    first = "def head(xs):\n    return xs[0]"
    second = "def head(xs):\n    if not xs:\n        raise ValueError('empty')\n    return xs[0]"
    diff = CodeHead().answer(prompt, HeadContext(generate=model(first, second))).evidence["differential"]
    assert diff["probes_refused_by_both"] >= 1 and diff["disagreement"] is None
    assert diff["probes_run"] + diff["probes_refused_by_both"] + diff["probes_timed_out"] <= diff["probes_derived"]
    # The answer refusing what a witness answers is still a disagreement: the answer may fail where it should not.
    third = "def head(xs):\n    return xs[0] if xs else None"
    diff = CodeHead().answer(prompt, HeadContext(generate=model(first, third, third))).evidence["differential"]
    assert diff["disagreement"] is not None and diff["agree"] is False


def test_a_witness_refusing_an_input_the_answer_takes_is_evidence_neither_way() -> None:
    prompt = "Write a python function head(xs) returning the first item. For example head([4, 5]) -> 4."
    answer = "def head(xs):\n    return xs[0] if xs else None"
    checks = "def head(xs):\n    if not xs:\n        raise ValueError('empty')\n    return xs[0]"
    ballot = CodeHead().answer(prompt, HeadContext(generate=model(answer, checks)))
    diff = ballot.evidence["differential"]
    assert diff["probes_refused_by_witness"] >= 1 and diff["disagreement"] is None
    assert diff["agree"] is True and ballot.confidence == code_head.PASSED_CONFIDENCE  # agreed on every other probe
    # A witness that returns another value there still disagrees.
    other = "def head(xs):\n    return xs[0] if xs else 0"
    diff = CodeHead().answer(prompt, HeadContext(generate=model(answer, other, other))).evidence["differential"]
    assert diff["disagreement"] is not None and diff["probes_refused_by_witness"] == 0


@pytest.mark.parametrize(
    ("same", "answer_raised", "witness_raised", "verdict"),
    [
        (None, False, False, code_head.TIMED_OUT),
        (True, True, True, code_head.AGREED),  # the same exception
        (False, True, True, code_head.REFUSED_BY_BOTH),
        (False, False, True, code_head.REFUSED_BY_WITNESS),
        (False, True, False, code_head.DIFFERED),
        (False, False, False, code_head.DIFFERED),
    ],
)
def test_probe_verdicts(same, answer_raised, witness_raised, verdict) -> None:
    assert code_head.probe_verdict(same, answer_raised=answer_raised, witness_raised=witness_raised) == verdict


# --------------------------------------------------------------------------- a hostile second solution
HOSTILE = {
    "loops": "def clamp_sum(xs, cap):\n    while True: pass",
    "sleeps-at-import": "import time\ntime.sleep(100)\ndef clamp_sum(xs, cap):\n    return min(sum(xs), cap)",
    "floods-output": "import os\ndef clamp_sum(xs, cap):\n    os.write(1, b'x' * 10_000_000)\n"
    "    return min(sum(xs), cap)",
    "reads-files": "def clamp_sum(xs, cap):\n    if sum(xs) == 3:\n        return min(sum(xs), cap)\n"
    "    return open('/etc/passwd').read() + open('/work/main/README.md').read()",
    "ignores-the-alarm": "import signal\nsignal.signal(signal.SIGALRM, signal.SIG_IGN)\n"
    "def clamp_sum(xs, cap):\n    if sum(xs) == 3:\n        return min(sum(xs), cap)\n    while True: pass",
}


@pytest.mark.parametrize("second", list(HOSTILE.values()), ids=list(HOSTILE))
def test_a_hostile_second_solution_cannot_hang_leak_or_win(second: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(code_head, "MAX_WITNESSES", 1)  # one hostile candidate's cost (each redraw is bounded alike)
    started = time.perf_counter()
    ballot = ask(FIRST, second).as_dict()
    assert time.perf_counter() - started < code_head.DIFF_WALL_S + 5
    assert ballot["confidence"] < DEFAULT_MIN_CONFIDENCE
    text = json.dumps(ballot)
    assert Path("/etc/passwd").read_text().splitlines()[0] not in text
    assert "xxxxxxxxxx" not in json.dumps(public_ballots([ballot]))


def test_probes_where_one_side_times_out_are_not_counted_as_run() -> None:
    second = "def clamp_sum(xs, cap):\n    if sum(xs) > 3:\n        while True: pass\n    return min(sum(xs), cap)"
    started = time.perf_counter()
    diff = ask(FIRST, second).evidence["differential"]
    assert time.perf_counter() - started < code_head.DIFF_WALL_S + 5
    assert diff["probes_timed_out"] > 0 and diff["probes_run"] + diff["probes_timed_out"] <= diff["probes_derived"]
    assert diff["probes_agreed"] == diff["probes_run"]
