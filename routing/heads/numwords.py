"""English number words for the exact heads: "twenty-five" -> 25, "the tenth" -> 10, "two thirds" -> 2/3.

A small grammar, not a table of facts: the cardinal words zero..nineteen, the tens, and the scales
hundred/thousand/million/billion/trillion, combined the way English combines them ("one hundred and
five", "twelve hundred", "a thousand", "three point one four"); ordinals are the cardinals with
their English suffix ("first", "twelfth", "twentieth", "twenty-first"). A run of words that does not
follow the grammar ("one two") is not merged into one number: each well-formed run becomes its own
number, and the heads refuse two numbers with nothing between them.
"""

from __future__ import annotations

import re
from fractions import Fraction

_SMALL = [
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
    "thirteen",
    "fourteen",
    "fifteen",
    "sixteen",
    "seventeen",
    "eighteen",
    "nineteen",
]
_TENS = ["twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]
UNITS: dict[str, int] = {word: value for value, word in enumerate(_SMALL)}
TENS: dict[str, int] = {word: 10 * (i + 2) for i, word in enumerate(_TENS)}
SCALES: dict[str, int] = {"thousand": 10**3, "million": 10**6, "billion": 10**9, "trillion": 10**12}
_CARDINALS = {**UNITS, **TENS, "hundred": 100, **SCALES}
# Ordinals whose spelling is not "<cardinal>th"; the rest follow the rules in _ordinal_to_cardinal.
_IRREGULAR_ORDINALS = {"first": "one", "second": "two", "third": "three", "fifth": "five", "eighth": "eight",
                       "ninth": "nine", "twelfth": "twelve"}  # fmt: skip

_DIGIT_ORDINAL = re.compile(r"^(\d{1,9})(?:st|nd|rd|th)$")


def _ordinal_to_cardinal(word: str) -> str | None:
    """ "tenth" -> "ten", "twentieth" -> "twenty", "third" -> "three"; None when not an ordinal."""
    if word in _IRREGULAR_ORDINALS:
        return _IRREGULAR_ORDINALS[word]
    if word.endswith("ieth") and word[:-4] + "y" in TENS:
        return word[:-4] + "y"
    if word.endswith("th") and word[:-2] in _CARDINALS and word[:-2] not in ("zero",):
        return word[:-2]
    return None


class _Run:
    """The number being read: `total` of the closed scales plus the `current` group below 1000."""

    def __init__(self) -> None:
        self.total = 0
        self.current = 0
        self.last = ""  # kind of the last word: unit, teen, ten, hundred, scale, a
        self.scale = 10**18  # scales must decrease: "a thousand million" is not read
        self.words = 0

    def accepts(self, word: str) -> bool:
        """Whether `word` continues this number (without changing it)."""
        last = self.last
        if word in UNITS:
            value = UNITS[word]
            if value >= 10:  # ten .. nineteen
                return last in ("", "hundred", "scale", "and")
            return last in ("", "hundred", "scale", "ten", "and") and not (last == "" and value == 0 and self.words)
        if word in TENS:
            return last in ("", "hundred", "scale", "and")
        if word == "hundred":
            return last in ("unit", "teen", "ten", "a") and 0 < self.current < 100
        if word in SCALES:
            return last in ("unit", "teen", "ten", "hundred", "a") and SCALES[word] < self.scale and self.current > 0
        return False

    def add(self, word: str) -> None:
        self.words += 1
        if word in UNITS:
            self.current += UNITS[word]
            self.last = "unit" if UNITS[word] < 10 else "teen"
        elif word in TENS:
            self.current += TENS[word]
            self.last = "ten"
        elif word == "hundred":
            self.current *= 100
            self.last = "hundred"
        else:
            self.total += self.current * SCALES[word]
            self.scale = SCALES[word]
            self.current = 0
            self.last = "scale"

    @property
    def value(self) -> int:
        return self.total + self.current


def _split_hyphens(tokens: list[str]) -> list[str]:
    out: list[str] = []
    for token in tokens:
        parts = token.split("-")
        if len(parts) > 1 and all(p in _CARDINALS or _ordinal_to_cardinal(p) for p in parts):
            out.extend(parts)
        else:
            out.append(token)
    return out


def parse_cardinal(text: str) -> int | None:
    """The whole of `text` as one cardinal number ("twenty-five" -> 25, "a hundred" -> 100, "42" -> 42)."""
    text = text.strip().lower()
    if re.fullmatch(r"\d{1,15}", text):
        return int(text)
    words = _split_hyphens(text.split())
    if not words:
        return None
    run = _Run()
    for i, word in enumerate(words):
        if word in ("a", "an") and i == 0 and len(words) > 1 and words[1] in ("hundred", *SCALES):
            run.current, run.last = 1, "a"
            continue
        if word == "and" and run.last in ("hundred", "scale") and i + 1 < len(words):
            run.last = "and"
            continue
        if not run.accepts(word):
            return None
        run.add(word)
    return run.value if run.last not in ("and", "a") else None


def parse_ordinal(text: str) -> int | None:
    """`text` as an ordinal: "10th" -> 10, "tenth" -> 10, "twenty-first" -> 21, "one hundredth" -> 100."""
    text = text.strip().lower()
    digits = _DIGIT_ORDINAL.match(text)
    if digits:
        number = int(digits.group(1))
        suffix = text[len(digits.group(1)) :]
        expected = "th" if 10 <= number % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(number % 10, "th")
        return number if suffix == expected and number > 0 else None
    words = _split_hyphens(text.split())
    if not words:
        return None
    cardinal = _ordinal_to_cardinal(words[-1])
    if cardinal is None:
        return None
    if len(words) == 1 and cardinal in ("hundred", *SCALES):
        return _CARDINALS[cardinal]
    value = parse_cardinal(" ".join([*words[:-1], cardinal]))
    return value if value else None


def parse_fraction_words(text: str) -> Fraction | None:
    """ "a third" -> 1/3, "two thirds" -> 2/3, "three quarters" -> 3/4, "half" -> 1/2, "3/4" -> 3/4."""
    text = " ".join(text.strip().lower().replace("-", " ").split())
    match = re.fullmatch(r"(\d{1,9})\s*/\s*(\d{1,9})", text)
    if match:
        denominator = int(match.group(2))
        return Fraction(int(match.group(1)), denominator) if denominator else None
    if text in ("half", "a half", "one half"):
        return Fraction(1, 2)
    words = text.split()
    if len(words) < 2:
        return None
    numerator_text, denominator_word = " ".join(words[:-1]), words[-1]
    numerator = 1 if numerator_text in ("a", "an") else parse_cardinal(numerator_text)
    if not numerator:
        return None
    if denominator_word in ("half", "halves"):
        denominator = 2
    elif denominator_word in ("quarter", "quarters"):
        denominator = 4
    else:
        singular = denominator_word[:-1] if denominator_word.endswith("s") else denominator_word
        if singular != denominator_word and numerator == 1:
            return None  # "one thirds"
        if singular == denominator_word and numerator != 1:
            return None  # "two third"
        ordinal = parse_ordinal(singular)
        if ordinal is None or ordinal < 3 or singular in ("first", "second"):
            return None  # "a second" is a unit of time, not 1/2
        denominator = ordinal
    if denominator_word in ("half", "quarter") and numerator != 1:
        return None
    if denominator_word in ("halves", "quarters") and numerator == 1:
        return None
    return Fraction(numerator, denominator)


def _convert_run(words: list[str]) -> list[str]:
    """A run of number-ish words ("one hundred and five", "a thousand", "one two") as numbers and words."""
    out: list[str] = []
    i = 0
    while i < len(words):
        word = words[i]
        starts = word in _CARDINALS and word != "hundred" and word not in SCALES
        a_scale = word in ("a", "an") and i + 1 < len(words) and words[i + 1] in ("hundred", *SCALES)
        if not (starts or a_scale):
            out.append(word)
            i += 1
            continue
        run = _Run()
        j = i
        if a_scale:
            run.current, run.last = 1, "a"
            j += 1
        while j < len(words):
            nxt = words[j + 1] if j + 1 < len(words) else ""
            if words[j] == "and" and run.last in ("hundred", "scale") and (nxt in UNITS or nxt in TENS):
                run.last = "and"
                j += 1
                continue
            if not run.accepts(words[j]):
                break
            run.add(words[j])
            j += 1
        number = str(run.value)
        # "three point one four": one digit word after "point" each
        if j + 1 < len(words) and words[j] == "point" and UNITS.get(words[j + 1], 10) < 10:
            k = j + 1
            while k < len(words) and UNITS.get(words[k], 10) < 10:
                k += 1
            number += "." + "".join(str(UNITS[w]) for w in words[j + 1 : k])
            j = k
        out.append(number)
        i = j
    return out


_RUN_WORD = "(?:" + "|".join(sorted([*_CARDINALS, "and", "a", "an", "point"], key=len, reverse=True)) + ")"
# A run never ends glued to a hyphen: "twenty-first" is an ordinal, left whole.
_RUN = re.compile(rf"\b{_RUN_WORD}(?:(?:\s+|-){_RUN_WORD})*\b(?!-)", re.IGNORECASE)


def replace_number_words(text: str) -> str:
    """Every maximal well-formed run of cardinal number words in `text` (any case) as digits:
    "seven times eight" -> "7 times 8", "one hundred and five" -> "105", "three point five" -> "3.5".

    Ordinals, fractions ("a third") and every other word are left as they are."""

    def convert(match: re.Match[str]) -> str:
        words = re.split(r"\s+|-", match.group(0).lower())
        if not any(w in _CARDINALS for w in words):
            return match.group(0)
        return " ".join(_convert_run(words))

    return _RUN.sub(convert, text)


def strip_wrapping(text: str, leading: re.Pattern[str], trailing: re.Pattern[str]) -> str:
    """`text` without what `leading` and `trailing` match at its ends (again until nothing changes),
    its number words as digits: the polite wrapping of a question taken off before it is read."""
    previous = None
    while previous != text:
        previous = text
        text = leading.sub("", text)
        text = trailing.sub("", text)
    return replace_number_words(text)
