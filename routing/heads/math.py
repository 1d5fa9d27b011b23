"""Exact math head: arithmetic, algebra and calculus answered with sympy.

The head only ever answers when a prompt parses unambiguously into one math task; everything
else abstains (confidence 0) so the generalist answers instead.

Worded questions are read into the same machinery: number words ("seven times eight",
"twenty-five plus seventeen", routing/heads/numwords.py), fractions of ("a third of 90", "3/4 of
20"), "multiply 12 by 12" / "subtract 3 from 10" / "the square of 12", factorials ("5 factorial",
"factorial of 6"), remainders ("the remainder when 17 is divided by 5"; negative operands abstain,
the conventions differ), gcd/lcm of a list, primes ("is 97 prime", "the 10th prime", "the smallest
prime greater than 100", "how many primes below 100", "the prime factors of 84"), the mean /
median / mode / sum / product / range of a list, and equations asked in words ("if 2x + 3 = 11,
what is x"). Arithmetic phrasings become an expression for the parser below, so its bounds apply.

Safety
------
User text is never handed to ``eval`` directly.  Each expression goes through four gates:

1. a length cap (``MAX_PROMPT_CHARS``), a character whitelist and an identifier whitelist
   (single letters are symbols, otherwise only the function / constant names in ``_FUNCTIONS``
   and ``_CONSTANTS``), so quotes, underscores, attribute access and keywords never get through;
2. sympy's ``stringify_expr`` with the same transformations ``parse_expr`` uses
   (``standard_transformations + implicit_multiplication_application + convert_xor``) turns the
   text into Python source *without evaluating it*; that source is parsed with :mod:`ast` and
   every node is checked against a small grammar (numbers, single-letter symbols, + - * / ** %,
   and calls of whitelisted functions);
3. the same AST walk bounds the cost: numeric results may have at most ``MAX_DIGITS`` digits,
   exponents of numbers at most ``MAX_NUMERIC_EXPONENT``, powers of symbolic bases at most
   ``MAX_SYMBOLIC_EXPONENT``, polynomial degree at most ``MAX_DEGREE``, the expanded term count at
   most ``MAX_TERMS`` and factorials at most ``MAX_FACTORIAL``.  ``9**9**9`` is refused in
   microseconds, before anything is evaluated;
4. only then ``parse_expr`` builds the expression, with ``__builtins__`` emptied out of its
   global namespace.

The expensive algorithms are kept on a short leash as well: ``solve`` is limited to polynomial
(or rational) equations of degree <= 4, integrals use sympy's fast ``manual`` integrator and
abstain when it fails, definite integrals are only evaluated on intervals where the integrand is
continuous, and integer factorisation is limited to numbers below ``MAX_FACTORINT``.  Because no
static bound can predict every slow path of ``simplify``/``factor``/``integrate``, each answer also
runs under a deadline (``COMPUTE_DEADLINE_S`` of the thread's CPU time, so a loaded machine does not
make cheap questions fail, and at most ``WALL_DEADLINE_FACTOR`` times that on the wall clock): a
``sys.settrace`` hook on the calling thread raises ``_DeadlineExceeded`` at the next Python
function call once the deadline has passed, and the head abstains.  sympy is pure Python, so this
interrupts it within microseconds of the deadline; the big-integer C operations it cannot interrupt
are exactly the ones the static bounds cap.  The hook roughly doubles sympy's running time, which
typical questions (1-30 ms) easily afford.

Answer formats
--------------
* integers as integers (``"56"``), rationals as ``p/q`` (``"1/2"``);
* when the input contained a decimal number, a decimal rounded to 12 significant digits with
  trailing zeros stripped (``"0.1 + 0.2"`` -> ``"0.3"``);
* irrational exact values as ``exact ≈ approx`` (``"sqrt(2) ≈ 1.414213562"``);
* percentages: ``"15% of 80"`` -> ``"12"`` (decimals, not fractions, when not whole);
  ``"12 is what percent of 80"`` -> ``"15%"``;
* algebra in sympy's ``str`` form: ``"(x - 3)*(x - 2)"``, ``"x**2 + 2*x + 1"``;
* integer factorisation as ``"2**3 * 3**2 * 5"``;
* gcd, lcm, remainders, primes and prime counts as integers; "is n prime" as ``"Yes"``/``"No"``;
* mean, median, mode, sum, product and range of a list as a number (a decimal when not whole);
* solve as ``"x = -2, x = 2"`` (complex roots included, written with ``I``), ``"no solution"``
  when there is none;
* derivatives as the plain expression (``"3*x**2"``);
* indefinite integrals as the antiderivative followed by ``" + C"`` (``"x**3/3 + C"``): the
  answer to "integrate x^2" is a family of functions, and dropping the constant would make the
  answer subtly wrong; definite integrals give a number (``"1/3"``).

Confidence
----------
1.0 when the prompt parsed into exactly one task; 0.8 when a derivative/integral had several
symbols and no named variable (x is assumed); 0.7 -- below the council's 0.75 vote floor -- when
an implicit product follows a ``/`` (``"6/2(1+2)"``, ``"1/2x"``), which people read two ways,
and when a prime count "between" two primes depends on whether the ends count; 0 (abstain)
otherwise, with the reason in ``evidence["abstained"]``.  Evidence of an answer holds the working:
``{"task": "factor", "expr": "x**2 - 5*x + 6", "result": "(x - 3)*(x - 2)"}``.
"""

from __future__ import annotations

import ast
import gc
import inspect
import math
import re
import sys
import threading
import time
import tokenize
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from types import FrameType
from typing import Any

import mpmath
import sympy
from sympy.calculus.util import continuous_domain
from sympy.core.parameters import global_parameters
from sympy.core.sympify import SympifyError
from sympy.parsing.sympy_parser import (
    convert_xor,
    implicit_multiplication_application,
    parse_expr,
    standard_transformations,
    stringify_expr,
)
from sympy.polys.polyerrors import BasePolynomialError

from routing.heads.base import Ballot, Head, HeadContext, parse_source
from routing.heads.numwords import parse_fraction_words, parse_ordinal, replace_number_words

MAX_PROMPT_CHARS = 200
MAX_PAREN_DEPTH = 20
MAX_DIGITS = 1000  # digits of any number met while evaluating
MAX_NUMERIC_EXPONENT = 100_000
MAX_SYMBOLIC_EXPONENT = 64
MAX_DEGREE = 64
MAX_TERMS = 400  # upper bound on the number of terms after full expansion
MAX_FACTORIAL = 300
MAX_FACTORINT = 10**15
MAX_PRIME_TEST = 2**64  # sympy's isprime is proven correct below this
MAX_NTH_PRIME = 10**5  # prime(10**5) takes about 10 ms
MAX_PRIME_COUNT = 10**7  # primepi(10**7) takes a few ms
MAX_LIST = 100  # numbers in a list (mean, median, gcd, ...)
MAX_SOLVE_DEGREE = 4
MAX_ANSWER_CHARS = 2000
MAX_SOLUTION_CHARS = 160  # a root longer than this is a wall of nested radicals: abstain instead
COMPUTE_DEADLINE_S = 0.5  # CPU seconds of the answering thread
WALL_DEADLINE_FACTOR = 3.0  # ... and never more than this many times that on the wall clock
FLOAT_DIGITS = 12  # significant digits when the input had decimals
APPROX_DIGITS = 10  # significant digits of the approximation shown next to an irrational value

# Exceptions that mean "this input is not something we can compute", not a bug in the head:
# tokenize.TokenError (unbalanced brackets), SyntaxError (malformed expression), SympifyError /
# TypeError / ValueError (sympy refusing operands), ArithmeticError (division by zero, overflow),
# NotImplementedError (sympy has no algorithm) and BasePolynomialError (polys refusing an input).
# Anything else propagates: it is a real failure and the worker records it.
_MATH_ERRORS: tuple[type[BaseException], ...] = (
    tokenize.TokenError,
    SyntaxError,
    SympifyError,
    TypeError,
    ValueError,
    ArithmeticError,
    NotImplementedError,
    BasePolynomialError,
)

