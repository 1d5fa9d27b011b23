"""Unit conversions read from a prompt and computed by pint (its own unit definitions, offline).

Every factor comes from pint's registry (`pint.UnitRegistry(non_int_type=Fraction)`: exact rational
arithmetic on the definitions it ships, so "1 mile = 1.609344 km" exactly). This module only reads
English: a quantity ("5 km", "5 feet 3 inches", "a mile", "-40 °F"), a unit phrase ("miles",
"degrees Celsius", "square feet", "km/h", "US gallons"), and the sentence around them
(`parse_conversion`). Which units are read:

* dimensions: length, area, volume, mass, time, temperature, speed, energy, power and pressure;
  anything else (data sizes, angles, constants with other dimensions) is not read;
* SI prefixes (kilo, centi, milli, micro, nano, mega, giga, hecto, deca, deci) only on the units that
  take them (metre, gram, litre, second, joule, watt, watt-hour, pascal, bar, calorie, kelvin), so
  "pa" is not a picoyear and "mins" not a milli-inch; a prefix written out needs the unit written
  out ("kilos" is not a kilosecond);
* symbols as typed (case-sensitive, "mm" is a millimetre and "Mm" a megametre); a symbol typed in
  a case pint does not know is tried in every case and read only if that gives one unit ("kw" ->
  kW) -- several ("mw": mW or MW?) are several readings (below); all capitals ("ML") are read in
  every case too;
* c, f and k are degrees Celsius, Fahrenheit and kelvins (not coulombs, farads or the Boltzmann
  constant); barns ("b", "mb") and pint's "quarter" (28 lb) are never read from chat.

Readings. Some units mean different sizes to different people; each reading is computed and the
answer is confident only when every reading gives the same (displayed) result:

* US or imperial: a unit with an imperial namesake in pint (gallon, quart, pint, cup, gill, fluid
  ounce, ...) is read both ways, jointly for the whole prompt ("US gallon"/"imperial gallon" typed
  fixes it). Gallons to pints (8 either way) is confident, gallons to litres is not;
* the year: common (365 days, the default), leap (366) or Julian (365.25, pint's `year`); a month is
  a twelfth of it, a decade, century or millennium 10, 100 or 1000 of it. Months to years is
  confident, days in a year is not;
* tons (short, long or metric), hundredweights (short or long), horsepower (mechanical or metric),
  calories (small or food kilocalories), ounces (mass, or fluid when the other side is a volume);
* a symbol in a case pint does not know ("mw"), as above.

An answer that depends on the reading uses the first (default) reading, names it in the answer ("1
US gallon = 3.7854 liters") and is flagged `ambiguous` for the head to lower its confidence.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, field
from decimal import Decimal
from fractions import Fraction
from functools import lru_cache
from typing import Any

import pint

from routing.heads.numwords import strip_wrapping

MAX_VALUE_DIGITS = 20  # digits of a quantity's value before the decimal point
MAX_UNIT_CHARS = 40
MAX_UNIT_WORDS = 5  # "pound force per square inch"
MAX_PARTS = 4  # "1 mile 3 yards 2 feet 1 inch"

# The dimensions read, as a unit of each (pint gives the dimensionality).
_DIMENSION_UNITS = {
    "length": "meter",
    "area": "meter ** 2",
    "volume": "liter",
    "mass": "gram",
    "time": "second",
    "temperature": "kelvin",
    "speed": "meter / second",
    "energy": "joule",
    "power": "watt",
    "pressure": "pascal",
}
_PREFIXES = frozenset({"", "kilo", "hecto", "deca", "deka", "deci", "centi", "milli", "micro", "nano", "mega", "giga"})
# The units that take SI prefixes in ordinary use (a prefix on anything else is a misreading).
_PREFIXABLE = frozenset(
    {"meter", "gram", "liter", "second", "joule", "watt", "watt_hour", "pascal", "bar", "calorie", "kelvin"}
)
_NEVER_READ = frozenset({"barn", "quarter"})
# English words that pint also reads as a unit symbol ("at": technical atmosphere, "us": microsecond).
_NOT_UNITS = frozenset({"a", "an", "at", "us", "are", "da", "is", "as", "am", "pm"})
_TEMPERATURE_WORD = re.compile(
    r"^(?:deg(?:ree)?s?\.?\s*)?°?\s*(?P<t>c|f|k|r|celsius|centigrade|fahrenheit|kelvins?|rankine)$", re.IGNORECASE
)
_TEMPERATURES = {"c": "degree_Celsius", "celsius": "degree_Celsius", "centigrade": "degree_Celsius",
                 "f": "degree_Fahrenheit", "fahrenheit": "degree_Fahrenheit", "k": "kelvin", "kelvin": "kelvin",
                 "kelvins": "kelvin", "r": "degree_Rankine", "rankine": "degree_Rankine"}  # fmt: skip
# Colloquial spellings pint does not know; each maps to a pint name.
_SPELLINGS = {"gm": "gram", "gms": "gram", "kilo": "kilogram", "kilos": "kilogram", "kms": "kilometer",
              "kmh": "kilometer_per_hour", "kmph": "kilometer_per_hour", "fl oz": "fluid_ounce",
              "fl. oz": "fluid_ounce", "fl.oz": "fluid_ounce", "fluid oz": "fluid_ounce"}  # fmt: skip
# Units read several ways (besides US/imperial and the year): pint name -> the other readings.
_OTHER_READINGS = {
    "ton": ("long_ton", "metric_ton"),
    "hundredweight": ("long_hundredweight",),
    "horsepower": ("metric_horsepower",),
    "calorie": ("kilocalorie",),
    "ounce": ("fluid_ounce",),
}
# Words that fix the reading: "short ton", "US gallon", "avoirdupois ounce", "mechanical horsepower".
_FIXING_WORDS = re.compile(r"\b(?:short|long|metric|us|u\.s\.|american|avoirdupois|avdp|mechanical|small)\b", re.I)
# Calendar units: a multiple of the year (whichever year is meant).
_CALENDAR = {"year": Fraction(1), "month": Fraction(1, 12), "decade": Fraction(10), "century": Fraction(100),
             "millennium": Fraction(1000)}  # fmt: skip
_YEARS = ("common_year", "leap_year", "year")  # the default first; pint's `year` is the Julian year
_SYSTEMS = ("US", "imperial")
_US = re.compile(r"^(?:us|u\.s\.?|american)\s+(?P<rest>.+)$", re.IGNORECASE)
_IMPERIAL = re.compile(r"^(?:imperial|uk|u\.k\.?|british)\s+(?P<rest>.+)$", re.IGNORECASE)
_POWER_BEFORE = re.compile(r"^(?P<p>square|sq\.?|cubic|cu\.?)\s+(?P<u>.+)$", re.IGNORECASE)
_POWER_AFTER = re.compile(r"^(?P<u>.+?)\s*(?:\s(?P<w>squared|cubed)|(?P<s>[²³])|\^(?P<n>[23]))$", re.IGNORECASE)
_PER = re.compile(r"^(?P<a>[^/]+?)\s*(?:\s+per\s+|/|\s+an?\s+)\s*(?P<b>[^/]+)$", re.IGNORECASE)
_UNIT_CHARS = re.compile(r"^[a-zA-Z°µ²³^/.' ]+$")
_IRREGULAR_PLURALS = {"foot": "feet", "century": "centuries", "millennium": "millennia", "hertz": "hertz",
                      "horsepower": "horsepower", "stone": "stone"}  # fmt: skip
# How an answer names the default reading of a unit read several ways.
_DEFAULT_LABELS = {"ton": "short ton", "hundredweight": "short hundredweight", "horsepower": "mechanical horsepower"}
# Kitchen units whose size differs by country (US, metric 5/15 mL, Australian 20 mL) and that pint
# defines one way only: a conversion out of them is never confident.
_REGIONAL = frozenset({"teaspoon", "tablespoon"})
_SYMBOL_LABELS: set[str] = set()  # labels that are symbols ("psi"): they take no plural


@lru_cache(maxsize=1)
def registry() -> pint.UnitRegistry:
    """pint's registry with exact rational arithmetic, built once per process (about 0.3 s)."""
    return pint.UnitRegistry(non_int_type=Fraction)


