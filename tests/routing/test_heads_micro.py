"""The pattern head: greetings, thanks, unit conversions and calendar arithmetic by regex.

No Django and no database: run with
    python -m pytest -p no:django -p no:cacheprovider tests/routing/test_heads_patterns.py -q
"""

from __future__ import annotations

import datetime as dt
from fractions import Fraction

import pytest

from routing.heads.base import HeadContext
from routing.heads.micro import (
    CONVERSION_CONFIDENCE,
    DATE_CONFIDENCE,
    GREETING_CONFIDENCE,
    THANKS_CONFIDENCE,
    UNITS,
    MicroHead,
    convert,
    format_quantity,
    parse_date,
)

HEAD = MicroHead()
VOTE_FLOOR = 0.75


def ask(prompt: str):
    return HEAD.answer(prompt, HeadContext())


def assert_answers(prompt: str, expected: str, confidence: float, kind: str):
    ballot = ask(prompt)
    assert ballot.answer == expected, (prompt, ballot.evidence)
    assert ballot.confidence == confidence, (prompt, ballot.evidence)
    assert ballot.evidence["kind"] == kind
    assert ballot.head == "micro" and ballot.skill_type == "micro"
    assert ballot.error is None
    return ballot


def assert_abstains(prompt: str):
    ballot = ask(prompt)
    assert ballot.answer == "" and ballot.confidence == 0.0, (prompt, ballot.answer, ballot.evidence)
    assert ballot.evidence.get("abstained")
    return ballot


# --------------------------------------------------------------------------- chat

GREETINGS = [
    ("hi", "Hello! How can I help you today?"),
    ("Hi!", "Hello! How can I help you today?"),
    ("hello", "Hello! How can I help you today?"),
    ("Hello there.", "Hello! How can I help you today?"),
    ("hey", "Hello! How can I help you today?"),
    ("hi hi", "Hello! How can I help you today?"),
    ("good morning", "Good morning! How can I help you today?"),
    ("Good evening!", "Good evening! How can I help you today?"),
    ("hello, how are you?", "Hello! I'm doing well, thanks for asking. How can I help you today?"),
    ("how are you doing today?", "Hello! I'm doing well, thanks for asking. How can I help you today?"),
]


@pytest.mark.parametrize(("prompt", "expected"), GREETINGS)
def test_greetings_are_left_to_the_generalist(prompt, expected):
    ballot = assert_answers(prompt, expected, GREETING_CONFIDENCE, "greeting")
    assert ballot.confidence < VOTE_FLOOR  # can only win by agreement with agent0


@pytest.mark.parametrize(
    "prompt", ["thanks", "Thanks!", "thank you", "Thank you so much!", "thanks a lot", "thx", "many thanks"]
)
def test_thanks(prompt):
    assert_answers(prompt, "You're welcome!", THANKS_CONFIDENCE, "thanks")


@pytest.mark.parametrize(
    "prompt",
    [
        "hi, can you write me a poem?",
        "hello, what is the capital of France?",
        "thanks, now write me a function",
        "high five",
        "hindsight",
        "they said thank you to me, why?",
    ],
)
def test_chat_with_a_request_is_not_canned(prompt):
    assert_abstains(prompt)


# --------------------------------------------------------------------------- units

CONVERSIONS = [
    ("convert 10 km to miles", "10 km = 6.2137 miles"),
    ("Convert 10 km to miles.", "10 km = 6.2137 miles"),
    ("10 km in miles", "10 km = 6.2137 miles"),
    ("how many miles is 10 km?", "10 km = 6.2137 miles"),
    ("convert 1 mile to km", "1 mile = 1.6093 km"),
    ("how many feet in a mile", "1 mile = 5280 ft"),
    ("convert 3 m to ft", "3 m = 9.8425 ft"),
    ("convert 10 feet to meters", "10 ft = 3.048 m"),
    ("convert 5 in to cm", "5 inches = 12.7 cm"),
    ("how many inches in 30 cm", "30 cm = 11.811 inches"),
    ("convert 5 kg to lb", "5 kg = 11.0231 lb"),
    ("convert 10 pounds to kilograms", "10 lb = 4.5359 kg"),
    ("convert 1 gallon to liters", "1 gallon = 3.7854 L"),
    ("convert 10 litres to gallons", "10 L = 2.6417 gallons"),
    ("convert 100 F to C", "100 °F = 37.7778 °C"),
    ("what is 0 °C in fahrenheit?", "0 °C = 32 °F"),
    ("-40 c to f", "-40 °C = -40 °F"),
    ("convert 37 degrees celsius to fahrenheit", "37 °C = 98.6 °F"),
    ("convert 0 kelvin to celsius", "0 K = -273.15 °C"),
    ("how many seconds are in 2 hours", "2 hours = 7200 seconds"),
    ("convert 90 minutes to hours", "90 minutes = 1.5 hours"),
    ("convert 1 hour to minutes", "1 hour = 60 minutes"),
    ("convert 1 second to hours", "1 second = 0.0002778 hours"),
    ("convert 1,000 m to km", "1000 m = 1 km"),
    ("convert 2.5 km to m", "2.5 km = 2500 m"),
]


@pytest.mark.parametrize(("prompt", "expected"), CONVERSIONS)
def test_unit_conversions(prompt, expected):
    ballot = assert_answers(prompt, expected, CONVERSION_CONFIDENCE, "unit_conversion")
    assert ballot.evidence["exact"]


