"""Regex micro-specialist: greetings, thanks, unit conversions and calendar arithmetic.

Everything here is a handful of regular expressions and exact arithmetic, so a call costs
microseconds.  Answers and confidences:

* greetings ("hi", "good morning", "hello, how are you?") -> a canned friendly reply at
  confidence 0.6, evidence ``{"kind": "greeting"}``.  Chat belongs to the generalist (agent0):
  0.6 is below the council's 0.75 vote floor, so the canned reply only wins if another head agrees.
* thanks ("thanks", "thank you so much!") -> ``"You're welcome!"`` at 0.9.
* unit conversions with exact factors (km/m/cm/mm/miles/yards/feet/inches, kg/g/lb/oz,
  L/mL/US gallons, seconds/minutes/hours/days/weeks, °C/°F/K) -> ``"10 km = 6.2137 miles"`` at 0.95.
  Values are computed with exact fractions and shown with at most 4 decimals (4 significant digits
  below 0.01), trailing zeros stripped.
* dates, ISO ``2024-01-31`` or written out ``January 31, 2024`` / ``31 January 2024`` (never the
  ambiguous ``01/02/2024``), at 0.95: day of the week -> ``"Monday"``; days between two dates ->
  ``"60"`` (absolute count, end date not included); a date N days/weeks after/before a date ->
  ISO ``"2024-03-01"``; leap years -> ``"Yes"`` / ``"No"``.
* anything else abstains (confidence 0).  The clock is never read: questions about today, now,
  "until"/"since" a date abstain, since their answers would change over time and could not be cached.
"""

from __future__ import annotations

import calendar
import datetime as dt
import re
import time
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction

from routing.heads.base import Ballot, Head, HeadContext

MAX_PROMPT_CHARS = 200
MAX_DAY_OFFSET = 1_000_000

GREETING_CONFIDENCE = 0.6
THANKS_CONFIDENCE = 0.9
CONVERSION_CONFIDENCE = 0.95
DATE_CONFIDENCE = 0.95


# ---------------------------------------------------------------------------------------------
# Units


@dataclass(frozen=True)
class Unit:
    key: str
    dimension: str
    factor: Fraction  # size in the dimension's base unit (m, kg, L, s); temperatures are affine
    singular: str
    plural: str
    aliases: tuple[str, ...]


def _u(key: str, dimension: str, factor: str | int, singular: str, plural: str, *aliases: str) -> Unit:
    return Unit(key, dimension, Fraction(Decimal(str(factor))), singular, plural, aliases)