@lru_cache(maxsize=1)
def _dimensions() -> dict[Any, str]:
    ureg = registry()
    return {ureg.Unit(unit).dimensionality: name for name, unit in _DIMENSION_UNITS.items()}


def warm_up() -> None:
    """Build the registry and run one conversion of each kind, so the first question is fast."""
    registry()
    _dimensions()
    for text in ("convert 5 feet 3 inches to cm", "how many ounces in a gallon", "100 f to c", "1 mw to kw"):
        parse_conversion(text)


# ---------------------------------------------------------------------------------------------
# Units


@dataclass(frozen=True)
class Meaning:
    """One way to read a unit phrase.

    `name`: a pint unit expression; `kind`: "plain", "customary" (US, or imperial_<name>),
    "calendar" (`factor` times the year being read), "international" (a US survey unit on the
    international foot); `label`: how an answer names it."""

    name: str
    kind: str = "plain"
    factor: Fraction = Fraction(1)
    label: str = ""
    fixed_system: str | None = None  # "US" or "imperial" when the prompt said so

    def resolve(self, system: str, year: str) -> tuple[str, Fraction, str]:
        """(pint unit, multiplier, qualified label) under one joint reading."""
        if self.kind == "calendar":
            if self.name == "year":
                return year, Fraction(1), _label(year)
            return year, self.factor, self.label or _label(self.name)
        if self.kind == "international":
            return self.name, self.factor, self.label or _label(self.name)
        if self.kind == "customary":
            chosen = self.fixed_system or system
            if chosen == "imperial":
                return f"imperial_{self.name}", Fraction(1), "imperial " + _label(self.name)
            return self.name, Fraction(1), "US " + _label(self.name)
        return self.name, Fraction(1), self.label or _label(self.name)


