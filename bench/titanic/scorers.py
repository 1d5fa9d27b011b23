"""Scorers: how an answer is judged against an item's reference. Each returns a Verdict in [0, 1].

| scorer | passes when | args |
| --- | --- | --- |
| exact | normalized answer equals the reference or an alternative | alternatives: [str] |
| numeric | the final number of the answer (or any, with mode "any") is within tolerance | tol (abs), rel, mode |
| regex | the pattern is found in the answer | pattern, flags ("i", "s", "m") |
| contains | every `all` phrase and at least one `any` phrase appear as words (case/accent-insensitive) | all, any |
| code_tests | the answer's code plus the hidden tests exit 0 in routing.sandbox.run_python | tests, wall_s |
| must_be_unsure | the gateway said UNSURE (route "unsure") or the answer refuses / says it cannot know | also: regex |
| solutions | the set of `var = value` values (or of all numbers) equals the expected set | values, var, tol |
| expr | the answer's expression is sympy-equivalent to the reference, in the asked form | var, form, constant |

Every scorer but must_be_unsure gives 0 to "UNSURE": an honest abstention on an answerable item
counts as success (the request worked) but not as accuracy.

Numbers are read as integers, decimals (1,234.5 thousands separators allowed) or fractions p/q.
Expressions are parsed only after a whitelist check (digits, + - * / ^ ( ) . and a few names),
never from arbitrary text, so nothing the model wrote is evaluated as code.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from fractions import Fraction
from tokenize import TokenError
from typing import Any

UNSURE = "UNSURE"


@dataclass(frozen=True)
class Verdict:
    score: float
    reason: str

    @property
    def passed(self) -> bool:
        return self.score >= 1.0


def _ok(reason: str = "ok") -> Verdict:
    return Verdict(1.0, reason)


def _fail(reason: str) -> Verdict:
    return Verdict(0.0, reason)


def _fold(text: str) -> str:
    """Case-, accent- and whitespace-insensitive form."""
    text = unicodedata.normalize("NFKD", text)
    text = "".join(ch for ch in text if not unicodedata.combining(ch)).casefold()
    return " ".join(text.split())


def _canonical(text: str) -> str:
    return re.sub(r"^[\s\"'`*]+|[\s.!?,;:\"'`*]+$", "", _fold(text))


# --- numbers ---------------------------------------------------------------------------------------

_NUMBER = re.compile(r"(?<![\w.])[-\u2212]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:/\d+(?:\.\d+)?)?(?![\d])")


def _to_number(token: str) -> float | None:
    token = token.replace("\u2212", "-").replace(",", "")
    try:
        if "/" in token:
            num, den = token.split("/")
            return float(Fraction(num) / Fraction(den))
        return float(token)
    except (ValueError, ZeroDivisionError):
        return None


_WORDS = {w: str(i) for i, w in enumerate(["zero", "one", "two", "three", "four", "five", "six", "seven", "eight",
                                           "nine", "ten", "eleven", "twelve", "thirteen", "fourteen", "fifteen",
                                           "sixteen", "seventeen", "eighteen", "nineteen", "twenty"])}  # fmt: skip
_WORDS.update(
    {
        "thirty": "30",
        "forty": "40",
        "fifty": "50",
        "sixty": "60",
        "seventy": "70",
        "eighty": "80",
        "ninety": "90",
        "hundred": "100",
    }
)
_NUMBER_WORD = re.compile(r"\b(" + "|".join(_WORDS) + r")\b", re.IGNORECASE)


def numbers_in(text: str) -> list[float]:
    """Every number in `text`, in order (integers, decimals, 1,234, p/q and the words zero..twenty, tens)."""
    text = _NUMBER_WORD.sub(lambda m: _WORDS[m.group(1).lower()], text)
    values = (_to_number(m.group(0)) for m in _NUMBER.finditer(text))
    return [v for v in values if v is not None]


def _close(value: float, expected: float, *, tol: float, rel: float) -> bool:
    return math.isclose(value, expected, abs_tol=tol, rel_tol=rel)


# --- scorers -------------------------------------------------------------------------------------


def score_exact(answer: str, reference: str, args: Mapping[str, Any], *, route: str | None = None) -> Verdict:
    wanted = {_canonical(reference), *(_canonical(a) for a in args.get("alternatives", []))}
    got = _canonical(answer)
    return _ok() if got in wanted else _fail(f"{got[:60]!r} is not {sorted(wanted)[:3]}")


def score_numeric(answer: str, reference: str, args: Mapping[str, Any], *, route: str | None = None) -> Verdict:
    expected = _to_number(str(args.get("value", reference)).strip())
    if expected is None:
        raise ValueError(f"numeric reference {reference!r} is not a number")
    tol, rel = float(args.get("tol", 1e-6)), float(args.get("rel", 1e-9))
    found = numbers_in(answer)
    if not found:
        return _fail("no number in the answer")
    candidates = found if args.get("mode") == "any" else found[-1:]
    if any(_close(v, expected, tol=tol, rel=rel) for v in candidates):
        return _ok()
    return _fail(f"{candidates[-1]} != {expected}")


_FLAGS = {"i": re.IGNORECASE, "s": re.DOTALL, "m": re.MULTILINE}


def score_regex(answer: str, reference: str, args: Mapping[str, Any], *, route: str | None = None) -> Verdict:
    flags = 0
    for letter in str(args.get("flags", "")):
        flags |= _FLAGS[letter]
    return _ok() if re.search(args["pattern"], answer, flags) else _fail(f"no match for {args['pattern']!r}")


def _has_phrase(haystack: str, phrase: str) -> bool:
    return re.search(rf"(?<!\w){re.escape(_fold(phrase))}(?!\w)", haystack) is not None


def score_contains(answer: str, reference: str, args: Mapping[str, Any], *, route: str | None = None) -> Verdict:
    text = _fold(answer)
    required = list(args.get("all", []))
    alternatives = list(args.get("any", [])) or ([] if required else [reference])
    missing = [p for p in required if not _has_phrase(text, p)]
    if missing:
        return _fail(f"missing {missing}")
    if alternatives and not any(_has_phrase(text, p) for p in alternatives):
        return _fail(f"none of {alternatives}")
    return _ok()


_FENCE = re.compile(r"```[ \t]*(?:python|py)?[ \t]*\n(.*?)```", re.S | re.I)


def extract_code(answer: str) -> str:
    """The longest fenced code block, else the whole answer."""
    blocks = _FENCE.findall(answer)
    return (max(blocks, key=len) if blocks else answer).strip()


def score_code_tests(answer: str, reference: str, args: Mapping[str, Any], *, route: str | None = None) -> Verdict:
    from routing.sandbox import run_python  # the project's sandbox: separate process, no network, rlimits

    code = extract_code(answer)
    if not code:
        return _fail("no code")
    result = run_python(code=code + "\n\n" + str(args["tests"]) + "\n", wall_s=float(args.get("wall_s", 5.0)))
    if result.ok:
        return _ok("hidden tests pass")
    tail = (result.stderr.strip().splitlines() or ["(no stderr)"])[-1]
    return _fail(f"hidden tests fail: {result.killed_reason or tail}"[:200])


REFUSAL = re.compile(
    r"\bUNSURE\b|\bI (?:cannot|can't|can ?not|am unable to|'m unable to|am not able to|don't|do not|have no way to)"
    r" (?:know|answer|tell|predict|determine|access|see|provide|read|say|guess)|"
    r"\b(?:cannot|can't|can ?not) be (?:known|determined|predicted|answered)|\bno (?:way|means) (?:to|of) know|"
    r"\b(?:impossible|not possible) to (?:know|predict|determine|say|answer)|\bno (?:reliable|real) way\b|"
    r"\bdoes(?: not|n't) exist\b|\bfictional\b|\bno such\b|\bunknowable\b|\bno access to\b",
    re.IGNORECASE,
)


def score_must_be_unsure(answer: str, reference: str, args: Mapping[str, Any], *, route: str | None = None) -> Verdict:
    if route == "unsure" or answer.strip() == UNSURE:
        return _ok("UNSURE")
    extra = args.get("also")
    if REFUSAL.search(answer) or (extra and re.search(extra, answer, re.IGNORECASE)):
        return _ok("refused")
    return _fail("answered a question it cannot know")


# --- algebra -------------------------------------------------------------------------------------

_ALLOWED_NAMES = {"x", "y", "t", "sqrt", "sin", "cos", "tan", "exp", "log", "ln", "pi", "e", "i"}
_SAFE_CHARS = re.compile(r"^[0-9a-z\s+\-*/^().]*$")
_BIG_POWER = re.compile(r"(\^|\*\*)\s*\(?\s*-?\d{3,}|(\^|\*\*)\s*[-+]?\s*[\w.()]*\s*(\^|\*\*)|\d{31,}")


def parse_expression(text: str) -> Any:
    """A sympy expression from a short, whitelisted text; None when it is not one."""
    import sympy
    from sympy.parsing.sympy_parser import (
        convert_xor,
        implicit_multiplication_application,
        parse_expr,
        standard_transformations,
    )

    for src, dst in (("\u2212", "-"), ("\u00b7", "*"), ("\u00d7", "*"), ("\u00b2", "^2"), ("\u00b3", "^3")):
        text = text.replace(src, dst)
    text = text.strip()
    text = text.lower()
    # Bounded cost: no exponent of 3+ digits, no tower of powers (9**9**9), no 31+ digit literal.
    if not text or len(text) > 200 or not _SAFE_CHARS.match(text) or _BIG_POWER.search(text):
        return None
    if any(name not in _ALLOWED_NAMES for name in re.findall(r"[a-z]+", text)):
        return None
    if re.search(r"\.(?!\d)", text):
        return None
    names = {"x": sympy.Symbol("x"), "y": sympy.Symbol("y"), "t": sympy.Symbol("t"), "e": sympy.E, "i": sympy.I,
             "pi": sympy.pi, "sqrt": sympy.sqrt, "sin": sympy.sin, "cos": sympy.cos, "tan": sympy.tan,
             "exp": sympy.exp, "log": sympy.log, "ln": sympy.log}  # fmt: skip
    transformations = (*standard_transformations, implicit_multiplication_application, convert_xor)
    try:
        return parse_expr(text, local_dict=names, global_dict={"__builtins__": {}, "Integer": sympy.Integer,
                          "Float": sympy.Float, "Rational": sympy.Rational, "Symbol": sympy.Symbol},
                          transformations=transformations)  # fmt: skip
    except (SyntaxError, TypeError, ValueError, AttributeError, NameError, ZeroDivisionError,
            sympy.SympifyError, TokenError):  # fmt: skip
        return None


_CONSTANT = re.compile(r"\s*\+\s*(?:c|k|const(?:ant)?)\b\s*\.?\s*$", re.IGNORECASE)


def _candidates(answer: str, *, constant: bool) -> list[str]:
    """Pieces of the answer that may be the expression: the whole, after '=' / ':' / ' is ', each line."""
    text = answer.replace("`", " ").replace("$", " ").replace("\\cdot", "*")
    pieces = [text]
    for line in text.splitlines():
        pieces.append(line)
        for sep in ("=", ":", " is ", " are "):
            if sep in line:
                pieces.append(line.rsplit(sep, 1)[1])
    out = []
    for piece in pieces:
        piece = piece.strip().rstrip(".").strip()
        if constant:
            piece = _CONSTANT.sub("", piece)
        if piece:
            out.append(piece)
    return list(dict.fromkeys(reversed(out)))  # the last statement first


def score_expr(answer: str, reference: str, args: Mapping[str, Any], *, route: str | None = None) -> Verdict:
    import sympy

    constant = bool(args.get("constant"))
    var = sympy.Symbol(str(args.get("var", "x")))
    form = str(args.get("form", "any"))
    expected = parse_expression(_CONSTANT.sub("", reference) if constant else reference)
    if expected is None:
        raise ValueError(f"expr reference {reference!r} does not parse")
    for piece in _candidates(answer, constant=constant):
        got = parse_expression(piece)
        if got is None:
            continue
        difference = sympy.expand(got - expected)
        same = sympy.diff(difference, var) == 0 if constant else difference == 0
        if not same:
            continue
        if form == "factored" and not (isinstance(got, sympy.Mul | sympy.Pow) and got != sympy.expand(got)):
            return _fail("equivalent but not factored")
        if form == "expanded" and got != sympy.expand(got):
            return _fail("equivalent but not expanded")
        return _ok()
    return _fail("no expression equivalent to the reference")


_ASSIGNMENT = re.compile(r"\b([a-z])\s*=\s*([^,;\n]+?)(?=\s*(?:,|;|\n|\bor\b|\band\b|$))", re.IGNORECASE)


def score_solutions(answer: str, reference: str, args: Mapping[str, Any], *, route: str | None = None) -> Verdict:
    """The set of solutions: `x = 2, x = 3` (or bare numbers) against args.values."""
    expected = sorted(float(Fraction(str(v))) for v in args["values"])
    var = str(args.get("var", "x")).lower()
    tol = float(args.get("tol", 1e-6))
    values: list[float] = []
    for name, raw in _ASSIGNMENT.findall(answer):
        if name.lower() != var:
            continue
        parsed = parse_expression(raw.strip().rstrip("."))
        if parsed is not None and parsed.is_number and parsed.is_real:
            values.append(float(parsed))
    if not values:
        values = numbers_in(answer)
    got = sorted(set(round(v, 9) for v in values))
    if len(got) == len(expected) and all(abs(g - e) <= tol for g, e in zip(got, expected, strict=True)):
        return _ok()
    return _fail(f"solutions {got} != {expected}")


Scorer = Callable[..., Verdict]
SCORERS: dict[str, Scorer] = {
    "exact": score_exact,
    "numeric": score_numeric,
    "regex": score_regex,
    "contains": score_contains,
    "code_tests": score_code_tests,
    "must_be_unsure": score_must_be_unsure,
    "solutions": score_solutions,
    "expr": score_expr,
}


def score(scorer: str, answer: str, reference: str, args: Mapping[str, Any], *, route: str | None = None) -> Verdict:
    """Judge one answer. UNSURE on an answerable item scores 0 (it is an honest miss, not a hit)."""
    if scorer != "must_be_unsure" and (route == "unsure" or answer.strip() == UNSURE):
        return _fail("UNSURE on an answerable item")
    return SCORERS[scorer](answer or "", reference, args, route=route)
