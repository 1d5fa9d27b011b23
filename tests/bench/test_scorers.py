"""Every scorer on known-good and known-bad answers."""

from __future__ import annotations

import pytest

from bench.titanic.scorers import SCORERS, numbers_in, parse_expression, score


def test_numbers_in_reads_integers_decimals_fractions_thousands_and_words():
    assert numbers_in("7*8 is 56") == [7, 8, 56]
    assert numbers_in("It costs 1,234.5 dollars, or -3/4 of that") == [1234.5, -0.75]
    assert numbers_in("Spiders have eight legs") == [8]
    assert numbers_in("x = 2, x = 3") == [2, 3]


@pytest.mark.parametrize(
    ("scorer", "answer", "reference", "args", "expected"),
    [
        # exact
        ("exact", "Paris.", "Paris", {}, 1.0),
        ("exact", "  paris ", "Paris", {}, 1.0),
        ("exact", "Lyon", "Paris", {}, 0.0),
        ("exact", "The capital is Paris", "Paris", {}, 0.0),
        ("exact", "yes", "Yes", {"alternatives": ["y"]}, 1.0),
        # numeric: the final number by default, any number with mode "any"
        ("numeric", "56", "56", {}, 1.0),
        ("numeric", "7 * 8 = 56.", "56", {}, 1.0),
        ("numeric", "The answer is 512", "56", {}, 0.0),
        ("numeric", "no idea", "56", {}, 0.0),
        ("numeric", "3.1069 miles", "3.10686", {"rel": 0.001}, 1.0),
        ("numeric", "3.2 miles", "3.10686", {"rel": 0.001}, 0.0),
        ("numeric", "7/8", "0.875", {}, 1.0),
        ("numeric", "15%", "15", {}, 1.0),
        ("numeric", "Water boils at 100 °C at 1 atm (101.325 kPa)", "100", {"mode": "any"}, 1.0),
        ("numeric", "Water boils at 90 °C", "100", {"mode": "any"}, 0.0),
        ("numeric", "-902", "-902", {}, 1.0),
        ("numeric", "902", "-902", {}, 0.0),
        # regex
        ("regex", "Hello! How can I help?", "", {"pattern": r"\bhello\b", "flags": "i"}, 1.0),
        ("regex", "Goodbye.", "", {"pattern": r"\bhello\b", "flags": "i"}, 0.0),
        ("regex", "The symbol is Au", "Au", {"pattern": r"\bAu\b"}, 1.0),
        ("regex", "The symbol is Ag", "Au", {"pattern": r"\bAu\b"}, 0.0),
        # contains: words, accents and case ignored
        ("contains", "The capital of Brazil is Brasilia.", "Brasília", {}, 1.0),
        ("contains", "It is Rio de Janeiro.", "Brasília", {}, 0.0),
        ("contains", "It was written by William Shakespeare", "", {"any": ["Shakespeare"]}, 1.0),
        ("contains", "Christopher Marlowe", "", {"any": ["Shakespeare"]}, 0.0),
        ("contains", "Romeo", "", {"all": ["Romeo", "Juliet"]}, 0.0),
        # solutions: the set of values
        ("solutions", "x = 2, x = 3", "", {"values": [2, 3], "var": "x"}, 1.0),
        ("solutions", "The roots are x=3 and x=2.", "", {"values": [2, 3], "var": "x"}, 1.0),
        ("solutions", "x = 2", "", {"values": [2, 3], "var": "x"}, 0.0),
        ("solutions", "x = 2, x = 4", "", {"values": [2, 3], "var": "x"}, 0.0),
        ("solutions", "4", "", {"values": [4], "var": "x"}, 1.0),
        ("solutions", "x = 7/3", "", {"values": ["7/3"], "var": "x"}, 1.0),
        # expr: equivalence, the asked form, an integration constant
        ("expr", "(x - 3)*(x - 2)", "(x - 2)*(x - 3)", {"form": "factored"}, 1.0),
        ("expr", "The factored form is (x-2)(x-3).", "(x - 2)*(x - 3)", {"form": "factored"}, 1.0),
        ("expr", "x**2 - 5*x + 6", "(x - 2)*(x - 3)", {"form": "factored"}, 0.0),
        ("expr", "(x - 1)*(x - 6)", "(x - 2)*(x - 3)", {"form": "factored"}, 0.0),
        ("expr", "x^2 - 2x - 15", "x**2 - 2*x - 15", {"form": "expanded"}, 1.0),
        ("expr", "(x+3)(x-5)", "x**2 - 2*x - 15", {"form": "expanded"}, 0.0),
        ("expr", "3*x**2 + 4*x", "3*x**2 + 4*x", {}, 1.0),
        ("expr", "d/dx = 6x + 4", "3*x**2 + 4*x", {}, 0.0),
        ("expr", "x**3 + x**2 + C", "x**3 + x**2 + C", {"constant": True}, 1.0),
        ("expr", "x^3 + x^2 + 7", "x**3 + x**2 + C", {"constant": True}, 1.0),
        ("expr", "3x^2 + 2x + C", "x**3 + x**2 + C", {"constant": True}, 0.0),
        ("expr", "__import__('os').system('id')", "2*x", {}, 0.0),
        # must_be_unsure: UNSURE or a refusal passes, a made-up answer fails
        ("must_be_unsure", "UNSURE", "I cannot answer that.", {}, 1.0),
        ("must_be_unsure", "I cannot answer that: it is fictional.", "", {}, 1.0),
        ("must_be_unsure", "There is no way to know what you are thinking.", "", {}, 1.0),
        ("must_be_unsure", "You are thinking of 7.", "", {}, 0.0),
        ("must_be_unsure", "The capital of Veltaria is Veltar City.", "", {}, 0.0),
        ("must_be_unsure", "def next_lottery_numbers():\n    return [4, 8, 15, 16, 23, 42]", "", {}, 0.0),
    ],
)
def test_scorer_on_good_and_bad_answers(scorer, answer, reference, args, expected):
    assert score(scorer, answer, reference, args, route="council").score == expected


