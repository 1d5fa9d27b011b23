"""Reading units out of English and converting them with pint (routing/heads/units.py)."""

from __future__ import annotations

import time
from fractions import Fraction
from pathlib import Path

import pint
import pytest

from routing.heads.units import (
    format_quantity,
    meanings,
    parse_conversion,
    parse_quantity,
    parse_value,
    registry,
    unit_label,
    warm_up,
)


def names(phrase: str) -> list[str]:
    return [m.name for m in meanings(phrase)]


def test_pint_ships_its_definitions():
    # The registry is built from the files inside the package: nothing is fetched.
    assert (Path(pint.__file__).parent / "default_en.txt").is_file()
    assert registry() is registry()  # built once per process
    assert registry().Quantity(Fraction(1), "inch").to("centimeter").magnitude == Fraction("2.54")


@pytest.mark.parametrize(
    ("phrase", "expected"),
    [
        ("km", ["kilometer"]),
        ("kilometres", ["kilometer"]),
        ("feet", ["foot"]),
        ("lbs", ["pound"]),
        ("mm", ["millimeter"]),  # symbols as typed
        ("Mm", ["megameter"]),
        ("KM", ["kilometer"]),  # capitals: every case tried, one unit fits
        ("kw", ["kilowatt"]),  # a case pint does not know: the one unit it can be
        ("Pa", ["pascal"]),
        ("pa", ["pascal"]),  # not a picoyear
        ("mins", ["minute"]),  # not a milli-inch
        ("kilos", ["kilogram"]),
        ("gm", ["gram"]),  # not a gigametre
        ("°F", ["degree_Fahrenheit"]),
        ("degrees celsius", ["degree_Celsius"]),
        ("C", ["degree_Celsius"]),  # not a coulomb
        ("k", ["kelvin"]),  # not the Boltzmann constant
        ("square feet", ["square_foot"]),
        ("square meters", ["meter ** 2"]),
        ("km/h", ["kilometer / hour"]),
        ("miles per hour", ["mile / hour"]),
        ("mph", ["mile_per_hour"]),
        ("fl oz", ["fluid_ounce"]),
        ("US gallons", ["gallon"]),
        ("imperial pints", ["pint"]),
    ],
)
def test_unit_phrases(phrase, expected):
    assert names(phrase) == expected


def test_several_readings():
    assert names("mw") == ["milliwatt", "megawatt"]  # milli or mega?
    assert names("ML") == ["megaliter", "milliliter"]  # as typed first
    assert names("ton") == ["ton", "long_ton", "metric_ton"]
    assert names("ounces") == ["ounce", "fluid_ounce"]
    assert names("short tons") == ["ton"]
    assert [m.kind for m in meanings("gallon")] == ["customary"]
    assert [m.kind for m in meanings("months")] == ["calendar"]
    assert [m.fixed_system for m in meanings("imperial gallon")] == ["imperial"]


@pytest.mark.parametrize(
    "phrase",
    [
        "degrees",
        "radians",
        "bytes",
        "mb",
        "b",
        "quarter",
        "a",
        "blorps",
        "feet of snow",
        "x" * 50,
        "m2x",
        "kilos of",
        "at",
        "us",
        "are",
        "pm",
    ],
)
def test_phrases_that_are_not_read(phrase):
    assert meanings(phrase) == []


def test_quantities():
    parts = parse_quantity("5 feet 3 inches")
    assert parts is not None and [(p.value, p.phrase) for p in parts] == [(5, "feet"), (3, "inches")]
    assert parse_quantity("10km")[0].value == 10  # type: ignore[index]
    assert parse_quantity("1 1/2 cups")[0].value == Fraction(3, 2)  # type: ignore[index]
    assert parse_quantity("-40 °F")[0].value == -40  # type: ignore[index]
    assert parse_quantity("100%||") is None  # a model's answer; "|" once split a mixed number apart (ValueError)
    assert parse_quantity("1 1/2 cups | 2 cups") is None
    assert parse_quantity("a mile")[0].value == 1  # type: ignore[index]
    assert parse_quantity("5 feet -3 inches") is None
    assert parse_quantity("five") is None
    assert parse_value("1,000.5") == Fraction(2001, 2)
    assert parse_value("9" * 21) is None


@pytest.mark.parametrize(
    ("label", "value", "expected"),
    [
        ("mile", "1", "mile"),
        ("mile", "2", "miles"),
        ("foot", "3", "feet"),
        ("inch", "0.5", "inches"),
        ("century", "2", "centuries"),
        ("degree Celsius", "5", "degrees Celsius"),
        ("mile per hour", "60", "miles per hour"),
        ("square foot", "9", "square feet"),
        ("US fluid ounce", "8", "US fluid ounces"),
        ("mechanical horsepower", "2", "mechanical horsepower"),
    ],
)
def test_labels(label, value, expected):
    assert unit_label(label, value) == expected


def test_format_quantity():
    assert format_quantity(Fraction(7200)) == "7200"
    assert format_quantity(Fraction(10_000_000, 1_609_344)) == "6.2137"
    assert format_quantity(Fraction(1, 3600)) == "0.0002778"


@pytest.mark.parametrize(
    ("prompt", "answer"),
    [
        ("convert 3 yards to feet", "3 yards = 9 feet"),
        ("how many grams in an ounce", "1 ounce = 28.3495 grams"),
        ("a stone is how many pounds", "1 stone = 14 pounds"),
        ("convert 30 psi to bar", "30 psi = 2.0684 bars"),
        ("convert 1 nautical mile to meters", "1 nautical mile = 1852 meters"),
        ("how many hours in a fortnight", "1 fortnight = 336 hours"),
        ("convert 20 m/s to km/h", "20 meters per second = 72 kilometers per hour"),
        ("how many cups in a quart", "1 quart = 4 cups"),  # the same in US and imperial measure
        ("how many decades in a century", "1 century = 10 decades"),
        ("convert 1 furlong to feet", "1 furlong = 660 feet"),  # the international foot
    ],
)
def test_conversions(prompt, answer):
    conversion = parse_conversion(prompt)
    assert conversion is not None and conversion.answer == answer and not conversion.ambiguous


@pytest.mark.parametrize(
    ("prompt", "readings"),
    [
        ("how many fluid ounces in a pint", ["16", "20"]),
        ("how many weeks in a year", ["52.1429", "52.1786", "52.2857"]),
        ("convert 1 long ton to tonnes", None),  # fixed: not ambiguous
        ("convert 100 calories to joules", ["418.4", "418400"]),  # small or food calories
        ("convert 1 hp to kw", ["0.7355", "0.7457"]),  # mechanical or metric horsepower
    ],
)
def test_readings(prompt, readings):
    conversion = parse_conversion(prompt)
    assert conversion is not None
    assert conversion.ambiguous == (readings is not None)
    assert conversion.evidence.get("readings") == readings


def test_conversions_are_fast_once_warm():
    warm_up()
    started = time.perf_counter()
    for prompt in ["convert 10 km to miles", "how many ounces in a cup", "5 feet 3 inches in cm", "100 f to c"]:
        assert parse_conversion(prompt) is not None
    assert time.perf_counter() - started < 0.2  # about 1 ms each
