"""The unknowable head: declines, locally and for free, a question no model could answer.

Some questions have no answer a language model can know, however large: the outcome of an event that
has not happened, the asker's own private data, the content of an attachment the request does not
carry, an exact count at this very moment. A paid model declines them too, so escalating them only
buys the same refusal. This head recognises such shapes, by their structure rather than by
topic, and answers "I cannot answer that: <why>." at VERIFIED confidence:

* future  -- a question about a contest, an election, a price, a rate, the weather, a result... at a
  time still to come: a year after the current one ("in 2040", "the 2087 World Cup"), "tomorrow",
  "next year's". The current year is never "future" (its events may be over).
* private -- a question asking for the asker's own private record: "What is my bank balance?",
  "What is my neighbour's phone number?". A how-to about one ("How do I reset my password?") is
  not one.
* absent  -- a short request about an attachment it does not carry: "Summarize the attached
  document.", "What is in the photo I just sent you?".
* now     -- an exact figure at this instant: "exactly ... right now", "at this very second".
* mind    -- the asker's own thoughts or fate: "What number am I thinking of?", "When will I die?".
* chance  -- the next outcome of a fair game of chance: "What will the next coin toss be?".

Anything else abstains, and so does a question that also states other numbers (a word problem about
tomorrow's price is arithmetic), a request for code (the code head and its sandbox judge those), or
a prompt long enough to carry material of its own. The rules were shaped on the tuning part of the
titanic suite's must-abstain items and checked against every answerable prompt the project holds
(tests/routing/test_unknowable.py); bench/README.md gives the figures on both parts.
"""

from __future__ import annotations

import datetime as dt
import re
import time

from routing.heads.base import Ballot, Head, HeadContext
from routing.heads.numwords import SCALES as NUMBER_SCALES
from routing.heads.numwords import TENS as NUMBER_TENS
from routing.heads.numwords import UNITS as NUMBER_UNITS

__all__ = ["UnknowableHead", "unknowable"]

CONFIDENCE = 0.9  # routing.cascade.VERIFIED: the rule is exact, and the paid chain would only decline too
MAX_PROMPT_CHARS = 200

_QUESTION = re.compile(
    r"\?\s*$|^(?:please\s+)?(?:tell|give|show|say|read|summari[sz]e|describe|translate|list|name)\b", re.IGNORECASE
)
_CODE = re.compile(r"\b(?:write|implement|code|function|def|class|script|program|regex|sql|python)\b", re.IGNORECASE)

# What only an event still to come decides, or a measurement not yet taken.
_OUTCOME = re.compile(
    r"\b(?:win|wins|won|winner|winners|winning|champions?|championship|elected|election|president|prime minister|"
    r"mayor|prices?|rates?|stocks?|shares?|closing|temperature|weather|score|scores|results?|lottery|"
    r"wake|wakes)\b",
    re.IGNORECASE,
)
# What is decided ahead of the event: who hosts it, where and when it is held, what was announced.
_SETTLED = re.compile(
    r"\b(?:host|hosts|hosting|hosted|bid|bids|awarded|venue|held|scheduled|planned|announced|chosen|selected|"
    r"nominated|nominee|candidates?|running)\b",
    re.IGNORECASE,
)
_RELATIVE_FUTURE = re.compile(
    r"\b(?:tomorrow(?:'s)?|tonight(?:'s)?|next (?:week|month|year|season|decade|century)(?:'s)?|"
    r"(?:a|any|some) future (?:date|day|time|year|month)|in the future)\b",
    re.IGNORECASE,
)
_YEAR = re.compile(r"(?<![\d.,:/$£€-])(1\d{3}|2\d{3})(?![\d.,:/%-])")
_MONTHS = (
    r"(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|sep(?:t(?:ember)?)?|"
    r"oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)"
)
_DAY_OF_MONTH = re.compile(
    rf"\b\d{{1,2}}(?:st|nd|rd|th)?(?:\s+of)?\s+{_MONTHS}\b|\b{_MONTHS}\s+\d{{1,2}}(?:st|nd|rd|th)?\b", re.IGNORECASE
)
_NUMBER_WORDS = (*NUMBER_UNITS, *NUMBER_TENS, "hundred", *NUMBER_SCALES, "half", "twice", "double", "triple")
_OTHER_NUMBER = re.compile(rf"\d|\b(?:{'|'.join(_NUMBER_WORDS)})\b", re.IGNORECASE)

