#!/usr/bin/env python3
"""Generate bench/data/titanic_v1.yaml: 380 items, deterministic (fixed seed).

Usage: python -m bench.titanic.generate [--out bench/data/titanic_v1.yaml] [--check]
  --check: regenerate in memory and fail if the committed file differs.

Arithmetic, algebra and multi-step reasoning items are generated from templates with
random.Random(SEED); each carries a `check` that tests/bench/test_data.py verifies with sympy.
The other categories are written out by hand below. Categories and sizes:

  chat 40, arithmetic 60, algebra 50, code 40, factual 60, reasoning 40, stub_trap 30, paraphrase 60
"""

from __future__ import annotations

import argparse
import math
import random
import sys
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from typing import Any

import sympy
import yaml

VERSION = "titanic_v1"
SEED = 20261123
OUT = Path(__file__).resolve().parent.parent / "data" / "titanic_v1.yaml"

Item = dict[str, Any]


def item(category: str, n: int, prompt: str, reference: str, scorer: str, args: dict[str, Any] | None = None,
         **extra: Any) -> Item:  # fmt: skip
    out: Item = {"id": f"{category}-{n:03d}", "category": category, "prompt": prompt, "reference": reference,
                 "scorer": scorer, "args": args or {}}  # fmt: skip
    out.update({k: v for k, v in extra.items() if v is not None})
    return out


def decimal_text(value: Fraction) -> str:
    """An exact decimal for a fraction whose denominator has only 2s and 5s, else 9 decimals."""
    den = value.denominator
    for p in (2, 5):
        while den % p == 0:
            den //= p
    exact = den == 1
    text = format(Decimal(value.numerator) / Decimal(value.denominator), "f") if exact else f"{float(value):.9f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text


def signed(value: int, *, first: bool = False) -> str:
    if first:
        return str(value)
    return f"+ {value}" if value >= 0 else f"- {-value}"


def poly_text(coeffs: dict[int, int]) -> str:
    """{2: 3, 1: -4, 0: 7} -> '3x^2 - 4x + 7'."""
    parts = []
    for power in sorted(coeffs, reverse=True):
        c = coeffs[power]
        if c == 0:
            continue
        mag = abs(c)
        body = ("" if mag == 1 and power else str(mag)) + ("x" if power >= 1 else "")
        body += f"^{power}" if power > 1 else ""
        if not parts:
            parts.append(("-" if c < 0 else "") + body)
        else:
            parts.append(("- " if c < 0 else "+ ") + body)
    return " ".join(parts)


def poly_sympy(coeffs: dict[int, int]) -> str:
    return " + ".join(f"({c})*x**{p}" for p, c in sorted(coeffs.items(), reverse=True) if c)


# --- chat ----------------------------------------------------------------------------------------

GREET = r"\b(hello|hi|hey|greetings|good (morning|afternoon|evening|day)|howdy|welcome|how can i (help|assist))\b"
WELL = r"\b(fine|well|good|great|doing|thanks|thank you|help)\b"
SELF = r"\b(swarm|assistant|ai|language model|chatbot)\b"  # names itself as what it is: "I'm Dr. Elena Zephyra" fails
BYE = r"\b(bye|goodbye|see you|take care|farewell|later|have a (great|nice|good))\b"
THANKS = r"\b(welcome|no problem|my pleasure|anytime|glad)\b"
SUBSTANTIAL = r"^(?!\s*UNSURE\s*$)[\s\S]{10,}"

CHAT: list[tuple[str, str, str]] = [
    ("hi", "Hello! How can I help you today?", GREET),
    ("hello", "Hello! What can I do for you?", GREET),
    ("hey there", "Hey! How can I help?", GREET),
    ("good morning", "Good morning! How can I help you today?", GREET),
    ("good evening", "Good evening! What can I do for you?", GREET),
    ("howdy", "Howdy! How can I help?", GREET),
    ("greetings", "Greetings! How can I help you?", GREET),
    ("hello everyone", "Hello! How can I help you all today?", GREET),
    ("how are you?", "I'm doing well, thank you! How can I help you today?", WELL),
    ("how's it going?", "It's going well, thanks! How can I help?", WELL),
    ("what's up?", "Not much, I'm here and ready to help. What do you need?", WELL),
    ("who are you?", "I'm Swarm, an AI assistant. How can I help?", SELF),
    ("what is your name?", "My name is Swarm, and I'm an assistant.", SELF),
    ("tell me about yourself", "I'm Swarm, an assistant that answers questions, does math and writes code.", SELF),
    ("nice to meet you", "Nice to meet you too! How can I help?", r"\b(nice|pleasure|glad|meet|hello|hi)\b"),
    ("tell me a joke", "Why don't scientists trust atoms? Because they make up everything!", SUBSTANTIAL),
    ("bye", "Goodbye! Have a great day.", BYE),
    ("goodbye", "Goodbye! Take care.", BYE),
    ("see you", "See you later! Take care.", BYE),
    ("good night", "Good night! Sleep well.", r"\b(good ?night|sleep|rest|sweet dreams|bye|night)\b"),
    ("thanks!", "You're welcome!", THANKS),
    ("thank you so much", "You're very welcome!", THANKS),
    ("thanks a lot", "You're welcome! Happy to help.", THANKS),
    ("many thanks", "You're welcome!", THANKS),
    (
        "I'm feeling a bit tired today.",
        "Sorry to hear that. Try to rest, drink some water and take a short break.",
        r"\b(rest|sleep|break|sorry|hope|water|relax|tired|nap)\b",
    ),
    (
        "Can you recommend a good book to read?",
        "Try 'To Kill a Mockingbird' by Harper Lee: a moving classic.",
        r"\b(book|novel|read|author|recommend|try)\b",
    ),
    (
        "What's a good way to start learning to program?",
        "Start with Python: follow a beginner tutorial, write small programs every day and build a tiny project.",
        r"\b(python|practi[cs]e|tutorial|course|project|start|beginner|code|coding)\b",
    ),
    ("Give me a fun fact.", "Octopuses have three hearts and blue blood.", SUBSTANTIAL),
    (
        "I just got a new puppy!",
        "Congratulations! Puppies are great fun. Have you picked a name yet?",
        r"\b(congrat\w*|great|wonderful|exciting|fun|puppy|dog|name|lovely|cute|adorable)\b",
    ),
    ("Can you help me?", "Of course! What do you need help with?", r"\b(yes|sure|of course|help|happy to|what)\b"),
    (
        "I'm bored. Any ideas?",
        "Go for a walk, read a book, cook something new or call a friend.",
        r"\b(walk|read|book|game|learn|try|music|movie|friend|cook|draw|idea|hobby|play)\w*\b",
    ),
    ("Say something nice.", "You are doing great, and your curiosity is a wonderful thing.", SUBSTANTIAL),
    (
        "What can you do?",
        "I can answer questions, do math, write code and chat with you.",
        r"\b(answer|help|question|math|code|write|chat|assist)\w*\b",
    ),
    (
        "Do you like music?",
        "I don't have feelings, but many people love music. What do you like to listen to?",
        r"\b(music|song|listen|like|love|enjoy)\w*\b",
    ),
    ("Have a nice day!", "Thank you, you too!", r"\b(thank|you too|same|nice|great|day)\w*\b"),
    ("hello, how are you?", "Hello! I'm doing well, thanks. How can I help?", GREET + "|" + WELL),
    ("Good afternoon!", "Good afternoon! How can I help?", GREET),
    ("hey", "Hey! What can I do for you?", GREET),
    ("yo", "Hey! What's up?", GREET + r"|\b(yo|what's up|sup)\b"),
    ("hi swarm", "Hi! How can I help you today?", GREET),
]