_TRANSFORMATIONS = (*standard_transformations, implicit_multiplication_application, convert_xor)

_FUNCTIONS: dict[str, Any] = {
    "sin": sympy.sin,
    "cos": sympy.cos,
    "tan": sympy.tan,
    "cot": sympy.cot,
    "sec": sympy.sec,
    "csc": sympy.csc,
    "asin": sympy.asin,
    "acos": sympy.acos,
    "atan": sympy.atan,
    "arcsin": sympy.asin,
    "arccos": sympy.acos,
    "arctan": sympy.atan,
    "sinh": sympy.sinh,
    "cosh": sympy.cosh,
    "tanh": sympy.tanh,
    "exp": sympy.exp,
    "log": sympy.log,
    "ln": sympy.log,
    "sqrt": sympy.sqrt,
    "cbrt": sympy.cbrt,
    "abs": sympy.Abs,
    "factorial": sympy.factorial,
}
_CONSTANTS: dict[str, Any] = {"pi": sympy.pi, "e": sympy.E, "i": sympy.I}
_EXPONENTIAL = {"exp", "sinh", "cosh"}  # functions whose value grows like exp(|arg|)
_LOCALS: dict[str, Any] = {**_FUNCTIONS, **_CONSTANTS}
# What the code produced by stringify_expr may refer to besides _LOCALS.  No builtins at all.
_GLOBALS: dict[str, Any] = {
    "__builtins__": {},
    "Integer": sympy.Integer,
    "Float": sympy.Float,
    "Symbol": sympy.Symbol,
}
_ALLOWED_WORDS = frozenset(_LOCALS)

_ALLOWED_CHARS = re.compile(r"[0-9a-z\s+\-*/^().,!%]+")
_IDENT = re.compile(r"[a-z]+")
_BAD_DOT = re.compile(r"\.(?!\d)")
_LEADING_ZERO = re.compile(r"(?<![\d.])0\d")  # "2024-01-01" is a date, not 2022
_THOUSANDS = re.compile(r"(?<=\d),(?=\d{3}(?!\d))")
_ADJACENT_NUMBERS = re.compile(r"\d\.?\s+\.?\d")  # "12 34", "nineteen eighty four": not a product
_SCIENTIFIC = re.compile(r"\de[-+]?(\d+)")  # "1e5"; sympy would build 1e999999 digit by digit
MAX_SCIENTIFIC_EXPONENT = 300
# "6/2(1+2)", "1/2x": is the implicit product inside the denominator or not?  sympy (like Python)
# reads 6/2*(1+2) = 9, many people read 6/(2*(1+2)) = 1.  Answer, but below the vote floor.
_AMBIGUOUS_DIVISION = re.compile(r"/\s*(?:\d+(?:\.\d+)?|[a-z](?![a-z]))\s*(?:\(|[a-z])")
AMBIGUOUS_CONFIDENCE = 0.7

_UNICODE = {
    "\u00d7": "*",  # multiplication sign
    "·": "*",
    "∙": "*",
    "÷": "/",
    "\u2212": "-",  # minus sign
    "\u2013": "-",  # en dash
    "²": "^2",
    "³": "^3",
    "√": " sqrt ",
    "π": "pi",
    "∫": " integrate ",
}
_WORDS: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"\b(\d+)\s+factorial\b"), r" \1! "),
    (re.compile(r"\bfactorial\s+of\b"), " factorial "),
    (re.compile(r"\bsquare root of\b"), " sqrt "),
    (re.compile(r"\bcube root of\b"), " cbrt "),
    (re.compile(r"\bplus\b"), " + "),
    (re.compile(r"\bminus\b"), " - "),
    (re.compile(r"\b(?:times|multiplied by)\b"), " * "),
    (re.compile(r"\bdivided by\b"), " / "),
    (re.compile(r"\b(?:to the power of|raised to the power of|raised to)\b"), " ^ "),
    (re.compile(r"\bsquared\b"), " ^ 2 "),
    (re.compile(r"\bcubed\b"), " ^ 3 "),
]
_LEADING_FILLER = re.compile(
    r"^(?:please|pls|kindly|hey|ok|okay|so|now|just|quickly|can you|could you|would you|will you|"
    r"help me|i need to|i want to|let's|lets|tell me|what is|what's|whats|what are|calculate|compute|"
    r"evaluate|work out|figure out|determine|give me|find|show me|the value of|the result of|"
    r"the answer to|value of|result of|how much is|what do you get (?:if|when) you|what do you get from|the)\b[\s,:]*"
)
# A trailing "!" is punctuation unless it is glued to a number or a bracket ("5!" is a factorial).
_TRAILING_FILLER = re.compile(r"(?:[\s,]*\b(?:please|pls|thanks|thank you|for me)\b|[\s?.=]+|(?<![\d)!])!+|\s+!+)$")

_APPLIES = re.compile(
    r"\d\s*(?:[-+*/^%\u00d7÷!]|x\s*\d|percent)|[-+*/^\u00d7÷(]\s*\d|√|∫|π|d/d[a-z]|"
    r"\b(?:solve|factori[sz]e|factor|factori[sz]ation|expand|simplify|derivative|differentiate|"
    r"integrate|integral|antiderivative|sqrt|square root|cube root|percent|roots of|zeros of|plus|"
    r"minus|times|divided by|squared|cubed|power of|mod|modulo|remainder|factorial|gcd|gcf|hcf|lcm|"
    r"greatest common|highest common|least common|lowest common|primes?|mean|average|median|mode|sum|"
    r"product|range|square of|cube of|multiply|divide|add|subtract|halves|half|thirds?|quarters?|"
    r"fourths?|fifths?|sixths?|sevenths?|eighths?|ninths?|tenths?|hundredths?)\b|\d\s*/\s*\d+\s+of\b|"
    r"\b(?:if|when|given)\b.*=",
    re.IGNORECASE,
)

_ORDINALS = {"first": 1, "1st": 1, "second": 2, "2nd": 2, "third": 3, "3rd": 3}

_SOLVE = re.compile(
    r"^(?:solve|find the roots of|roots of|find the zeros of|zeros of)\b"
    r"(?:\s+the)?(?:\s+(?:equation|quadratic|polynomial))?[\s:,]*"
)
_FACTOR = re.compile(
    r"^(?:factor|factori[sz]e|(?:prime\s+)?factori[sz]ation\s+of|(?:the\s+)?prime\s+factors\s+of)\b"
    r"(?:\s+the)?(?:\s+(?:expression|polynomial|number))?[\s:,]*"
)
_EXPAND = re.compile(r"^expand\b(?:\s+the)?(?:\s+(?:expression|polynomial))?[\s:,]*")
_SIMPLIFY = re.compile(r"^simplify\b(?:\s+the)?(?:\s+expression)?[\s:,]*")
_DERIVATIVE = re.compile(
    r"^(?:(?:the\s+)?(?:(?P<ord>first|second|third|1st|2nd|3rd)\s+)?derivative\s+of|"
    r"differentiate|diff)\b[\s:,]*"
)
_D_DX = re.compile(r"^d(?:\^?(?P<ord>[23]))?/d(?P<var>[a-z])(?:\^?[23])?\s*(?:of\b)?\s*")
_INTEGRAL = re.compile(
    r"^(?:(?:the\s+)?(?:(?:indefinite|definite)\s+)?(?:integral|antiderivative|anti-derivative)\s+of|"
    r"integrate)\b[\s:,]*"
)
_WRT = re.compile(r"[\s,]*\b(?:with respect to|wrt|w\.r\.t\.?|in terms of)\s+(?P<var>[a-z])$")
_DVAR = re.compile(r"(?:\s+|(?<=[\d)]))d(?P<var>[a-z])$")
_BOUNDS = re.compile(r"\s+from\s+(?P<a>.+?)\s+to\s+(?P<b>.+?)$")
_FOR_VAR_SUFFIX = re.compile(r"[\s,]*\bfor\s+(?P<var>[a-z])$")
_FOR_VAR_PREFIX = re.compile(r"^for\s+(?P<var>[a-z])\b[\s:,]*")
_PERCENT_OF = re.compile(r"^(?P<p>[-+]?\d+(?:\.\d+)?)\s*(?:%|percent|per cent)\s+of\s+(?P<base>.+)$")
_WHAT_PERCENT = [
    re.compile(r"^(?:what|which)\s+(?:percent(?:age)?|%)\s+of\s+(?P<b>.+?)\s+is\s+(?P<a>.+)$"),
    re.compile(r"^(?P<a>.+?)\s+is\s+what\s+(?:percent(?:age)?|%)\s+of\s+(?P<b>.+)$"),
]
_INFINITY = {
    "oo": sympy.oo,
    "inf": sympy.oo,
    "infinity": sympy.oo,
    "+inf": sympy.oo,
    "+infinity": sympy.oo,
    "-oo": -sympy.oo,
    "-inf": -sympy.oo,
    "-infinity": -sympy.oo,
}