def test_conversion_factors_are_exact():
    by_key = {unit.key: unit for unit in UNITS}
    assert convert(Fraction(1), by_key["mi"], by_key["km"]) == Fraction("1.609344")
    assert convert(Fraction(1), by_key["lb"], by_key["kg"]) == Fraction("0.45359237")
    assert convert(Fraction(1), by_key["ft"], by_key["in"]) == 12
    assert convert(Fraction(1), by_key["gal"], by_key["l"]) == Fraction("3.785411784")
    assert convert(Fraction(212), by_key["f"], by_key["c"]) == 100
    assert convert(Fraction(1), by_key["h"], by_key["s"]) == 3600
    with pytest.raises(ValueError):
        convert(Fraction(1), by_key["km"], by_key["kg"])


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (Fraction(7200), "7200"),
        (Fraction(3, 2), "1.5"),
        (Fraction(1, 3600), "0.0002778"),
        (Fraction(-40), "-40"),
    ],
)
def test_format_quantity(value, text):
    assert format_quantity(value) == text


@pytest.mark.parametrize(
    "prompt",
    [
        "convert 10 km to kg",  # different dimensions
        "convert 10 km to km",
        "convert ten km to miles",
        "convert km to miles",
        "convert 10 parsecs to miles",
    ],
)
def test_bad_conversions_abstain(prompt):
    assert_abstains(prompt)


# --------------------------------------------------------------------------- dates

DATES = [
    ("what day of the week was 2024-01-01?", "Monday", "weekday"),
    ("What day of the week is July 4, 2026?", "Saturday", "weekday"),
    ("which day was 1 January 2000", "Saturday", "weekday"),
    ("what day is 2024-02-29", "Thursday", "weekday"),
    ("how many days between 2024-01-01 and 2024-03-01?", "60", "days_between"),
    ("how many days are there between 2023-01-01 and 2024-01-01", "365", "days_between"),
    ("how many days from 2024-03-01 to 2024-01-01", "60", "days_between"),
    ("number of days between Jan 1, 2024 and Dec 25, 2024", "359", "days_between"),
    ("what is the date 30 days after 2024-01-31?", "2024-03-01", "date_offset"),
    ("what is the date 30 days after 2023-01-31?", "2023-03-02", "date_offset"),
    ("10 days before 1 March 2024", "2024-02-20", "date_offset"),
    ("2024-01-31 plus 2 weeks", "2024-02-14", "date_offset"),
    ("what date is 100 days from 2024-01-01", "2024-04-10", "date_offset"),
    ("is 2024 a leap year?", "Yes", "leap_year"),
    ("is 1900 a leap year", "No", "leap_year"),
    ("is 2000 a leap year", "Yes", "leap_year"),
]


@pytest.mark.parametrize(("prompt", "expected", "kind"), DATES)
def test_dates(prompt, expected, kind):
    assert_answers(prompt, expected, DATE_CONFIDENCE, kind)


def test_parse_date_formats():
    expected = dt.date(2024, 1, 31)
    for text in ["2024-01-31", "January 31, 2024", "Jan 31 2024", "31 January 2024", "31st of january 2024"]:
        assert parse_date(text.lower()) == expected
    with pytest.raises(ValueError):
        parse_date("01/31/2024")  # ambiguous: never guessed
    with pytest.raises(ValueError):
        parse_date("2023-02-29")


@pytest.mark.parametrize(
    "prompt",
    [
        "what is today's date",
        "What is today's date?",
        "what day is it today",
        "what time is it",
        "how many days until 2025-12-25",
        "how many days since 2024-01-01",
        "what is the date tomorrow",
        "what day was 2023-02-30",  # no such date
        "what day of the week was 01/02/2024",  # ambiguous format
        "what is the date 9999999 days after 2024-01-01",  # out of range
        "what is the date 5 days before 0001-01-01",
    ],
)
def test_clock_dependent_or_invalid_dates_abstain(prompt):
    assert_abstains(prompt)


def test_todays_date_abstains_as_uncacheable():
    ballot = assert_abstains("what is today's date?")
    assert "current date" in ballot.evidence["abstained"]


def test_answers_never_read_the_clock(monkeypatch):
    class FrozenDate(dt.date):
        @classmethod
        def today(cls):
            raise AssertionError("the clock must not be read")

    monkeypatch.setattr(dt, "date", FrozenDate)
    assert ask("what day of the week was 2024-01-01?").answer == "Monday"
    assert ask("what is the date 30 days after 2024-01-31?").answer == "2024-03-01"


# --------------------------------------------------------------------------- everything else


@pytest.mark.parametrize(
    "prompt",
    [
        "What is the capital of France?",
        "write a python function",
        "What is 7*8?",
        "solve x^2 - 4 = 0",
        "tell me a joke",
        "",
        "   ",
        "how many people live in Paris?",
        "x" * 500,
    ],
)
def test_abstains_otherwise(prompt):
    assert_abstains(prompt)


@pytest.mark.parametrize(
    "prompt",
    [
        "hi",
        "good morning",
        "thanks",
        "convert 10 km to miles",
        "10 km in miles",
        "how many feet in a mile",
        "what day of the week was 2024-01-01?",
        "how many days between 2024-01-01 and 2024-03-01?",
        "what is the date 30 days after 2024-01-31?",
        "is 2024 a leap year?",
    ],
)
def test_applies(prompt):
    assert HEAD.applies(prompt)


@pytest.mark.parametrize("prompt", ["What is the capital of France?", "write a python function", "What is 7*8?"])
def test_does_not_apply(prompt):
    assert not HEAD.applies(prompt)
