"""The vote: pick one ballot, or none when nothing clears the confidence floor.

Rules, each guarded by a test:
- stub guard: a ballot whose answer carries a stub marker scores 0;
- length penalty: long answers lose a little per extra character (rambling is a bad sign);
- agreement bonus: heads that reach the same answer independently reinforce each other;
- floor: the winner's score must reach `min_confidence` (0.75 by default), else UNSURE;
- tie-break: higher score, then higher raw confidence, then head priority, then name.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from fractions import Fraction

from routing.heads.base import Ballot
from routing.heads.numwords import replace_number_words
from routing.stubguard import stub_marker

DEFAULT_MIN_CONFIDENCE = 0.75
LENGTH_FREE_CHARS = 600
LENGTH_PENALTY_PER_CHAR = 0.0001
LENGTH_PENALTY_MAX = 0.2
AGREEMENT_BONUS = 0.1
AGREEMENT_BONUS_MAX = 0.2
# Verified heads first: a tie goes to the head whose answer was checked.
HEAD_PRIORITY = ("pattern", "math", "code", "micro", "knowledge", "reasoning", "agent0", "unknowable")


@dataclass(frozen=True)
class VoteResult:
    winner: Ballot | None
    scores: dict[str, float] = field(default_factory=dict)
    reasons: dict[str, str] = field(default_factory=dict)

    @property
    def unsure(self) -> bool:
        return self.winner is None


# A number: thousands grouped by commas ("299,792,458"), a decimal or a fraction.
_NUMBER = re.compile(r"-?\d{1,3}(?:,\d{3})+(?:\.\d+)?(?!\d)|-?\d+(?:\.\d+)?(?:/\d+)?")
# Words that hedge or introduce a short answer without changing it: "approximately 3.14159", "the Pacific".
_HEDGE = re.compile(r"^(?:(?:approximately|about|around|roughly|nearly|exactly|the|a|an)\s+)+")


# One notation for what is written several ways: degree signs, British spellings of metric units.
_NOTATION = (
    (re.compile(r"\s*°\s*c\b"), " degrees celsius"),
    (re.compile(r"\s*°\s*f\b"), " degrees fahrenheit"),
    (re.compile(r"\s*°"), " degrees"),
    (re.compile(r"metre"), "meter"),
    (re.compile(r"litre"), "liter"),
)
_ASIDE = re.compile(r"\s*\([^()]*\)")  # "100 °C (at sea level)": the answer is before the aside


def _canonical(answer: str) -> str:
    text = answer.casefold()
    for pattern, replacement in _NOTATION:
        text = pattern.sub(replacement, text)
    return re.sub(r"[\s.!,;:]+$", "", " ".join(text.split()))


def _value(token: str) -> Decimal | None:
    try:
        token = token.replace(",", "")
        if "/" in token:
            num, den = token.split("/")
            return (Decimal(num) / Decimal(den)).normalize()
        return Decimal(token).normalize()
    except (InvalidOperation, ZeroDivisionError):
        return None


def answers_agree(a: str, b: str) -> bool:
    """Same answer, allowing for case, punctuation and a short answer stated inside a longer one.

    Number words count as numbers ("six" is 6) and a leading hedge or article is no part of the answer
    ("approximately 3.14159", "the Pacific Ocean"). A short numeric answer agrees with a longer text
    whose final number is the same value ("56" and "7*8 is 56"). A short answer agrees with a text that
    contains it as words ("H2O" and "Water's formula is H2O"), provided the text's final number, if the
    short answer states one, is one of the short answer's ("x = 2" is not "x = 2, x = -2"). A degree
    sign reads as "degrees", "metre" as "meter", and an aside in brackets is no part of a short answer.
    A number and a unit agree with a text whose final number is that value in the same unit, however the
    unit is written ("2.54 cm" and "One inch is 2.54 centimetres": pint reads both, `_same_quantity`).
    """
    ca, cb = _canonical(a), _canonical(b)
    if not ca or not cb:
        return False
    if ca == cb:
        return True
    if len(ca) == len(cb):  # neither is the shorter: either may be the one stated inside the other
        return _stated_in(ca, cb) or _stated_in(cb, ca)
    return _stated_in(*sorted((ca, cb), key=len))


def _stated_in(short: str, long: str) -> bool:
    """`answers_agree` for two canonical texts: `short` is the answer `long` states."""
    if len(short) > 40:
        return False
    short = replace_number_words(_HEDGE.sub("", _ASIDE.sub("", short)) or short)
    long = replace_number_words(long)
    short_numbers = _NUMBER.findall(short)
    if len(short_numbers) == 1 and _NUMBER.fullmatch(short.strip()):
        long_numbers = _NUMBER.findall(long)
        return bool(long_numbers) and _value(long_numbers[-1]) == _value(short_numbers[0])
    if re.search(rf"(?<![\w.]){re.escape(short)}(?!\w)", long) is None:
        return _same_quantity(short, long)
    long_numbers = _NUMBER.findall(long)
    return not short_numbers or _value(long_numbers[-1]) in {_value(n) for n in short_numbers}


def _quantity(text: str) -> tuple[Fraction, str] | None:
    """ "2.54 centimetres" -> (127/50, "centimeter"): one number and one unit with one plain reading, read by
    the units head's parser (routing/heads/units.py `parse_quantity`); None for anything else."""
    from routing.heads.units import parse_quantity

    parts = parse_quantity(text)
    if not parts or len(parts) != 1:
        return None
    units = {m.name for m in parts[0].meanings if m.kind == "plain"}
    return (parts[0].value, units.pop()) if len(units) == 1 else None