# -- phrasings read before the expression parser --------------------------------------------
_LIST = r"[\[({]?\s*(?P<args>[-+]?[\d.]+(?:\s*(?:,|;|&|\band\b|\s)\s*(?:and\s+)?[-+]?[\d.]+)+)\s*[\])}]?"
_GCD = re.compile(
    r"^(?P<op>gcd|gcf|hcf|greatest\s+common\s+(?:divisor|factor)|highest\s+common\s+(?:factor|divisor)|"
    r"lcm|least\s+common\s+(?:multiple|denominator)|lowest\s+common\s+(?:multiple|denominator)|"
    rf"smallest\s+common\s+multiple)\s*(?:of|for|between)?\s*{_LIST}$"
)
_STATS = re.compile(
    r"^(?:arithmetic\s+)?(?P<stat>mean|average|avg|median|mode|sum|total|product|range)\s*(?:value\s+)?"
    rf"(?:of|for|:)\s*(?:the\s+)?(?:(?:numbers|values|list|set|data(?:\s+set)?)\s*:?\s*)?{_LIST}$"
)
_IS_PRIME = re.compile(r"^is\s+(?P<n>\d+)\s+(?:a\s+)?prime(?:\s+number)?$")
_NTH_PRIME = re.compile(r"^(?P<ord>\d+(?:st|nd|rd|th)|[a-z]+(?:[\s-][a-z]+){0,3})\s+prime(?:\s+number)?$")
_SMALLEST_PRIME = re.compile(r"^(?:smallest|least|lowest)\s+prime(?:\s+number)?$")
_NEXT_PRIME = re.compile(
    r"^(?:smallest|first|least|lowest|next)\s+prime(?:\s+number)?\s+"
    r"(?:(?:greater|larger|bigger|more|higher)\s+than|after|above|over|following|exceeding)\s+(?P<n>\d+)$"
)
_PREVIOUS_PRIME = re.compile(
    r"^(?:largest|biggest|greatest|highest|last)\s+prime(?:\s+number)?\s+"
    r"(?:(?:less|smaller|lower|fewer)\s+than|below|under|before)\s+(?P<n>\d+)$"
)
_PRIME_COUNT = re.compile(
    r"^how\s+many\s+primes?(?:\s+numbers)?\s+(?:are\s+there\s+)?(?:that\s+are\s+)?"
    r"(?:(?P<below>less\s+than|below|under|smaller\s+than|<)|(?P<upto>up\s+to|less\s+than\s+or\s+equal\s+to|"
    r"at\s+most|not\s+exceeding|<=|no\s+greater\s+than)|(?P<between>between|from))\s+(?P<a>\d+)"
    r"(?:\s+(?:and|to)\s+(?P<b>\d+))?(?:\s+are\s+there)?$"
)
_REMAINDER = [
    re.compile(
        r"^remainder\s+(?:of|when|after|from|in|if|on)\s+(?:dividing\s+)?(?P<a>[-+]?\d+)\s+(?:is\s+)?"
        r"(?:/|by|over)\s+(?P<b>[-+]?\d+)$"
    ),
    re.compile(r"^(?P<a>[-+]?\d+)\s*/\s*(?P<b>[-+]?\d+)\s*,?\s*(?:what\s+is\s+)?(?:the\s+)?remainder$"),
]
_FRACTION_OF = re.compile(
    r"^(?P<frac>\d+\s*/\s*\d+|(?:(?:a|an|one|\d+)[\s-]+)?(?:halves|half|thirds?|quarters?|fourths?|fifths?|"
    r"sixths?|sevenths?|eighths?|ninths?|tenths?|hundredths?|thousandths?))\s+of\s+(?:an?\s+)?(?P<base>.+)$"
)
_VERBAL = [
    (re.compile(r"^multiply\s+(?P<a>.+?)\s+(?:by|and|with|times)\s+(?P<b>.+)$"), "({a}) * ({b})", "multiply"),
    (re.compile(r"^divide\s+(?P<a>.+?)\s+by\s+(?P<b>.+)$"), "({a}) / ({b})", "divide"),
    (re.compile(r"^add\s+(?P<a>.+?)\s+(?:and|to|plus|with)\s+(?P<b>.+)$"), "({a}) + ({b})", "add"),
    (re.compile(r"^subtract\s+(?P<a>.+?)\s+from\s+(?P<b>.+)$"), "({b}) - ({a})", "subtract"),
    (re.compile(r"^(?:sum|total)\s+of\s+(?P<a>.+?)\s+and\s+(?P<b>.+)$"), "({a}) + ({b})", "add"),
    (re.compile(r"^product\s+of\s+(?P<a>.+?)\s+and\s+(?P<b>.+)$"), "({a}) * ({b})", "multiply"),
    (re.compile(r"^quotient\s+of\s+(?P<a>.+?)\s+and\s+(?P<b>.+)$"), "({a}) / ({b})", "divide"),
    (re.compile(r"^square\s+of\s+(?P<a>.+)$"), "({a})^2", "power"),
    (re.compile(r"^cube\s+of\s+(?P<a>.+)$"), "({a})^3", "power"),
]
# "if 2x + 3 = 11, what is x", "x when 2x + 3 = 11" ("find" is polite wrapping)
_SOLVE_IF = [
    re.compile(
        r"^(?:if|given(?:\s+that)?|when|suppose)\s+(?P<eq>[^,;]+=[^,;]+?)\s*[,;]?\s*(?:then\s+)?"
        r"(?:what\s+is|what's|whats|find|solve\s+for|what\s+does|what\s+must|determine|calculate|compute)\s+"
        r"(?:the\s+value\s+of\s+)?(?P<var>[a-z])(?:\s+(?:equal|be|equals))?$"
    ),
    re.compile(
        r"^(?:solve\s+for\s+)?(?:the\s+value\s+of\s+)?(?P<var>[a-z])\s*[,:]?\s+(?:when|if|given(?:\s+that)?|such\s+that|"
        r"where|so\s+that|provided)\s+(?P<eq>.+=.+)$"
    ),
]


class _Refuse(Exception):
    """Raised inside the head when the prompt is not (safely) answerable; becomes an abstention."""


_GENERATOR_FLAGS = inspect.CO_GENERATOR | inspect.CO_COROUTINE | inspect.CO_ASYNC_GENERATOR


