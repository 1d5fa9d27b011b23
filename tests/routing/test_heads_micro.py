"""The micro head: greetings, thanks, unit conversions (pint) and calendar arithmetic (dateutil).

No Django and no database: run with
    python -m pytest -p no:django -p no:cacheprovider tests/routing/test_heads_patterns.py -q
"""

from __future__ import annotations

import datetime as dt
from fractions import Fraction

import pytest

from routing.heads.base import HeadContext
from routing.heads.micro import (
    AMBIGUOUS_CONFIDENCE,
    CONVERSION_CONFIDENCE,
    DATE_CONFIDENCE,
    GREETING_CONFIDENCE,
    THANKS_CONFIDENCE,
    MicroHead,
    date_readings,
    format_quantity,
    parse_date,
)
from routing.heads.units import convert

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
    ("convert 10 km to miles", "10 kilometers = 6.2137 miles"),
    ("Convert 10 km to miles.", "10 kilometers = 6.2137 miles"),
    ("10 km in miles", "10 kilometers = 6.2137 miles"),
    ("how many miles is 10 km?", "10 kilometers = 6.2137 miles"),
    ("convert 1 mile to km", "1 mile = 1.6093 kilometers"),
    ("how many feet in a mile", "1 mile = 5280 feet"),
    ("convert 3 m to ft", "3 meters = 9.8425 feet"),
    ("convert 10 feet to meters", "10 feet = 3.048 meters"),
    ("convert 5 in to cm", "5 inches = 12.7 centimeters"),
    ("how many inches in 30 cm", "30 centimeters = 11.811 inches"),
    ("convert 5 kg to lb", "5 kilograms = 11.0231 pounds"),
    ("convert 10 pounds to kilograms", "10 pounds = 4.5359 kilograms"),
    ("convert 100 F to C", "100 degrees Fahrenheit = 37.7778 degrees Celsius"),
    ("what is 0 °C in fahrenheit?", "0 degrees Celsius = 32 degrees Fahrenheit"),
    ("-40 c to f", "-40 degrees Celsius = -40 degrees Fahrenheit"),
    ("convert 37 degrees celsius to fahrenheit", "37 degrees Celsius = 98.6 degrees Fahrenheit"),
    ("convert 0 kelvin to celsius", "0 kelvins = -273.15 degrees Celsius"),
    ("how many seconds are in 2 hours", "2 hours = 7200 seconds"),
    ("convert 90 minutes to hours", "90 minutes = 1.5 hours"),
    ("convert 1 hour to minutes", "1 hour = 60 minutes"),
    ("convert 1 second to hours", "1 second = 0.0002778 hours"),
    ("convert 1,000 m to km", "1000 meters = 1 kilometer"),
    ("convert 2.5 km to m", "2.5 kilometers = 2500 meters"),
    # phrasings
    ("how many ounces in a pound", "1 pound = 16 ounces"),
    ("a kilometre is how many metres?", "1 kilometer = 1000 meters"),
    ("One mile equals how many yards?", "1 mile = 1760 yards"),
    ("How many seconds does a minute have?", "1 minute = 60 seconds"),
    ("A day has how many hours?", "1 day = 24 hours"),
    ("How many grams make up a kilogram?", "1 kilogram = 1000 grams"),
    ("what is the number of centimeters in a meter", "1 meter = 100 centimeters"),
    ("how much is 20 °C in °F", "20 degrees Celsius = 68 degrees Fahrenheit"),
    ("convert twelve inches to centimeters", "12 inches = 30.48 centimeters"),
    ("how many hours per day", "1 day = 24 hours"),
    ("100°F to °C", "100 degrees Fahrenheit = 37.7778 degrees Celsius"),
    ("convert 10km to mi", "10 kilometers = 6.2137 miles"),
    # compound quantities and compound units
    ("5 feet 3 inches in cm", "5 feet 3 inches = 160.02 centimeters"),
    ("convert 2 hours and 30 minutes to minutes", "2 hours 30 minutes = 150 minutes"),
    ("convert 1 1/2 pounds to ounces", "1 1/2 pounds = 24 ounces"),
    ("convert 60 mph to km/h", "60 miles per hour = 96.5606 kilometers per hour"),
    ("how many feet per second is 60 miles per hour", "60 miles per hour = 88 feet per second"),
    ("how many square feet in a square yard", "1 square yard = 9 square feet"),
    ("how many cubic centimeters in a liter", "1 liter = 1000 cubic centimeters"),
    # more dimensions
    ("convert 1 atm to kpa", "1 standard atmosphere = 101.325 kilopascals"),
    ("convert 1 kWh to joules", "1 kilowatt hour = 3600000 joules"),
    ("convert 2 kw to watts", "2 kilowatts = 2000 watts"),
    # units read one way whatever the reading
    ("how many pints in a gallon", "1 gallon = 8 pints"),
    ("how many months in a year", "1 year = 12 months"),
    ("how many years in a century", "1 century = 100 years"),
    ("convert 1 imperial gallon to litres", "1 imperial gallon = 4.5461 liters"),
    ("convert 1 US gallon to liters", "1 US gallon = 3.7854 liters"),
    ("convert 2 metric tons to kg", "2 metric tons = 2000 kilograms"),
    # US survey units on the international foot (US definition since 2023)
    ("how many square feet in an acre", "1 acre = 43560 square feet"),
    ("convert 1 square mile to acres", "1 square mile = 640 acres"),
]