def _last_quantity(text: str) -> tuple[Fraction, str] | None:
    """A text's last number with the unit named right after it (the longest phrase that reads as one)."""
    from routing.heads.units import MAX_UNIT_WORDS

    numbers = list(_NUMBER.finditer(text))
    if not numbers:
        return None
    last = numbers[-1]
    words = text[last.end() :].split()[:MAX_UNIT_WORDS]
    for n in range(len(words), 0, -1):
        found = _quantity(f"{last.group()} {' '.join(words[:n]).rstrip('.,;:!?')}")
        if found is not None:
            return found
    return None


def _same_quantity(short: str, long: str) -> bool:
    """ "2.54 cm" and "One inch is 2.54 centimetres.": the short answer is a number and a unit, nothing else,
    and the other answer's last number has the same value and a unit pint converts to it at a factor of
    exactly 1 (one unit written two ways: "m/s" and "metres per second", "mph" and "miles per hour").
    Another unit of the same quantity ("1 km", "1000 m") is not the same answer: the question asked for
    one of them."""
    mine = _quantity(short)
    theirs = _last_quantity(long) if mine is not None else None
    if mine is None or theirs is None or mine[0] != theirs[0]:
        return False
    if mine[1] == theirs[1]:
        return True
    from routing.heads.units import registry

    ureg = registry()
    try:
        return (1 * ureg.Unit(theirs[1])).to(ureg.Unit(mine[1])).magnitude == 1
    except Exception:  # noqa: BLE001 - pint raises several kinds for units that do not convert
        return False


def length_penalty(answer: str) -> float:
    extra = max(0, len(answer) - LENGTH_FREE_CHARS)
    return min(LENGTH_PENALTY_MAX, extra * LENGTH_PENALTY_PER_CHAR)


def _priority(head: str) -> int:
    return HEAD_PRIORITY.index(head) if head in HEAD_PRIORITY else len(HEAD_PRIORITY)


def vote(ballots: list[Ballot], *, min_confidence: float = DEFAULT_MIN_CONFIDENCE) -> VoteResult:
    scores: dict[str, float] = {}
    reasons: dict[str, str] = {}
    eligible: list[Ballot] = []
    for ballot in ballots:
        if ballot.error:
            reasons[ballot.head] = f"error: {ballot.error}"
            continue
        if not ballot.answer.strip() or ballot.confidence <= 0:
            reasons[ballot.head] = "abstained"
            continue
        marker = stub_marker(ballot.answer)
        if marker:
            scores[ballot.head] = 0.0
            reasons[ballot.head] = f"stub marker {marker!r}"
            continue
        eligible.append(ballot)

    for ballot in eligible:
        agreeing = [
            other.head for other in eligible if other.head != ballot.head and answers_agree(ballot.answer, other.answer)
        ]
        bonus = min(AGREEMENT_BONUS_MAX, AGREEMENT_BONUS * len(agreeing))
        penalty = length_penalty(ballot.answer)
        scores[ballot.head] = round(min(1.0, ballot.confidence + bonus) - penalty, 6)
        reasons[ballot.head] = f"confidence {ballot.confidence:.2f} +agreement {bonus:.2f} -length {penalty:.3f}" + (
            f" (agrees with {', '.join(agreeing)})" if agreeing else ""
        )

    ranked = sorted(eligible, key=lambda b: (-scores[b.head], -b.confidence, _priority(b.head), b.head))
    winner = ranked[0] if ranked and scores[ranked[0].head] >= min_confidence else None
    return VoteResult(winner=winner, scores=scores, reasons=reasons)