class _DeadlineExceeded(BaseException):
    """Raised by the trace hook of `_deadline`.

    A BaseException so that the `except Exception` blocks inside sympy do not swallow it.
    """


class _GcTime(threading.local):
    """Per thread: whether a garbage collection is running in it, and how long collections took.

    A collection runs in whichever thread allocated when its threshold was reached, and runs the
    finalizers of everything it frees (``weakref.finalize`` callbacks, ``__del__``): cleanup left
    behind by other code, such as a temporary directory's removal. That is not the computation's
    work: `_deadline` neither raises inside it (the exception would be ignored as unraisable and
    the finalizer left half done) nor counts its time.
    """

    def __init__(self) -> None:
        self.watching = 0  # deadlines active in this thread: collections are timed only then
        self.depth = 0
        self.started_wall = 0.0
        self.started_cpu = 0.0
        self.wall = 0.0
        self.cpu = 0.0


_gc_time = _GcTime()


def _on_gc(phase: str, info: dict[str, int]) -> None:
    state = _gc_time
    if phase == "start":
        if not state.watching:
            return
        if state.depth == 0:
            state.started_wall = time.perf_counter()
            state.started_cpu = time.thread_time()
        state.depth += 1
    elif state.depth:
        state.depth -= 1
        if state.depth == 0:
            state.wall += time.perf_counter() - state.started_wall
            state.cpu += time.thread_time() - state.started_cpu


_ON_GC_CODE = _on_gc.__code__
gc.callbacks.append(_on_gc)


@contextmanager
def _deadline(seconds: float) -> Iterator[None]:
    """Abort the computation in the `with` block (this thread only) once it has used `seconds`.

    `seconds` is CPU time of this thread: on a loaded machine a cheap computation may take longer
    on the wall clock without being expensive. The wall clock still caps it at
    `WALL_DEADLINE_FACTOR` times `seconds`.

    Any tracer already installed (a debugger, coverage) keeps working: the hook delegates to it.
    Garbage collections that run in this thread meanwhile are not the computation's: see `_GcTime`.
    """
    gc_time = _gc_time
    gc_wall, gc_cpu = gc_time.wall, gc_time.cpu  # collections in this thread so far
    wall_start = time.perf_counter()
    cpu_limit = time.thread_time() + seconds
    wall_limit = wall_start + seconds
    hard_limit = wall_start + seconds * WALL_DEADLINE_FACTOR
    previous = sys.gettrace()
    parameters = dict(vars(global_parameters))

    def over() -> bool:
        # The cheap wall clock first (collections only ever push the limits later, so it alone says
        # "not yet" on almost every call); then not inside a collection; then both clocks without the
        # time collections took, the thread's CPU clock (a real syscall) last, so that a busy machine
        # that preempts us does not count as our work.
        now = time.perf_counter()
        if now <= wall_limit or gc_time.depth:
            return False
        now -= gc_time.wall - gc_wall
        return now > wall_limit and (now > hard_limit or time.thread_time() - (gc_time.cpu - gc_cpu) > cpu_limit)

    def hook(frame: FrameType, event: str, arg: Any) -> Any:
        # Never raise inside a generator frame: generators are also resumed from finalizers (a
        # dropped generator is closed on deallocation) where the exception would be ignored, and
        # the interpreter drops the hook after the first raise, so the computation would run on.
        # Nor inside a garbage collection, whose finalizers are other code's cleanup (over() says so),
        # nor in the callback that marks one (an exception there would lose the mark).
        code = frame.f_code
        if over() and not code.co_flags & _GENERATOR_FLAGS and code is not _ON_GC_CODE:
            raise _DeadlineExceeded
        return previous(frame, event, arg) if previous is not None else None

    gc_time.watching += 1
    sys.settrace(hook)
    try:
        yield
    finally:
        sys.settrace(previous)
        gc_time.watching -= 1
        # An abort inside sympy's `with evaluate(False):` and friends would leave these (thread-local)
        # switches flipped for every later computation on this thread.
        for key, value in parameters.items():
            if getattr(global_parameters, key) != value:
                setattr(global_parameters, key, value)


@dataclass(frozen=True)
class _Bound:
    """What the static check knows about a sub-expression."""

    digits: float  # upper bound on the decimal digits of its numbers (numerator and denominator)
    degree: float  # upper bound on its polynomial degree (0 for numbers)
    terms: float  # upper bound on the number of terms once fully expanded
    value: Any = None  # the exact sympy value, for numeric sub-expressions only

    @property
    def numeric(self) -> bool:
        return self.value is not None


@dataclass(frozen=True)
class Parsed:
    """A checked and evaluated expression."""

    expr: Any  # a sympy expression
    has_float: bool  # the input contained a decimal number
    trivial: bool  # the input was a bare number or constant: nothing to compute
    ambiguous: bool = False  # "6/2(1+2)": an implicit product right after '/'


# ---------------------------------------------------------------------------------------------
# Parsing


def normalize(prompt: str) -> str:
    """Lower-case the prompt, map unicode math and number words to ASCII ("seven times eight" ->
    "7 * 8"), strip polite wrappers."""
    text = prompt
    for src, dst in _UNICODE.items():
        text = text.replace(src, dst)
    text = replace_number_words(" ".join(text.lower().split()))
    for pattern, repl in _WORDS:
        text = pattern.sub(repl, text)
    text = " ".join(text.split())
    previous = None
    while previous != text:
        previous = text
        text = _LEADING_FILLER.sub("", text)
        text = _TRAILING_FILLER.sub("", text)
    return text


def _approx_abs(value: Any) -> Any:
    """|value| as an mpmath number (None for zoo, nan and infinities), from a 15-digit evalf.

    sympy's Abs() would try to simplify the modulus symbolically first, which can take seconds
    (Abs(asin(2)**10)); the numeric value is all the size checks need.
    """
    approx = sympy.N(value, 15)
    if approx.has(sympy.zoo, sympy.nan, sympy.oo, -sympy.oo):
        return None
    if not all(atom.is_Float or atom.is_Rational or atom is sympy.I for atom in approx.atoms()):
        raise _Refuse("value has no numeric approximation")
    re_part, im_part = (sympy.Float(part, 15) for part in approx.as_real_imag())
    return mpmath.hypot(mpmath.mpf(re_part._mpf_), mpmath.mpf(im_part._mpf_))


def _digits_of(value: Any) -> float:
    """Decimal digits needed for a numeric sympy value (for both tiny and huge magnitudes)."""
    if value.is_Rational:
        return math.log10(max(abs(value.p), value.q)) if value.p else 0.0
    size = _approx_abs(value)
    if size is None or size == 0:  # zoo, nan, oo: no size, the caller rejects the value later
        return 0.0
    return abs(float(mpmath.log10(size)))


def _magnitude(value: Any) -> float:
    """abs(value) as a float (inf when it does not fit)."""
    size = _approx_abs(value)
    if size is None:
        raise _Refuse("undefined value")
    try:
        return float(size)
    except OverflowError:
        return math.inf