UNITS: tuple[Unit, ...] = (
    # length, base metre: international mile/yard/foot/inch are exact by definition
    _u("km", "length", 1000, "km", "km", "km", "kms", "kilometer", "kilometers", "kilometre", "kilometres"),
    _u("m", "length", 1, "m", "m", "m", "meter", "meters", "metre", "metres"),
    _u("cm", "length", "0.01", "cm", "cm", "cm", "centimeter", "centimeters", "centimetre", "centimetres"),
    _u("mm", "length", "0.001", "mm", "mm", "mm", "millimeter", "millimeters", "millimetre", "millimetres"),
    _u("mi", "length", "1609.344", "mile", "miles", "mi", "mile", "miles"),
    _u("yd", "length", "0.9144", "yard", "yards", "yd", "yds", "yard", "yards"),
    _u("ft", "length", "0.3048", "ft", "ft", "ft", "foot", "feet"),
    _u("in", "length", "0.0254", "inch", "inches", "in", "inch", "inches"),
    # mass, base kilogram: the avoirdupois pound is exactly 0.45359237 kg
    _u("kg", "mass", 1, "kg", "kg", "kg", "kgs", "kilogram", "kilograms", "kilo", "kilos"),
    _u("g", "mass", "0.001", "g", "g", "g", "gram", "grams", "gramme", "grammes"),
    _u("lb", "mass", "0.45359237", "lb", "lb", "lb", "lbs", "pound", "pounds"),
    _u("oz", "mass", "0.028349523125", "oz", "oz", "oz", "ounce", "ounces"),
    # volume, base litre: the US liquid gallon is exactly 3.785411784 L
    _u("l", "volume", 1, "L", "L", "l", "liter", "liters", "litre", "litres"),
    _u("ml", "volume", "0.001", "mL", "mL", "ml", "milliliter", "milliliters", "millilitre", "millilitres"),
    _u(
        "gal",
        "volume",
        "3.785411784",
        "gallon",
        "gallons",
        "gal",
        "gallon",
        "gallons",
        "us gallon",
        "us gallons",
    ),
    # time, base second
    _u("s", "time", 1, "second", "seconds", "s", "sec", "secs", "second", "seconds"),
    _u("min", "time", 60, "minute", "minutes", "min", "mins", "minute", "minutes"),
    _u("h", "time", 3600, "hour", "hours", "h", "hr", "hrs", "hour", "hours"),
    _u("day", "time", 86400, "day", "days", "day", "days"),
    _u("week", "time", 604800, "week", "weeks", "week", "weeks"),
    # temperature: converted through kelvin, see _to_kelvin
    _u(
        "c",
        "temperature",
        1,
        "°C",
        "°C",
        "c",
        "°c",
        "celsius",
        "centigrade",
        "degrees celsius",
        "degree celsius",
        "degrees c",
        "degrees centigrade",
    ),
    _u(
        "f",
        "temperature",
        1,
        "°F",
        "°F",
        "f",
        "°f",
        "fahrenheit",
        "degrees fahrenheit",
        "degree fahrenheit",
        "degrees f",
    ),
    _u("k", "temperature", 1, "K", "K", "k", "kelvin", "kelvins", "degrees kelvin"),
)
_BY_ALIAS: dict[str, Unit] = {alias: unit for unit in UNITS for alias in unit.aliases}
_UNIT = "(?:" + "|".join(re.escape(a) for a in sorted(_BY_ALIAS, key=len, reverse=True)) + r")(?![a-z])"
_NUMBER = r"[-+]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?|[-+]?\.\d+"

_CONVERSIONS = (
    # "convert 10 km to miles", "10 km in miles", "what is 100 °F in celsius"
    re.compile(rf"^(?:convert\s+)?(?P<val>{_NUMBER})\s*(?P<src>{_UNIT})\s+(?:to|into|in|as|=)\s+(?P<dst>{_UNIT})$"),
    # "how many miles is 10 km", "how many feet are there in a mile", "how many seconds in 2 hours"
    re.compile(
        rf"^how\s+many\s+(?P<dst>{_UNIT})\s+(?:are\s+|is\s+)?(?:there\s+)?(?:in|is|are|make|equals?)\s+"
        rf"(?P<val>{_NUMBER}|an?|one)\s*(?P<src>{_UNIT})$"
    ),
)


def _to_kelvin(value: Fraction, unit: str) -> Fraction:
    if unit == "c":
        return value + Fraction("273.15")
    if unit == "f":
        return (value - 32) * Fraction(5, 9) + Fraction("273.15")
    return value


def _from_kelvin(value: Fraction, unit: str) -> Fraction:
    if unit == "c":
        return value - Fraction("273.15")
    if unit == "f":
        return (value - Fraction("273.15")) * Fraction(9, 5) + 32
    return value


def convert(value: Fraction, src: Unit, dst: Unit) -> Fraction:
    """Exact conversion between two units of the same dimension."""
    if src.dimension != dst.dimension:
        raise ValueError(f"cannot convert {src.dimension} to {dst.dimension}")
    if src.dimension == "temperature":
        return _from_kelvin(_to_kelvin(value, src.key), dst.key)
    return value * src.factor / dst.factor


def format_quantity(value: Fraction) -> str:
    """At most 4 decimals (4 significant digits below 0.01), trailing zeros stripped: 6.2137, 7200."""
    if value.denominator == 1:
        return str(value.numerator)
    magnitude = abs(value)
    if magnitude >= Fraction(1, 100):
        text = f"{Decimal(value.numerator) / Decimal(value.denominator):.4f}"
    else:
        text = f"{Decimal(value.numerator) / Decimal(value.denominator):.4g}"
        if "e" in text.lower():
            text = f"{Decimal(value.numerator) / Decimal(value.denominator):.4e}"
    if "." in text and "e" not in text.lower():
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def _unit_label(unit: Unit, value: Fraction) -> str:
    return unit.singular if abs(value) == 1 else unit.plural