_PRIVATE_NOUN = (
    r"(?:phone number|number|bank account(?: balance)?|account(?: balance| number)?|balance|bank details|"
    r"password|pin(?: code)?|e-?mails?|inbox|messages|texts|text messages|home address|address|salary|"
    r"credit card(?: number)?|"
    r"calendar|schedule|contacts|location|files|medical records?|blood type|order status|login)"
)
_PRIVATE = re.compile(
    r"^(?:what(?:'s| is| are| was| were)|tell me|give me|show me|read(?: me)?|how much (?:money )?(?:is|do i have) in)"
    r"\s+(?:the\s+(?:\w+\s+){1,2}(?:of|in|on)\s+)?(?:my|our)\s+(?:\w+'s\s+)?(?:\w+\s+)?"
    rf"{_PRIVATE_NOUN}(?:\s+(?:right now|now|today|currently))?\s*[?.!]*$",
    re.IGNORECASE,
)

_MEDIA = (
    r"(?:photos?|pictures?|images?|screenshot|files?|document|doc|pdf|attachment|video|recording|audio|e-?mail|"
    r"message|letter|spreadsheet|report|essay|text)"
)
_ABSENT = re.compile(
    rf"\b(?:the|this|that|these|my)\s+(?:attached|enclosed|uploaded)\s+{_MEDIA}\b|\bthe attachment\b|"
    rf"\b{_MEDIA}\s+(?:that\s+)?I(?:'ve| have)?\s+(?:just\s+)?"
    r"(?:sent|attached|uploaded|shared|forwarded|pasted|linked)\b|"
    r"\b(?:in|on)\s+this\s+(?:photo|picture|image|screenshot|video|recording)\b",
    re.IGNORECASE,
)
# A function asked to return what no code can compute: a live figure with no data source named, a
# figure still to come, or whether any program halts (the halting problem).
_LIVE = re.compile(
    r"\b(?:live|real-time|realtime|right now|at this (?:very )?(?:moment|second|instant))\b", re.IGNORECASE
)
_DATA_SOURCE = re.compile(
    r"\b(?:api|url|http|https|endpoint|requests|urllib|feed|database|csv|json|dict|list|file)\b", re.IGNORECASE
)
_HALTING = re.compile(
    r"\b(?:halts?|halting|terminates?)\b.*\b(?:every|any|all|arbitrary) (?:input|program)s?\b|"
    r"\b(?:any|every|arbitrary|given) (?:python )?program\b.*\b(?:halts?|terminates?)\b",
    re.IGNORECASE,
)
# The asker's own mind or fate, and the next outcome of a fair game of chance.
_MIND = re.compile(
    r"^(?:what|which)(?: (?:number|word|colou?r|card|animal|letter))? am i thinking(?: of| about)?(?: right now| now)?"
    r"\s*\?$|^when (?:will|am) i (?:going to )?die\s*\?$|^what will i dream(?: about)?(?: tonight)?\s*\?$",
    re.IGNORECASE,
)
_CHANCE = re.compile(
    r"\b(?:next|coming) (?:coin (?:toss|flip)|(?:die|dice) roll|roll of the (?:die|dice)|"
    r"spin of the roulette(?: wheel)?|roulette spin|card (?:drawn|dealt))\b|"
    r"\bwhat will the (?:die|dice|coin) (?:show|land on|come up)\b",
    re.IGNORECASE,
)
_ODDS = re.compile(r"\b(?:probability|odds|chances?|likely|likelihood|expected|expectation|fair)\b", re.IGNORECASE)
_CARRIES_MATERIAL = re.compile(r"[:\"\u201c]\s*\S")  # "Translate the text I pasted: bonjour"
_NOW = re.compile(
    r"\b(?:right now|at this (?:very )?(?:moment|second|instant|minute)|this very (?:second|moment))\b", re.IGNORECASE
)
_EXACT = re.compile(r"\bexact(?:ly)?\b", re.IGNORECASE)