class _Checker:
    """Walks the AST of the code stringify_expr produced: grammar whitelist plus cost bounds."""

    _BINOPS: dict[type[ast.operator], Callable[[Any, Any], Any]] = {
        ast.Add: lambda a, b: a + b,
        ast.Sub: lambda a, b: a - b,
        ast.Mult: lambda a, b: a * b,
        ast.Div: lambda a, b: a / b,
        ast.Mod: lambda a, b: sympy.Mod(a, b),
    }

    def __init__(self) -> None:
        self.has_float = False

    def check(self, node: ast.AST) -> _Bound:
        bound = self._visit(node)
        if bound.digits > MAX_DIGITS:
            raise _Refuse("numbers too large")
        if bound.degree > MAX_DEGREE or bound.terms > MAX_TERMS:
            raise _Refuse("expression too large")
        if bound.numeric and bound.value.has(sympy.zoo, sympy.nan, sympy.oo, -sympy.oo):
            raise _Refuse("undefined value")
        return bound

    def _visit(self, node: ast.AST) -> _Bound:
        if isinstance(node, ast.Expression):
            return self.check(node.body)
        if isinstance(node, ast.Name):
            if node.id not in _CONSTANTS:
                raise _Refuse(f"name not allowed: {node.id}")
            return _Bound(1.0, 0, 1, value=_CONSTANTS[node.id])
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
            inner = self.check(node.operand)
            value = None if inner.value is None else (-inner.value if isinstance(node.op, ast.USub) else inner.value)
            return _Bound(inner.digits, inner.degree, inner.terms, value)
        if isinstance(node, ast.BinOp):
            return self._binop(node)
        if isinstance(node, ast.Call):
            return self._call(node)
        raise _Refuse(f"construct not allowed: {type(node).__name__}")

    def _binop(self, node: ast.BinOp) -> _Bound:
        left, right = self.check(node.left), self.check(node.right)
        if isinstance(node.op, ast.Pow):
            return self._pow(left, right)
        op = self._BINOPS.get(type(node.op))
        if op is None:
            raise _Refuse(f"operator not allowed: {type(node.op).__name__}")
        if isinstance(node.op, (ast.Add, ast.Sub)):
            digits = max(left.digits, right.digits) + 1
            degree = max(left.degree, right.degree)
            terms = left.terms + right.terms
        else:
            digits = left.digits + right.digits
            degree = left.degree + right.degree
            terms = left.terms * right.terms
        if left.numeric and right.numeric:
            value = op(left.value, right.value)
            return _Bound(_digits_of(value), 0, 1, value)
        return _Bound(digits, degree, terms)

    def _pow(self, base: _Bound, exponent: _Bound) -> _Bound:
        if not exponent.numeric:  # x**y, 2**x: symbolic exponent, nothing gets expanded
            return _Bound(base.digits + exponent.digits, base.degree + exponent.degree + 1, base.terms + exponent.terms)
        size = _magnitude(exponent.value)
        if base.numeric:
            if size > MAX_NUMERIC_EXPONENT or size * base.digits > MAX_DIGITS:
                raise _Refuse("power too large")
            value = base.value**exponent.value
            return _Bound(_digits_of(value), 0, 1, value)
        if size > MAX_SYMBOLIC_EXPONENT:
            raise _Refuse("symbolic power too large")
        n = math.ceil(size)
        terms = float(math.comb(int(base.terms) + n - 1, n)) if base.terms > 1 and n > 1 else base.terms
        return _Bound(base.digits * max(n, 1) + n * math.log10(max(base.terms, 1)) + 1, base.degree * size, terms)

    def _call(self, node: ast.Call) -> _Bound:
        if not isinstance(node.func, ast.Name) or node.keywords:
            raise _Refuse("call not allowed")
        name = node.func.id
        if name in ("Integer", "Float", "Symbol"):
            return self._atom(name, node.args)
        if name not in _FUNCTIONS:
            raise _Refuse(f"function not allowed: {name}")
        if not node.args or len(node.args) > (2 if name == "log" else 1):
            raise _Refuse(f"wrong number of arguments for {name}")
        args = [self.check(arg) for arg in node.args]
        arg = args[0]
        if not all(a.numeric for a in args):
            if name == "factorial":
                raise _Refuse("factorial of a symbolic expression")
            return _Bound(max(a.digits for a in args), max(a.degree for a in args), 1)
        if name == "factorial" and not (arg.value.is_Integer and 0 <= arg.value <= MAX_FACTORIAL):
            raise _Refuse("factorial out of range")
        if name in _EXPONENTIAL and _magnitude(arg.value) * math.log10(math.e) > MAX_DIGITS:
            raise _Refuse("exponential too large")
        value = _FUNCTIONS[name](*(a.value for a in args))
        return _Bound(_digits_of(value), 0, 1, value)

    def _atom(self, name: str, args: list[ast.expr]) -> _Bound:
        if len(args) != 1 or not isinstance(args[0], ast.Constant):
            raise _Refuse("malformed literal")
        raw = args[0].value
        if name == "Symbol":
            if not (isinstance(raw, str) and len(raw) == 1 and raw.isalpha()):
                raise _Refuse("malformed symbol")
            return _Bound(0.0, 1, 1)
        if name == "Integer":
            if not isinstance(raw, int):
                raise _Refuse("malformed integer")
            value = sympy.Integer(raw)
        else:
            if not isinstance(raw, str):
                raise _Refuse("malformed float")
            self.has_float = True
            value = sympy.Float(raw)
        return _Bound(_digits_of(value), 0, 1, value)


def _paren_depth(text: str) -> int:
    """The deepest bracket nesting; _Refuse for unbalanced brackets (sympy's tokenizer trips on them)."""
    depth = deepest = 0
    for ch in text:
        if ch == "(":
            depth += 1
            deepest = max(deepest, depth)
        elif ch == ")":
            depth -= 1
            if depth < 0:
                raise _Refuse("unbalanced brackets")
    if depth:
        raise _Refuse("unbalanced brackets")
    return deepest


def parse_math(text: str) -> Parsed:
    """Check `text` (already normalised) and turn it into a sympy expression, or raise _Refuse."""
    text = _THOUSANDS.sub("", text.strip())
    if not text:
        raise _Refuse("empty expression")
    if len(text) > MAX_PROMPT_CHARS:
        raise _Refuse("expression too long")
    if "%" in text:
        raise _Refuse("ambiguous '%' (percent or modulo?)")
    text = re.sub(r"\bmod(?:ulo)?\b", " % ", text)
    if not _ALLOWED_CHARS.fullmatch(text):
        raise _Refuse("characters outside the math alphabet")
    if _BAD_DOT.search(text) or _LEADING_ZERO.search(text):
        raise _Refuse("not a plain number")
    if any(len(m) > 3 or int(m) > MAX_SCIENTIFIC_EXPONENT for m in _SCIENTIFIC.findall(text)):
        raise _Refuse("number too large")
    if "//" in text.replace(" ", ""):
        raise _Refuse("floor division is not supported")
    if _ADJACENT_NUMBERS.search(text):
        raise _Refuse("two numbers with nothing between them")
    for word in _IDENT.findall(text):
        if len(word) > 1 and word not in _ALLOWED_WORDS:
            raise _Refuse(f"unknown word: {word}")
    if _paren_depth(text) > MAX_PAREN_DEPTH:
        raise _Refuse("too deeply nested")
    code = stringify_expr(text, dict(_LOCALS), dict(_GLOBALS), _TRANSFORMATIONS)
    tree = parse_source(code, mode="eval")
    checker = _Checker()
    checker.check(tree)
    body = tree.body
    while isinstance(body, ast.UnaryOp):
        body = body.operand
    literal = isinstance(body, ast.Call) and isinstance(body.func, ast.Name) and body.func.id in ("Integer", "Float")
    trivial = isinstance(body, ast.Name) or literal
    # The code has been checked node by node and bounded; build it for real.
    expr = parse_expr(text, local_dict=dict(_LOCALS), global_dict=dict(_GLOBALS), transformations=_TRANSFORMATIONS)
    if not isinstance(expr, sympy.Expr):
        raise _Refuse("not a single expression")
    return Parsed(expr, checker.has_float, trivial, bool(_AMBIGUOUS_DIVISION.search(text)))


# ---------------------------------------------------------------------------------------------
# Formatting


def _decimal(value: Any, digits: int = FLOAT_DIGITS) -> str:
    """A real number as a decimal with `digits` significant digits, trailing zeros stripped."""
    approx = sympy.Float(value.evalf(digits + 5), digits + 5)
    text = mpmath.nstr(mpmath.mpf(approx._mpf_), digits)
    if text.endswith(".0"):
        text = text[:-2]
    return "0" if text in ("-0", "0.0") else text


