"""The false-hit guard: a pattern head answers a prompt only when the prompt's slots agree with its members'.

Sentence embeddings put "What is 7*8?" next to "What is 7*9?", "Is X safe?" next to "Is X not safe?" and
"the capital of France" next to "the capital of Spain". Similarity alone cannot tell them apart, so every
lookup also compares *slots*, pulled from the text with plain rules (no model):

- numbers: integers, decimals, fractions, ordinals ("2nd") and number words ("seven", "twenty one"), in
  order; "a"/"an" before a unit counts as 1 ("an inch" == "1 inch");
- operators: + - * / ^ % and their words (plus, times, product, divided, squared, root, percent...);
- negation: not, no, never, n't, without, non-... (present or not);
- tense: was/were/did/had (past) or will/shall (future), else none - "What was the capital" is
  another question than "What is the capital";
- units and their direction: the unit after a number or "a/an" is the source, the unit after
  "in/to/into/of/many/much" the target ("0 °C in °F" is not "0 °F in °C");
- entities: capitalized words not at the start of a sentence, acronyms (CPU, II), words with digits
  (H2O) and words in double quotes;
- content words: everything that is not a stop word or a meaning-neutral framing word ("tell",
  "define", "name"...), lower-cased, with plurals and possessives folded and a few spellings unified
  (a query's word may also be a WordNet synonym of a member's: mining/synonyms.py);
- order sensitivity: yes/no questions, prompts with than/before/after/from/versus and prompts ending on a
  preposition, where swapping two words changes the answer ("Is a whale bigger than an elephant?",
  "Who is Zeus the father of?").

A head keeps, from the members whose answers agreed (`compile_guard`), the hard keys seen (numbers,
operators, negation, tense, units), the entity sets seen and each member's content words in order;
`HeadGuard.check` says which queries it may answer.
Anything else abstains: a missed paraphrase costs one local council or cloud call, a false hit serves
a wrong answer.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, replace
from fractions import Fraction
from typing import Any

GUARD_VERSION = 1

STOPWORDS = frozenset(
    {
        "a", "an", "the", "of", "in", "on", "at", "to", "for", "by", "with", "about", "as", "into", "onto", "from",
        "and", "or", "but", "so", "if", "then", "what", "which", "who", "whom", "whose", "where", "when", "why",
        "how", "whether", "is", "are", "was", "were", "be", "been", "being", "am", "do", "does", "did", "doing",
        "done", "has", "have", "had", "having", "will", "would", "shall", "should", "can", "could", "may", "might",
        "must", "i", "me", "my", "mine", "myself", "you", "your", "yours", "we", "us", "our", "it", "its", "itself",
        "they", "them", "their", "this", "that", "these", "those", "there", "here", "some", "any", "all", "each",
        "every", "both", "either", "many", "much", "s", "t", "d", "ll", "re", "ve", "m", "o", "y"
    }
)  # fmt: skip
# Words that frame a question without changing it: allowed in a query even when no member used them.
GENERIC = frozenset(
    {
        "tell", "know", "name", "give", "explain", "define", "definition", "meaning", "mean", "means", "describe",
        "call", "called", "term", "word", "please", "exactly", "actually", "really", "technically", "basically",
        "just", "simply", "briefly", "quickly", "quick", "question", "answer", "say", "get", "got", "let", "want",
        "need", "help", "find", "out", "show", "wondering", "curious", "number", "equal", "calculate", "compute",
        "determine", "evaluate", "solve", "way", "command", "acronym", "abbreviation", "consider", "considered",
        "classified", "regarded", "approximately", "approximate", "roughly"
    }
)  # fmt: skip
NEGATIONS = frozenset(
    {
        "not", "no", "never", "none", "nobody", "nothing", "neither", "nor", "without", "cannot", "non", "nowhere",
        "noone"
    }
)  # fmt: skip
PAST = frozenset({"was", "were", "did", "had"})
PRESENT = frozenset({"is", "are", "am", "does", "do", "has", "have"})
FUTURE = frozenset({"will", "shall"})
YESNO_STARTS = PAST | PRESENT | FUTURE | frozenset({"can", "could", "would", "should", "may", "might", "must",
                                                    "whether"})  # fmt: skip
ORDER_MARKERS = frozenset({"than", "before", "after", "from", "versus", "vs"})
STRANDED_PREPOSITIONS = frozenset({"of", "to", "from", "for", "with", "by", "about", "on", "in", "at", "into"})
_END_PUNCT = frozenset({".", "?", "!", ";", ":"})
SOURCE_MARKERS = frozenset({"a", "an", "one"})
TARGET_MARKERS = frozenset({"in", "to", "into", "of", "many", "much"})
UNIT_SKIP = frozenset({"degree"})

OP_WORDS = {
    "plus": "add", "add": "add", "added": "add", "adding": "add", "sum": "add", "total": "add",
    "minus": "sub", "subtract": "sub", "subtracted": "sub", "difference": "sub",
    "times": "mul", "multiply": "mul", "multiplied": "mul", "product": "mul",
    "divide": "div", "divided": "div", "quotient": "div",
    "power": "pow", "exponent": "pow", "squared": "square", "square": "square", "cubed": "cube", "cube": "cube",
    "root": "root", "sqrt": "root", "percent": "percent", "percentage": "percent",
    "mod": "mod", "modulo": "mod", "remainder": "mod", "factorial": "factorial",
    "log": "log", "logarithm": "log", "ln": "log", "average": "avg",
}  # fmt: skip
OP_SYMBOLS = {"+": "add", "-": "sub", "*": "mul", "x": "mul", "/": "div", "^": "pow", "**": "pow", "%": "percent",
              "√": "root", "!": "factorial"}  # fmt: skip

NUMBER_WORDS = {
    "zero": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9,
    "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14, "fifteen": 15, "sixteen": 16,
    "seventeen": 17, "eighteen": 18, "nineteen": 19, "twenty": 20, "thirty": 30, "forty": 40, "fifty": 50,
    "sixty": 60, "seventy": 70, "eighty": 80, "ninety": 90, "hundred": 100, "thousand": 1000,
    "million": 1_000_000, "billion": 1_000_000_000, "dozen": 12,
}  # fmt: skip

# Spelling and abbreviation variants folded to one form (after lower-casing, before plural folding).
ALIASES = {
    "colour": "color", "colours": "colors", "centre": "center", "metre": "meter", "metres": "meters",
    "litre": "liter", "litres": "liters", "kilometre": "kilometer", "kilometres": "kilometers",
    "centimetre": "centimeter", "centimetres": "centimeters", "millimetre": "millimeter",
    "millimetres": "millimeters", "millilitre": "milliliter", "millilitres": "milliliters", "grey": "gray",
    "cm": "centimeter", "mm": "millimeter", "km": "kilometer", "kg": "kilogram", "kgs": "kilogram",
    "lb": "pound", "lbs": "pound", "oz": "ounce", "ft": "foot", "feet": "foot", "mi": "mile", "hr": "hour",
    "hrs": "hour", "min": "minute", "mins": "minute", "sec": "second", "secs": "second", "ml": "milliliter",
    "gal": "gallon", "kids": "child", "kid": "child", "children": "child", "people": "person",
    "men": "man", "women": "woman", "teeth": "tooth", "mice": "mouse", "geese": "goose",
    "biggest": "largest", "bigger": "larger", "big": "large",
}  # fmt: skip
UNITS = frozenset(
    {
        "centimeter", "millimeter", "meter", "kilometer", "inch", "foot", "yard", "mile", "gram", "kilogram", "pound",
        "ounce", "ton", "tonne", "liter", "milliliter", "gallon", "pint", "quart", "cup", "second", "minute", "hour",
        "day", "week", "month", "year", "decade", "century", "celsius", "fahrenheit", "kelvin", "bit", "byte",
        "kilobyte", "megabyte", "gigabyte", "terabyte", "acre", "hectare"
    }
)  # fmt: skip
# -ing words whose root is not a verb: keep them whole.
ING_KEEP = frozenset(
    {
        "string", "evening", "morning", "ceiling", "during", "nothing", "something", "anything", "everything",
        "spring", "bring", "thing", "king", "ring", "wing", "swing", "sting", "sling", "ping"
    }
)  # fmt: skip

_TOKEN = re.compile(
    r"""
    (?P<ordinal>\d+(?:st|nd|rd|th)\b)
  | (?P<alnum>[^\W\d_]+\d[^\W_]*)                                    # H2O, mp3
  | (?P<number>(?<![^\s(])-\d+(?:\.\d+)?                              # -5 (a sign, not "7-3")
             | (?<![\w.])\d{1,3}(?:,\d{3})+(?:\.\d+)?(?![\d,])            # 1,000 / 299,792,458
             | \d+(?:\.\d+)?(?:/\d+)?)                                  # 7 / 2.54 / 3/4
  | (?P<word>[^\W\d_]+(?:'[^\W\d_]+)*)
  | (?P<fact>(?<=\d)!)
  | (?P<stop>[.?;:!](?=\s))
  | (?P<symbol>\*\*|[+\-*/^%√])
    """,
    re.VERBOSE,
)
_QUOTED = re.compile(r'"([^"]{1,80})"')
_DEGREE_UNIT = re.compile(r"[°º]\s*([CcFfKk])\b")


@dataclass(frozen=True)
class Slots:
    """What a prompt says that its embedding may blur."""

    numbers: tuple[str, ...] = ()
    ops: frozenset[str] = frozenset()
    negated: bool = False
    tense: str = ""
    units: tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]] = ((), (), ())
    entities: frozenset[str] = frozenset()
    words: tuple[str, ...] = ()  # content words, first occurrence order
    ordered: bool = False
    quoted: frozenset[str] = frozenset()  # words in double quotes: asked as written

    def hard_key(self) -> tuple[Any, ...]:
        return (self.numbers, tuple(sorted(self.ops)), self.negated, self.tense, self.units)


@dataclass(frozen=True)
class GuardResult:
    ok: bool
    reason: str = ""


# --------------------------------------------------------------------------- extraction


_ES_PLURALS = ("sses", "uses", "xes", "ches", "shes", "zes")


def fold_word(word: str) -> str:
    """Lower-case, drop possessives, unify spellings, fold plurals and -ing/-ed endings (same rules both sides)."""
    w = word.casefold().replace("\u2019", "'")
    if w.endswith("'s"):
        w = w[:-2]
    w = w.replace("'", "")
    w = ALIASES.get(w, w)
    if len(w) > 4 and w.endswith("ies"):
        w = w[:-3] + "y"
    elif (len(w) > 5 and w.endswith("oes")) or (len(w) > 4 and w.endswith(_ES_PLURALS)):
        w = w[:-2]
    elif len(w) > 3 and w.endswith("s") and not w.endswith(("ss", "us", "is")):
        w = w[:-1]
    if len(w) >= 6 and w.endswith("ing") and w not in ING_KEEP:
        w = w[:-3]
        if len(w) > 3 and w[-1] == w[-2] and w[-1] not in "aeiouls":
            w = w[:-1]
    elif len(w) >= 5 and w.endswith("ed"):
        w = w[:-2]
        if len(w) > 3 and w[-1] == w[-2] and w[-1] not in "aeiouls":
            w = w[:-1]
    return ALIASES.get(w, w)


def _canonical_number(text: str) -> str:
    text = text.replace(",", "")
    if "/" in text:
        num, den = text.split("/")
        return f"{int(num)}/{int(den)}"  # 6/8 stays 6/8: "simplify 6/8" is not "simplify 3/4"
    value = Fraction(text)
    return str(value.numerator) if value.denominator == 1 else format(float(value), "g")


@dataclass
class _Tok:
    kind: str  # word | number | op | stop
    text: str  # original text
    norm: str = ""
    initial: bool = False


def _tokens(prompt: str) -> list[_Tok]:
    text = unicodedata.normalize("NFKC", prompt.replace("º", "°"))
    text = text.replace("\u2019", "'").replace("\u2018", "'").replace("\u201c", '"').replace("\u201d", '"')
    text = text.replace("\u00d7", "*").replace("\u00f7", "/").replace("\u2212", "-").replace("°", " degree ")
    text = re.sub(r"(?<=\d)\s*[xX]\s*(?=\d)", " * ", text)
    out: list[_Tok] = []
    initial = True
    for m in _TOKEN.finditer(text + " "):
        kind = m.lastgroup or ""
        raw = m.group(0)
        if kind == "stop":
            initial = True
            out.append(_Tok("stop", raw))
            continue
        if kind == "ordinal":
            out.append(_Tok("number", raw, _canonical_number(re.sub(r"\D", "", raw))))
        elif kind == "number":
            out.append(_Tok("number", raw, _canonical_number(raw)))
        elif kind == "fact":
            out.append(_Tok("op", "!"))
        elif kind == "symbol":
            out.append(_Tok("op", raw))
        else:
            prev = out[-1] if out else None
            if (
                raw in {"C", "F", "K", "c", "f"}
                and prev is not None
                and (prev.kind == "number" or (prev.kind == "word" and prev.text.casefold() in {"degree", "degrees"}))
            ):
                raw = {"c": "celsius", "f": "fahrenheit", "k": "kelvin"}[raw.lower()]
            out.append(_Tok("word", raw, initial=initial))
        initial = False
    return out


def _number_word_runs(tokens: list[_Tok]) -> list[_Tok]:
    """Number words become numbers: "twenty one" -> 21, "one hundred and five" -> 105, "seven" -> 7."""
    out: list[_Tok] = []
    i = 0
    while i < len(tokens):
        tok = tokens[i]
        if tok.kind == "word" and tok.text.casefold() in NUMBER_WORDS:
            total, current, j = 0, 0, i
            while j < len(tokens):
                t = tokens[j]
                low = t.text.casefold()
                if t.kind == "word" and low in NUMBER_WORDS:
                    value = NUMBER_WORDS[low]
                    if value == 100:
                        current = max(current, 1) * 100
                    elif value >= 1000:
                        total += max(current, 1) * value
                        current = 0
                    else:
                        current += value
                    j += 1
                elif (t.kind == "word" and low == "and" and j + 1 < len(tokens)
                      and tokens[j + 1].text.casefold() in NUMBER_WORDS and current >= 100):  # fmt: skip
                    j += 1
                else:
                    break
            out.append(_Tok("number", tok.text, str(total + current)))
            i = j
            continue
        out.append(tok)
        i += 1
    return out


_NT_BASES = {"is", "are", "was", "were", "do", "does", "did", "has", "have", "had", "could", "would", "should", "ca",
             "wo", "must", "need", "ai", "shouldn", "might"}  # fmt: skip


def _split_negation(word: str) -> tuple[str, bool]:
    """`isn't` -> (`is`, True); `dont` -> (`do`, True); `want` -> (`want`, False)."""
    low = word.casefold()
    for suffix in ("n't", "nt"):
        if low.endswith(suffix):
            base = low[: -len(suffix)]
            if suffix == "nt" and base not in _NT_BASES:
                return word, False
            return {"ca": "can", "wo": "will", "ai": "is"}.get(base, base), True
    return word, False


def extract_slots(prompt: str) -> Slots:
    """The slots of one prompt (pure function, ~50 µs)."""
    quoted = {fold_word(w) for q in _QUOTED.findall(prompt) for w in re.findall(r"[^\W_]+", q)}
    tokens = _number_word_runs(_tokens(prompt))

    numbers: list[str] = []
    ops: set[str] = set()
    negated = False
    tenses: set[str] = set()
    words: list[str] = []
    entities: set[str] = set(quoted)
    ordered = False
    normalized: list[tuple[str, str]] = []  # (kind, norm) for the unit pass

    first_word: str | None = None
    # Operator words are operators next to numbers ("the sum of 3 and 4"), plain words otherwise ("the sum of
    # the angles"): without numbers they are compared as content words.
    has_numbers = any(tok.kind == "number" for tok in tokens)
    for i, tok in enumerate(tokens):
        prev = tokens[i - 1] if i else None
        nxt = tokens[i + 1] if i + 1 < len(tokens) else None
        if tok.kind == "number":
            numbers.append(tok.norm)
            normalized.append(("number", tok.norm))
            if nxt is not None and nxt.kind == "op" and nxt.text == "!":
                ops.add("factorial")
            continue
        if tok.kind == "op":
            between_numbers = prev is not None and prev.kind == "number" and nxt is not None and nxt.kind == "number"
            if tok.text in {"-", "/", "!"} and not between_numbers:
                continue
            ops.add(OP_SYMBOLS[tok.text])
            normalized.append(("op", tok.text))
            continue
        if tok.kind == "stop":
            normalized.append(("stop", tok.text))
            continue
        raw, neg = _split_negation(tok.text)
        low = raw.casefold()
        if first_word is None:
            first_word = low
        if neg or low in NEGATIONS:
            negated = True
            if low in NEGATIONS:
                normalized.append(("neg", low))
                continue
        if low in PAST:
            tenses.add("past")
        elif low in FUTURE:
            tenses.add("future")
        if low in ORDER_MARKERS:
            ordered = True
        if low == "x" and prev is not None and prev.kind == "number" and nxt is not None and nxt.kind == "number":
            ops.add("mul")
            continue
        if low in {"a", "an"} and nxt is not None and nxt.kind == "word" and fold_word(nxt.text) in UNITS:
            numbers.append("1")
            normalized.append(("number", "1"))
            continue
        if low in OP_WORDS and has_numbers:
            ops.add(OP_WORDS[low])
            normalized.append(("op", low))
            continue
        if low in STOPWORDS or low in GENERIC:
            normalized.append(("stop", low))
            continue
        norm = fold_word(raw)
        if norm in STOPWORDS or norm in GENERIC or not norm:
            normalized.append(("stop", norm))
            continue
        normalized.append(("word", norm))
        if norm not in words:
            words.append(norm)
        capitalized = raw[:1].isupper() and not tok.initial
        if capitalized or sum(ch.isupper() for ch in raw) >= 2 or any(ch.isdigit() for ch in raw):
            entities.add(norm)

    if "root" in ops:
        ops.discard("square")
    for word in quoted:
        if word not in words and word not in STOPWORDS:
            words.append(word)
    tense = "+".join(sorted(tenses))
    last_word = next((n for k, n in reversed(normalized) if k in {"word", "stop"} and n not in _END_PUNCT), "")
    ordered = ordered or last_word in STRANDED_PREPOSITIONS  # "Who is Zeus the father of?"
    if first_word is not None:
        stripped = _strip_polite(prompt)
        lead = re.match(r"[^\W\d_]+(?:'[^\W\d_]+)?", stripped)
        lead_word = _split_negation(lead.group(0))[0].casefold() if lead else ""
        ordered = ordered or lead_word in YESNO_STARTS
    return Slots(
        numbers=tuple(numbers),
        ops=frozenset(ops),
        negated=negated,
        tense=tense,
        units=_unit_roles(normalized),
        entities=frozenset(entities),
        words=tuple(words),
        ordered=ordered,
        quoted=frozenset(quoted),
    )


_POLITE = re.compile(
    r"^\s*(?:(?:hey|hi|hello|ok|okay|so|quick question|please)[,:!]?\s+)*"
    r"(?:(?:can|could|would|will)\s+you\s+(?:please\s+)?(?:tell|show|explain|say|let)\s+(?:me|us)?\s*(?:know\s+)?"
    r"|do\s+you\s+know\s+|i\s+(?:want|would\s+like|need)\s+to\s+know\s+|tell\s+me\s+|i\s+wonder\s+)?",
    re.IGNORECASE,
)


def _strip_polite(prompt: str) -> str:
    return _POLITE.sub("", prompt, count=1)


def _unit_roles(normalized: list[tuple[str, str]]) -> tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]:
    """(source units, target units, other units): "how many cm in an inch" -> ((inch,), (centimeter,), ())."""
    source: set[str] = set()
    target: set[str] = set()
    other: set[str] = set()
    for i, (kind, norm) in enumerate(normalized):
        if kind != "word" or norm not in UNITS:
            continue
        j = i - 1
        while j >= 0 and normalized[j][1] in UNIT_SKIP | {"°"}:
            j -= 1
        prev_kind, prev = normalized[j] if j >= 0 else ("", "")
        if prev_kind == "number" or prev in SOURCE_MARKERS:
            source.add(norm)
        elif prev in TARGET_MARKERS:
            target.add(norm)
        else:
            other.add(norm)
    return tuple(sorted(source)), tuple(sorted(target)), tuple(sorted(other))


# --------------------------------------------------------------------------- heads

MAX_SEQUENCES = 256  # distinct member phrasings a head keeps (the rest add nothing the guard needs)


def _order_key(words: Iterable[str], key_words: frozenset[str]) -> tuple[str, ...]:
    return tuple(w for w in words if w in key_words)


def _member_entities(slots: Slots, entity_vocab: frozenset[str]) -> frozenset[str]:
    """Entities by form, plus the head's known entities written in lower case or at a sentence start."""
    return frozenset(slots.entities | (set(slots.words) & entity_vocab))


def compile_guard(members: Iterable[Slots]) -> dict[str, Any]:
    """What a head keeps of its (agreeing) members' slots, as plain JSON."""
    members = list(members)
    if not members:
        raise ValueError("a guard needs at least one member")
    entity_vocab = frozenset().union(*(m.entities for m in members))
    return _as_json(
        {
            "v": GUARD_VERSION,
            "keys": sorted({_json_key(m.hard_key()) for m in members}),
            "entity_sets": sorted({tuple(sorted(_member_entities(m, entity_vocab))) for m in members}),
            "entity_vocab": sorted(entity_vocab),
            "sequences": sorted({m.words for m in members})[:MAX_SEQUENCES],
            "ordered": any(m.ordered for m in members),
        }
    )


def merge_guards(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """A head updated by a later run keeps what it learned before: the union of both."""
    if not old or old.get("v") != GUARD_VERSION:
        return new
    return _as_json(
        {
            "v": GUARD_VERSION,
            "keys": sorted({_freeze(k) for k in old["keys"]} | {_freeze(k) for k in new["keys"]}),
            "entity_sets": sorted({tuple(e) for e in old["entity_sets"]} | {tuple(e) for e in new["entity_sets"]}),
            "entity_vocab": sorted(set(old["entity_vocab"]) | set(new["entity_vocab"])),
            "sequences": sorted({tuple(q) for q in old["sequences"]} | {tuple(q) for q in new["sequences"]})[
                :MAX_SEQUENCES
            ],
            "ordered": bool(old.get("ordered")) or bool(new.get("ordered")),
        }
    )


def _as_json(data: dict[str, Any]) -> dict[str, Any]:
    """Exactly what the JSONField will give back (tuples as lists), so stored and fresh guards compare equal."""
    return json.loads(json.dumps(data))


def _json_key(key: tuple[Any, ...]) -> tuple[Any, ...]:
    numbers, ops, negated, tense, units = key
    return (tuple(numbers), tuple(ops), bool(negated), tense, tuple(tuple(u) for u in units))


def _freeze(value: Any) -> Any:
    """JSON lists back to the tuples `_json_key` makes."""
    return tuple(_freeze(v) for v in value) if isinstance(value, list | tuple) else value


class HeadGuard:
    """A compiled guard: `check(slots)` says whether a head may answer a prompt with these slots.

    A query passes when (1) its hard key (numbers, operators, negation, tense, units) was seen among
    the members, (2) it uses no content word that no member used, unless the word is a synonym of a
    member's word the query lacks (mining/synonyms.py), which then stands in its place, (3) it
    contains every content word of at least one member (so "how many planets" never passes for "the
    largest planet"), or it recombines the members' phrasings: every word all members share and at
    least as many words as the shortest member ("water boils at how many degrees Celsius" after "the
    boiling point of water in Celsius" and "the temperature water boils at in degrees Celsius"; never
    a shorter query: "who is Hamlet" after "who wrote Hamlet" and "who is the author of Hamlet"),
    (4) its entity set was seen, and (5) for yes/no and comparative questions (the query's or a
    member's), its order of key words was seen.
    """

    __slots__ = ("entity_sets", "entity_vocab", "forms", "key_words", "keys", "ordered", "orders", "required",
                 "shortest", "vocab")  # fmt: skip

    def __init__(self, data: dict[str, Any]) -> None:
        if data.get("v") != GUARD_VERSION:
            raise ValueError(f"guard version {data.get('v')!r} is not {GUARD_VERSION}")
        sequences = [tuple(q) for q in data["sequences"]]
        if not sequences:
            raise ValueError("a guard needs at least one member phrasing")
        self.keys = frozenset(_freeze(k) for k in data["keys"])
        self.entity_sets = frozenset(frozenset(e) for e in data["entity_sets"])
        self.entity_vocab = frozenset(data["entity_vocab"])
        self.forms = tuple({frozenset(q) for q in sequences})
        self.vocab = frozenset().union(*self.forms)
        self.required = frozenset.intersection(*self.forms)
        self.shortest = min(len(form) for form in self.forms)
        self.key_words = self.required | self.entity_vocab
        self.orders = frozenset(_order_key(q, self.key_words) for q in sequences)
        self.ordered = bool(data.get("ordered"))  # some member's word order mattered: check every query's

    def check(self, slots: Slots) -> GuardResult:
        key = _json_key(slots.hard_key())
        if key not in self.keys:
            return GuardResult(False, _key_difference(key, self.keys))
        unknown = [w for w in slots.words if w not in self.vocab]
        if unknown:
            slots = self._with_synonyms(slots, unknown)
            unknown = [w for w in slots.words if w not in self.vocab]
            if unknown:
                return GuardResult(False, f"words not seen in this pattern: {', '.join(unknown)}")
        words = frozenset(slots.words)
        if not any(form <= words for form in self.forms) and not self._recombines(words):
            missing = min((form - words for form in self.forms), key=len)
            return GuardResult(False, f"no member's words all present (missing: {', '.join(sorted(missing))})")
        entities = _member_entities(slots, self.entity_vocab)
        if entities not in self.entity_sets:
            return GuardResult(False, f"entities {sorted(entities)} not seen in this pattern")
        if (slots.ordered or self.ordered) and _order_key(slots.words, self.key_words) not in self.orders:
            return GuardResult(False, "word order differs (order matters in this question)")
        return GuardResult(True)

    def _with_synonyms(self, slots: Slots, unknown: list[str]) -> Slots:
        """The query with each word no member used replaced by a member's word it is a synonym of
        (mining/synonyms.py: "on Earth" for "in the world"), when the query lacks that word; the other
        checks then judge the query as if the members' word had been used. Units and quoted words
        are never replaced: their exact form is what the query asks."""
        from mining.synonyms import synonymous

        words = list(slots.words)
        entities = set(slots.entities)
        for word in unknown:
            if word in UNITS or word in slots.quoted:
                continue
            lacking = sorted(self.vocab - set(words) - UNITS)
            match = next((member for member in lacking if synonymous(word, member)), None)
            if match is None:
                continue
            words[words.index(word)] = match
            entities.discard(word)
        if words == list(slots.words):
            return slots
        return replace(slots, words=tuple(words), entities=frozenset(entities))

    def _recombines(self, words: frozenset[str]) -> bool:
        """Every word the members share, and no fewer words than the shortest member: the query swaps one
        member's word for another member's (the vocabulary check has passed), it drops none. Chosen on the
        tuning groups of mining/data/paraphrases.yaml (bench/spiral.py): one more unseen paraphrase
        answered, no near miss in either part."""
        return self.required <= words and len(words) >= self.shortest


def _key_difference(key: tuple[Any, ...], seen: frozenset[tuple[Any, ...]]) -> str:
    names = ("numbers", "operators", "negation", "tense", "units")
    if not seen:
        return "no member keys"
    closest = min(seen, key=lambda k: sum(a != b for a, b in zip(k, key, strict=True)))
    differ = [name for name, a, b in zip(names, closest, key, strict=True) if a != b]
    return f"{' and '.join(differ)} differ"


def consistent(query: str, *members: str) -> GuardResult:
    """Would a head mined from `members` (all answered alike) answer `query`? (Tests and debugging.)"""
    return HeadGuard(compile_guard([extract_slots(m) for m in members])).check(extract_slots(query))
