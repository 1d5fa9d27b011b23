"""reasoning: word problems with numbers, worked out twice, in two ways that fail differently.

A question that states quantities ("A pen costs $2. Sam buys 2 pens and pays with a $20 bill. How much
change does he get?") and that no exact head answered gets two greedy answers from the local model:

1. A program: the model writes `solution()`, which computes the answer from the problem's numbers, and the
   bubblewrap sandbox (routing/sandbox.py) runs it. It must be founded: every numeric literal in it is
   one of the problem's numbers (digits or number words), that number as a fraction of 100 when the
   problem speaks of percent, or one of FREE_CONSTANTS (0, 1, 2, a half, the common unit factors). A
   program that brings a number of its own (a wall's length it assumed, a rate it imagined) counts for
   nothing, whatever it returns, and so does one that returns no finite number. It must be complete too:
   every number the problem states (0 and 1 excepted) is written in it (unused_numbers); one that leaves a
   quantity out answered another problem.
2. Worked steps in words ending in "Answer: <number>" (only once the program gave a founded number).

The answer (the program's number) is trusted (AGREED_CONFIDENCE, above the council's 0.75 floor) only when
both give the same number. A small model's program and its written steps go wrong in different places
(a program divides by the sum of two rates where the words subtract them; the words slip in arithmetic
that the program gets right), so their agreement is evidence that neither alone is; several programs
sampled from the same model are not: they repeat the same mistake. Disagreement, or no number from the
words, leaves the answer below the floor, and the request escalates as before.

Chosen on the titanic suite's tuning part only (`python -m bench.reasoning_measure tuning`: 7 of 25 trusted,
all right); the held-out part is measured, never tuned on. There the agreement was right 5 times in 6
(reports/titanic_20261206_reasoning.json: both ways made the same mistake on a discount-then-tax chain), short
of what a trusted answer must reach, so the council asks this head only when SWARM_REASONING_HEAD is on.
Problems from outside the project agree (`python -m bench.reasoning_measure heldout --set gsm_symbolic`:
GSM8K-template problems, 30 per part): trusted 2 of 2 right on their tuning part, 5 of 9 on their held-out part.
Without a working sandbox or a model the head abstains.
"""

from __future__ import annotations

import ast
import json
import math
import re
import secrets
import time
from decimal import Decimal
from typing import Any

from routing.heads.base import Ballot, Head, HeadContext, parse_source
from routing.heads.code import (
    GUARD_PRELUDE,
    complete_prefix,
    defined_functions,
    extract_code,
    is_code_request,
    sandbox_missing,
)
from routing.heads.numwords import replace_number_words
from routing.sandbox import SandboxResult, SandboxUnavailable, run_python

PROGRAM_SYSTEM_PROMPT = "You are a careful Python programmer."
PROGRAM_REQUEST = (
    "Problem: {problem}\n\nWrite a Python function solution() that works out the answer step by step, one "
    "variable for each quantity in the problem, and returns the final number. If the problem cannot be answered "
    "from what it says, solution() returns None. Reply with only the code in one Python code block."
)
WORDS_SYSTEM_PROMPT = (
    "You are a careful math tutor. Solve the problem step by step in a few short lines, then end with one line: "
    "'Answer: <number>'."
)
PROGRAM_MAX_TOKENS = 256
WORDS_MAX_TOKENS = 320
AGREED_CONFIDENCE = 0.8  # the program and the worked steps give the same number
DISAGREED_CONFIDENCE = 0.3  # they differ, or the steps end in no number
CALL_S = 0.5  # the time guard on one solution() call inside the sandbox
SANDBOX_WALL_S = 5.0
MAX_PROMPT_CHARS = 600
MIN_NUMBERS = 2
MAX_MAGNITUDE = 1e12
# Numbers a program may use without the problem stating them: identities, halves and doubles, and the common
# unit factors (minutes, hours, days, weeks, months or dozens, years, metric prefixes). 100, and the
# problem's numbers divided by 100, only where the problem speaks of percent (allowed_constants).
FREE_CONSTANTS = frozenset(Decimal(v) for v in ("0", "1", "2", "0.5", "60", "3600", "24", "7", "12", "365", "1000"))