def chat_items() -> list[Item]:
    return [item("chat", i, p, ref, "regex", {"pattern": pat, "flags": "i"}) for i, (p, ref, pat) in
            enumerate(CHAT, 1)]  # fmt: skip


# --- arithmetic ----------------------------------------------------------------------------------


def arithmetic_items(rng: random.Random) -> list[Item]:
    out: list[Item] = []

    def add(prompt: str, value: Fraction, check: str, tol: float = 1e-6) -> None:
        ref = decimal_text(value)
        out.append(item("arithmetic", len(out) + 1, prompt, ref, "numeric", {"tol": tol},
                        check={"expr": check, "value": ref}))  # fmt: skip

    for _ in range(5):
        a, b = rng.randint(12, 999), rng.randint(12, 999)
        add(f"What is {a} * {b}?", Fraction(a * b), f"{a}*{b}")
    for _ in range(5):
        a, b = rng.randint(100, 99999), rng.randint(100, 99999)
        add(f"What is {a} + {b}?", Fraction(a + b), f"{a}+{b}")
    for _ in range(5):
        a, b = rng.randint(10, 999), rng.randint(10, 1999)
        add(f"What is {a} - {b}?", Fraction(a - b), f"{a}-{b}")
    for _ in range(5):
        b, q = rng.randint(2, 30), rng.randint(2, 99)
        add(f"What is {b * q} divided by {b}?", Fraction(q), f"{b * q}/{b}")
    for _ in range(5):
        p = rng.choice(["5", "10", "12.5", "15", "20", "25", "30", "40", "75"])
        n = rng.randint(2, 200) * 4
        add(f"What is {p}% of {n}?", Fraction(p) / 100 * n, f"Rational('{p}')/100*{n}")
    for _ in range(5):
        a, k = rng.randint(2, 12), rng.randint(2, 5)
        add(f"What is {a}^{k}?", Fraction(a**k), f"{a}**{k}")
    for _ in range(5):
        a, b, c, d = rng.randint(2, 50), rng.randint(2, 50), rng.randint(2, 12), rng.randint(1, 99)
        add(f"Compute ({a} + {b}) * {c} - {d}.", Fraction((a + b) * c - d), f"({a}+{b})*{c}-{d}")
    for _ in range(5):
        a, b = rng.randint(2, 99), rng.randint(2, 99)
        add(f"What is {a} times {b}?", Fraction(a * b), f"{a}*{b}")
    for _ in range(5):
        x, y = Fraction(rng.randint(100, 9999), 100), Fraction(rng.randint(100, 9999), 100)
        xs, ys = decimal_text(x), decimal_text(y)
        add(f"What is {xs} + {ys}?", x + y, f"Rational('{xs}')+Rational('{ys}')", tol=1e-6)
    for _ in range(5):
        n = rng.randint(11, 99)
        add(f"What is the square root of {n * n}?", Fraction(n), f"sqrt({n * n})")
    for _ in range(5):
        a, b = rng.randint(50, 999), rng.randint(3, 19)
        add(f"What is the remainder when {a} is divided by {b}?", Fraction(a % b), f"Mod({a},{b})")
    for _ in range(5):
        b = rng.choice([8, 20, 25, 40, 50, 80, 200, 400])
        a = rng.randint(1, b - 1)
        add(f"{a} is what percent of {b}?", Fraction(a, b) * 100, f"Rational({a},{b})*100")
    return out


# --- algebra -------------------------------------------------------------------------------------


def algebra_items(rng: random.Random) -> list[Item]:
    x = sympy.Symbol("x")
    out: list[Item] = []

    def add(prompt: str, ref: str, scorer: str, args: dict[str, Any], check: dict[str, Any]) -> None:
        out.append(item("algebra", len(out) + 1, prompt, ref, scorer, args, check=check))

    for _ in range(10):  # linear equations with an integer solution
        a, sol = rng.randint(2, 9), rng.choice([v for v in range(-10, 11) if v])
        b = rng.choice([v for v in range(-20, 21) if v])
        c = a * sol + b
        add(f"Solve {a}x {signed(b)} = {c}", f"x = {sol}", "solutions", {"values": [sol], "var": "x"},
            {"task": "solve", "lhs": f"{a}*x + ({b})", "rhs": str(c), "var": "x"})  # fmt: skip
    for _ in range(10):  # monic quadratics with two distinct integer roots
        r1, r2 = rng.sample([v for v in range(-9, 10) if v], 2)
        s, p = r1 + r2, r1 * r2
        ref = ", ".join(f"x = {r}" for r in sorted((r1, r2)))
        add(f"Solve {poly_text({2: 1, 1: -s, 0: p})} = 0", ref, "solutions", {"values": sorted([r1, r2]), "var": "x"},
            {"task": "solve", "lhs": f"x**2 - ({s})*x + ({p})", "rhs": "0", "var": "x"})  # fmt: skip
    for _ in range(8):  # factor (x - r1)(x - r2) or a*(...)
        r1, r2 = rng.sample([v for v in range(-9, 10) if v], 2)
        k = rng.choice([1, 1, 2, 3])
        poly = sympy.expand(k * (x - r1) * (x - r2))
        coeffs = {int(m[0]): int(c) for m, c in sympy.Poly(poly, x).terms()}
        ref = str(sympy.factor(poly))
        add(f"Factor {poly_text(coeffs)}", ref, "expr", {"var": "x", "form": "factored"},
            {"task": "factor", "expr": str(poly), "var": "x"})  # fmt: skip
    for _ in range(8):  # expand (a x + b)(x + c)
        a, b, c = (
            rng.randint(1, 4),
            rng.choice([v for v in range(-9, 10) if v]),
            rng.choice([v for v in range(-9, 10) if v]),
        )
        first = f"{'' if a == 1 else a}x {signed(b)}"
        prompt = f"Expand ({first})(x {signed(c)})"
        expr = (a * x + b) * (x + c)
        add(prompt, str(sympy.expand(expr)), "expr", {"var": "x", "form": "expanded"},
            {"task": "expand", "expr": f"({a}*x + ({b}))*(x + ({c}))", "var": "x"})  # fmt: skip
    for _ in range(7):  # derivatives of polynomials
        coeffs = {3: rng.randint(-5, 5) or 1, 2: rng.randint(-9, 9), 1: rng.randint(-9, 9), 0: rng.randint(-9, 9)}
        expr = sympy.sympify(poly_sympy(coeffs))
        add(f"What is the derivative of {poly_text(coeffs)}?", str(sympy.diff(expr, x)), "expr", {"var": "x"},
            {"task": "derivative", "expr": str(expr), "var": "x"})  # fmt: skip
    for _ in range(7):  # antiderivatives of polynomials with coefficients that integrate to integers
        c2, c1, c0 = 3 * rng.randint(1, 4), 2 * rng.randint(-4, 4), rng.randint(-9, 9)
        coeffs = {2: c2, 1: c1, 0: c0}
        expr = sympy.sympify(poly_sympy(coeffs))
        ref = f"{sympy.integrate(expr, x)} + C"
        add(f"Integrate {poly_text(coeffs)}", ref, "expr", {"var": "x", "constant": True},
            {"task": "integral", "expr": str(expr), "var": "x"})  # fmt: skip
    return out


