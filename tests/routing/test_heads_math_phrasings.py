"""The math head's worded questions: number words, fractions of, gcd/lcm, primes, statistics of a
list, remainders, factorials, "multiply a by b", "if 2x + 1 = 7, what is x".

No Django and no database: run with
    python -m pytest -p no:django -p no:cacheprovider tests/routing/test_heads_math_phrasings.py -q
"""

from __future__ import annotations

import time

import pytest

from routing.heads.base import HeadContext
from routing.heads.math import AMBIGUOUS_CONFIDENCE, MAX_NTH_PRIME, MAX_PRIME_COUNT, MathHead

pytestmark = pytest.mark.usefixtures("math_wall_cap_relaxed")  # TIMED tests keep the shipped cap

HEAD = MathHead()
TIMED = {"test_large_inputs_stay_cheap", "test_answers_are_fast"}


def ask(prompt: str):
    return HEAD.answer(prompt, HeadContext())


def assert_answers(prompt: str, expected: str, task: str, confidence: float = 1.0):
    ballot = ask(prompt)
    assert ballot.answer == expected, (prompt, ballot.evidence)
    assert ballot.confidence == confidence, (prompt, ballot.evidence)
    assert ballot.evidence["task"] == task, (prompt, ballot.evidence)
    assert ballot.evidence["result"] == expected
    return ballot


def assert_abstains(prompt: str):
    ballot = ask(prompt)
    assert ballot.answer == "" and ballot.confidence == 0.0, (prompt, ballot.answer, ballot.evidence)
    assert ballot.evidence.get("abstained")
    return ballot


@pytest.mark.parametrize(
    ("prompt", "expected", "task"),
    [
        # number words
        ("what is nine times six", "54", "evaluate"),
        ("thirty-three plus nineteen", "52", "evaluate"),
        ("one hundred and one minus two", "99", "evaluate"),
        ("what is a thousand divided by eight", "125", "evaluate"),
        ("two point five times four", "10", "evaluate"),
        ("What is eleven squared?", "121", "evaluate"),
        # fractions of
        ("what is a third of 60", "20", "fraction_of"),
        ("two fifths of 35", "14", "fraction_of"),
        ("three quarters of 100", "75", "fraction_of"),
        ("half of 9", "9/2", "fraction_of"),
        ("2/3 of 27", "18", "fraction_of"),
        ("one-tenth of 450", "45", "fraction_of"),
        ("a quarter of one hundred", "25", "fraction_of"),
        # verbs
        ("multiply 9 by 7", "63", "multiply"),
        ("Multiply seven by six.", "42", "multiply"),
        ("what do you get when you multiply 3 by 11", "33", "multiply"),
        ("divide 81 by 9", "9", "divide"),
        ("add 15 and 27", "42", "add"),
        ("subtract 8 from 20", "12", "subtract"),
        ("the product of 6 and 7", "42", "product"),
        ("the sum of 1/4 and 1/2", "3/4", "add"),
        ("the square of 13", "169", "power"),
        ("the cube of 4", "64", "power"),
        # factorials
        ("4 factorial", "24", "evaluate"),
        ("factorial of 7", "5040", "evaluate"),
        ("what is seven factorial", "5040", "evaluate"),
        ("3! + 1", "7", "evaluate"),
        # remainders
        ("remainder of 29 divided by 4", "1", "remainder"),
        ("What is the remainder when 100 is divided by 7?", "2", "remainder"),
        ("the remainder after dividing 50 by 6", "2", "remainder"),
        ("23 mod 6", "5", "evaluate"),
        ("23 modulo 6", "5", "evaluate"),
        ("what is the remainder when 12 is divided by 4", "0", "remainder"),
    ],
)
def test_worded_arithmetic(prompt, expected, task):
    assert_answers(prompt, expected, task)


@pytest.mark.parametrize(
    ("prompt", "expected", "task"),
    [
        ("greatest common divisor of 24 and 36", "12", "gcd"),
        ("What is the GCD of 48, 60 and 84?", "12", "gcd"),
        ("gcd(21, 14)", "7", "gcd"),
        ("highest common factor of 8 and 12", "4", "gcd"),
        ("gcf of 17 and 5", "1", "gcd"),
        ("lcm of 6 and 8", "24", "lcm"),
        ("least common multiple of 3, 4 and 5", "60", "lcm"),
        ("the lowest common multiple of 10 and 15", "30", "lcm"),
    ],
)
def test_gcd_and_lcm(prompt, expected, task):
    ballot = assert_answers(prompt, expected, task)
    assert ballot.evidence["numbers"]


@pytest.mark.parametrize(
    ("prompt", "expected", "task"),
    [
        ("is 89 prime", "Yes", "is_prime"),
        ("Is 87 a prime number?", "No", "is_prime"),
        ("is 2 a prime", "Yes", "is_prime"),
        ("is 0 prime", "No", "is_prime"),
        ("is 18446744073709551557 prime", "Yes", "is_prime"),  # the largest prime below 2**64
        ("what is the 5th prime", "11", "nth_prime"),
        ("the twentieth prime number", "71", "nth_prime"),
        ("the first prime", "2", "nth_prime"),
        ("the 100th prime", "541", "nth_prime"),
        ("the smallest prime number", "2", "nth_prime"),
        ("the smallest prime greater than 200", "211", "next_prime"),
        ("next prime after 13", "17", "next_prime"),
        ("the largest prime less than 50", "47", "previous_prime"),
        ("how many primes are there below 50", "15", "prime_count"),
        ("how many primes less than or equal to 47", "15", "prime_count"),
        ("how many primes between 20 and 30", "2", "prime_count"),
        ("the prime factors of 90", "2 * 3**2 * 5", "factorint"),
    ],
)
def test_primes(prompt, expected, task):
    assert_answers(prompt, expected, task)


