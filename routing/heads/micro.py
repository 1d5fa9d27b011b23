"""Micro-specialist: greetings, thanks, unit conversions and calendar arithmetic.

Regular expressions read the prompt; the libraries do the facts: unit sizes come from pint's unit
definitions (routing/heads/units.py), calendar arithmetic from the standard library and
python-dateutil. A call costs well under a few milliseconds. Answers and confidences:

* greetings ("hi", "good morning", "hello, how are you?") -> a canned friendly reply at
  confidence 0.6, evidence ``{"kind": "greeting"}``.  Chat belongs to the generalist (agent0):
  0.6 is below the council's 0.75 vote floor, so the canned reply only wins if another head agrees.
* thanks ("thanks", "thank you so much!") -> ``"You're welcome!"`` at 0.9.
* unit conversions -- "convert 10 km to miles", "how many ounces in a pound", "100 f to c",
  "5 feet 3 inches in cm", "a kilometer is how many meters" -- of length, area, volume, mass, time,
  temperature, speed, energy, power and pressure -> ``"10 kilometers = 6.2137 miles"`` at 0.95.
  Values are exact fractions shown with at most 4 decimals (4 significant digits below 0.01),
  trailing zeros stripped. A conversion whose result depends on how a unit is read (US or imperial
  gallons, which year, which ton, "mw": milli- or megawatt?; see units.py) answers with the default
  reading named ("1 US gallon = 3.7854 liters") at 0.7, below the vote floor.
* dates -- ISO ``2024-01-31``, ``2024/01/31``, written out ``January 31, 2024`` / ``31 Jan 2024``
  / ``the 31st of January 2024``, numeric ``01/31/2024`` (read by python-dateutil, year always
  given) -- at 0.95: day of the week -> ``"Monday"``; days between two dates -> ``"60"`` (absolute
  count, end date not included); a date N days/weeks/months/years after/before a date -> ISO
  ``"2024-03-01"`` (months and years by ``dateutil.relativedelta``); days in a month of a year ->
  ``"29"``; leap years -> ``"Yes"`` / ``"No"``. A numeric date that reads two ways (``03/04/2024``:
  March 4 or 3 April) and a month offset that lands past the end of a month (January 31 + 1 month)
  answer at 0.7 when the readings disagree.
* anything else abstains (confidence 0).  The clock is never read: questions about today, now,
  "until"/"since" a date, or a date without its year, abstain, since their answers would change
  over time and could not be cached.
"""

from __future__ import annotations

import calendar
import datetime as dt
import itertools
import re
import time
from collections.abc import Callable

from dateutil import parser as date_parser
from dateutil.relativedelta import relativedelta

from routing.heads.base import Ballot, Head, HeadContext
from routing.heads.numwords import UNITS as NUMBER_WORDS
from routing.heads.numwords import strip_wrapping
from routing.heads.units import format_quantity, parse_conversion
from routing.heads.units import warm_up as warm_up_units

__all__ = ["MicroHead", "date_readings", "format_quantity", "parse_date"]

MAX_PROMPT_CHARS = 200
MAX_DAY_OFFSET = 1_000_000
MAX_MONTH_OFFSET = 120_000

GREETING_CONFIDENCE = 0.6
THANKS_CONFIDENCE = 0.9
CONVERSION_CONFIDENCE = 0.95
DATE_CONFIDENCE = 0.95
AMBIGUOUS_CONFIDENCE = 0.7  # below the council's 0.75 vote floor: wins only if another head agrees


# ---------------------------------------------------------------------------------------------
# Dates

_MONTHS = {name.lower(): number for number, name in enumerate(calendar.month_name) if name}
_MONTHS.update({name.lower(): number for number, name in enumerate(calendar.month_abbr) if name})
_MONTHS["sept"] = 9
_MONTH = "(?:" + "|".join(sorted(_MONTHS, key=len, reverse=True)) + r")\.?"
_ORDINAL = r"(?:st|nd|rd|th)?"
_YEAR_FIRST = r"\d{4}-\d{1,2}-\d{1,2}|\d{4}/\d{1,2}/\d{1,2}|\d{4}\.\d{1,2}\.\d{1,2}"
_NUMERIC = r"\d{1,2}(?P<sep>[/.-])\d{1,2}(?P=sep)\d{4}"
_WRITTEN = (
    rf"{_MONTH}\s+\d{{1,2}}{_ORDINAL},?\s+\d{{4}}"
    rf"|(?:the\s+)?\d{{1,2}}{_ORDINAL}\s+(?:of\s+)?{_MONTH},?\s+\d{{4}}"
)
_DATE_FORMS = re.compile(rf"^(?:(?P<iso>{_YEAR_FIRST})|(?P<numeric>{_NUMERIC})|(?P<written>{_WRITTEN}))$")
_UNIT = r"(?P<unit>days?|weeks?|months?|years?)"
_OFFSET_AFTER = re.compile(rf"^(?P<n>\d{{1,7}}|an?)\s+{_UNIT}\s+(?P<dir>after|before|from|later\s+than)\s+(?P<d>.+)$")
_OFFSET_PLUS = re.compile(rf"^(?P<d>.+?)(?P<dir>\s+plus\s+|\s+minus\s+|\s*[+-]\s*)(?P<n>\d{{1,7}}|an?)\s+{_UNIT}$")