def _label(name: str) -> str:
    """A pint name as words: "degree_Fahrenheit" -> "degree Fahrenheit"; long names as their symbol."""
    words = name.replace("_", " ").split()
    if len(words) > 3:
        symbol = registry().get_symbol(name)
        _SYMBOL_LABELS.add(symbol)
        return symbol
    return " ".join(words)


def _plural_word(word: str) -> str:
    if word in _IRREGULAR_PLURALS:
        return _IRREGULAR_PLURALS[word]
    if word.endswith(("s", "x", "z", "ch", "sh")):
        return word + "es"
    if len(word) > 1 and word.endswith("y") and word[-2] not in "aeiou":
        return word[:-1] + "ies"
    return word + "s"


def unit_label(label: str, shown_value: str) -> str:
    """The label for a displayed value: singular for exactly "1", else the plural of its head word."""
    if shown_value in ("1", "-1") or not label or not label[0].isalpha() or label in _SYMBOL_LABELS:
        return label  # symbols (psi) do not take a plural
    words = label.split(" ")
    if "per" in words:
        head = words.index("per") - 1
    elif "of" in words:
        head = words.index("of") - 1
    elif words[0] == "degree" or (words[0] in ("US", "imperial") and len(words) > 1 and words[1] == "degree"):
        head = 0 if words[0] == "degree" else 1
    else:
        head = len(words) - 1
    if head < 0:
        return label
    words[head] = _plural_word(words[head])
    return " ".join(words)


def _dimension(unit: Any) -> str | None:
    return _dimensions().get(unit.dimensionality)