REASONS = {
    "future": "it asks about {when}, which is still to come, and no one can know that outcome in advance",
    "private": "I have no access to your personal records or accounts",
    "absent": "nothing is attached to this request, so there is nothing for me to read; paste its text and ask again",
    "now": "no one knows that exact figure at this very moment; only estimates exist",
    "mind": "I cannot see into your thoughts or your future",
    "chance": "the next outcome of a fair game of chance cannot be known before it happens",
    "live": "no function can return that live figure without a data feed, and none is given",
    "undecidable": (
        "whether an arbitrary program halts is undecidable (the halting problem), so no such function exists"
    ),
}


def _future_marker(text: str, year: int) -> str | None:
    """The first mention of a time still to come ("2040", "tomorrow", "next year's"), or None."""
    later = [m.group(1) for m in _YEAR.finditer(text) if int(m.group(1)) > year]
    if later:
        return later[0]
    relative = _RELATIVE_FUTURE.search(text)
    return relative.group(0).lower().removesuffix("'s") if relative else None


def _states_other_numbers(text: str) -> bool:
    """True when the text has a number besides its years and days of the month (a word problem)."""
    rest = _DAY_OF_MONTH.sub(" ", _YEAR.sub(" ", text))
    return bool(_OTHER_NUMBER.search(rest))


def unknowable(prompt: str, *, today: dt.date | None = None) -> tuple[str, str] | None:
    """(kind, reason) when `prompt` asks what no model can know; None otherwise (the head abstains)."""
    text = " ".join(prompt.split())
    if not text or len(text) > MAX_PROMPT_CHARS or "\n" in prompt.strip():
        return None
    year = (today or dt.date.today()).year
    if _CODE.search(text):
        return _unknowable_function(text, year)
    if _ABSENT.search(text) and not _CARRIES_MATERIAL.search(text):
        return "absent", REASONS["absent"]
    if not _QUESTION.search(text) or _states_other_numbers(text):
        return None
    if _PRIVATE.match(text):
        return "private", REASONS["private"]
    if _MIND.match(text):
        return "mind", REASONS["mind"]
    if _CHANCE.search(text) and not _ODDS.search(text):
        return "chance", REASONS["chance"]
    if _OUTCOME.search(text) and not _SETTLED.search(text) and (when := _future_marker(text, year)):
        return "future", REASONS["future"].format(when=when)
    if _EXACT.search(text) and _NOW.search(text):
        return "now", REASONS["now"]
    return None


def _unknowable_function(text: str, year: int) -> tuple[str, str] | None:
    """(kind, reason) when a request for code asks for a function no code can write; None otherwise."""
    if _HALTING.search(text):
        return "undecidable", REASONS["undecidable"]
    if not _OUTCOME.search(text) or _DATA_SOURCE.search(text):
        return None
    if not _SETTLED.search(text) and (when := _future_marker(text, year)):
        return "future", REASONS["future"].format(when=when)
    if _LIVE.search(text):
        return "live", REASONS["live"]
    return None


class UnknowableHead(Head):
    """Declines what no model can know (see the module docstring); abstains on everything else."""

    name = "unknowable"
    skill_type = "unknowable"
    timeout_s = 0.5

    def applies(self, prompt: str) -> bool:
        return len(prompt) <= MAX_PROMPT_CHARS * 2

    def answer(self, prompt: str, ctx: HeadContext) -> Ballot:
        started = time.perf_counter()
        found = unknowable(prompt)
        if found is None:
            return self.abstain(started, "a question that can be known")
        kind, reason = found
        return self.ballot(f"I cannot answer that: {reason}.", CONFIDENCE, started, kind=kind)