_WEEKDAY = re.compile(
    r"^(?:on\s+)?(?:what|which)\s+(?:day\s+of\s+(?:the\s+)?week|day|weekday)\s+"
    r"(?:was|is|will\s+be|will|did|does|falls?\s+on|fell\s+on)\s+(?P<d>.+?)"
    r"(?:\s+(?:fall\s+on|fall|land\s+on|be|on))?$"
)
_WEEKDAY_TRAILING = re.compile(
    r"^(?P<d>.+?)\s+(?:is|was|will\s+be|falls\s+on|fell\s+on)\s+(?:a\s+)?"
    r"(?:what|which)\s+(?:day\s+of\s+(?:the\s+)?week|day|weekday)$"
)
_BETWEEN = re.compile(
    r"^(?:how\s+many\s+days\s+(?:are\s+)?(?:there\s+)?|(?:the\s+)?number\s+of\s+days\s+|days\s+)"
    r"(?:between|from)\s+(?P<a>.+?)\s+(?:and|to|until|till)\s+(?P<b>.+)$"
)
_OFFSET = re.compile(
    r"^(?:what\s+(?:is\s+|was\s+|will\s+be\s+)?)?(?:the\s+)?(?:date\s+)?(?:(?:that\s+)?(?:is|was|will\s+be)\s+)?"
    r"(?P<e>.+)$"
)
_MONTH_LENGTH = re.compile(
    rf"^(?:how\s+many\s+days\s+(?:are\s+|were\s+|will\s+be\s+)?(?:there\s+)?(?:in|does)|(?:the\s+)?number\s+of\s+days\s+in)"
    rf"\s+(?P<m>{_MONTH})\s+(?:of\s+)?(?P<y>\d{{4}})(?:\s+have)?$"
)
_LEAP = re.compile(r"^is\s+(?:the\s+year\s+)?(?P<y>\d{1,4})\s+a\s+leap\s+year$")
_CLOCK = re.compile(
    r"\b(?:today|todays|today's|tomorrow|yesterday|now|current|currently|tonight|this\s+(?:year|month|week)|"
    r"next\s+(?:year|month|week)|last\s+(?:year|month|week)|until|till|since|ago|time\s+is\s+it)\b"
)

_DATEISH = re.compile(r"\b(?:date|dates|day|days|time|year|years|month|months|week|weeks|weekday|clock)\b")
_DEFAULTS = (dt.datetime(2000, 1, 1), dt.datetime(2004, 2, 2))  # two, to tell a field left out


def date_readings(text: str) -> tuple[dt.date, ...]:
    """Every date `text` can mean, by python-dateutil: one for ISO and written-out dates, two for a
    numeric day/month that reads both ways ("03/04/2024", month first then day first). ValueError
    for anything else, an impossible date, or a date missing its year, month or day."""
    text = " ".join(text.split())
    form = _DATE_FORMS.match(text)
    if not form:
        raise ValueError(f"not a date: {text!r}")
    text = re.sub(r"^the\s+", "", text)
    orders = [(False, False), (True, False)] if form.group("numeric") else [(False, bool(form.group("iso")))]
    readings: list[dt.date] = []
    for dayfirst, yearfirst in orders:
        parsed = {date_parser.parse(text, default=d, dayfirst=dayfirst, yearfirst=yearfirst) for d in _DEFAULTS}
        if len(parsed) != 1:
            raise ValueError(f"incomplete date: {text!r}")
        day = parsed.pop().date()
        if day not in readings:
            readings.append(day)
    return tuple(readings)


def parse_date(text: str) -> dt.date:
    """The one date `text` means; ValueError when it is not a date or reads two ways ("03/04/2024")."""
    readings = date_readings(text)
    if len(readings) != 1:
        raise ValueError(f"ambiguous date: {text!r} ({', '.join(d.isoformat() for d in readings)})")
    return readings[0]