_NUMBER = re.compile(r"(?<![\w.])\d{1,3}(?:,\d{3})+(?:\.\d+)?|(?<![\w.])\d+(?:\.\d+)?")
_PERCENT = re.compile(r"%|\bper ?cent\b", re.I)
_QUESTION = re.compile(r"\?\s*$|^\s*(how|what|find|calculate|compute|work out|determine)\b", re.I | re.M)


def problem_numbers(prompt: str) -> list[Decimal]:
    """The numbers a problem states, in digits or words ("four numbers" -> 4; "1,200" -> 1200)."""
    text = replace_number_words(prompt)
    return [Decimal(match.replace(",", "")) for match in _NUMBER.findall(text)]


def allowed_constants(prompt: str) -> frozenset[Decimal]:
    """The literals a founded program may contain (module docstring, step 1)."""
    stated = set(problem_numbers(prompt))
    if _PERCENT.search(prompt):
        shares = {n / 100 for n in stated}
        stated |= {Decimal(100)} | shares | {1 - share for share in shares} | {1 + share for share in shares}
    return frozenset({n.normalize() for n in stated | FREE_CONSTANTS})


def numeric_literals(code: str) -> list[int | float] | None:
    """The numbers written in `code`, in order (None: it does not parse)."""
    try:
        tree = parse_source(code)
    except (SyntaxError, ValueError, MemoryError, RecursionError):
        return None
    return [node.value for node in ast.walk(tree) if isinstance(node, ast.Constant)
            and isinstance(node.value, (int, float)) and not isinstance(node.value, bool)]  # fmt: skip


def unfounded_literals(code: str, allowed: frozenset[Decimal]) -> list[str]:
    """The numeric literals in `code` that the problem did not give (see allowed_constants)."""
    literals = numeric_literals(code)
    if literals is None:
        return ["<does not parse>"]
    return [repr(v) for v in literals if not math.isfinite(v) or Decimal(repr(v)).normalize() not in allowed]


def unused_numbers(code: str, prompt: str) -> list[str]:
    """The numbers the problem states that `code` never writes (0 and 1 excepted: adding 0 or multiplying by 1
    may be left out). A percentage counts as written as itself, as a share of 100 or as one minus or plus that
    share (10 % -> 10, 0.1, 0.9 or 1.1). A program that leaves out a stated quantity answered another problem:
    "James is 17. In 9 years his cousin will be 2 times as old as James is now. How old is she now?" written
    as `return 17 * 2` agrees with steps that forget the 9 too, and both are wrong."""
    literals = {Decimal(repr(v)).normalize() for v in numeric_literals(code) or () if math.isfinite(v)}
    percent = bool(_PERCENT.search(prompt))
    unused = []
    for number in dict.fromkeys(n.normalize() for n in problem_numbers(prompt)):
        if number in (0, 1):
            continue
        forms = {number}
        if percent:
            share = number / 100
            forms |= {share.normalize(), (1 - share).normalize(), (1 + share).normalize()}
        if not forms & literals:
            unused.append(format(number, "f"))
    return unused


def is_word_problem(prompt: str) -> bool:
    """A question, not a code request, that states at least MIN_NUMBERS numbers."""
    if len(prompt) > MAX_PROMPT_CHARS or is_code_request(prompt) or not _QUESTION.search(prompt):
        return False
    return len(problem_numbers(prompt)) >= MIN_NUMBERS


def format_number(value: float) -> str:
    """16.0 -> '16', 39.6000000001 -> '39.6', 2/3 -> '0.666667'."""
    if abs(value - round(value)) < 1e-9 * max(1.0, abs(value)):
        return str(round(value))
    return f"{value:.6f}".rstrip("0").rstrip(".")