def test_must_be_unsure_passes_on_the_unsure_route_and_custom_refusals():
    assert score("must_be_unsure", "UNSURE", "", {}, route="unsure").score == 1.0
    assert score("must_be_unsure", "Nobody knows.", "", {"also": r"nobody knows"}, route="cloud").score == 1.0


def test_unsure_on_an_answerable_item_scores_zero_whatever_the_scorer():
    for name in SCORERS:
        if name == "must_be_unsure":
            continue
        assert score(name, "UNSURE", "56", {"pattern": ".", "values": [56], "tests": "pass"}, route="unsure").score == 0


def test_code_tests_run_the_hidden_tests_in_the_sandbox():
    tests = "assert add(2, 3) == 5\nassert add(-1, 1) == 0"
    good = "Here you go:\n```python\ndef add(a, b):\n    return a + b\n```"
    wrong = "def add(a, b):\n    return a - b"
    hardcoded = "def add(a, b):\n    return 5"
    assert score("code_tests", good, "", {"tests": tests}).score == 1.0
    assert score("code_tests", wrong, "", {"tests": tests}).score == 0.0
    assert score("code_tests", hardcoded, "", {"tests": tests}).score == 0.0
    assert score("code_tests", "I would use a loop.", "", {"tests": tests}).score == 0.0


def test_code_tests_cannot_escape_the_sandbox_limits():
    hang = "def add(a, b):\n    while True:\n        pass"
    verdict = score("code_tests", hang, "", {"tests": "assert add(1, 1) == 2", "wall_s": 1.0})
    assert verdict.score == 0.0


def test_parse_expression_refuses_anything_but_short_math():
    assert parse_expression("2x + 1") is not None
    for text in ("__import__('os')", "x.__class__", "9**9**9**9", "open('f')", "lambda: 1", "x" * 300):
        assert parse_expression(text) is None, text