def format_number(value: Any, has_float: bool) -> str:
    """Format a numeric sympy value: 56, 1/2, 0.3, 'sqrt(2) ≈ 1.414213562', '2*I'."""
    if value.has(sympy.zoo, sympy.nan, sympy.oo, -sympy.oo):
        raise _Refuse("undefined value")
    if value.has(sympy.I) and all(atom.is_Rational or atom is sympy.I for atom in value.atoms()):
        value = sympy.expand_complex(value)  # (1 + I)**64 -> 4294967296, 1/(1 + I) -> 1/2 - I/2
    if value.is_Integer:
        return str(value)
    if value.is_Rational:
        return _decimal(value) if has_float else f"{value.p}/{value.q}"
    if value.is_real:
        if has_float or value.is_Float:
            return _decimal(value)
        return f"{value} ≈ {_decimal(value, APPROX_DIGITS)}"
    re_part, im_part = value.as_real_imag()
    if has_float:
        return str(sympy.N(value, FLOAT_DIGITS))
    if re_part.is_Rational and im_part.is_Rational:
        return str(value)
    return f"{value} ≈ {sympy.N(value, APPROX_DIGITS)}"


def _format_expr(expr: Any, has_float: bool, approx: bool = True) -> str:
    """A result for display; numbers go through format_number unless `approx` is off (exact form)."""
    if not expr.free_symbols and (approx or has_float or expr.is_Rational):
        return format_number(expr, has_float)
    if expr.has(sympy.zoo, sympy.nan):
        raise _Refuse("undefined value")
    return str(expr)


def _sort_key(value: Any) -> tuple[Any, ...]:
    if value.free_symbols:
        return (1, sympy.default_sort_key(value))
    re_part, im_part = (float(part) for part in sympy.N(value, 15).as_real_imag())
    return (0, re_part, im_part)


_warmed_up = False


def _warm_up() -> None:
    """Run each sympy subsystem once (about 0.2 s, once per process).

    The first solve/integrate/simplify in a fresh process pays for lazy imports and cold caches
    (up to ~0.2 s for a trivial solve on a 2-core machine); paying that when the head is built
    keeps the first real question well inside the deadline.
    """
    global _warmed_up
    if _warmed_up:
        return
    x = sympy.Symbol("x")
    sympy.solve(x**2 + 1, x)
    sympy.factor(x**2 - 1)
    sympy.integrate(x * sympy.sin(x), x, manual=True)
    sympy.simplify(sympy.sin(x) ** 2 + sympy.cos(x) ** 2)
    continuous_domain(1 / x, x, sympy.Interval(1, 2))
    _warmed_up = True


# ---------------------------------------------------------------------------------------------
# The head