@pytest.mark.parametrize(("prompt", "expected"), CONVERSIONS)
def test_unit_conversions(prompt, expected):
    ballot = assert_answers(prompt, expected, CONVERSION_CONFIDENCE, "unit_conversion")
    assert ballot.evidence["exact"]
    assert "readings" not in ballot.evidence


AMBIGUOUS_UNITS = [
    # US or imperial
    ("convert 1 gallon to liters", "1 US gallon = 3.7854 liters", ["3.7854", "4.5461"]),
    ("convert 10 litres to gallons", "10 liters = 2.6417 US gallons", ["2.1997", "2.6417"]),
    ("how many ounces in a cup", "1 US cup = 8 US fluid ounces", ["10", "8"]),
    # which year
    ("how many days in a year", "1 common year = 365 days", ["365", "365.25", "366"]),
    ("how many days in a month", "1 month = 30.4167 days", ["30.4167", "30.4375", "30.5"]),
    # which ton
    ("convert 1 ton to kg", "1 short ton = 907.1847 kilograms", ["1000", "1016.0469", "907.1847"]),
    # a symbol in a case pint does not know: milliwatts or megawatts?
    ("convert 5 mw to kw", "5 milliwatts = 0.000005 kilowatts", ["0.000005", "5000"]),
]


@pytest.mark.parametrize(("prompt", "expected", "readings"), AMBIGUOUS_UNITS)
def test_ambiguous_units_answer_below_the_vote_floor(prompt, expected, readings):
    ballot = assert_answers(prompt, expected, AMBIGUOUS_CONFIDENCE, "unit_conversion")
    assert ballot.evidence["readings"] == readings
    assert ballot.confidence < VOTE_FLOOR


def test_regional_kitchen_units_are_never_confident():
    ballot = assert_answers("how many ml in a tablespoon", "1 tablespoon = 14.7868 milliliters",
                            AMBIGUOUS_CONFIDENCE, "unit_conversion")  # fmt: skip
    assert ballot.evidence["regional"] == ["tablespoon"]


def test_conversion_factors_are_pints_and_exact():
    assert convert(Fraction(1), "mile", "kilometer") == Fraction("1.609344")
    assert convert(Fraction(1), "pound", "kilogram") == Fraction("0.45359237")
    assert convert(Fraction(1), "foot", "inch") == 12
    assert convert(Fraction(1), "gallon", "liter") == Fraction("3.785411784")
    assert convert(Fraction(212), "degree_Fahrenheit", "degree_Celsius") == 100
    assert convert(Fraction(1), "hour", "second") == 3600
    with pytest.raises(Exception, match="annot convert"):
        convert(Fraction(1), "kilometer", "kilogram")