def _candidates(text: str) -> list[str]:
    """pint unit names for one word, as typed; [] when pint has none we read."""
    ureg = registry()
    try:
        parsed = ureg.parse_unit_name(text, case_sensitive=True)
    except (pint.PintError, ValueError, TypeError, KeyError):
        return []
    names = []
    for prefix, base, suffix in parsed:
        if suffix or prefix not in _PREFIXES or base in _NEVER_READ:
            continue
        if prefix and (base not in _PREFIXABLE or _written_out_prefix_on_symbol(text, prefix)):
            continue
        name = prefix + base
        try:
            if _dimension(ureg.Unit(name)) is None:
                continue
        except (pint.PintError, ValueError, TypeError, KeyError):
            continue
        names.append(name)
    return list(dict.fromkeys(names))


def _written_out_prefix_on_symbol(text: str, prefix: str) -> bool:
    """ "kilos" (kilo + s): a prefix written out, then a unit symbol -- not a unit anyone writes."""
    lowered = text.lower()
    return lowered.startswith(prefix) and len(lowered) - len(prefix) < 3


def _casings(text: str) -> list[str]:
    letters = [i for i, ch in enumerate(text) if ch.isalpha()]
    if not letters or len(letters) > 5:
        return []
    out = []
    for mask in range(1 << len(letters)):
        chars = list(text.lower())
        for bit, index in enumerate(letters):
            if mask >> bit & 1:
                chars[index] = chars[index].upper()
        out.append("".join(chars))
    return out


def _single_names(text: str) -> list[str]:
    """The pint names one unit word (or underscore-joined words) may mean."""
    word = text.replace(" ", "_")
    found = _candidates(word)
    if len(word) >= 2 and word.isupper():  # "ML", "KM": typed in capitals, case tells nothing
        found += [name for variant in _casings(word) for name in _candidates(variant)]
    if not found and word != word.lower():
        found = _candidates(word.lower())
    if not found and "_" not in word:
        found = [name for variant in _casings(word) for name in _candidates(variant)]
    return list(dict.fromkeys(found))


def meanings(phrase: str) -> list[Meaning]:
    """Every way to read a unit phrase ("miles", "degrees Celsius", "US gallons", "km/h"); [] if none."""
    text = " ".join(phrase.replace("\u00b5", "µ").split()).strip().rstrip(".")
    if not text or len(text) > MAX_UNIT_CHARS or len(text.split()) > MAX_UNIT_WORDS:
        return []
    return list(_meanings(text))


@lru_cache(maxsize=4096)
def _meanings(text: str) -> tuple[Meaning, ...]:
    return tuple(_read_unit(text))


def _read_unit(text: str) -> list[Meaning]:
    if not _UNIT_CHARS.match(text) or text.lower() in _NOT_UNITS:
        return []
    temperature = _TEMPERATURE_WORD.match(text)
    if temperature:
        return [Meaning(_TEMPERATURES[temperature.group("t").lower()])]
    lowered = text.lower()
    if lowered in _SPELLINGS:
        return _with_readings(_SPELLINGS[lowered], text)
    if lowered in ("decade", "decades"):
        return [Meaning("decade", "calendar", _CALENDAR["decade"], "decade")]
    fixed = _US.match(text) or _IMPERIAL.match(text)
    if fixed:
        system = "US" if fixed.re is _US else "imperial"
        out = []
        for meaning in meanings(fixed.group("rest")):
            if meaning.kind == "customary":
                out.append(Meaning(meaning.name, "customary", fixed_system=system))
            elif system == "US" and meaning.kind == "plain":  # "US ton": the short ton, pint's default
                out.append(Meaning(meaning.name, label=meaning.label, fixed_system="US"))
        return out
    power = _POWER_BEFORE.match(text)
    exponent = None
    if power:
        exponent = 2 if power.group("p").lower().startswith("sq") else 3
        base_text = power.group("u")
    else:
        after = _POWER_AFTER.match(text)
        if after and (after.group("w") or after.group("s") or after.group("n")):
            mark = (after.group("w") or after.group("s") or after.group("n")).lower()
            exponent = 2 if mark in ("squared", "²", "2") else 3
            base_text = after.group("u")
    if exponent is not None:
        named = _single_names(f"{'square' if exponent == 2 else 'cubic'}_{base_text}")
        if named:
            return [Meaning(name) for name in named]
        bases = _plain(base_text)
        return [Meaning(f"{b} ** {exponent}", label=f"{'square' if exponent == 2 else 'cubic'} {_label(b)}")
                for b in bases]  # fmt: skip
    per = _PER.match(text)
    if per and not _single_names(text):
        tops, bottoms = _plain(per.group("a")), _plain(per.group("b"))
        return [Meaning(f"{a} / {b}", label=f"{_label(a)} per {_label(b)}") for a in tops for b in bottoms]
    names = _single_names(text)
    out: list[Meaning] = []
    for name in names:
        out.extend(_with_readings(name, text))
    return out


