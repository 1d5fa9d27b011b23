"""code: the local LLM writes Python; examples in the request become asserts run in the sandbox.

Confidence comes from the evidence: tests derived from the request pass -> 0.9, fail -> 0.05,
no tests to run but the code compiles and defines the asked-for function -> 0.5 (unverified).
"""

from __future__ import annotations

import ast
import re
import time

from routing.heads.base import Ballot, Head, HeadContext
from routing.sandbox import run_python

SYSTEM_PROMPT = (
    "You are an expert Python programmer. Reply with one complete Python code block that solves the task. "
    "No explanations."
)
PASSED_CONFIDENCE = 0.9
UNTESTED_CONFIDENCE = 0.5
FAILED_CONFIDENCE = 0.05

_CODE_REQUEST = re.compile(
    r"(\bdef\s+\w+\s*\(|\bwrite (a |an )?(python )?(function|program|script|class)\b|\bimplement\b|"
    r"\bpython (function|code|script)\b|```|\bassert\s)",
    re.I,
)
_FENCE = re.compile(r"```(?:python|py)?\s*\n(.*?)```", re.S | re.I)
_ASSERT_LINE = re.compile(r"^\s*(assert\s+.+)$", re.M)
# f(2, 3) == 5  |  f(2, 3) -> 5  |  f(2, 3) returns 5  |  f(2,3) should return 5
_EXAMPLE = re.compile(
    r"(?P<call>\b[A-Za-z_]\w*\((?:[^()]|\([^()]*\))*\))\s*(?:==|->|=>|returns|should return|gives|is)\s*"
    r"(?P<expected>[^\n;]+?)\s*(?:[,;.]\s|[.;,]?$|\n)",
    re.M,
)


def is_code_request(prompt: str) -> bool:
    return bool(_CODE_REQUEST.search(prompt))


def extract_code(text: str) -> str:
    blocks = _FENCE.findall(text)
    return (max(blocks, key=len) if blocks else text).strip()


def _is_literal(expr: str) -> bool:
    try:
        ast.literal_eval(expr)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return False
    return True


def derive_tests(prompt: str) -> list[str]:
    """Asserts stated in the request, plus `f(args) -> value` examples whose value is a literal."""
    tests = [line.strip() for line in _ASSERT_LINE.findall(prompt)]
    for match in _EXAMPLE.finditer(prompt):
        call, expected = match.group("call"), match.group("expected").strip().rstrip(".")
        if _is_literal(expected):
            tests.append(f"assert {call} == {expected}, {call!r}")
    return list(dict.fromkeys(tests))


def defined_functions(code: str) -> set[str]:
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return set()
    return {node.name for node in ast.walk(tree) if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))}


class CodeHead(Head):
    name = "code"
    skill_type = "code"
    timeout_s = 40.0
    sandbox_wall_s = 5.0

    def applies(self, prompt: str) -> bool:
        return is_code_request(prompt)

    def answer(self, prompt: str, ctx: HeadContext) -> Ballot:
        started = time.perf_counter()
        if ctx.generate is None:
            return self.abstain(started, "no local model")
        gen = ctx.generate(
            [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": prompt}],
            max_tokens=max(ctx.max_tokens, 256),
            temperature=ctx.temperature,
        )
        code = extract_code(gen.text)
        functions = defined_functions(code)
        if not functions:
            return self.ballot(code, 0.0, started, reason="no function definition that parses")
        tests = derive_tests(prompt)
        if not tests:
            return self.ballot(code, UNTESTED_CONFIDENCE, started, functions=sorted(functions), tests=[])
        result = run_python(code=code + "\n\n" + "\n".join(tests) + "\n", wall_s=self.sandbox_wall_s)
        confidence = PASSED_CONFIDENCE if result.ok else FAILED_CONFIDENCE
        return self.ballot(
            code,
            confidence,
            started,
            functions=sorted(functions),
            tests=tests,
            passed=result.ok,
            sandbox={
                "exit_code": result.exit_code,
                "timed_out": result.timed_out,
                "stderr": result.stderr[-500:],
                "isolation": result.isolation,
            },
        )