def _shift(day: dt.date, count: int, unit: str) -> tuple[dt.date, bool]:
    """`day` moved by `count` units; and whether a month/year step was cut short (Jan 31 + 1 month)."""
    unit = unit.rstrip("s")
    if unit in ("day", "week"):
        days = count * (7 if unit == "week" else 1)
        if abs(days) > MAX_DAY_OFFSET:
            raise ValueError("offset too large")
        return day + dt.timedelta(days=days), False
    months = count * (12 if unit == "year" else 1)
    if abs(months) > MAX_MONTH_OFFSET:
        raise ValueError("offset too large")
    moved = day + relativedelta(months=months)
    return moved, moved.day != day.day


def date_expression(text: str) -> tuple[list[tuple[dt.date, bool]], int | None]:
    """A date, or a date moved by an offset ("30 days after 2024-01-31", "2024-01-31 plus 2 weeks"):
    every reading as (date, cut short), and the offset in days when it is one (None otherwise)."""
    for pattern in (_OFFSET_AFTER, _OFFSET_PLUS):
        match = pattern.match(text)
        if match:
            count = 1 if match.group("n") in ("a", "an") else int(match.group("n"))
            if match.group("dir").strip() in ("before", "minus", "-"):
                count = -count
            out = [_shift(day, count, match.group("unit")) for day in date_readings(match.group("d"))]
            offset = count * 7 if match.group("unit").startswith("week") else count
            return out, offset if match.group("unit").startswith(("day", "week")) else None
    return [(day, False) for day in date_readings(text)], None


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

_NUMBER_WORD = "(?:" + "|".join(NUMBER_WORDS) + r"|twenty|thirty|forty|fifty|sixty|seventy|eighty|ninety|hundred)"
_APPLIES = re.compile(
    r"^\W*(?:hi|hello|hey|heya|hiya|howdy|greetings|yo|hola|good\s+(?:morning|afternoon|evening|day)|"
    r"how\s+are\s+you|how's\s+it\s+going|how\s+is\s+it\s+going)\b|"
    r"\b(?:thanks|thank\s+(?:you|u)|thx|ty|tysm|cheers|convert|how\s+many|number\s+of|leap\s+year|"
    r"day\s+of\s+the\s+week|weekday|celsius|fahrenheit|centigrade|kelvin|"
    r"(?:days?|weeks?|months?|years?)\s+(?:after|before|from|between|later)|"
    r"(?:plus|minus)\s+\S+\s+(?:days?|weeks?|months?|years?))\b|"
    r"\d{4}[-/.]\d{1,2}[-/.]\d{1,2}|\d{1,2}/\d{1,2}/\d{4}|"
    r"(?:\d|\b" + _NUMBER_WORD + r"\b)\s*[°a-zµ][^\n]{0,60}?\s(?:to|into|in|as|equals?|is|are|has|have|makes?)\s",
    re.IGNORECASE,
)


def _normalize(prompt: str) -> str:
    text = " ".join(prompt.lower().replace("\u2019", "'").split())  # curly apostrophe
    return strip_wrapping(text, _LEADING_FILLER, _TRAILING_FILLER)