# One sandbox run: the program defined in a namespace of its own and solution() called, both under one time
# guard (GUARD_PRELUDE); what it returned is reported as JSON after the marker on stdout's last line. What it
# prints is discarded.
_RUNNER = (
    GUARD_PRELUDE
    + r"""

def _swarm_value():
    space = {"__name__": "__swarm_program__", "__builtins__": __builtins__}
    exec(compile(_swarm_p["code"], "<program>", "exec"), space)
    return space["solution"]()


def _swarm_main(p):
    signal.signal(signal.SIGALRM, _swarm_alarm)
    kind, value = _swarm_guard(_swarm_value, p["call_s"])
    report = {"result": None, "error": None}
    if kind == "timeout":
        report["error"] = "timeout"
    elif kind == "raised":
        report["error"] = "raised " + str(value)
    elif value is None:
        report["error"] = "returned None"
    elif isinstance(value, bool) or not isinstance(value, (int, float)):
        report["error"] = "returned " + type(value).__name__
    else:
        number = _swarm_guard(lambda: float(value), p["call_s"])
        if number[0] != "ok" or not math.isfinite(number[1]):
            report["error"] = "returned a non-finite number"
        else:
            report["result"] = number[1]
    print("\n" + p["marker"] + json.dumps(report), flush=True)


_swarm_p = {payload!r}
_swarm_main(_swarm_p)
"""
)


def runner_script(code: str, marker: str) -> str:
    payload = {"code": code, "marker": marker, "call_s": CALL_S}
    return _RUNNER.replace("{payload!r}", repr(payload))


def run_report(result: SandboxResult, marker: str) -> dict[str, Any]:
    """{'result': float | None, 'error': str | None} from the run's last marked line."""
    for line in reversed(result.stdout.splitlines()):
        if line.startswith(marker):
            try:
                report = json.loads(line[len(marker) :])
            except ValueError:
                break
            value = report.get("result") if isinstance(report, dict) else None
            error = report.get("error") if isinstance(report, dict) else "did not report"
            if isinstance(value, (int, float)) and not isinstance(value, bool) and abs(value) <= MAX_MAGNITUDE:
                return {"result": float(value), "error": None}
            return {"result": None, "error": str(error or "out of range")[:80]}
    return {"result": None, "error": f"killed ({result.killed_reason})" if result.killed_reason else "did not report"}


def same_number(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)


# "Answer: 18 minutes", "Answer: $68.40", "Answer: \\boxed{110}", "The answer is 7"; else the last \\boxed{n}.
_ANSWER_LINE = re.compile(
    r"\banswer\b(?:\s+is)?\s*[:=]?\s*[*_]*\s*(?:\\[(\[]\s*)?(?:\\boxed\{\s*)?\$?\s*(-?\d[\d,]*(?:\.\d+)?)(?![\d/])",
    re.I,
)
_BOXED = re.compile(r"\\boxed\{\s*\$?\s*(-?\d[\d,]*(?:\.\d+)?)\s*\}")


def final_number(text: str) -> float | None:
    """The number worked steps end in: the last "Answer: n" (else the last \\boxed{n}); None without one."""
    found = _ANSWER_LINE.findall(text) or _BOXED.findall(text)
    if not found:
        return None
    try:
        value = float(found[-1].replace(",", ""))
    except ValueError:
        return None
    return value if math.isfinite(value) and abs(value) <= MAX_MAGNITUDE else None


_DEFINITIONS = (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.ClassDef, ast.Assign, ast.AnnAssign)