def test_a_prime_count_between_two_primes_depends_on_the_ends():
    ballot = assert_answers("how many primes between 7 and 13", "3", "prime_count", AMBIGUOUS_CONFIDENCE)
    assert ballot.evidence["readings"] == {"inclusive": 3, "exclusive": 1}


def test_is_prime_shows_the_factors_of_a_composite():
    assert ask("is 91 prime").evidence["factors"] == {"7": 1, "13": 1}


@pytest.mark.parametrize(
    ("prompt", "expected", "task"),
    [
        ("mean of 2, 4, 6 and 8", "5", "mean"),
        ("the average of 10, 20 and 40", "23.3333333333", "mean"),
        ("what is the average of 1.5, 2.5 and 3", "2.33333333333", "mean"),
        ("median of 7, 1, 3", "3", "median"),
        ("the median of 4, 1, 3, 2", "2.5", "median"),
        ("mode of 5, 3, 5, 2", "5", "mode"),
        ("sum of 4, 5, 6", "15", "sum"),
        ("product of 2, 5 and 10", "100", "product"),
        ("range of 3, 11, 7", "8", "range"),
        ("find the mean of the numbers 3, 9, 12", "8", "mean"),
        ("mean of [1, 2, 3]", "2", "mean"),
        ("mean of -2 and 2", "0", "mean"),
    ],
)
def test_statistics_of_a_list(prompt, expected, task):
    assert_answers(prompt, expected, task)


@pytest.mark.parametrize(
    ("prompt", "expected"),
    [
        ("if 3x - 2 = 10, what is x?", "x = 4"),
        ("If 5y + 5 = 30, what is y", "y = 5"),
        ("given that 2a = 14, find a", "a = 7"),
        ("find x when 4x + 1 = 9", "x = 2"),
        ("what is x if x/3 = 4", "x = 12"),
        ("solve for x when 7x = 21", "x = 3"),
    ],
)
def test_equations_asked_in_words(prompt, expected):
    assert_answers(prompt, expected, "solve")


@pytest.mark.parametrize(
    "prompt",
    [
        "mode of 1, 2, 3",  # no mode
        "mode of 1, 1, 2, 2",  # two modes
        "mean of 1,000 and 2,000",  # a list, or thousands separators?
        "remainder when -7 is divided by 2",  # the sign convention differs
        "remainder of 7 divided by 0",
        "gcd of 4.5 and 3",
        "lcm of 4",
        "is 18446744073709551629 prime",  # above 2**64: no proof
        f"the {MAX_NTH_PRIME + 1}th prime",
        f"how many primes below {MAX_PRIME_COUNT + 1}",
        "how many primes below 10 and 20",
        "the largest prime less than 2",
        "nineteen eighty four",  # two numbers side by side, not a product
        "what is 12 34",
        "one thirds of 9",
        "a second of 60",  # a unit of time, not 1/2
        "add a comment to my code",
        "what does mean mean",
        "multiply the two numbers",
        "what is the median income in France",
        "is it prime time yet",
        "if it rains, what is x",
        "what is x if y = 3",  # x is not in the equation: not "no solution"
        "if 2x = 4, what is y",
    ],
)
def test_abstains(prompt):
    assert_abstains(prompt)


@pytest.mark.parametrize(
    "prompt",
    [
        "gcd of " + "9" * 1200 + " and 6",
        "a third of " + "9" * 190,
        "multiply " + "9" * 95 + " by " + "9" * 95,
        "mean of " + ", ".join(["1"] * 101),
        "factorial of 100000",
        "the 99999th prime",
        "how many primes below 10000000",
        "product of " + ", ".join(["999999999"] * 19),
    ],
)
def test_large_inputs_stay_cheap(prompt):
    started = time.perf_counter()
    ask(prompt)
    assert time.perf_counter() - started < 1.0  # refused or bounded, never a long computation


@pytest.mark.parametrize(
    "prompt",
    [
        "what is seven times eight",
        "greatest common divisor of 12 and 18",
        "lcm of 4 and 6",
        "is 97 prime",
        "the 10th prime",
        "mean of 1, 2, 3",
        "median of 3, 1, 2",
        "remainder of 17 divided by 5",
        "5 factorial",
        "a third of 90",
        "3/4 of 20",
        "multiply 12 by 12",
        "the square of 12",
        "if 2x + 3 = 11, what is x",
    ],
)
def test_applies(prompt):
    assert HEAD.applies(prompt)


@pytest.mark.parametrize(
    "prompt", ["a third of 90", "is 97 prime", "mean of 1, 2, 3, 4", "gcd of 12 and 18", "seven times eight"]
)
def test_answers_are_fast(prompt):
    ask(prompt)
    started = time.perf_counter()
    ballot = ask(prompt)
    assert ballot.confidence == 1.0
    assert time.perf_counter() - started < 0.05  # a few ms; generous for a loaded CI machine