class MicroHead(Head):
    """Fast micro-specialist; see the module docstring for what it answers and how surely."""

    name = "micro"
    skill_type = "micro"
    timeout_s = 0.5

    def __init__(self) -> None:
        warm_up_units()  # pint's registry (about 0.3 s) is built here, not on the first question
        date_readings("2024-01-31")

    def applies(self, prompt: str) -> bool:
        return len(prompt) <= MAX_PROMPT_CHARS and _APPLIES.search(prompt) is not None

    def answer(self, prompt: str, ctx: HeadContext) -> Ballot:
        started = time.perf_counter()
        if len(prompt) > MAX_PROMPT_CHARS:
            return self.abstain(started, "prompt too long for the pattern head")
        raw = " ".join(prompt.split())
        text = _normalize(prompt)
        if not text:
            return self.abstain(started, "empty prompt")
        handlers: tuple[Callable[[str, str, float], Ballot | None], ...] = (
            self._greeting, self._thanks, self._conversion, self._date
        )  # fmt: skip
        for handler in handlers:
            ballot = handler(raw, text, started)
            if ballot is not None:
                return ballot
        if _CLOCK.search(text) and _DATEISH.search(text):
            return self.abstain(started, "depends on the current date or time (uncacheable)")
        return self.abstain(started, "no pattern matched")

    # -- chat -------------------------------------------------------------------------------

    def _greeting(self, raw: str, text: str, started: float) -> Ballot | None:
        if not _GREETING.match(raw.lower()):
            return None
        opener = _TIME_OF_DAY.search(raw.lower())
        hello = f"Good {opener.group(1)}!" if opener else "Hello!"
        if re.search(_HOW_ARE_YOU, raw.lower()):
            reply = f"{hello} I'm doing well, thanks for asking. How can I help you today?"
        else:
            reply = f"{hello} How can I help you today?"
        return self.ballot(reply, GREETING_CONFIDENCE, started, kind="greeting")

    def _thanks(self, raw: str, text: str, started: float) -> Ballot | None:
        if not _THANKS.match(raw.lower()):
            return None
        return self.ballot("You're welcome!", THANKS_CONFIDENCE, started, kind="thanks")

    # -- units ------------------------------------------------------------------------------

    def _conversion(self, raw: str, text: str, started: float) -> Ballot | None:
        conversion = parse_conversion(raw)
        if conversion is None:
            return None
        confidence = AMBIGUOUS_CONFIDENCE if conversion.ambiguous else CONVERSION_CONFIDENCE
        return self.ballot(conversion.answer, confidence, started, kind="unit_conversion", **conversion.evidence)

    # -- dates ------------------------------------------------------------------------------

    def _date(self, raw: str, text: str, started: float) -> Ballot | None:
        try:
            return self._date_answer(text, started)
        except (ValueError, OverflowError) as exc:  # impossible date, or out of datetime's range
            return self.abstain(started, f"bad date: {exc}")

    def _readings(self, started: float, kind: str, answers: list[tuple[str, bool]], **evidence: object) -> Ballot:
        """The ballot for an answer computed under every reading of the dates in the prompt: sure when
        they all agree and no month step was cut short, else the first reading's at AMBIGUOUS_CONFIDENCE."""
        distinct = list(dict.fromkeys(answer for answer, _ in answers))
        cut_short = any(short for _, short in answers)
        confidence = DATE_CONFIDENCE if len(distinct) == 1 and not cut_short else AMBIGUOUS_CONFIDENCE
        if len(distinct) > 1:
            evidence["readings"] = distinct
        if cut_short:
            evidence["cut_short"] = "a month or year step ran past the end of a month"
        return self.ballot(distinct[0], confidence, started, kind=kind, **evidence)

    def _date_answer(self, text: str, started: float) -> Ballot | None:
        match = _WEEKDAY.match(text) or _WEEKDAY_TRAILING.match(text)
        if match:
            days, _ = date_expression(match.group("d"))
            answers = [(calendar.day_name[day.weekday()], short) for day, short in days]
            return self._readings(started, "weekday", answers, date=days[0][0].isoformat())
        match = _BETWEEN.match(text)
        if match:
            firsts, _ = date_expression(match.group("a"))
            seconds, _ = date_expression(match.group("b"))
            pairs = list(itertools.product(firsts, seconds))
            answers = [(str(abs((b - a).days)), sa or sb) for (a, sa), (b, sb) in pairs]
            (first, _), (second, _) = pairs[0]
            return self._readings(
                started, "days_between", answers, start=first.isoformat(), end=second.isoformat(),
                days=abs((second - first).days),
            )  # fmt: skip
        match = _MONTH_LENGTH.match(text)
        if match:
            year, month = int(match.group("y")), _MONTHS[match.group("m").rstrip(".")]
            if year < 1:
                return self.abstain(started, "year out of range")
            days = calendar.monthrange(year, month)[1]
            return self.ballot(str(days), DATE_CONFIDENCE, started, kind="month_length", year=year, month=month)
        match = _LEAP.match(text)
        if match:
            year = int(match.group("y"))
            if year < 1:
                return self.abstain(started, "year out of range")
            leap = calendar.isleap(year)
            return self.ballot(
                "Yes" if leap else "No", DATE_CONFIDENCE, started, kind="leap_year", year=year, leap=leap
            )
        match = _OFFSET.match(text)
        if match and (_OFFSET_AFTER.match(match.group("e")) or _OFFSET_PLUS.match(match.group("e"))):
            days, offset = date_expression(match.group("e"))
            answers = [(day.isoformat(), short) for day, short in days]
            evidence: dict[str, object] = {"weekday": calendar.day_name[days[0][0].weekday()]}
            if offset is not None:
                evidence["offset_days"] = offset
            return self._readings(started, "date_offset", answers, **evidence)
        return None