def _plain(text: str) -> list[str]:
    """The plain (single-reading) pint names a part of a compound unit may be."""
    found = meanings(text)
    return [m.name for m in found if m.kind == "plain" and m.name not in _OTHER_READINGS and " " not in m.name]


@lru_cache(maxsize=1)
def _survey_units() -> frozenset[str]:
    """pint's US survey units (acre, furlong, rod, chain, league, ...): defined on the survey foot."""
    members = frozenset(registry().get_group("USCSLengthSurvey").members)
    return members - {"survey_foot", "survey_mile", "square_survey_mile"}


def _international(name: str) -> Meaning:
    """A survey unit on the international foot, as US law defines it since 2023 (an acre is 43,560
    square feet, a furlong 660 feet): pint's own size in survey feet, counted in feet."""
    ureg = registry()
    power = int(ureg.Unit(name).dimensionality.get("[length]", 0))
    size = Fraction(ureg.Quantity(1, name).to(f"survey_foot ** {power}").magnitude)
    return Meaning(f"foot ** {power}", "international", size, _label(name))


def _with_readings(name: str, typed: str) -> list[Meaning]:
    ureg = registry()
    if name in _CALENDAR:
        if re.search(r"\bjulian\b", typed, re.IGNORECASE):
            return [Meaning(name, "plain")]
        return [Meaning(name, "calendar", _CALENDAR[name], _label(name))]
    if name in ("common_year", "leap_year", "julian_year", "gregorian_year"):
        return [Meaning(name)]
    if f"imperial_{name}" in ureg:
        return [Meaning(name, "customary")]
    if name in _survey_units() and not re.search(r"\bsurvey\b", typed, re.IGNORECASE):
        return [_international(name)]
    fixed = _FIXING_WORDS.search(typed) is not None
    out = [Meaning(name, label="" if fixed else _DEFAULT_LABELS.get(name, ""))]
    if name in _OTHER_READINGS and not fixed:
        for other in _OTHER_READINGS[name]:
            out.extend(_with_readings(other, other))
    return out


# ---------------------------------------------------------------------------------------------
# Quantities

_NUMBER = r"[-+]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:\s*/\s*\d+)?|[-+]?\.\d+"
_PART = re.compile(rf"^(?P<num>{_NUMBER}|an?)\s*(?P<unit>[^\d]+?)$", re.IGNORECASE)
_PART_SPLIT = re.compile(r"\s*,?\s+(?:and\s+)?(?=[-+]?\d|\.\d)")
_GLUED = re.compile(r"(?<=\d)(?=[a-zA-Z°µ])")


@dataclass(frozen=True)
class Part:
    value: Fraction
    shown: str  # the value as the answer shows it
    phrase: str  # the unit as typed
    meanings: tuple[Meaning, ...]


def parse_value(text: str) -> Fraction | None:
    """ "1,000" -> 1000, "2.5" -> 5/2, "1/2" -> 1/2, "a" -> 1; None when too long or malformed."""
    text = text.strip().lower()
    if text in ("a", "an"):
        return Fraction(1)
    digits = text.lstrip("+-").split(".")[0].replace(",", "")
    if len(digits) > MAX_VALUE_DIGITS or len(text) > 2 * MAX_VALUE_DIGITS:
        return None
    try:
        if "/" in text:
            top, bottom = text.split("/")
            return Fraction(Decimal(top.strip().replace(",", ""))) / Fraction(int(bottom))
        return Fraction(Decimal(text.replace(",", "")))
    except (ArithmeticError, ValueError, ZeroDivisionError):
        return None