def program_code(text: str) -> str:
    """The reply's definitions that solution() may use (imports, classes, assignments, solution() and the
    functions it calls): what it prints or asserts at the top level (`print(solution())`) and the checks it
    writes beside it (a `check_solution()` with made-up values) are neither run nor checked. A reply that lost
    its opening fence but kept the closing one still gives its code."""
    code = extract_code(text)
    if "solution" not in defined_functions(code):
        code = complete_prefix("\n".join(line for line in text.splitlines() if line.strip() != "```"))
    try:
        tree = parse_source(code)
    except (SyntaxError, ValueError, MemoryError, RecursionError):
        return code
    assert isinstance(tree, ast.Module)
    functions = {node.name: node for node in tree.body if isinstance(node, ast.FunctionDef)}
    needed, todo = set(), ["solution"]
    while todo:  # solution() and the functions it calls, however indirectly; not a check_solution() beside it
        name = todo.pop()
        if name in functions and name not in needed:
            needed.add(name)
            todo += [node.id for node in ast.walk(functions[name]) if isinstance(node, ast.Name)]
    tree.body = [node for node in tree.body if isinstance(node, _DEFINITIONS)
                 and (not isinstance(node, ast.FunctionDef) or node.name in needed)]  # fmt: skip
    return ast.unparse(tree)


class ReasoningHead(Head):
    name = "reasoning"
    skill_type = "reasoning"
    timeout_s = 60.0  # two generations of a few hundred tokens on a small CPU, and a sandbox run

    def applies(self, prompt: str) -> bool:
        return is_word_problem(prompt)

    def answer(self, prompt: str, ctx: HeadContext) -> Ballot:
        started = time.perf_counter()
        if ctx.generate is None or (missing := sandbox_missing()):
            return self.abstain(started, "no local model" if ctx.generate is None else missing)
        try:
            program = self.program(prompt, ctx)
        except SandboxUnavailable as exc:
            return self.abstain(started, f"sandbox unavailable: {exc}")
        computed = program["result"]
        if computed is None:
            return self.ballot("", 0.0, started, program=program, reason=program["error"])
        gen = ctx.generate(
            [{"role": "system", "content": WORDS_SYSTEM_PROMPT}, {"role": "user", "content": prompt}],
            max_tokens=WORDS_MAX_TOKENS,
            temperature=0.0,
        )
        worked = final_number(gen.text) if gen.finish_reason != "length" else None
        agree = worked is not None and same_number(worked, computed)
        words = {"result": worked, "finish_reason": gen.finish_reason, "tail": gen.text[-200:]}
        confidence = AGREED_CONFIDENCE if agree else DISAGREED_CONFIDENCE
        return self.ballot(format_number(computed), confidence, started, program=program, words=words, agree=agree)

    def program(self, prompt: str, ctx: HeadContext) -> dict[str, Any]:
        """The model's greedy solution(), checked for founded literals and run in the sandbox."""
        assert ctx.generate is not None
        gen = ctx.generate(
            [{"role": "system", "content": PROGRAM_SYSTEM_PROMPT},
             {"role": "user", "content": PROGRAM_REQUEST.format(problem=prompt)}],
            max_tokens=PROGRAM_MAX_TOKENS,
            temperature=0.0,
        )  # fmt: skip
        code = program_code(gen.text)
        evidence: dict[str, Any] = {"result": None, "error": None, "unfounded": [], "unused": []}
        if "solution" not in defined_functions(code):
            evidence["error"] = "no solution() that parses"
        elif unfounded := unfounded_literals(code, allowed_constants(prompt)):
            evidence.update(error="uses numbers the problem does not give", unfounded=unfounded[:5])
        else:
            marker = f"__swarm_reasoning_{secrets.token_hex(8)}__:"
            result = run_python(code=runner_script(code, marker), wall_s=SANDBOX_WALL_S)
            evidence.update(run_report(result, marker))
            if evidence["result"] is not None and (unused := unused_numbers(code, prompt)):
                evidence.update(result=None, error="leaves out numbers the problem gives", unused=unused[:5])
        evidence["code"] = code[:1500]  # the model's own program: nothing from the sandbox but the number
        return evidence