def test_conversion_evidence():
    ballot = ask("convert 10 km to miles")
    assert ballot.evidence["src"] == "kilometer" and ballot.evidence["dst"] == "mile"
    assert ballot.evidence["dimension"] == "length"
    assert Fraction(ballot.evidence["exact"]) == Fraction(10_000_000, 1_609_344)


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
        "convert km to miles",
        "convert 10 blorps to miles",
        "convert 100 degrees to fahrenheit",  # degrees of what?
        "convert 90 degrees to radians",  # angles are not read
        "convert 5 mb to kb",  # data sizes are not read (and a barn is no unit of chat)
        "how many bits in a byte",
        "how many seconds in 5 m",  # m is a metre
        "convert 10 kilos to seconds",
        "convert 5 feet 3 degrees to cm",
        "how many people live in Paris?",
        "how many cups of flour in a pound",
        "convert 1e999 m to km",
        "convert 123456789012345678901234567890 m to km",
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
    ("what is the date 3 months after 2024-01-15", "2024-04-15", "date_offset"),
    ("what is the date 2 years before 2024-02-28", "2022-02-28", "date_offset"),
    ("1 Jan 2024 plus 30 days", "2024-01-31", "date_offset"),
    ("what day of the week was the 4th of July 1776", "Thursday", "weekday"),
    ("what day of the week is 13/04/2024", "Saturday", "weekday"),  # 13 is no month: one reading
    ("what day of the week will 2024/12/25 be", "Wednesday", "weekday"),
    ("which day of the week is 100 days after 2024-01-01", "Wednesday", "weekday"),
    ("how many days between 1 January 2024 and March 1st, 2024", "60", "days_between"),
    ("how many days are in February 2024", "29", "month_length"),
    ("how many days in february 2023", "28", "month_length"),
    ("is 2024 a leap year?", "Yes", "leap_year"),
    ("is 1900 a leap year", "No", "leap_year"),
    ("is 2000 a leap year", "Yes", "leap_year"),
]


@pytest.mark.parametrize(("prompt", "expected", "kind"), DATES)
def test_dates(prompt, expected, kind):
    assert_answers(prompt, expected, DATE_CONFIDENCE, kind)


def test_parse_date_formats():
    expected = dt.date(2024, 1, 31)
    for text in ["2024-01-31", "January 31, 2024", "Jan 31 2024", "31 January 2024", "31st of january 2024",
                 "the 31st of January 2024", "2024/01/31", "01/31/2024", "31/01/2024", "31.01.2024"]:  # fmt: skip
        assert parse_date(text.lower()) == expected, text
    with pytest.raises(ValueError):
        parse_date("03/04/2024")  # March 4 or 3 April: never guessed
    assert date_readings("03/04/2024") == (dt.date(2024, 3, 4), dt.date(2024, 4, 3))
    for bad in ["2023-02-29", "january 2024", "january 31", "31/01/24", "next tuesday", "2024-01-31 10:00"]:
        with pytest.raises(ValueError):
            parse_date(bad)


@pytest.mark.parametrize(
    ("prompt", "expected", "kind"),
    [
        ("what day of the week was 03/04/2024", "Monday", "weekday"),  # March 4 (Monday) or 3 April (Wednesday)
        ("how many days between 01/02/2024 and 2024-03-01", "59", "days_between"),  # Jan 2 or 1 Feb
        ("what is the date 1 month after 2024-01-31", "2024-02-29", "date_offset"),  # cut short: Jan 31 + 1 month
    ],
)
def test_dates_that_read_two_ways_answer_below_the_vote_floor(prompt, expected, kind):
    ballot = assert_answers(prompt, expected, AMBIGUOUS_CONFIDENCE, kind)
    assert ballot.evidence.get("readings") or ballot.evidence.get("cut_short")


def test_a_numeric_date_whose_readings_agree_is_sure():
    assert_answers("what day of the week was 05/05/2024", "Sunday", DATE_CONFIDENCE, "weekday")


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
        "what day of the week was 01/02/24",  # two-digit year
        "what day of the week is january 5",  # no year: it would be this year's
        "how many days in february",
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