def parse_quantity(text: str) -> list[Part] | None:
    """ "5 feet 3 inches" -> two parts; "a mile", "-40 °F", "10km"; None when it is not a quantity."""
    if "|" in text:  # no quantity has one, and "|" marks a mixed number's parts below
        return None
    text = _GLUED.sub(" ", " ".join(text.split()))
    pieces = _PART_SPLIT.split(text)
    merged: list[str] = []
    for piece in pieces:  # "1 1/2 cups": a whole number, then a fraction
        if merged and re.fullmatch(r"\d+", merged[-1]) and re.match(r"\d+\s*/\s*\d+\s", piece):
            fraction, rest = re.match(r"(\d+\s*/\s*\d+)\s+(.*)", piece).groups()  # type: ignore[union-attr]
            merged[-1] = f"{merged[-1]} {fraction}|{rest}"
            continue
        merged.append(piece)
    if not merged or len(merged) > MAX_PARTS:
        return None
    parts = []
    for piece in merged:
        if "|" in piece:  # mixed number
            number, unit = piece.split("|")
            whole, fraction = number.split(" ", 1)
            value = parse_value(whole)
            extra = parse_value(fraction)
            if value is None or extra is None:
                return None
            value += extra
            shown_number = f"{whole} {fraction.replace(' ', '')}"
        else:
            match = _PART.match(piece)
            if not match:
                return None
            value = parse_value(match.group("num"))
            unit = match.group("unit")
            if value is None:
                return None
            shown_number = format_quantity(value)
        found = meanings(unit)
        if not found:
            return None
        parts.append(Part(value, shown_number, unit.strip(), tuple(found)))
    if len(parts) > 1 and any(p.value < 0 for p in parts):
        return None
    return parts


def format_quantity(value: Fraction) -> str:
    """At most 4 decimals (4 significant digits below 0.01), trailing zeros stripped: 6.2137, 7200."""
    if value.denominator == 1:
        return str(value.numerator)
    magnitude = abs(value)
    exact = Decimal(value.numerator) / Decimal(value.denominator)
    if magnitude >= Fraction(1, 100):
        text = f"{exact:.4f}"
    else:
        text = f"{exact:.4g}"
        if "e" in text.lower():
            text = f"{exact:.4e}"
    if "." in text and "e" not in text.lower():
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


# ---------------------------------------------------------------------------------------------
# Conversions


@dataclass
class Conversion:
    """A conversion read from a prompt and computed under every reading of its units."""

    answer: str
    exact: Fraction
    ambiguous: bool
    evidence: dict[str, Any] = field(default_factory=dict)


def convert(value: Fraction, src: str, dst: str) -> Fraction:
    """`value` in pint unit `src` as pint unit `dst`, exactly (pint's definitions, rational arithmetic)."""
    ureg = registry()
    return Fraction(ureg.Quantity(value, src).to(dst).magnitude)


def _evaluate(parts: list[Part], target: Meaning, combo: tuple[Meaning, ...], system: str, year: str) -> Any:
    """(result, src labels, dst label, dimension, pint names) under one reading; None if it does not convert."""
    ureg = registry()
    resolved = [meaning.resolve(system, year) for meaning in combo]
    dst_unit, dst_factor, dst_label = target.resolve(system, year)
    units = [ureg.Unit(unit) for unit, _, _ in resolved]
    dst = ureg.Unit(dst_unit)
    dimension = _dimension(dst)
    if dimension is None or any(_dimension(u) != dimension for u in units):
        return None
    if len(parts) > 1 and dimension == "temperature":
        return None
    total = None
    for part, (_, factor, _), pint_unit in zip(parts, resolved, units, strict=True):
        quantity = ureg.Quantity(part.value * factor, pint_unit)
        total = quantity if total is None else total + quantity
    result = Fraction(total.to(dst).magnitude) / dst_factor  # type: ignore[union-attr]
    return result, [label for _, _, label in resolved], dst_label, dimension, [u for u, _, _ in resolved] + [dst_unit]