class MathHead(Head):
    """Exact arithmetic, algebra and calculus with sympy; abstains on anything that is not math."""

    name = "math"
    skill_type = "math"
    timeout_s = 2.0

    def __init__(self) -> None:
        _warm_up()

    def applies(self, prompt: str) -> bool:
        return len(prompt) <= MAX_PROMPT_CHARS and _APPLIES.search(prompt) is not None

    def answer(self, prompt: str, ctx: HeadContext) -> Ballot:
        started = time.perf_counter()
        if len(prompt) > MAX_PROMPT_CHARS:
            return self.abstain(started, "prompt too long for the math head")
        text = normalize(prompt)
        if not text:
            return self.abstain(started, "empty prompt")
        try:
            with _deadline(COMPUTE_DEADLINE_S):
                return self._dispatch(text, started)
        except _Refuse as refusal:
            return self.abstain(started, str(refusal))
        except _DeadlineExceeded:
            return self.abstain(started, f"gave up after {COMPUTE_DEADLINE_S}s")
        except _MATH_ERRORS as exc:  # see _MATH_ERRORS: malformed or unsupported input
            return self.abstain(started, f"{type(exc).__name__}: {exc}")

    # -- dispatch ---------------------------------------------------------------------------

    def _dispatch(self, text: str, started: float) -> Ballot:
        for pattern in _SOLVE_IF:
            match = pattern.match(text)
            if match:
                return self._solve(f"{match.group('eq')} for {match.group('var')}", started)
        for pattern, handler in (
            (_SOLVE, self._solve),
            (_FACTOR, self._factor),
            (_EXPAND, self._expand),
            (_SIMPLIFY, self._simplify),
            (_INTEGRAL, self._integral),
        ):
            match = pattern.match(text)
            if match:
                return handler(text[match.end() :], started)
        match = _DERIVATIVE.match(text)
        if match:
            order = _ORDINALS.get(match.group("ord") or "first", 1)
            return self._derivative(text[match.end() :], started, order, None)
        match = _D_DX.match(text)
        if match:
            return self._derivative(text[match.end() :], started, int(match.group("ord") or 1), match.group("var"))
        phrased = self._phrasings(text, started)
        if phrased is not None:
            return phrased
        match = _PERCENT_OF.match(text)
        if match:
            return self._percent_of(match, started)
        for pattern in _WHAT_PERCENT:
            match = pattern.match(text)
            if match:
                return self._what_percent(match, started)
        return self._evaluate(text, started)

    def _done(
        self,
        answer: str,
        started: float,
        confidence: float = 1.0,
        *,
        inputs: tuple[Parsed, ...],
        **evidence: Any,
    ) -> Ballot:
        """The ballot for a computed answer; `inputs` are the parsed expressions it rests on."""
        if not answer or len(answer) > MAX_ANSWER_CHARS:
            raise _Refuse("answer too long")
        if any(parsed.ambiguous for parsed in inputs):
            confidence = min(confidence, AMBIGUOUS_CONFIDENCE)
            evidence["ambiguous"] = "implicit multiplication right after '/'"
        return self.ballot(answer, confidence, started, result=answer, **evidence)

    # -- phrasings ---------------------------------------------------------------------------

    def _phrasings(self, text: str, started: float) -> Ballot | None:
        """The worded questions: gcd/lcm, primes, statistics of a list, remainders, "a third of 90",
        "multiply 12 by 12". None when the text is none of them."""
        match = _GCD.match(text)
        if match:
            return self._gcd(match, started)
        match = _STATS.match(text)
        if match:
            return self._stats(match, started)
        for pattern, handler in (
            (_IS_PRIME, self._is_prime),
            (_SMALLEST_PRIME, self._smallest_prime),
            (_NEXT_PRIME, self._next_prime),
            (_PREVIOUS_PRIME, self._previous_prime),
            (_PRIME_COUNT, self._prime_count),
            (_NTH_PRIME, self._nth_prime),
        ):
            match = pattern.match(text)
            if match:
                ballot = handler(match, started)
                if ballot is not None:
                    return ballot
        for pattern in _REMAINDER:
            match = pattern.match(text)
            if match:
                return self._remainder(match, started)
        match = _FRACTION_OF.match(text)
        if match:
            fraction = parse_fraction_words(match.group("frac"))
            if fraction is None:
                raise _Refuse(f"not a fraction: {match.group('frac')}")
            shown = f"{fraction.numerator}/{fraction.denominator}"
            return self._evaluate(f"({shown}) * ({match.group('base')})", started, task="fraction_of", fraction=shown)
        for pattern, template, task in _VERBAL:
            match = pattern.match(text)
            if match:
                operands = {name: match.group(name) for name in pattern.groupindex}
                return self._evaluate(template.format(**operands), started, task=task)
        return None

    @staticmethod
    def _numbers(text: str, *, integers: bool) -> list[Any]:
        """A list of numbers as exact sympy rationals: "3, 5 and 10", "[1, 2, 3]", "4 6 8"."""
        if re.search(r"\d,\d", text):
            raise _Refuse("ambiguous comma (a list, or a thousands separator?)")
        pieces = [p for p in re.split(r"\s*(?:,|;|&|\band\b|\s)\s*", text) if p]
        if len(pieces) > MAX_LIST:
            raise _Refuse("list too long")
        numbers = []
        for piece in pieces:
            if not re.fullmatch(r"[-+]?\d+(?:\.\d+)?", piece) or len(piece) > MAX_DIGITS:
                raise _Refuse(f"not a number: {piece}")
            value = sympy.Rational(piece)
            if integers and not value.is_Integer:
                raise _Refuse("integers only")
            numbers.append(value)
        return numbers

    def _gcd(self, match: re.Match[str], started: float) -> Ballot:
        numbers = [abs(int(n)) for n in self._numbers(match.group("args"), integers=True)]
        op = match.group("op")
        is_gcd = op in ("gcd", "gcf", "hcf") or op.startswith(("greatest", "highest"))
        value = sympy.igcd(*numbers) if is_gcd else sympy.ilcm(*numbers)
        task = "gcd" if is_gcd else "lcm"
        return self._done(str(value), started, inputs=(), task=task, numbers=[str(n) for n in numbers])

    def _stats(self, match: re.Match[str], started: float) -> Ballot:
        numbers = self._numbers(match.group("args"), integers=False)
        has_float = "." in match.group("args")
        stat = {"average": "mean", "avg": "mean", "total": "sum"}.get(match.group("stat"), match.group("stat"))
        if stat == "mean":
            value = sympy.Add(*numbers) / len(numbers)
        elif stat == "median":
            ordered = sorted(numbers)
            middle = len(ordered) // 2
            value = ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2
        elif stat == "mode":
            counts = Counter(numbers)
            top = max(counts.values())
            modes = [n for n, c in counts.items() if c == top]
            if top == 1 or len(modes) > 1:
                raise _Refuse("no single mode")
            value = modes[0]
        elif stat == "sum":
            value = sympy.Add(*numbers)
        elif stat == "product":
            if sum(_digits_of(n) for n in numbers) > MAX_DIGITS:
                raise _Refuse("numbers too large")
            value = sympy.Mul(*numbers)
        else:  # range
            value = max(numbers) - min(numbers)
        answer = str(value) if value.is_Integer else _decimal(value)
        evidence = {"task": stat, "numbers": [str(n) for n in numbers], "exact": str(value), "has_float": has_float}
        return self._done(answer, started, inputs=(), **evidence)

    def _is_prime(self, match: re.Match[str], started: float) -> Ballot:
        n = int(match.group("n"))
        if n >= MAX_PRIME_TEST:
            raise _Refuse("number too large to test for certain")
        prime = bool(sympy.isprime(n))
        evidence: dict[str, Any] = {"task": "is_prime", "n": str(n), "prime": prime}
        if not prime and n >= 4:
            evidence["factors"] = {str(p): k for p, k in sympy.factorint(n).items()} if n < MAX_FACTORINT else None
        return self._done("Yes" if prime else "No", started, inputs=(), **evidence)

    def _smallest_prime(self, match: re.Match[str], started: float) -> Ballot:
        return self._done("2", started, inputs=(), task="nth_prime", n=1)

    def _nth_prime(self, match: re.Match[str], started: float) -> Ballot | None:
        n = parse_ordinal(match.group("ord"))
        if n is None:
            return None  # "is 7 a prime", "largest prime": not an ordinal
        if not 1 <= n <= MAX_NTH_PRIME:
            raise _Refuse(f"only the 1st to {MAX_NTH_PRIME}th primes")
        return self._done(str(sympy.prime(n)), started, inputs=(), task="nth_prime", n=n)

    def _next_prime(self, match: re.Match[str], started: float) -> Ballot:
        n = int(match.group("n"))
        if n >= MAX_FACTORINT:
            raise _Refuse("number too large")
        return self._done(str(sympy.nextprime(n)), started, inputs=(), task="next_prime", n=str(n))

    def _previous_prime(self, match: re.Match[str], started: float) -> Ballot:
        n = int(match.group("n"))
        if n >= MAX_FACTORINT:
            raise _Refuse("number too large")
        if n <= 2:
            raise _Refuse("no prime below 2")
        return self._done(str(sympy.prevprime(n)), started, inputs=(), task="previous_prime", n=str(n))

    def _prime_count(self, match: re.Match[str], started: float) -> Ballot:
        a = int(match.group("a"))
        b = int(match.group("b")) if match.group("b") else None
        if max(a, b or 0) > MAX_PRIME_COUNT:
            raise _Refuse(f"counts only up to {MAX_PRIME_COUNT}")
        if match.group("between"):
            if b is None:
                raise _Refuse("between what?")
            low, high = sorted((a, b))
            inclusive = sympy.primepi(high) - sympy.primepi(low - 1)
            exclusive = sympy.primepi(high - 1) - sympy.primepi(low)
            confidence = 1.0 if inclusive == exclusive else AMBIGUOUS_CONFIDENCE
            evidence: dict[str, Any] = {"task": "prime_count", "low": low, "high": high}
            if inclusive != exclusive:
                evidence["readings"] = {"inclusive": int(inclusive), "exclusive": int(exclusive)}
            return self._done(str(inclusive), started, confidence, inputs=(), **evidence)
        if b is not None:
            raise _Refuse("two bounds without 'between'")
        count = sympy.primepi(a - 1 if match.group("below") else a) if a > 0 else 0
        return self._done(str(count), started, inputs=(), task="prime_count", bound=a,
                          inclusive=not match.group("below"))  # fmt: skip

    def _remainder(self, match: re.Match[str], started: float) -> Ballot:
        a, b = int(match.group("a")), int(match.group("b"))
        if a < 0 or b < 0:
            raise _Refuse("the remainder of a negative number depends on the convention")
        if b == 0:
            raise _Refuse("division by zero")
        if len(match.group("a")) > MAX_DIGITS or len(match.group("b")) > MAX_DIGITS:
            raise _Refuse("numbers too large")
        return self._done(str(a % b), started, inputs=(), task="remainder", dividend=str(a), divisor=str(b),
                          quotient=str(a // b))  # fmt: skip

    # -- arithmetic -------------------------------------------------------------------------

    def _evaluate(self, text: str, started: float, task: str = "evaluate", **evidence: Any) -> Ballot:
        text = re.sub(r"(?<=\d)\s*x\s*(?=\d)", " * ", text)  # "7 x 8" means times
        parsed = parse_math(text)
        if parsed.expr.free_symbols:
            raise _Refuse("not arithmetic (free symbols and no task)")
        if parsed.trivial:
            raise _Refuse("nothing to compute")
        answer = format_number(parsed.expr, parsed.has_float)
        return self._done(answer, started, inputs=(parsed,), task=task, input=text, expr=str(parsed.expr),
                          **evidence)  # fmt: skip

    def _percent_of(self, match: re.Match[str], started: float) -> Ballot:
        percent = sympy.Rational(match.group("p"))
        base = parse_math(match.group("base"))
        if base.expr.free_symbols:
            raise _Refuse("percentage of a symbolic expression")
        value = percent / 100 * base.expr
        answer = str(value) if value.is_Integer else _decimal(value)
        return self._done(
            answer,
            started,
            inputs=(base,),
            task="percent",
            percent=str(percent),
            base=str(base.expr),
            expr=f"{match.group('p')} / 100 * ({base.expr})",
        )

    def _what_percent(self, match: re.Match[str], started: float) -> Ballot:
        part, whole = parse_math(match.group("a")), parse_math(match.group("b"))
        if part.expr.free_symbols or whole.expr.free_symbols:
            raise _Refuse("percentage of a symbolic expression")
        if whole.expr == 0:
            raise _Refuse("percentage of zero")
        value = part.expr / whole.expr * 100
        answer = (str(value) if value.is_Integer else _decimal(value)) + "%"
        return self._done(
            answer,
            started,
            inputs=(part, whole),
            task="percent_of_whole",
            part=str(part.expr),
            whole=str(whole.expr),
            expr=f"{part.expr}/{whole.expr} * 100",
        )

    # -- algebra ----------------------------------------------------------------------------

    def _factor(self, text: str, started: float) -> Ballot:
        parsed = parse_math(text)
        expr = parsed.expr
        if not expr.free_symbols:
            if not (expr.is_Integer and 2 <= expr < MAX_FACTORINT):
                raise _Refuse("only integers 2..10**15 can be factored")
            factors = sympy.factorint(expr)
            answer = " * ".join(str(p) if k == 1 else f"{p}**{k}" for p, k in sorted(factors.items()))
            return self._done(
                answer,
                started,
                inputs=(parsed,),
                task="factorint",
                expr=str(expr),
                prime=factors == {int(expr): 1},
            )
        result = sympy.factor(expr)
        answer = _format_expr(result, parsed.has_float)
        return self._done(answer, started, inputs=(parsed,), task="factor", expr=str(expr))

    def _expand(self, text: str, started: float) -> Ballot:
        parsed = parse_math(text)
        result = sympy.expand(parsed.expr)
        answer = _format_expr(result, parsed.has_float)
        return self._done(answer, started, inputs=(parsed,), task="expand", expr=str(parsed.expr))

    def _simplify(self, text: str, started: float) -> Ballot:
        parsed = parse_math(text)
        result = sympy.simplify(parsed.expr)
        answer = _format_expr(result, parsed.has_float)
        return self._done(answer, started, inputs=(parsed,), task="simplify", expr=str(parsed.expr))

    def _solve(self, text: str, started: float) -> Ballot:
        var_name = None
        match = _FOR_VAR_PREFIX.match(text) or _FOR_VAR_SUFFIX.search(text)
        if match:
            var_name = match.group("var")
            text = text[match.end() :] if match.start() == 0 else text[: match.start()]
        sides = text.split("=")
        if len(sides) > 2:
            raise _Refuse("more than one '=' (systems are not supported)")
        lhs = parse_math(sides[0])
        rhs = parse_math(sides[1]) if len(sides) == 2 else Parsed(sympy.Integer(0), False, True)
        has_float = lhs.has_float or rhs.has_float
        expr = lhs.expr - rhs.expr
        var = self._variable(expr, var_name)
        if var is None:
            raise _Refuse("no unknown to solve for" if not expr.free_symbols else "which variable?")
        if expr.free_symbols and var not in expr.free_symbols:
            raise _Refuse(f"{var} is not in the equation")
        numer, denom = sympy.fraction(sympy.together(expr))
        if not numer.is_polynomial(var) or not denom.is_polynomial(var):
            raise _Refuse("only polynomial and rational equations are solved")
        if numer.free_symbols - {var} and sympy.degree(numer, var) > 2:
            raise _Refuse("symbolic coefficients above degree 2")
        if numer == 0:
            if denom.free_symbols:
                raise _Refuse("identity with excluded points")
            answer = f"all {var}"
        elif sympy.degree(numer, var) > MAX_SOLVE_DEGREE:
            raise _Refuse(f"degree above {MAX_SOLVE_DEGREE}")
        else:
            solutions = sympy.solve(expr, var)
            if any(s.has(sympy.RootOf) for s in solutions):
                raise _Refuse("roots have no closed form")
            solutions = sorted(solutions, key=_sort_key)
            parts = [f"{var} = {_format_expr(s, has_float, approx=False)}" for s in solutions]
            if any(len(part) > MAX_SOLUTION_CHARS for part in parts):
                raise _Refuse("roots have no compact closed form")
            answer = ", ".join(parts) if parts else "no solution"
        return self._done(
            answer,
            started,
            inputs=(lhs, rhs),
            task="solve",
            equation=f"{lhs.expr} = {rhs.expr}",
            variable=str(var),
            expr=str(expr),
        )

    @staticmethod
    def _variable(expr: Any, name: str | None) -> Any:
        """The unknown: the named one, else the only free symbol; None when there is no clear one."""
        if name is not None:
            return sympy.Symbol(name)
        symbols = expr.free_symbols
        return next(iter(symbols)) if len(symbols) == 1 else None

    # -- calculus ---------------------------------------------------------------------------

    def _calculus_variable(self, expr: Any, name: str | None) -> tuple[Any, float]:
        """The variable and the confidence: x is assumed (at 0.8) when several symbols appear."""
        if name is not None:
            return sympy.Symbol(name), 1.0
        symbols = expr.free_symbols
        if not symbols:
            return sympy.Symbol("x"), 1.0
        if len(symbols) == 1:
            return next(iter(symbols)), 1.0
        if sympy.Symbol("x") in symbols:
            return sympy.Symbol("x"), 0.8
        raise _Refuse("which variable?")

    def _derivative(self, text: str, started: float, order: int, var_name: str | None) -> Ballot:
        match = _WRT.search(text)
        if match:
            var_name = match.group("var")
            text = text[: match.start()]
        parsed = parse_math(text)
        var, confidence = self._calculus_variable(parsed.expr, var_name)
        result = sympy.diff(parsed.expr, var, order)
        return self._done(
            _format_expr(result, parsed.has_float),
            started,
            confidence,
            inputs=(parsed,),
            task="derivative",
            expr=str(parsed.expr),
            variable=str(var),
            order=order,
        )

    def _integral(self, text: str, started: float) -> Ballot:
        var_name: str | None = None
        bounds: tuple[str, str] | None = None
        for _ in range(3):  # "x^2 dx from 0 to 1", "x^2 from 0 to 1 dx", "x^2 dx with respect to x"
            bound_match = _BOUNDS.search(text)
            if bound_match and bounds is None:
                bounds = (bound_match.group("a"), bound_match.group("b"))
                text = text[: bound_match.start()]
            var_match = _DVAR.search(text) or _WRT.search(text)
            if var_match and var_name is None:
                var_name = var_match.group("var")
                text = text[: var_match.start()]
        parsed = parse_math(text)
        expr = parsed.expr
        var, confidence = self._calculus_variable(expr, var_name)
        if bounds is None:
            result = sympy.integrate(expr, var, manual=True)
            if result.has(sympy.Integral):
                raise _Refuse("no elementary antiderivative found")
            answer = f"{_format_expr(result, parsed.has_float)} + C"
            return self._done(
                answer,
                started,
                confidence,
                inputs=(parsed,),
                task="integral",
                expr=str(expr),
                variable=str(var),
                antiderivative=str(result),
                constant="C",
            )
        low, high = (self._limit(b) for b in bounds)
        interval = sympy.Interval(sympy.Min(low, high), sympy.Max(low, high))
        if continuous_domain(expr, var, interval) != interval:
            raise _Refuse("integrand not continuous on the interval")
        result = sympy.integrate(expr, (var, low, high), manual=True)
        if result.has(sympy.Integral) or result.has(sympy.oo, -sympy.oo, sympy.zoo, sympy.nan):
            raise _Refuse("integral not found or divergent")
        answer = _format_expr(result, parsed.has_float)
        return self._done(
            answer,
            started,
            confidence,
            inputs=(parsed,),
            task="definite_integral",
            expr=str(expr),
            variable=str(var),
            lower=str(low),
            upper=str(high),
        )

    @staticmethod
    def _limit(text: str) -> Any:
        text = text.strip()
        if text in _INFINITY:
            return _INFINITY[text]
        parsed = parse_math(text)
        if parsed.expr.free_symbols:
            raise _Refuse("symbolic integration limit")
        return parsed.expr