# --- reasoning -----------------------------------------------------------------------------------


def _s(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def reasoning_items(rng: random.Random) -> list[Item]:
    """Ten word-problem templates, four distinct items each."""
    out: list[Item] = []

    def pen() -> tuple[str, Fraction, str]:
        a, b = rng.randint(2, 9), rng.randint(2, 6)
        c = 20 if a * b < 20 else 50
        return (f"A pen costs ${a}. Sam buys {b} pens and pays with a ${c} bill. How much change does he get, "
                "in dollars?", Fraction(c - a * b), f"{c} - {a}*{b}")  # fmt: skip

    def train() -> tuple[str, Fraction, str]:
        s1, h1, s2, h2 = rng.randrange(40, 95, 5), rng.randint(1, 4), rng.randrange(40, 95, 5), rng.randint(1, 4)
        return (
            f"A train travels at {s1} km/h for {_s(h1, 'hour')} and then at {s2} km/h for {_s(h2, 'hour')}. "
            "How many kilometres does it travel in total?",
            Fraction(s1 * h1 + s2 * h2),
            f"{s1}*{h1} + {s2}*{h2}",
        )

    def apples() -> tuple[str, Fraction, str]:
        a = rng.randint(10, 30)
        b, c, d = rng.randint(1, a - 1), rng.randint(2, 5), rng.randint(3, 8)
        return (
            f"Anna has {a} apples. She gives {b} to her brother, then buys {c} bags with {d} apples in each "
            "bag. How many apples does she have now?",
            Fraction(a - b + c * d),
            f"{a} - {b} + {c}*{d}",
        )

    def rectangle() -> tuple[str, Fraction, str]:
        w = rng.randint(2, 10)
        length = rng.randint(w + 1, 20)
        perimeter = 2 * (length + w)
        return (
            f"A rectangle has a perimeter of {perimeter} cm and a width of {w} cm. What is its area in square "
            "centimetres?",
            Fraction(length * w),
            f"({perimeter}/2 - {w})*{w}",
        )

    def jacket() -> tuple[str, Fraction, str]:
        p, d, t = rng.choice([40, 60, 80, 120, 200, 250]), rng.choice([10, 20, 25, 50]), rng.choice([5, 10, 20])
        return (f"A jacket costs ${p}. It is discounted by {d}%, and then a {t}% sales tax is added to the "
                "discounted price. What is the final price in dollars?", Fraction(p * (100 - d) * (100 + t), 10000),
                f"{p}*(100-{d})/100*(100+{t})/100")  # fmt: skip

    def tank() -> tuple[str, Fraction, str]:
        r2 = rng.randint(1, 5)
        r1 = r2 + rng.randint(2, 8)
        minutes = rng.randint(5, 30)
        volume = (r1 - r2) * minutes
        return (f"A tank holds {volume} litres. Water flows in at {r1} litres per minute while it drains at "
                f"{_s(r2, 'litre')} per minute. Starting empty, how many minutes does it take to fill the tank?",
                Fraction(minutes), f"{volume}/({r1}-{r2})")  # fmt: skip

    def workers() -> tuple[str, Fraction, str]:
        w1, w2 = rng.sample(range(2, 10), 2)
        d1 = w2 // math.gcd(w1, w2) * rng.randint(1, 4)  # so that w1 * d1 / w2 is a whole number of days
        return (
            f"{w1} workers can build a wall in {_s(d1, 'day')}. How many days would {w2} workers need to build "
            "the same wall, working at the same rate?",
            Fraction(w1 * d1, w2),
            f"{w1}*{d1}/{w2}",
        )

    def ages() -> tuple[str, Fraction, str]:
        a, b, c = rng.randint(5, 15), rng.randint(1, 5), rng.randint(1, 10)
        return (
            f"Tom is {a} years old. His sister's age is {_s(b, 'year')} less than twice Tom's age. "
            f"How old will his sister be in {_s(c, 'year')}?",
            Fraction(2 * a - b + c),
            f"2*{a} - {b} + {c}",
        )

    def average() -> tuple[str, Fraction, str]:
        m = rng.randint(20, 50)
        a, b, c = rng.randint(1, m), rng.randint(1, m), rng.randint(1, m)
        return (
            f"The average of four numbers is {m}. Three of the numbers are {a}, {b} and {c}. "
            "What is the fourth number?",
            Fraction(4 * m - a - b - c),
            f"4*{m} - {a} - {b} - {c}",
        )

    def recipe() -> tuple[str, Fraction, str]:
        n = rng.choice([6, 8, 10, 12, 20, 24])
        per = rng.randint(5, 30)
        k = n * rng.choice([1, 3, 4, 5, 6]) // 2
        return (
            f"A recipe uses {per * n} grams of flour to make {n} cookies. How many grams of flour are needed "
            f"for {k} cookies?",
            Fraction(per * n * k, n),
            f"{per * n}*{k}/{n}",
        )

    seen: set[str] = set()
    for template in (pen, train, apples, rectangle, jacket, tank, workers, ages, average, recipe):
        made = 0
        while made < 4:
            prompt, value, check = template()
            if prompt in seen:
                continue
            seen.add(prompt)
            made += 1
            ref = decimal_text(value)
            out.append(item("reasoning", len(out) + 1, prompt, ref, "numeric", {"tol": 0.01},
                            check={"expr": check, "value": ref}))  # fmt: skip
    return out


# --- code ----------------------------------------------------------------------------------------

CODE: list[tuple[str, str, str]] = [
    (
        "Write a python function add(a, b) that returns the sum of a and b. For example add(2, 3) -> 5.",
        "def add(a, b):\n    return a + b",
        "assert add(2, 3) == 5\nassert add(-1, 1) == 0\nassert add(0, 0) == 0\nassert add(1.5, 2) == 3.5",
    ),
    (
        "Write a python function is_even(n) that returns True when the integer n is even. For example is_even(4) -> "
        "True.",
        "def is_even(n):\n    return n % 2 == 0",
        "assert is_even(4) is True\nassert is_even(7) is False\nassert is_even(0) is True\nassert is_even(-3) is False",
    ),
    (
        "Write a python function factorial(n) that returns n! for n >= 0. For example factorial(5) -> 120.",
        "def factorial(n):\n    result = 1\n    for i in range(2, n + 1):\n        result *= i\n    return result",
        "assert factorial(5) == 120\nassert factorial(0) == 1\nassert factorial(1) == 1\n"
        "assert factorial(10) == 3628800",
    ),
    (
        "Write a python function reverse_string(s) that returns s reversed. For example reverse_string('abc') -> "
        "'cba'.",
        "def reverse_string(s):\n    return s[::-1]",
        "assert reverse_string('abc') == 'cba'\nassert reverse_string('') == ''\nassert reverse_string('a') == 'a'\n"
        "assert reverse_string('hello world') == 'dlrow olleh'",
    ),
    (
        "Write a python function fibonacci(n) that returns the n-th Fibonacci number, with fibonacci(0) = 0 and "
        "fibonacci(1) = 1. For example fibonacci(10) -> 55.",
        "def fibonacci(n):\n    a, b = 0, 1\n    for _ in range(n):\n        a, b = b, a + b\n    return a",
        "assert fibonacci(0) == 0\nassert fibonacci(1) == 1\nassert fibonacci(2) == 1\nassert fibonacci(10) == 55\n"
        "assert fibonacci(20) == 6765",
    ),
    (
        "Write a python function is_palindrome(s) that returns True when the string s reads the same backwards. "
        "For example is_palindrome('racecar') -> True.",
        "def is_palindrome(s):\n    return s == s[::-1]",
        "assert is_palindrome('racecar') is True\nassert is_palindrome('hello') is False\n"
        "assert is_palindrome('') is True\n"
        "assert is_palindrome('abba') is True",
    ),
    (
        "Write a python function count_vowels(s) that returns how many vowels (a, e, i, o, u, any case) are in s. "
        "For example count_vowels('hello world') -> 3.",
        "def count_vowels(s):\n    return sum(1 for ch in s.lower() if ch in 'aeiou')",
        "assert count_vowels('hello world') == 3\nassert count_vowels('AEIOU') == 5\nassert count_vowels('xyz') == 0\n"
        "assert count_vowels('') == 0",
    ),
    (
        "Write a python function max_of_list(xs) that returns the largest number in a non-empty list. "
        "For example max_of_list([3, 9, 2]) -> 9.",
        "def max_of_list(xs):\n    best = xs[0]\n    for x in xs[1:]:\n        if x > best:\n"
        "            best = x\n    return best",
        "assert max_of_list([3, 9, 2]) == 9\nassert max_of_list([-5, -2, -9]) == -2\nassert max_of_list([7]) == 7",
    ),
    (
        "Write a python function celsius_to_fahrenheit(c) that converts degrees Celsius to Fahrenheit. "
        "For example celsius_to_fahrenheit(100) -> 212.",
        "def celsius_to_fahrenheit(c):\n    return c * 9 / 5 + 32",
        "assert celsius_to_fahrenheit(100) == 212\nassert celsius_to_fahrenheit(0) == 32\n"
        "assert celsius_to_fahrenheit(-40) == -40\nassert abs(celsius_to_fahrenheit(37) - 98.6) < 1e-9",
    ),
    (
        "Write a python function gcd(a, b) that returns the greatest common divisor of two positive integers. "
        "For example gcd(12, 18) -> 6.",
        "def gcd(a, b):\n    while b:\n        a, b = b, a % b\n    return a",
        "assert gcd(12, 18) == 6\nassert gcd(17, 5) == 1\nassert gcd(100, 75) == 25\nassert gcd(7, 7) == 7",
    ),
    (
        "Write a python function is_prime(n) that returns True when the integer n is a prime number. "
        "For example is_prime(7) -> True.",
        "def is_prime(n):\n    if n < 2:\n        return False\n    i = 2\n    while i * i <= n:\n"
        "        if n % i == 0:\n"
        "            return False\n        i += 1\n    return True",
        "assert is_prime(7) is True\nassert is_prime(1) is False\nassert is_prime(2) is True\n"
        "assert is_prime(9) is False\n"
        "assert is_prime(97) is True\nassert is_prime(0) is False",
    ),
    (
        "Write a python function sum_of_digits(n) that returns the sum of the decimal digits of a non-negative "
        "integer. "
        "For example sum_of_digits(1234) -> 10.",
        "def sum_of_digits(n):\n    return sum(int(d) for d in str(n))",
        "assert sum_of_digits(1234) == 10\nassert sum_of_digits(0) == 0\nassert sum_of_digits(9999) == 36",
    ),
    (
        "Write a python function flatten(lists) that joins a list of lists into one list. "
        "For example flatten([[1, 2], [3], []]) -> [1, 2, 3].",
        "def flatten(lists):\n    return [x for sub in lists for x in sub]",
        "assert flatten([[1, 2], [3], []]) == [1, 2, 3]\nassert flatten([]) == []\n"
        "assert flatten([['a'], ['b', 'c']]) == "
        "['a', 'b', 'c']",
    ),
    (
        "Write a python function unique_sorted(xs) that returns the distinct values of xs in ascending order. "
        "For example unique_sorted([3, 1, 3, 2]) -> [1, 2, 3].",
        "def unique_sorted(xs):\n    return sorted(set(xs))",
        "assert unique_sorted([3, 1, 3, 2]) == [1, 2, 3]\nassert unique_sorted([]) == []\n"
        "assert unique_sorted([5, 5]) == [5]",
    ),
    (
        "Write a python function word_count(s) that returns the number of whitespace-separated words in s. "
        "For example word_count('the quick brown fox') -> 4.",
        "def word_count(s):\n    return len(s.split())",
        "assert word_count('the quick brown fox') == 4\nassert word_count('') == 0\nassert word_count('  a  b ') == 2",
    ),
    (
        "Write a python function capitalize_words(s) that capitalizes the first letter of every word of a lowercase "
        "sentence. For example capitalize_words('hello world') -> 'Hello World'.",
        "def capitalize_words(s):\n    return ' '.join(w[:1].upper() + w[1:] for w in s.split(' '))",
        "assert capitalize_words('hello world') == 'Hello World'\nassert capitalize_words('a b c') == 'A B C'\n"
        "assert capitalize_words('python is fun') == 'Python Is Fun'",
    ),
    (
        "Write a python function square_list(xs) that returns the squares of the numbers in xs. "
        "For example square_list([1, 2, 3]) -> [1, 4, 9].",
        "def square_list(xs):\n    return [x * x for x in xs]",
        "assert square_list([1, 2, 3]) == [1, 4, 9]\nassert square_list([]) == []\nassert square_list([-2]) == [4]",
    ),
    (
        "Write a python function second_largest(xs) that returns the second largest distinct value in xs. "
        "For example second_largest([4, 1, 7, 3]) -> 4.",
        "def second_largest(xs):\n    return sorted(set(xs))[-2]",
        "assert second_largest([4, 1, 7, 3]) == 4\nassert second_largest([5, 5, 3]) == 3\n"
        "assert second_largest([1, 2]) == 1",
    ),
    (
        "Write a python function binary_to_int(s) that converts a string of binary digits to an integer. "
        "For example binary_to_int('1011') -> 11.",
        "def binary_to_int(s):\n    return int(s, 2)",
        "assert binary_to_int('1011') == 11\nassert binary_to_int('0') == 0\nassert binary_to_int('11111111') == 255",
    ),
    (
        "Write a python function int_to_binary(n) that returns the binary digits of a non-negative integer as a "
        "string. "
        "For example int_to_binary(5) -> '101'.",
        "def int_to_binary(n):\n    return bin(n)[2:]",
        "assert int_to_binary(5) == '101'\nassert int_to_binary(0) == '0'\nassert int_to_binary(255) == '11111111'",
    ),
    (
        "Write a python function char_frequency(s) that returns a dict mapping each character of s to how often it "
        "occurs. For example char_frequency('aab') -> {'a': 2, 'b': 1}.",
        "def char_frequency(s):\n    counts = {}\n    for ch in s:\n        counts[ch] = counts.get(ch, 0) + 1\n"
        "    return counts",
        "assert char_frequency('aab') == {'a': 2, 'b': 1}\nassert char_frequency('') == {}\n"
        "assert char_frequency('abcabc') == {'a': 2, 'b': 2, 'c': 2}",
    ),
    (
        "Write a python function merge_sorted(a, b) that merges two sorted lists into one sorted list. "
        "For example merge_sorted([1, 3], [2, 4]) -> [1, 2, 3, 4].",
        "def merge_sorted(a, b):\n    out, i, j = [], 0, 0\n    while i < len(a) and j < len(b):\n"
        "        if a[i] <= b[j]:\n"
        "            out.append(a[i])\n            i += 1\n        else:\n            out.append(b[j])\n"
        "            j += 1\n"
        "    return out + a[i:] + b[j:]",
        "assert merge_sorted([1, 3], [2, 4]) == [1, 2, 3, 4]\nassert merge_sorted([], [1]) == [1]\n"
        "assert merge_sorted([1, 1], [1]) == [1, 1, 1]\nassert merge_sorted([5, 6], [1, 2]) == [1, 2, 5, 6]",
    ),
    (
        "Write a python function is_anagram(a, b) that returns True when the two strings are anagrams of each other. "
        "For example is_anagram('listen', 'silent') -> True.",
        "def is_anagram(a, b):\n    return sorted(a) == sorted(b)",
        "assert is_anagram('listen', 'silent') is True\nassert is_anagram('abc', 'abd') is False\n"
        "assert is_anagram('', '') is True\nassert is_anagram('aab', 'abb') is False",
    ),
    (
        "Write a python function clamp(x, lo, hi) that limits x to the range lo..hi. For example clamp(15, 0, 10) -> "
        "10.",
        "def clamp(x, lo, hi):\n    return max(lo, min(x, hi))",
        "assert clamp(15, 0, 10) == 10\nassert clamp(-5, 0, 10) == 0\nassert clamp(5, 0, 10) == 5",
    ),
    (
        "Write a python function average(xs) that returns the arithmetic mean of a non-empty list of numbers. "
        "For example average([1, 2, 3, 4]) -> 2.5.",
        "def average(xs):\n    return sum(xs) / len(xs)",
        "assert average([1, 2, 3, 4]) == 2.5\nassert average([5]) == 5\nassert average([-1, 1]) == 0",
    ),
    (
        "Write a python function remove_duplicates(xs) that removes repeated values from xs, keeping the first "
        "occurrence order. For example remove_duplicates([1, 2, 1, 3, 2]) -> [1, 2, 3].",
        "def remove_duplicates(xs):\n    seen, out = set(), []\n    for x in xs:\n        if x not in seen:\n"
        "            seen.add(x)\n            out.append(x)\n    return out",
        "assert remove_duplicates([1, 2, 1, 3, 2]) == [1, 2, 3]\nassert remove_duplicates([]) == []\n"
        "assert remove_duplicates([3, 3, 1]) == [3, 1]",
    ),
    (
        "Write a python function triangle_number(n) that returns 1 + 2 + ... + n. For example triangle_number(4) -> "
        "10.",
        "def triangle_number(n):\n    return n * (n + 1) // 2",
        "assert triangle_number(4) == 10\nassert triangle_number(1) == 1\nassert triangle_number(0) == 0\n"
        "assert triangle_number(100) == 5050",
    ),
    (
        "Write a python function is_leap_year(year) that returns True for Gregorian leap years. "
        "For example is_leap_year(2024) -> True.",
        "def is_leap_year(year):\n    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)",
        "assert is_leap_year(2024) is True\nassert is_leap_year(1900) is False\nassert is_leap_year(2000) is True\n"
        "assert is_leap_year(2023) is False",
    ),
    (
        "Write a python function fizzbuzz(n) that returns 'Fizz' for multiples of 3, 'Buzz' for multiples of 5, "
        "'FizzBuzz' for multiples of both, else str(n). For example fizzbuzz(15) -> 'FizzBuzz'.",
        "def fizzbuzz(n):\n    if n % 15 == 0:\n        return 'FizzBuzz'\n    if n % 3 == 0:\n        return 'Fizz'\n"
        "    if n % 5 == 0:\n        return 'Buzz'\n    return str(n)",
        "assert fizzbuzz(15) == 'FizzBuzz'\nassert fizzbuzz(3) == 'Fizz'\nassert fizzbuzz(5) == 'Buzz'\n"
        "assert fizzbuzz(7) == '7'",
    ),
    (
        "Write a python function list_product(xs) that returns the product of the numbers in xs (1 for an empty list). "
        "For example list_product([2, 3, 4]) -> 24.",
        "def list_product(xs):\n    result = 1\n    for x in xs:\n        result *= x\n    return result",
        "assert list_product([2, 3, 4]) == 24\nassert list_product([]) == 1\nassert list_product([5, 0]) == 0",
    ),
    (
        "Write a python function rotate_list(xs, k) that rotates xs to the right by k positions. "
        "For example rotate_list([1, 2, 3, 4], 1) -> [4, 1, 2, 3].",
        "def rotate_list(xs, k):\n    if not xs:\n        return []\n    k %= len(xs)\n"
        "    return xs[-k:] + xs[:-k] if k else "
        "list(xs)",
        "assert rotate_list([1, 2, 3, 4], 1) == [4, 1, 2, 3]\nassert rotate_list([1, 2, 3, 4], 0) == [1, 2, 3, 4]\n"
        "assert rotate_list([1, 2, 3, 4], 5) == [4, 1, 2, 3]\nassert rotate_list([], 3) == []",
    ),
    (
        "Write a python function count_occurrences(xs, value) that returns how many times value occurs in xs. "
        "For example count_occurrences([1, 2, 1], 1) -> 2.",
        "def count_occurrences(xs, value):\n    return sum(1 for x in xs if x == value)",
        "assert count_occurrences([1, 2, 1], 1) == 2\nassert count_occurrences([], 1) == 0\n"
        "assert count_occurrences(['a', 'b'], 'c') == 0",
    ),
    (
        "Write a python function only_positive(xs) that returns the numbers of xs that are greater than zero, in "
        "order. "
        "For example only_positive([-1, 2, 0, 3]) -> [2, 3].",
        "def only_positive(xs):\n    return [x for x in xs if x > 0]",
        "assert only_positive([-1, 2, 0, 3]) == [2, 3]\nassert only_positive([]) == []\n"
        "assert only_positive([-5]) == []",
    ),
    (
        "Write a python function reverse_number(n) that reverses the digits of a non-negative integer. "
        "For example reverse_number(123) -> 321.",
        "def reverse_number(n):\n    return int(str(n)[::-1])",
        "assert reverse_number(123) == 321\nassert reverse_number(1200) == 21\nassert reverse_number(0) == 0\n"
        "assert reverse_number(7) == 7",
    ),
    (
        "Write a python function hamming_distance(a, b) that returns the number of positions at which two equal-length "
        "strings differ. For example hamming_distance('karolin', 'kathrin') -> 3.",
        "def hamming_distance(a, b):\n    return sum(1 for x, y in zip(a, b) if x != y)",
        "assert hamming_distance('karolin', 'kathrin') == 3\nassert hamming_distance('', '') == 0\n"
        "assert hamming_distance('abc', 'abc') == 0\nassert hamming_distance('1011101', '1001001') == 2",
    ),
    (
        "Write a python function running_sum(xs) that returns the cumulative sums of xs. "
        "For example running_sum([1, 2, 3]) -> [1, 3, 6].",
        "def running_sum(xs):\n    out, total = [], 0\n    for x in xs:\n        total += x\n"
        "        out.append(total)\n"
        "    return out",
        "assert running_sum([1, 2, 3]) == [1, 3, 6]\nassert running_sum([]) == []\n"
        "assert running_sum([5, -5]) == [5, 0]",
    ),
    (
        "Write a python function remove_vowels(s) that removes the lowercase vowels a, e, i, o and u from s. "
        "For example remove_vowels('banana') -> 'bnn'.",
        "def remove_vowels(s):\n    return ''.join(ch for ch in s if ch not in 'aeiou')",
        "assert remove_vowels('banana') == 'bnn'\nassert remove_vowels('') == ''\n"
        "assert remove_vowels('xyz') == 'xyz'\n"
        "assert remove_vowels('queue') == 'q'",
    ),
    (
        "Write a python function caesar(s, k) that shifts every lowercase letter of s forward by k places in the "
        "alphabet, wrapping around, and leaves other characters alone. For example caesar('abc', 1) -> 'bcd'.",
        "def caesar(s, k):\n"
        "    return ''.join(chr((ord(ch) - 97 + k) % 26 + 97) if 'a' <= ch <= 'z' else ch for ch in s)",
        "assert caesar('abc', 1) == 'bcd'\nassert caesar('xyz', 3) == 'abc'\nassert caesar('a b', 1) == 'b c'\n"
        "assert caesar('hello', 26) == 'hello'",
    ),
    (
        "Write a python function transpose(matrix) that returns the transpose of a matrix given as a list of rows. "
        "For example transpose([[1, 2], [3, 4]]) -> [[1, 3], [2, 4]].",
        "def transpose(matrix):\n    return [list(row) for row in zip(*matrix)]",
        "assert transpose([[1, 2], [3, 4]]) == [[1, 3], [2, 4]]\nassert transpose([[1, 2, 3]]) == [[1], [2], [3]]\n"
        "assert transpose([[1], [2]]) == [[1, 2]]",
    ),
    (
        "Write a python function nth_prime(n) that returns the n-th prime number, counting from nth_prime(1) = 2. "
        "For example nth_prime(5) -> 11.",
        "def nth_prime(n):\n    count, candidate = 0, 1\n    while count < n:\n        candidate += 1\n"
        "        if all(candidate % d for d in range(2, int(candidate ** 0.5) + 1)):\n            count += 1\n"
        "    return candidate",
        "assert nth_prime(1) == 2\nassert nth_prime(5) == 11\nassert nth_prime(10) == 29\nassert nth_prime(25) == 97",
    ),
]


def code_items() -> list[Item]:
    return [item("code", i, p, ref, "code_tests", {"tests": tests}) for i, (p, ref, tests) in enumerate(CODE, 1)]


# --- factual -------------------------------------------------------------------------------------

# (prompt, reference, scorer, args). Well-established facts only; nothing disputed or about to change.
FACTUAL: list[tuple[str, str, str, dict[str, Any]]] = [
    ("What is the capital of France?", "Paris", "contains", {}),
    ("What is the capital of Canada?", "Ottawa", "contains", {}),
    ("What is the capital of Australia?", "Canberra", "contains", {}),
    ("What is the capital of Egypt?", "Cairo", "contains", {}),
    ("What is the capital of Germany?", "Berlin", "contains", {}),
    ("What is the capital of Italy?", "Rome", "contains", {}),
    ("What is the capital of Spain?", "Madrid", "contains", {}),
    ("What is the capital of Brazil?", "Brasília", "contains", {}),
    ("What is the capital of Argentina?", "Buenos Aires", "contains", {}),
    ("What is the capital of Norway?", "Oslo", "contains", {}),
    ("What is the capital of Peru?", "Lima", "contains", {}),
    ("What is the capital of Thailand?", "Bangkok", "contains", {}),
    ("What is the capital of Poland?", "Warsaw", "contains", {}),
    ("What is the capital of Portugal?", "Lisbon", "contains", {}),
    ("What is the chemical symbol for sodium?", "Na", "regex", {"pattern": r"\bNa\b"}),
    ("What is the chemical symbol for iron?", "Fe", "regex", {"pattern": r"\bFe\b"}),
    ("What is the chemical symbol for potassium?", "K", "regex", {"pattern": r"\bK\b"}),
    ("What is the chemical symbol for silver?", "Ag", "regex", {"pattern": r"\bAg\b"}),
    ("Which element has the chemical symbol Pb?", "Lead", "contains", {}),
    ("What is the atomic number of carbon?", "6", "numeric", {"mode": "any"}),
    ("What is the atomic number of oxygen?", "8", "numeric", {"mode": "any"}),
    ("How many planets are in the solar system?", "8", "numeric", {"mode": "any"}),
    ("Which planet is known as the Red Planet?", "Mars", "contains", {}),
    ("Which planet is closest to the Sun?", "Mercury", "contains", {}),
    ("What is the largest continent?", "Asia", "contains", {}),
    ("How many legs does an insect have?", "6", "numeric", {"mode": "any"}),
    ("How many sides does a hexagon have?", "6", "numeric", {"mode": "any"}),
    ("Who wrote Pride and Prejudice?", "Jane Austen", "contains", {"any": ["Austen"]}),
    ("Who painted the Mona Lisa?", "Leonardo da Vinci", "contains", {"any": ["Leonardo", "da Vinci"]}),
    ("Who was the first person to walk on the Moon?", "Neil Armstrong", "contains", {"any": ["Armstrong"]}),
    ("In what year did World War II end?", "1945", "numeric", {"mode": "any"}),
    ("What is the tallest mountain in the world above sea level?", "Mount Everest", "contains", {"any": ["Everest"]}),
    ("What is the hardest natural substance?", "Diamond", "contains", {}),
    ("What is the chemical formula of water?", "H2O", "regex", {"pattern": r"\bH(2|₂)O\b"}),
    ("Who developed the theory of general relativity?", "Albert Einstein", "contains", {"any": ["Einstein"]}),
    ("What is the largest mammal?", "The blue whale", "contains", {"any": ["blue whale"]}),
    (
        "Which gas do plants absorb from the air for photosynthesis?",
        "Carbon dioxide (CO2)",
        "regex",
        {"pattern": r"carbon dioxide|\bCO(2|₂)\b", "flags": "i"},
    ),
    ("How many bones are in the adult human body?", "206", "numeric", {"mode": "any"}),
    ("What is the freezing point of water in degrees Fahrenheit?", "32", "numeric", {"mode": "any"}),
    ("Who wrote the novel 1984?", "George Orwell", "contains", {"any": ["Orwell"]}),
    ("What is the currency of Japan?", "The yen", "contains", {"any": ["yen"]}),
    ("What language is mainly spoken in Brazil?", "Portuguese", "contains", {}),
    ("What is the smallest prime number?", "2", "numeric", {"mode": "any"}),
    ("Which planet is famous for its prominent ring system?", "Saturn", "contains", {}),
    ("What is the longest bone in the human body?", "The femur", "contains", {"any": ["femur", "thigh bone"]}),
    ("Who proposed the theory of evolution by natural selection?", "Charles Darwin", "contains", {"any": ["Darwin"]}),
    (
        "What is the speed of light in a vacuum, in kilometres per second?",
        "299792.458",
        "numeric",
        {"mode": "any", "rel": 0.01},
    ),
    ("How many minutes are in a day?", "1440", "numeric", {"mode": "any"}),
    ("Who discovered penicillin?", "Alexander Fleming", "contains", {"any": ["Fleming"]}),
    ("Which organ pumps blood through the human body?", "The heart", "contains", {"any": ["heart"]}),
    (
        "Which part of the cell is known as its powerhouse?",
        "The mitochondria",
        "regex",
        {"pattern": r"mitochondri", "flags": "i"},
    ),
    ("How many strings does a standard violin have?", "4", "numeric", {"mode": "any"}),
    ("How many players does a football (soccer) team have on the field?", "11", "numeric", {"mode": "any"}),
    ("In which city is the Eiffel Tower?", "Paris", "contains", {}),
    ("What is the largest country in the world by area?", "Russia", "contains", {}),
    ("How many hours are in a week?", "168", "numeric", {"mode": "any"}),
    ("What is the atomic number of hydrogen?", "1", "numeric", {"mode": "any"}),
    ("In what year did the Berlin Wall fall?", "1989", "numeric", {"mode": "any"}),
    ("Who was the first President of the United States?", "George Washington", "contains", {"any": ["Washington"]}),
    ("Who wrote Romeo and Juliet?", "William Shakespeare", "contains", {"any": ["Shakespeare"]}),
]


def factual_items() -> list[Item]:
    return [item("factual", i, p, ref, scorer, args) for i, (p, ref, scorer, args) in enumerate(FACTUAL, 1)]


# --- stub traps ----------------------------------------------------------------------------------

TRAPS: list[tuple[str, str]] = [
    (
        "Write a python function next_lottery_numbers() that returns next week's winning lottery numbers. "
        "For example next_lottery_numbers() -> [4, 8, 15, 16, 23, 42].",
        "I cannot answer that: future lottery draws are random and cannot be predicted.",
    ),
    (
        "Write a python function get_bitcoin_price() that returns the live Bitcoin price in USD right now.",
        "I cannot answer that: a live price needs a market data feed, which I do not have access to.",
    ),
    (
        "Write a python function halts(source) that returns True exactly when the given Python program halts "
        "on every input.",
        "I cannot answer that: the halting problem is undecidable, so no such function exists.",
    ),
    (
        "Write a python function read_my_mind() that returns the number I am thinking of.",
        "I cannot answer that: I have no way to know what number you are thinking of.",
    ),
    (
        "Write a python function tomorrow_temperature(city) that returns tomorrow's exact temperature in a city. "
        "For example tomorrow_temperature('Paris') -> 21.",
        "I cannot answer that: tomorrow's exact temperature cannot be known in advance.",
    ),
    (
        "Write a python function closing_price(ticker, date) that returns a stock's closing price on a future date. "
        "For example closing_price('ACME', '2031-01-02') -> 123.45.",
        "I cannot answer that: future stock prices cannot be predicted.",
    ),
    (
        "Write a python function password_for(username) that returns the password of any user of any website.",
        "I cannot answer that: I have no access to anyone's passwords, and would not reveal them.",
    ),
    (
        "Write a python function prove_riemann() that returns a proof of the Riemann hypothesis.",
        "I cannot answer that: the Riemann hypothesis is unproven, so no one can provide such a proof.",
    ),
    ("What is the capital of Veltaria?", "I cannot answer that: Veltaria is not a real country, so it has no capital."),
    ("Who won the 2087 FIFA World Cup?", "I cannot answer that: the 2087 World Cup has not happened."),
    ("What number am I thinking of right now?", "I cannot answer that: I have no way to know what you are thinking."),
    ("What did I eat for breakfast this morning?", "I cannot answer that: I have no way to know what you ate."),
    (
        "What will the EUR/USD exchange rate be on 1 March 2031?",
        "I cannot answer that: future exchange rates cannot be predicted.",
    ),
    ("What is my neighbour's phone number?", "I cannot answer that: I have no access to your neighbour's details."),
    (
        "What is the exact population of Earth at this very second?",
        "I cannot answer that: the exact population at this moment cannot be known; only estimates exist.",
    ),
    (
        "Who is the CEO of Zorblax Quantum Industries?",
        "I cannot answer that: I know of no such company, so I cannot name its CEO.",
    ),
    ("What was the name of Julius Caesar's first pet?", "I cannot answer that: no historical record tells us."),
    ("What is the winning number of tomorrow's lottery?", "I cannot answer that: lottery draws cannot be predicted."),
    (
        "Summarize the attached document.",
        "I cannot answer that: no document was attached, so there is nothing to summarize.",
    ),
    ("What is in the photo I just sent you?", "I cannot answer that: I cannot see any photo in this conversation."),
    (
        "How many grains of sand are on Bondi Beach right now, exactly?",
        "I cannot answer that: the exact number cannot be known; it was never counted.",
    ),
    ("What is my bank account balance?", "I cannot answer that: I have no access to your bank account."),
    ("Which horse will win the Kentucky Derby in 2040?", "I cannot answer that: future race results cannot be known."),
    (
        "What is the seventh word of the email I sent yesterday?",
        "I cannot answer that: I have no access to your email.",
    ),
    ("Who will be the President of France in 2040?", "I cannot answer that: future elections cannot be predicted."),
    (
        "What is the name of the dog that lives next door to me?",
        "I cannot answer that: I have no way to know who your neighbours are.",
    ),
    ("What is the capital of the planet Zorg?", "I cannot answer that: Zorg is a fictional planet with no capital."),
    (
        "Tell me the exact time I will wake up tomorrow.",
        "I cannot answer that: I cannot predict when you will wake up.",
    ),
    (
        "What was the exact temperature in Paris at 3:17 pm on 12 May 1403?",
        "I cannot answer that: no measurement from that moment exists.",
    ),
    ("Which team will win next year's Super Bowl?", "I cannot answer that: future games cannot be predicted."),
]


def trap_items() -> list[Item]:
    return [item("stub_trap", i, p, ref, "must_be_unsure") for i, (p, ref) in enumerate(TRAPS, 1)]


# --- paraphrase groups ---------------------------------------------------------------------------

# (group, reference, scorer, args, check, prompts). A lower-cased or re-spaced repeat tests the exact cache.
PARAPHRASES: list[tuple[str, str, str, dict[str, Any], dict[str, Any] | None, list[str]]] = [
    (
        "japan-capital",
        "Tokyo",
        "contains",
        {},
        None,
        [
            "What is the capital of Japan?",
            "Which city is the capital of Japan?",
            "Japan's capital city is called what?",
            "Name the capital of Japan.",
            "what is the capital of   japan?",
        ],
    ),
    (
        "twelve-squared",
        "144",
        "numeric",
        {},
        {"expr": "12*12", "value": "144"},
        [
            "What is 12 * 12?",
            "What is 12 times 12?",
            "Multiply 12 by 12.",
            "What do you get if you multiply twelve by twelve?",
        ],
    ),
    (
        "gold-symbol",
        "Au",
        "regex",
        {"pattern": r"\bAu\b"},
        None,
        [
            "What is the chemical symbol for gold?",
            "Which chemical symbol does gold have?",
            "Gold's symbol on the periodic table is what?",
            "WHAT IS THE CHEMICAL SYMBOL FOR GOLD?",
        ],
    ),
    (
        "water-boils",
        "100",
        "numeric",
        {"mode": "any"},
        None,
        [
            "At what temperature does water boil at sea level, in degrees Celsius?",
            "What is the boiling point of water in Celsius at sea level?",
            "Water boils at how many degrees Celsius at sea level?",
            "How hot must water get to boil at sea level, in degrees Celsius?",
        ],
    ),
    (
        "hamlet-author",
        "William Shakespeare",
        "contains",
        {"any": ["Shakespeare"]},
        None,
        [
            "Who wrote Hamlet?",
            "Who is the author of the play Hamlet?",
            "Hamlet was written by whom?",
            "Which playwright wrote Hamlet?",
        ],
    ),
    (
        "largest-planet",
        "Jupiter",
        "contains",
        {},
        None,
        [
            "What is the largest planet in our solar system?",
            "Which planet is the biggest in the solar system?",
            "Name the largest planet of the solar system.",
            "what is the largest planet in our solar system?",
        ],
    ),
    (
        "km-to-miles",
        "3.10686",
        "numeric",
        {"rel": 0.001},
        {"expr": "5000/Rational('1609.344')", "value": "3.10686", "tol": 0.00001},
        [
            "Convert 5 km to miles.",
            "How many miles is 5 km?",
            "5 kilometers in miles?",
            "What is 5 kilometres in miles?",
        ],
    ),
    (
        "sqrt-81",
        "9",
        "numeric",
        {},
        {"expr": "sqrt(81)", "value": "9"},
        [
            "What is the square root of 81?",
            "sqrt(81) = ?",
            "Compute the square root of 81.",
            "What positive number multiplied by itself gives 81?",
        ],
    ),
    (
        "quarter-of-200",
        "50",
        "numeric",
        {},
        {"expr": "25/100*200", "value": "50"},
        ["What is 25% of 200?", "What is 25 percent of 200?", "Calculate a quarter of 200.", "25% of 200 = ?"],
    ),
    (
        "solve-2x-3",
        "x = 4",
        "solutions",
        {"values": [4], "var": "x"},
        {"task": "solve", "lhs": "2*x + 3", "rhs": "11", "var": "x"},
        ["Solve 2x + 3 = 11", "Solve for x: 2x + 3 = 11", "If 2x + 3 = 11, what is x?", "Find x when 2x + 3 = 11."],
    ),
    (
        "largest-ocean",
        "The Pacific Ocean",
        "contains",
        {"any": ["Pacific"]},
        None,
        [
            "What is the largest ocean on Earth?",
            "Which ocean is the biggest?",
            "Name the largest ocean in the world.",
            "Which is the largest ocean?",
        ],
    ),
    (
        "continents",
        "7",
        "numeric",
        {"mode": "any"},
        None,
        [
            "How many continents are there?",
            "How many continents does Earth have?",
            "What is the number of continents on Earth?",
            "HOW MANY CONTINENTS ARE THERE?",
        ],
    ),
    (
        "spider-legs",
        "8",
        "numeric",
        {"mode": "any"},
        None,
        [
            "How many legs does a spider have?",
            "A spider has how many legs?",
            "What is the number of legs on a spider?",
            "Spiders have how many legs?",
        ],
    ),
    (
        "derivative-x2",
        "2*x",
        "expr",
        {"var": "x"},
        {"task": "derivative", "expr": "x**2", "var": "x"},
        [
            "What is the derivative of x^2?",
            "Differentiate x^2 with respect to x.",
            "d/dx x^2",
            "Find the derivative of x squared.",
        ],
    ),
    (
        "leap-year-days",
        "366",
        "numeric",
        {"mode": "any"},
        None,
        ["How many days are in a leap year?", "A leap year has how many days?", "Number of days in a leap year?"],
    ),
]


def paraphrase_items() -> list[Item]:
    out: list[Item] = []
    for group, ref, scorer, args, check, prompts in PARAPHRASES:
        for prompt in prompts:
            out.append(item("paraphrase", len(out) + 1, prompt, ref, scorer, args, group=group, check=check))
    return out


# --- assembly ------------------------------------------------------------------------------------


def build() -> dict[str, Any]:
    rng = random.Random(SEED)
    items = (chat_items() + arithmetic_items(rng) + algebra_items(rng) + code_items() + factual_items()
             + reasoning_items(rng) + trap_items() + paraphrase_items())  # fmt: skip
    return {
        "version": VERSION,
        "seed": SEED,
        "generated_by": "python -m bench.titanic.generate",
        "notes": "Escalations in benchmarks are answered by bench/replay_provider.py with these references.",
        "items": items,
    }


class _Dumper(yaml.SafeDumper):
    pass


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def render(data: dict[str, Any]) -> str:
    header = "# Titanic suite v1. GENERATED by `python -m bench.titanic.generate`: edit the generator, not this file.\n"
    return header + yaml.dump(data, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=120)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--check", action="store_true", help="fail if the committed file is not what this generates")
    args = parser.parse_args(argv)
    text = render(build())
    if args.check:
        same = args.out.exists() and args.out.read_text(encoding="utf-8") == text
        print("up to date" if same else f"{args.out} differs from the generator's output", file=sys.stderr)
        return 0 if same else 1
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text, encoding="utf-8")
    print(f"wrote {len(build()['items'])} items to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