def compute(parts: list[Part], targets: list[Meaning]) -> Conversion | None:
    """Convert `parts` to the target unit under every reading; None when no reading converts."""
    tokens = [list(p.meanings) for p in parts] + [targets]
    flat = [m for token in tokens for m in token]
    systems = _SYSTEMS if any(m.kind == "customary" and m.fixed_system is None for m in flat) else _SYSTEMS[:1]
    years = _YEARS if any(m.kind == "calendar" for m in flat) else _YEARS[:1]
    results = []
    for system, year in itertools.product(systems, years):
        for combo in itertools.product(*tokens):
            try:
                outcome = _evaluate(parts, combo[-1], combo[:-1], system, year)
            except (pint.PintError, ArithmeticError, ValueError, TypeError):
                continue
            if outcome is not None:
                results.append((combo, outcome))
    if not results:
        return None
    shown = {format_quantity(outcome[0]) for _, outcome in results}
    combo, (result, src_labels, dst_label, dimension, names) = results[0]
    regional = [m.name for m in combo if m.name in _REGIONAL and m.fixed_system is None]
    ambiguous = len(shown) > 1 or bool(regional)
    if not ambiguous:  # plain names: "gallon", not "US gallon", when the reading does not matter
        src_labels = [_plain_label(m, label) for m, label in zip(combo[:-1], src_labels, strict=True)]
        dst_label = _plain_label(combo[-1], dst_label)
    if len(parts) == 1 and names[0] == names[-1] and combo[0] == combo[-1]:
        return None  # the same unit on both sides: nothing to convert
    shown_result = format_quantity(result)
    source = " ".join(f"{p.shown} {unit_label(label, p.shown)}" for p, label in zip(parts, src_labels, strict=True))
    answer = f"{source} = {shown_result} {unit_label(dst_label, shown_result)}"
    evidence: dict[str, Any] = {
        "value": " ".join(p.shown for p in parts),
        "src": names[0] if len(parts) == 1 else names[:-1],
        "dst": names[-1],
        "dimension": dimension,
        "exact": str(result),
    }
    if ambiguous:
        evidence["readings"] = sorted(shown)
    if regional:
        evidence["regional"] = regional
    return Conversion(answer, result, ambiguous, evidence)


def _plain_label(meaning: Meaning, label: str) -> str:
    if meaning.kind == "customary" and meaning.fixed_system is None:
        return _label(meaning.name)
    if meaning.kind == "calendar":
        return meaning.label or _label(meaning.name)
    return label


# ---------------------------------------------------------------------------------------------
# Sentences

_LEADING = re.compile(
    r"^(?:please|pls|kindly|can\s+you|could\s+you|would\s+you|tell\s+me|quick\s+question|do\s+you\s+know|"
    r"what\s+is|what's|whats|how\s+much\s+is|how\s+much\s+are|what\s+are|calculate|compute|work\s+out)\b[\s,:]*",
    re.IGNORECASE,
)
_TRAILING = re.compile(r"(?:[\s,]*\b(?:please|pls)\b|[\s?!]+|(?<![a-z]\.[a-z])(?<!\bfl)\.+)$", re.IGNORECASE)
_TO = r"\s+(?:in\s+terms\s+of|into|to|in|as)\s+"


@dataclass(frozen=True)
class _Template:
    """A sentence shape: `head` + a separator + `tail`, each side a quantity (src) or a unit (dst)."""

    head: re.Pattern[str]
    separator: re.Pattern[str]
    tail: re.Pattern[str]
    head_is_source: bool
    bare_source: bool = False  # "how many minutes per hour": the source needs no number