# ---------------------------------------------------------------------------------------------
# Dates

_MONTHS = {name.lower(): number for number, name in enumerate(calendar.month_name) if name}
_MONTHS.update({name.lower(): number for number, name in enumerate(calendar.month_abbr) if name})
_MONTHS["sept"] = 9
_MONTH = "(?:" + "|".join(sorted(_MONTHS, key=len, reverse=True)) + r")\.?"
_DATE = (
    rf"(?:\d{{4}}-\d{{1,2}}-\d{{1,2}}|{_MONTH}\s+\d{{1,2}}(?:st|nd|rd|th)?,?\s+\d{{4}}"
    rf"|\d{{1,2}}(?:st|nd|rd|th)?\s+(?:of\s+)?{_MONTH},?\s+\d{{4}})"
)
_ISO = re.compile(r"^(\d{4})-(\d{1,2})-(\d{1,2})$")
_MONTH_FIRST = re.compile(rf"^(?P<m>{_MONTH})\s+(?P<d>\d{{1,2}})(?:st|nd|rd|th)?,?\s+(?P<y>\d{{4}})$")
_DAY_FIRST = re.compile(rf"^(?P<d>\d{{1,2}})(?:st|nd|rd|th)?\s+(?:of\s+)?(?P<m>{_MONTH}),?\s+(?P<y>\d{{4}})$")

_WEEKDAY = re.compile(
    rf"^(?:on\s+)?(?:what|which)\s+(?:day\s+of\s+(?:the\s+)?week|day|weekday)\s+"
    rf"(?:was|is|will\s+be|did|does|falls?\s+on|fell\s+on)\s+(?P<d>{_DATE})"
    rf"(?:\s+(?:fall\s+on|fall|land\s+on|be|on))?$"
)
_WEEKDAY_TRAILING = re.compile(
    rf"^(?P<d>{_DATE})\s+(?:is|was|will\s+be|falls\s+on|fell\s+on)\s+(?:a\s+)?"
    r"(?:what|which)\s+(?:day\s+of\s+(?:the\s+)?week|day|weekday)$"
)
_BETWEEN = re.compile(
    rf"^(?:how\s+many\s+days\s+(?:are\s+)?(?:there\s+)?|(?:the\s+)?number\s+of\s+days\s+|days\s+)"
    rf"(?:between|from)\s+(?P<a>{_DATE})\s+(?:and|to|until|till)\s+(?P<b>{_DATE})$"
)
_OFFSET = re.compile(
    rf"^(?:what\s+(?:is\s+|was\s+|will\s+be\s+)?)?(?:the\s+)?(?:date\s+)?(?:(?:that\s+)?(?:is|was|will\s+be)\s+)?"
    rf"(?P<n>\d{{1,7}})\s+(?P<unit>days?|weeks?)\s+(?P<dir>after|before|from)\s+(?P<d>{_DATE})$"
)
_OFFSET_PLUS = re.compile(
    rf"^(?:what\s+is\s+)?(?P<d>{_DATE})\s+(?P<dir>plus|minus|\+|-)\s+(?P<n>\d{{1,7}})\s+(?P<unit>days?|weeks?)$"
)
_LEAP = re.compile(r"^is\s+(?:the\s+year\s+)?(?P<y>\d{1,4})\s+a\s+leap\s+year$")
_CLOCK = re.compile(
    r"\b(?:today|todays|today's|tomorrow|yesterday|now|current|currently|tonight|this\s+(?:year|month|week)|"
    r"next\s+(?:year|month|week)|last\s+(?:year|month|week)|until|till|since|ago|time\s+is\s+it)\b"
)

_DATEISH = re.compile(r"\b(?:date|dates|day|days|time|year|years|month|months|week|weeks|weekday|clock)\b")


