"""code: the local LLM writes Python; examples in the request become asserts run in the sandbox.

Confidence comes from the evidence: tests derived from the request pass -> 0.9, fail -> 0.05,
no tests to run but the code compiles and defines the asked-for function -> 0.5 (unverified).
Without a working sandbox (routing/sandbox.py) the head abstains: no code runs unsandboxed.

The ballot's `sandbox` evidence is a summary (tests passed/failed, the error type); the raw
stdout/stderr of the run sits under its `output` key, which only staff get to see
(`public_ballots` removes it for everyone else).
"""

from __future__ import annotations

import ast
import json
import re
import secrets
import time
from typing import Any

from routing.heads.base import Ballot, Head, HeadContext
from routing.sandbox import SandboxResult, SandboxUnavailable, run_python, sandbox_status

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
_OPEN_FENCE = re.compile(r"```(?:python|py)?[ \t]*\n", re.I)
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
    """The longest fenced block; a reply cut off inside its fence (max_tokens) keeps its complete part."""
    blocks = _FENCE.findall(text)
    if blocks:
        return max(blocks, key=len).strip()
    opened = _OPEN_FENCE.search(text)
    return complete_prefix(text[opened.end() :]) if opened else text.strip()


def complete_prefix(code: str) -> str:
    """`code` up to its last top-level statement that parses (all of it when it parses)."""
    lines = code.strip().splitlines()
    for end in range(len(lines), 0, -1):
        if end < len(lines) and lines[end][:1].isspace():
            continue  # cut only before a top-level line
        prefix = "\n".join(lines[:end])
        try:
            ast.parse(prefix)
        except (SyntaxError, ValueError, MemoryError, RecursionError):
            continue
        return prefix
    return code.strip()


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


# Appended to the model's code: runs each test on its own and reports which failed, on stdout's last line.
_HARNESS = """

def __swarm_run_tests(tests, marker):
    import json, sys, traceback
    failures = []
    for index, test in enumerate(tests):
        try:
            exec(compile(test, "<test %d>" % (index + 1), "exec"), globals())
            failures.append(None)
        except BaseException as exc:
            failures.append(type(exc).__name__)
            traceback.print_exc()
    sys.stderr.flush()
    print("\\n" + marker + json.dumps(failures), flush=True)
    raise SystemExit(1 if any(failures) else 0)

__swarm_run_tests({tests!r}, {marker!r})
"""
_ERROR_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.]{0,80}$")
_LAST_ERROR = re.compile(r"^([A-Za-z_][A-Za-z0-9_.]{0,80})(?::|$)")
RAW_OUTPUT_KEY = "output"  # evidence["sandbox"][RAW_OUTPUT_KEY]: the run's stdout/stderr tails, for staff only


def script_with_tests(code: str, tests: list[str], marker: str) -> str:
    """The model's code followed by a harness that runs every test and reports after `marker`."""
    return code + "\n" + _HARNESS.format(tests=tests, marker=marker)


def _error_name(name: object) -> str:
    return name if isinstance(name, str) and _ERROR_NAME.match(name) else "Error"


def sandbox_summary(result: SandboxResult, tests: list[str], marker: str) -> dict[str, Any]:
    """What a run says about the tests, without any of its output text (error types only)."""
    reported: list[Any] | None = None
    for line in reversed(result.stdout.splitlines()):
        if line.startswith(marker):
            try:
                reported = json.loads(line[len(marker) :])
            except ValueError:
                reported = None
            break
    if isinstance(reported, list) and len(reported) == len(tests):
        failures = [_error_name(f) for f in reported if f is not None]
        passed = len(tests) - len(failures)
        error = failures[0] if failures else None
    else:  # the harness never reported: the code itself failed, or the run was killed
        passed, failures = 0, tests
        last = next((ln for ln in reversed(result.stderr.strip().splitlines()) if ln.strip()), "")
        match = _LAST_ERROR.match(last.strip())
        error = _error_name(match.group(1)) if match else None
        if result.killed_reason:
            error = f"killed ({result.killed_reason})"
        elif error is None:
            error = f"exit code {result.exit_code}" if result.exit_code else "tests did not report"
    return {
        "tests_passed": passed,
        "tests_failed": len(tests) - passed,
        "error": error,
        "exit_code": result.exit_code,
        "timed_out": result.timed_out,
        "killed_reason": result.killed_reason,
        "isolation": result.isolation,
        "duration_ms": round(result.duration_s * 1000, 1),
    }


def public_ballots(ballots: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The ballots as non-staff callers see them: every sandbox run's raw output removed (copies)."""
    shown = []
    for ballot in ballots:
        evidence = ballot.get("evidence") or {}
        run = evidence.get("sandbox")
        if isinstance(run, dict) and RAW_OUTPUT_KEY in run:
            run = {k: v for k, v in run.items() if k != RAW_OUTPUT_KEY}
            ballot = {**ballot, "evidence": {**evidence, "sandbox": run}}
        shown.append(ballot)
    return shown


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
        sandbox = sandbox_status()
        if not sandbox["ok"]:
            return self.abstain(started, f"sandbox unavailable: {sandbox['reason']}")
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
        marker = f"__swarm_tests_{secrets.token_hex(8)}__:"
        try:
            result = run_python(code=script_with_tests(code, tests, marker), wall_s=self.sandbox_wall_s)
        except SandboxUnavailable as exc:
            return self.abstain(started, f"sandbox unavailable: {exc}")
        summary = sandbox_summary(result, tests, marker)
        passed = result.ok and summary["tests_failed"] == 0
        summary[RAW_OUTPUT_KEY] = {"stdout": result.stdout[-500:], "stderr": result.stderr[-500:]}
        return self.ballot(
            code,
            PASSED_CONFIDENCE if passed else FAILED_CONFIDENCE,
            started,
            functions=sorted(functions),
            tests=tests,
            passed=passed,
            sandbox=summary,
        )