def _t(head: str, separator: str, tail: str, head_is_source: bool, bare_source: bool = False) -> _Template:
    flags = re.IGNORECASE
    return _Template(re.compile(head, flags), re.compile(rf"(?=({separator}))", flags), re.compile(tail, flags),
                     head_is_source, bare_source)  # fmt: skip


_ANY = r"(?P<u>.+)"
_TEMPLATES = (
    # "convert 10 km to miles", "10 km in miles", "100 f = c"
    _t(r"(?:convert|change|turn|express)\s+(?P<u>.+)", _TO, _ANY, True),
    _t(_ANY, rf"{_TO}|\s*=\s*", _ANY, True),
    # "how many feet (are there) in a mile", "how many seconds are in 2 hours"
    _t(
        r"how\s+many\s+(?P<u>.+?)(?:\s+(?:are\s+there|is\s+there|are|is))?",
        r"\s+(?:in|within)\s+",
        r"(?P<u>.+?)(?:\s+(?:are\s+there|is\s+there))?",
        False,
    ),
    # "how many miles is 10 km", "how many metres make a kilometre", "how many inches make up a foot"
    _t(r"how\s+many\s+(?P<u>.+)", r"\s+(?:makes?\s+up|makes?|equals?|are|is|to)\s+", _ANY, False),
    # "how many minutes does an hour have"
    _t(r"how\s+many\s+(?P<u>.+)", r"\s+(?:does|do|will)\s+", r"(?P<u>.+?)\s+(?:have|contain|hold|make)", False),
    # "how many minutes per hour", "the number of minutes in an hour"
    _t(r"how\s+many\s+(?P<u>.+)", r"\s+per\s+", _ANY, False, True),
    _t(r"(?:the\s+)?number\s+of\s+(?P<u>.+)", r"\s+(?:in|per)\s+", _ANY, False, True),
    # "a kilometer is how many meters", "an hour has how many minutes"
    _t(
        _ANY,
        r"\s+(?:is\s+equal\s+to|equal\s+to|equals?|is|are|=|makes?|has|have|contains?)\s+how\s+many\s+",
        r"(?P<u>.+?)(?:\s+(?:are\s+there|is\s+that|does\s+it\s+have|in\s+it))?",
        True,
    ),
)


def conversion_text(prompt: str) -> str:
    """The prompt with case kept, polite wrapping and final punctuation removed, number words as digits."""
    text = " ".join(prompt.replace("\u2019", "'").replace("\u2212", "-").split())
    return strip_wrapping(text, _LEADING, _TRAILING)


def parse_conversion(prompt: str) -> Conversion | None:
    """A unit conversion asked in `prompt`, computed; None when the prompt is not one (or not readable).

    Every way the sentence splits into a quantity and a unit is tried; two splits with different
    answers are no answer."""
    text = conversion_text(prompt)
    if not text or len(text) > 200:
        return None
    found: dict[str, Conversion] = {}
    for template in _TEMPLATES:
        for src_text, dst_text in _splits(template, text):
            parts = parse_quantity(src_text)
            if parts is None and template.bare_source:
                bare = meanings(src_text)
                parts = [Part(Fraction(1), "1", src_text, tuple(bare))] if bare else None
            if not parts:
                continue
            targets = meanings(dst_text)
            if not targets:
                continue
            conversion = compute(parts, targets)
            if conversion is not None:
                found.setdefault(conversion.answer, conversion)
    if len(found) != 1:
        return None
    return next(iter(found.values()))


def _splits(template: _Template, text: str) -> list[tuple[str, str]]:
    """Every (src, dst) the template allows: each separator in the text is tried as the split."""
    out = []
    for match in template.separator.finditer(text):
        start, end = match.start(1), match.end(1)
        head, tail = template.head.fullmatch(text[:start]), template.tail.fullmatch(text[end:])
        if head and tail:
            pair = (head.group("u"), tail.group("u")) if template.head_is_source else (tail.group("u"), head.group("u"))
            out.append(pair)
    return out