def parse_date(text: str) -> dt.date:
    """An ISO or written-out date; ValueError for anything else (or an impossible date)."""
    text = text.strip()
    iso = _ISO.match(text)
    if iso:
        return dt.date(int(iso.group(1)), int(iso.group(2)), int(iso.group(3)))
    match = _MONTH_FIRST.match(text) or _DAY_FIRST.match(text)
    if not match:
        raise ValueError(f"not a date: {text!r}")
    month = _MONTHS[match.group("m").rstrip(".")]
    return dt.date(int(match.group("y")), month, int(match.group("d")))


# ---------------------------------------------------------------------------------------------
# Chat

_ADDRESSEE = r"(?:\s+(?:there|all|everyone|everybody|folks|friend|swarm|agent0|bot))?"
_GREETING_WORD = r"(?:hi|hello|hey|heya|hiya|howdy|greetings|yo|hola|good\s+(?:morning|afternoon|evening|day))"
_HOW_ARE_YOU = r"(?:how\s+are\s+you(?:\s+doing)?(?:\s+today)?|how's\s+it\s+going|how\s+is\s+it\s+going)"
_GREETING = re.compile(
    rf"^(?:{_GREETING_WORD}{_ADDRESSEE}[\s,!.]*)+(?:{_HOW_ARE_YOU})?[\s?!.]*$|^{_HOW_ARE_YOU}[\s?!.]*$"
)
_TIME_OF_DAY = re.compile(r"\bgood\s+(morning|afternoon|evening)\b")
_THANKS = re.compile(
    r"^(?:(?:thanks|thank\s+you|thank\s+u|thx|ty|tysm|many\s+thanks|cheers)"
    r"(?:\s+(?:so|very)\s+much|\s+a\s+lot|\s+a\s+bunch|\s+again)?"
    r"(?:\s+(?:swarm|agent0|bot|for\s+(?:the|your)\s+help|for\s+helping))?[\s,!.]*)+$"
)

_LEADING_FILLER = re.compile(
    r"^(?:please|pls|kindly|can\s+you|could\s+you|would\s+you|tell\s+me|quick\s+question|"
    r"what\s+is|what's|whats|how\s+much\s+is|do\s+you\s+know)\b[\s,:]*"
)
_TRAILING_FILLER = re.compile(r"(?:[\s,]*\b(?:please|pls)\b|[\s?!.]+)$")

_APPLIES = re.compile(
    r"^\W*(?:hi|hello|hey|heya|hiya|howdy|greetings|yo|hola|good\s+(?:morning|afternoon|evening|day)|"
    r"how\s+are\s+you|how's\s+it\s+going|how\s+is\s+it\s+going)\b|"
    r"\b(?:thanks|thank\s+(?:you|u)|thx|ty|tysm|cheers|convert|how\s+many|leap\s+year|day\s+of\s+the\s+week|"
    r"weekday|days?\s+(?:after|before|from|between)|weeks?\s+(?:after|before|from))\b|"
    r"\d{4}-\d{1,2}-\d{1,2}|\d\s*" + _UNIT + r"\s+(?:to|into|in|as)\b",
    re.IGNORECASE,
)


def _normalize(prompt: str) -> str:
    text = " ".join(prompt.lower().replace("\u2019", "'").split())  # curly apostrophe
    previous = None
    while previous != text:
        previous = text
        text = _LEADING_FILLER.sub("", text)
        text = _TRAILING_FILLER.sub("", text)
    return text


