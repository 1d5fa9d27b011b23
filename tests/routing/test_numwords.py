"""English number words for the exact heads (routing/heads/numwords.py)."""

from __future__ import annotations

from fractions import Fraction

import pytest

from routing.heads.numwords import parse_cardinal, parse_fraction_words, parse_ordinal, replace_number_words


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("zero", 0),
        ("seven", 7),
        ("thirteen", 13),
        ("forty-two", 42),
        ("ninety nine", 99),
        ("a hundred", 100),
        ("one hundred and five", 105),
        ("twelve hundred", 1200),
        ("three thousand four hundred and fifty-six", 3456),
        ("two million", 2_000_000),
        ("1234", 1234),
        ("one two", None),  # two numbers, not one
        ("hundred", None),
        ("thousand million", None),
        ("and", None),
        ("seven and", None),
        ("eleven ten", None),
    ],
)
def test_cardinals(text, expected):
    assert parse_cardinal(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("first", 1),
        ("second", 2),
        ("third", 3),
        ("fifth", 5),
        ("eighth", 8),
        ("twelfth", 12),
        ("twentieth", 20),
        ("twenty-first", 21),
        ("one hundredth", 100),
        ("1st", 1),
        ("22nd", 22),
        ("113th", 113),
        ("2st", None),
        ("11st", None),
        ("zeroth", None),
        ("month", None),
    ],
)
def test_ordinals(text, expected):
    assert parse_ordinal(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("half", Fraction(1, 2)),
        ("a half", Fraction(1, 2)),
        ("a third", Fraction(1, 3)),
        ("two thirds", Fraction(2, 3)),
        ("a quarter", Fraction(1, 4)),
        ("three quarters", Fraction(3, 4)),
        ("one-fifth", Fraction(1, 5)),
        ("seven tenths", Fraction(7, 10)),
        ("5/8", Fraction(5, 8)),
        ("two third", None),
        ("one thirds", None),
        ("a second", None),  # a unit of time
        ("two halfs", None),
        ("1/0", None),
    ],
)
def test_fractions(text, expected):
    assert parse_fraction_words(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("what is seven times eight", "what is 7 times 8"),
        ("Twenty-Five plus one", "25 plus 1"),
        ("one hundred and one dalmatians", "101 dalmatians"),
        ("a thousand and one nights", "1001 nights"),
        ("three point one four", "3.14"),
        ("convert ten km to miles", "convert 10 km to miles"),
        ("one two", "1 2"),  # left as two numbers: the heads refuse them
        ("which one is it", "which 1 is it"),
        ("the twenty-first prime", "the twenty-first prime"),  # ordinals are left alone
        ("a third of ninety", "a third of 90"),
        ("someone alone", "someone alone"),
        ("rock and roll", "rock and roll"),
    ],
)
def test_replace_number_words(text, expected):
    assert replace_number_words(text) == expected