class MicroHead(Head):
    """Fast regex micro-specialist; see the module docstring for what it answers and how surely."""

    name = "micro"
    skill_type = "micro"
    timeout_s = 0.5

    def applies(self, prompt: str) -> bool:
        return len(prompt) <= MAX_PROMPT_CHARS and _APPLIES.search(prompt) is not None

    def answer(self, prompt: str, ctx: HeadContext) -> Ballot:
        started = time.perf_counter()
        if len(prompt) > MAX_PROMPT_CHARS:
            return self.abstain(started, "prompt too long for the pattern head")
        raw = " ".join(prompt.lower().split())
        text = _normalize(prompt)
        if not text:
            return self.abstain(started, "empty prompt")
        for handler in (self._greeting, self._thanks, self._conversion, self._date):
            ballot = handler(raw, text, started)
            if ballot is not None:
                return ballot
        if _CLOCK.search(text) and _DATEISH.search(text):
            return self.abstain(started, "depends on the current date or time (uncacheable)")
        return self.abstain(started, "no pattern matched")

    # -- chat -------------------------------------------------------------------------------

    def _greeting(self, raw: str, text: str, started: float) -> Ballot | None:
        if not _GREETING.match(raw):
            return None
        opener = _TIME_OF_DAY.search(raw)
        hello = f"Good {opener.group(1)}!" if opener else "Hello!"
        if re.search(_HOW_ARE_YOU, raw):
            reply = f"{hello} I'm doing well, thanks for asking. How can I help you today?"
        else:
            reply = f"{hello} How can I help you today?"
        return self.ballot(reply, GREETING_CONFIDENCE, started, kind="greeting")

    def _thanks(self, raw: str, text: str, started: float) -> Ballot | None:
        if not _THANKS.match(raw):
            return None
        return self.ballot("You're welcome!", THANKS_CONFIDENCE, started, kind="thanks")

    # -- units ------------------------------------------------------------------------------

    def _conversion(self, raw: str, text: str, started: float) -> Ballot | None:
        for pattern in _CONVERSIONS:
            match = pattern.match(text)
            if match:
                break
        else:
            return None
        src, dst = _BY_ALIAS[match.group("src")], _BY_ALIAS[match.group("dst")]
        if src.dimension != dst.dimension:
            return self.abstain(started, f"cannot convert {src.dimension} to {dst.dimension}")
        literal = match.group("val")
        value = Fraction(1) if literal in ("a", "an", "one") else Fraction(Decimal(literal.replace(",", "")))
        if src.key == dst.key:
            return self.abstain(started, "same unit on both sides")
        result = convert(value, src, dst)
        shown_value = format_quantity(value)
        shown_result = format_quantity(result)
        answer = f"{shown_value} {_unit_label(src, value)} = {shown_result} {_unit_label(dst, result)}"
        return self.ballot(
            answer,
            CONVERSION_CONFIDENCE,
            started,
            kind="unit_conversion",
            value=shown_value,
            src=src.key,
            dst=dst.key,
            dimension=src.dimension,
            exact=str(result),
        )

    # -- dates ------------------------------------------------------------------------------

    def _date(self, raw: str, text: str, started: float) -> Ballot | None:
        try:
            return self._date_answer(text, started)
        except (ValueError, OverflowError) as exc:  # impossible date, or out of datetime's range
            return self.abstain(started, f"bad date: {exc}")

    def _date_answer(self, text: str, started: float) -> Ballot | None:
        match = _WEEKDAY.match(text) or _WEEKDAY_TRAILING.match(text)
        if match:
            day = parse_date(match.group("d"))
            weekday = calendar.day_name[day.weekday()]
            return self.ballot(weekday, DATE_CONFIDENCE, started, kind="weekday", date=day.isoformat())
        match = _BETWEEN.match(text)
        if match:
            first, second = parse_date(match.group("a")), parse_date(match.group("b"))
            days = abs((second - first).days)
            return self.ballot(
                str(days),
                DATE_CONFIDENCE,
                started,
                kind="days_between",
                start=first.isoformat(),
                end=second.isoformat(),
                days=days,
            )
        match = _OFFSET.match(text) or _OFFSET_PLUS.match(text)
        if match:
            day = parse_date(match.group("d"))
            count = int(match.group("n"))
            days = count * (7 if match.group("unit").startswith("week") else 1)
            if days > MAX_DAY_OFFSET:
                return self.abstain(started, "offset too large")
            sign = -1 if match.group("dir") in ("before", "minus", "-") else 1
            result = day + dt.timedelta(days=sign * days)
            return self.ballot(
                result.isoformat(),
                DATE_CONFIDENCE,
                started,
                kind="date_offset",
                start=day.isoformat(),
                offset_days=sign * days,
                weekday=calendar.day_name[result.weekday()],
            )
        match = _LEAP.match(text)
        if match:
            year = int(match.group("y"))
            if year < 1:
                return self.abstain(started, "year out of range")
            leap = calendar.isleap(year)
            return self.ballot(
                "Yes" if leap else "No", DATE_CONFIDENCE, started, kind="leap_year", year=year, leap=leap
            )
        return None
