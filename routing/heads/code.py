"""code: the local LLM writes Python; the request's examples and a second, independent solution check it.

Evidence, in order (each step runs in the bubblewrap sandbox, routing/sandbox.py):

1. Prompt tests: the request's asserts, its examples (`f(x) -> y`, `==>`, `=>`, `➞`, `=`, `returns`...),
   its doctest examples (`>>> f(x)` followed by the expected value) and its examples that state input and
   output without naming the function ("Input: nums = [1, 2] ... Output: 3", "For n = 5 the output should
   be 1": calls of the `def` before them) become asserts, run against the model's code. Of the examples
   read off the prose, only those that call a function the code defines count (a fact the prose states
   about `ord` is no test of it); the request's own asserts always do.
   A greedy answer that fails them is replaced by the first of up to MAX_ANSWERS - 1 sampled answers (same
   instruction, fixed seeds) that passes them, while another draw fits in the head's time (DrawSchedule). None
   passes -> FAILED_CONFIDENCE (0.05). None to run (the code parses and defines a function) ->
   UNTESTED_CONFIDENCE (0.5).
2. Differential testing, only once the prompt tests pass: the model writes a second solution
   (another system prompt, sampled with a fixed temperature and seed), and one sandbox run calls both
   on probe inputs the request did not give: type-preserving mutations of the examples' arguments
   (`derive_probes`: at most MAX_PROBES, deduplicated, each call under a time guard). The second
   solution must pass the prompt tests too to be a witness. A probe the second solution raises on while the
   answer returns (or both raise, differently) is refused, not run: the input is outside what that solution
   handles (`probe_verdict`); one that refuses as many probes as it answers is no witness (`refuses_most`).
   A witness agrees when both agree on every probe that ran (equal results, or the same exception type),
   with at least MIN_PROBES probes run.
   One witness agreeing and none disagreeing, or two or more agreeing and outnumbering those that
   disagree (more are drawn after a disagreement, up to MAX_WITNESSES candidates in all: `trusted_by`)
   -> PASSED_CONFIDENCE (0.9). Otherwise, a disagreement -> DISAGREED_CONFIDENCE; too few probes, or
   no second solution that passes the prompt tests -> UNCORROBORATED_CONFIDENCE. Both are below the
   council's 0.75 floor: passing the request's own one or two examples is not enough to be trusted.

Without a working sandbox the head abstains: no code runs unsandboxed.

The ballot's evidence summarises the runs (tests passed/failed, error types, probes run/agreed, a
disagreeing probe's input and the kinds of the two outcomes); the raw stdout/stderr of a run and the
values the solutions returned sit under RAW_OUTPUT_KEY, which only staff get to see (`public_ballots`
removes it for everyone else).
"""

from __future__ import annotations

import ast
import json
import re
import secrets
import time
from typing import Any

from routing.heads.base import Ballot, Generate, Head, HeadContext, parse_source
from routing.sandbox import SandboxResult, SandboxUnavailable, run_python, sandbox_status

SYSTEM_PROMPT = (
    "You are an expert Python programmer. Reply with one complete Python code block that solves the task. "
    "No explanations."
)
# The second, independent solution: another instruction, sampled (fixed temperature and seed: repeatable).
SECOND_SYSTEM_PROMPT = (
    "You are an expert Python programmer. Solve the task in your own way, writing the function from scratch. "
    "Reply with one complete Python code block. No explanations."
)
SECOND_TEMPERATURE = 0.7
SECOND_SEED = 20261203
# A second solution that fails the prompt's own tests (or defines nothing that runs) is no witness either
# way, so another is drawn (the next seed), up to this many in all. One that passes them is a witness and
# votes: for the answer (agrees on every probe run, at least MIN_PROBES) or against it (a probe differs).
# The answer is trusted when one witness is for it and none against, or when at least two are for it and
# outnumber those against (trusted_by); drawing stops once that holds or can no longer hold.
MAX_WITNESSES = 4
# The answer itself: when the greedy one fails the prompt's own tests, others are sampled under the same
# instruction (SECOND_TEMPERATURE, seeds from ANSWER_SEED), up to this many in all, while draws fit (DrawSchedule).
MAX_ANSWERS = 3
ANSWER_SEED = 20261206
# Without the request's deadline (HeadContext.deadline: an offline caller), the head's draws end within this
# window; the first witness is drawn whatever the time. With it, every draw after the first answer must fit.
REDRAW_WITHIN_S = 30.0
PASSED_CONFIDENCE = 0.9  # prompt tests pass and the two solutions agree on at least MIN_PROBES probes
UNCORROBORATED_CONFIDENCE = 0.6  # prompt tests pass, but too few probes or no working second solution
DISAGREED_CONFIDENCE = 0.3  # prompt tests pass, but the two solutions disagree on a probe
UNTESTED_CONFIDENCE = 0.5
FAILED_CONFIDENCE = 0.05
MIN_PROBES = 4  # probes that must actually run (neither call timed out) for agreement to count
MAX_PROBES = 24
PROBE_CALL_S = 0.25  # the time guard on one call inside the sandbox
PROBE_BUDGET_S = 3.0  # all probes together; the rest are not run
DIFF_WALL_S = 8.0
DIFF_CPU_S = 6

_CODE_REQUEST = re.compile(
    r"(\bdef\s+\w+\s*\(|\bwrite (a |an )?(python )?(function|program|script|class)\b|\bimplement\b|"
    r"\bpython (function|code|script)\b|```|\bassert\s)",
    re.I,
)
_FENCE = re.compile(r"```(?:python|py)?\s*\n(.*?)```", re.S | re.I)
_OPEN_FENCE = re.compile(r"```(?:python|py)?[ \t]*\n", re.I)
_ASSERT_LINE = re.compile(r"^\s*(assert\s+.+)$", re.M)
# f(2, 3) == 5  |  f(2, 3) -> 5  |  f(2, 3) ==> 5  |  f(2, 3) ➞ 5  |  f(2, 3) = 5  |  f(2, 3) returns 5  |
# f(2, 3)  # returns 5  |  f(2,3) should return 5: the notations of docstrings and kata-style problem statements
_EXAMPLE = re.compile(
    r"(?P<call>\b[A-Za-z_]\w*\((?:[^()]|\([^()]*\))*\))\s*"
    r"(?:==>|==|->|=>|\u279e|\u2192|=(?![=>])|(?:\#\s*)?(?:returns|should return|gives)|is)\s*"
    r"(?=(?P<rest>[^\n;]+))",  # looked at, not consumed: the next example may sit inside it
    re.M,
)
# Where an example's expected value may end: a comma, full stop or semicolon before a space, a comment, or the
# line's end.
_VALUE_END = re.compile(r"\s*(?:[,;.]\s|#|[.;,]?$)")
# Lower-case spellings of Python's constants, as prose and other languages write them ("=> true").
_CONSTANTS = {"true": "True", "false": "False", "none": "None", "null": "None"}


def _expected_value(rest: str) -> str | None:
    """The literal an example states after its arrow: the shortest text up to a value end that is a Python
    literal ("[1, 2, 3]" in "[1, 2, 3]. More", not "[1"), `true`/`false`/`null` as Python spells them; None
    when no prefix is one."""
    for end in _VALUE_END.finditer(rest):
        candidate = rest[: end.start()].strip()
        candidate = _CONSTANTS.get(candidate, candidate)
        if candidate and _is_literal(candidate):
            return candidate
    return None


def is_code_request(prompt: str) -> bool:
    return bool(_CODE_REQUEST.search(prompt))


def extract_code(text: str) -> str:
    """The longest fenced block; a reply cut off inside its fence (max_tokens) keeps its complete part."""
    blocks = _FENCE.findall(text)
    if blocks:
        return max(blocks, key=len).strip()
    opened = _OPEN_FENCE.search(text)
    return complete_prefix(text[opened.end() :]) if opened else text.strip()


def extract_solution(text: str) -> str:
    """The code of a reply meant to define a function: the longest fenced block that defines one (replies
    often show a usage example in a block of its own, which may be the longer), else `extract_code`'s."""
    defining = [block.strip() for block in _FENCE.findall(text) if defined_functions(block)]
    return max(defining, key=len) if defining else extract_code(text)


def complete_prefix(code: str) -> str:
    """`code` up to its last top-level statement that parses (all of it when it parses)."""
    lines = code.strip().splitlines()
    for end in range(len(lines), 0, -1):
        if end < len(lines) and lines[end][:1].isspace():
            continue  # cut only before a top-level line
        prefix = "\n".join(lines[:end])
        try:
            parse_source(prefix)
        except (SyntaxError, ValueError, MemoryError, RecursionError):
            continue
        return prefix
    return code.strip()


def _is_literal(expr: str) -> bool:
    try:
        ast.literal_eval(parse_source(expr, mode="eval"))
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return False
    return True


def _parses(source: str, mode: str = "exec") -> bool:
    try:
        parse_source(source, mode=mode)
    except (SyntaxError, ValueError, MemoryError, RecursionError):
        return False
    return True


def _is_expression(source: str) -> bool:
    return _parses(source, mode="eval")


_DOCTEST = re.compile(r"^(?P<indent>[ \t]*)>>>[ \t]?(?P<source>.*)$")
_DOCTEST_MORE = re.compile(r"^[ \t]*\.\.\.[ \t]?(?P<source>.*)$")
_DOCSTRING_END = re.compile(r"(\"\"\"|\'\'\'|```)\s*$")


def doctest_examples(prompt: str) -> list[tuple[str, str]]:
    """(source, expected) of each `>>> expression` followed by its expected value's line(s).

    The expected value ends at a blank line, the next `>>>`, a line less indented than the `>>>`, or
    the docstring's closing quotes. Statements, `print(...)` calls and non-literal values are left out."""
    lines = prompt.splitlines()
    examples: list[tuple[str, str]] = []
    index = 0
    while index < len(lines):
        match = _DOCTEST.match(lines[index])
        index += 1
        if not match:
            continue
        indent, source = len(match.group("indent").expandtabs()), [match.group("source")]
        while index < len(lines) and (more := _DOCTEST_MORE.match(lines[index])):
            source.append(more.group("source"))
            index += 1
        expected: list[str] = []
        while index < len(lines):
            line = lines[index]
            stripped = line.strip()
            width = len(line.expandtabs()) - len(line.expandtabs().lstrip())
            if not stripped or stripped.startswith(">>>") or width < indent:
                break
            end = _DOCSTRING_END.search(stripped)
            if end:
                if stripped[: end.start()].strip():
                    expected.append(stripped[: end.start()].strip())
                index += 1
                break
            expected.append(stripped)
            index += 1
        call, value = "\n".join(source).strip(), " ".join(expected).strip()
        if not value or not _is_expression(call) or not _is_literal(value):
            continue
        if re.match(r"print\s*\(", call):
            continue
        examples.append((call, value))
    return examples


def _literal_call(source: str) -> bool:
    """True when `source` is one call whose arguments are all literals (`f(2, 'a')`, not `f(a)`)."""
    try:
        node = parse_source(source, mode="eval").body
        if not isinstance(node, ast.Call) or any(isinstance(arg, ast.Starred) for arg in node.args):
            return False
        for arg in [*node.args, *(keyword.value for keyword in node.keywords)]:
            ast.literal_eval(arg)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return False
    return all(keyword.arg is not None for keyword in node.keywords)


def _one_line(source: str) -> str:
    """An expression's source on one line and without comments: an assert is built on one line."""
    return ast.unparse(parse_source(source, mode="eval"))


def derive_tests(prompt: str, functions: set[str] | None = None) -> list[str]:
    """Asserts stated in the request, `f(literals) -> value` examples and doctest examples whose value is a
    literal. A test that is not valid Python (`assert f(1) => 2`, prose) is left out: in the script that
    runs the tests it would fail every one of them, the right code's as well. With `functions` (those the
    answer defines), an example read off the prose counts only when it calls one of them (the prose's
    `ord('a') = 97` tests nothing the answer wrote); the request's own asserts always count."""
    tests = [line.strip() for line in _ASSERT_LINE.findall(prompt)]
    examples: list[str] = []
    for match in _EXAMPLE.finditer(prompt):
        call, expected = match.group("call"), _expected_value(match.group("rest"))
        if expected is not None and _literal_call(call):
            examples.append(f"assert {call} == {expected}, {call!r}")
    for call, expected in doctest_examples(prompt):
        call = _one_line(call)  # a trailing `# comment` on the >>> line would swallow the rest of the assert
        examples.append(f"assert ({call}) == ({_one_line(expected)}), {call!r}")
    for call, expected in stated_examples(prompt):
        examples.append(f"assert {call} == {expected}, {call!r}")
    if functions is not None:
        examples = [test for test in examples if _called_names(test) & functions]
    return [test for test in dict.fromkeys(tests + examples) if _parses(test)]


# "Input: nums = [1, 2], k = 3 ... Output: 5" (the arguments may span lines, `name : value` or `name = value`,
# or bare values), and "For num = "AB" the output should be 1": examples that name no function. They are
# calls of the function whose `def` comes last before them.
_DEF = re.compile(r"^[ \t]*def[ \t]+(?P<name>[A-Za-z_]\w*)[ \t]*\((?P<params>[^()]*)\)", re.M)
_INPUT_OUTPUT = re.compile(
    r"\bInput\s*:[ \t]*(?P<args>[^\n]*(?:\n(?![ \t]*Output\b)[^\n]*){0,6}?)\s*\bOutput\s*:\s*(?=(?P<rest>[^\n;]+))"
)
_FOR_OUTPUT = re.compile(
    r"\bFor\s+(?P<args>[A-Za-z_]\w*\s*=[^\n]*?)\s+the output should be\s+(?=(?P<rest>[^\n;]+))", re.I
)
_NAMED_VALUE = re.compile(r"^\s*([A-Za-z_]\w*)\s*:\s*(?=\S)", re.M)


def _parameters(params: str) -> list[str] | None:
    """The parameter names of `def f(<params>)`, or None when that does not parse."""
    try:
        tree = parse_source(f"def f({params}):\n    pass")
    except (SyntaxError, ValueError, MemoryError, RecursionError):
        return None
    arguments = tree.body[0].args  # type: ignore[attr-defined]
    return [arg.arg for arg in [*arguments.posonlyargs, *arguments.args]]


def _literal_arguments(text: str) -> tuple[list[Any], dict[str, Any]] | None:
    """The positional and keyword values of `text` read as a call's arguments ("3", "a = [1], k = 2",
    "grid : [[0]]\n k : 1"); the longest comma-separated prefix that reads so; None when none does."""
    text = ", ".join(line.strip().rstrip(",") for line in _NAMED_VALUE.sub(r"\1=", text).splitlines() if line.strip())
    cuts = [len(text)] + [m.start() for m in reversed(list(re.finditer(",", text)))]
    for cut in cuts:
        try:
            node = parse_source(f"_f({text[:cut]})", mode="eval").body
            if not isinstance(node, ast.Call) or any(isinstance(a, ast.Starred) for a in node.args):
                continue
            args = [ast.literal_eval(arg) for arg in node.args]
            kwargs = {k.arg: ast.literal_eval(k.value) for k in node.keywords if k.arg is not None}
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            continue
        if len(kwargs) == len(node.keywords) and (args or kwargs):
            return args, kwargs
    return None


def stated_examples(prompt: str) -> list[tuple[str, str]]:
    """(call, expected) of the examples that state inputs and output without naming the function: the call
    is to the `def` that comes last before the example, by keyword when the names are its parameters, else
    by position when the values are as many as its parameters."""
    defs = [(m.start(), m.group("name"), _parameters(m.group("params"))) for m in _DEF.finditer(prompt)]
    examples: list[tuple[str, str]] = []
    for match in [*_INPUT_OUTPUT.finditer(prompt), *_FOR_OUTPUT.finditer(prompt)]:
        before = [d for d in defs if d[0] < match.start() and d[2] is not None]
        expected = _expected_value(match.group("rest"))
        read = _literal_arguments(match.group("args"))
        if not before or expected is None or read is None:
            continue
        _, name, params = before[-1]
        args, kwargs = read
        assert params is not None
        if kwargs and not set(kwargs) <= set(params):
            if args or len(kwargs) != len(params):
                continue
            args, kwargs = list(kwargs.values()), {}
        if len(args) + len(kwargs) > len(params):
            continue
        shown = [repr(value) for value in args] + [f"{key}={value!r}" for key, value in kwargs.items()]
        examples.append((f"{name}({', '.join(shown)})", expected))
    return examples


def _plain_calls(test: str) -> list[tuple[str, ast.Call]]:
    """(name, call) of each call in `test` to a plain name; none when it does not parse."""
    try:
        tree = parse_source(test)
    except (SyntaxError, ValueError, MemoryError, RecursionError):
        return []
    return [(n.func.id, n) for n in ast.walk(tree) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)]


def _called_names(test: str) -> set[str]:
    return {name for name, _ in _plain_calls(test)}


# --------------------------------------------------------------------------- probes
def example_calls(tests: list[str], functions: set[str]) -> list[tuple[str, tuple[Any, ...], dict[str, Any]]]:
    """(function, args, kwargs) of each call in `tests` to one of `functions` whose arguments are all literals."""
    calls: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = []
    for test in tests:
        for name, node in _plain_calls(test):
            if name not in functions:
                continue
            if any(isinstance(arg, ast.Starred) for arg in node.args) or any(k.arg is None for k in node.keywords):
                continue
            try:
                args = tuple(ast.literal_eval(arg) for arg in node.args)
                kwargs = {k.arg: ast.literal_eval(k.value) for k in node.keywords if k.arg is not None}
            except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
                continue
            calls.append((name, args, kwargs))
    return calls


_LARGE = 10**6


def mutations(value: Any) -> list[Any]:
    """Values of the same type near `value`: the edge cases a second opinion is most likely to differ on."""
    if isinstance(value, bool):
        return [not value]
    if isinstance(value, int):
        return [value + 1, value - 1, 0, -value, min(abs(value) * 10 + 3, _LARGE)]
    if isinstance(value, float):
        return [value + 0.5, -value, 0.0, value * 2.5, round(value) + 0.25]
    if isinstance(value, str):
        return [value[::-1], "", value.swapcase(), value[:1], value + value[:1], value[1:]]
    if isinstance(value, (list, tuple)):
        kind = type(value)
        changed = [kind(value[::-1]), kind(), kind(value[:1]), kind(list(value) + list(value[-1:])), kind(value[1:])]
        if value:  # the first element moved, type kept
            changed += [kind([first, *value[1:]]) for first in mutations(value[0])[:2]]
        return changed
    if isinstance(value, dict):
        items = list(value.items())
        changed = [{}, dict(items[:1]), dict(items[::-1])]
        if items:
            changed += [{**value, items[0][0]: other} for other in mutations(items[0][1])[:2]]
        return changed
    if isinstance(value, (set, frozenset)):
        kind = type(value)
        ordered = sorted(value, key=repr)
        return [kind(), kind(ordered[:1]), kind(ordered[1:])]
    return []


def _key(value: Any) -> str:
    """A repr that tells 1, 1.0 and True apart, inside containers too."""
    if isinstance(value, (list, tuple)):
        return type(value).__name__ + "(" + ",".join(_key(v) for v in value) + ")"
    if isinstance(value, dict):
        return "dict(" + ",".join(_key(k) + ":" + _key(v) for k, v in value.items()) + ")"
    return type(value).__name__ + ":" + repr(value)


def derive_probes(
    tests: list[str], functions: set[str], *, limit: int = MAX_PROBES, max_chars: int = 2_000
) -> list[tuple[str, str]]:
    """(function, repr of (args, kwargs)) probe calls the request did not give.

    Each example call's arguments are changed one at a time by `mutations` (types kept); probes equal to an
    example or to another probe are dropped; they are taken round-robin across the examples, at most `limit`."""
    examples = example_calls(tests, functions)
    seen = {(name, _key((args, kwargs))) for name, args, kwargs in examples}
    per_example: list[list[tuple[str, str]]] = []
    for name, args, kwargs in examples:
        slots = [(i, None) for i in range(len(args))] + [(None, k) for k in kwargs]
        found: list[tuple[str, str]] = []
        for position, keyword in slots:
            original = args[position] if position is not None else kwargs[keyword]
            for other in mutations(original):
                new_args = (*args[:position], other, *args[position + 1 :]) if position is not None else args
                new_kwargs = {**kwargs, keyword: other} if keyword is not None else kwargs
                key = (name, _key((new_args, new_kwargs)))
                text = repr((new_args, new_kwargs))
                if key in seen or len(text) > max_chars:
                    continue
                seen.add(key)
                found.append((name, text))
        per_example.append(found)
    probes: list[tuple[str, str]] = []
    for rank in range(max((len(found) for found in per_example), default=0)):
        probes += [found[rank] for found in per_example if rank < len(found)]
    return probes[:limit]


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
        runs = {key: run for key, run in evidence.items() if isinstance(run, dict) and RAW_OUTPUT_KEY in run}
        if runs:
            cleaned = {key: {k: v for k, v in run.items() if k != RAW_OUTPUT_KEY} for key, run in runs.items()}
            ballot = {**ballot, "evidence": {**evidence, **cleaned}}
        shown.append(ballot)
    return shown


# --------------------------------------------------------------------------- differential testing
# One sandbox run: both solutions defined in namespaces of their own, the second one's prompt tests, then
# every probe called on both under a per-call time guard (SIGALRM); what each call gave is compared in
# here and reported as JSON after `marker` on stdout's last line. What the solutions print is discarded.
# GUARD_PRELUDE: what every script the heads run starts with: `_swarm_guard(fn, limit)` calls fn under a
# SIGALRM time guard with stdout discarded -> ["ok", value] | ["timeout", None] | ["raised", error name]
# (the script installs `_swarm_alarm` as the SIGALRM handler first).
GUARD_PRELUDE = r"""
import ast, json, math, signal, sys, time


class _SwarmTimeout(BaseException):
    pass


def _swarm_alarm(signum, frame):
    raise _SwarmTimeout()


class _SwarmSink:
    def write(self, text):
        return len(text)

    def flush(self):
        pass


def _swarm_guard(fn, limit):
    real = sys.stdout
    sys.stdout = _SwarmSink()
    try:
        signal.setitimer(signal.ITIMER_REAL, limit)
        try:
            return ["ok", fn()]
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
    except _SwarmTimeout:
        return ["timeout", None]
    except BaseException as exc:
        return ["raised", type(exc).__name__]
    finally:
        sys.stdout = real
"""
_DIFFERENTIAL = (
    GUARD_PRELUDE
    + r"""

def _swarm_same(x, y):
    if x[0] != y[0]:
        return False
    if x[0] == "raised":
        return x[1] == y[1]
    a, b = x[1], y[1]
    if isinstance(a, float) and isinstance(b, float):
        return a == b or (a != a and b != b) or math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)
    return bool(a == b)


def _swarm_shown(outcome):
    if outcome[0] != "ok":
        return [outcome[0], outcome[1], None]
    value = _swarm_guard(lambda: repr(outcome[1])[:160], 0.2)
    return ["returned", type(outcome[1]).__name__, value[1] if value[0] == "ok" else None]


def _swarm_main(p):
    signal.signal(signal.SIGALRM, _swarm_alarm)
    report = {"defined": [], "tests": None, "probes": []}
    spaces = []
    for index, code in enumerate(p["solutions"]):
        space = {"__name__": "__swarm_solution_%d__" % (index + 1), "__builtins__": __builtins__}
        done = _swarm_guard(lambda: exec(compile(code, "<solution %d>" % (index + 1), "exec"), space), p["define_s"])
        report["defined"].append(None if done[0] == "ok" else (done[1] if done[0] == "raised" else "timeout"))
        spaces.append(space)
    if all(d is None for d in report["defined"]):
        results = []
        for test in p["tests"]:
            done = _swarm_guard(lambda: exec(compile(test, "<test>", "exec"), spaces[1]), p["define_s"])
            results.append(None if done[0] == "ok" else (done[1] if done[0] == "raised" else "timeout"))
        report["tests"] = results
        started = time.monotonic()
        for name, call in p["probes"]:
            if time.monotonic() - started > p["budget_s"]:
                break
            outcomes = []
            for space in spaces:
                args, kwargs = ast.literal_eval(call)
                fn = space.get(name)
                outcomes.append(_swarm_guard(lambda: fn(*args, **kwargs), p["call_s"]) if callable(fn)
                                else ["raised", "NameError"])
            if "timeout" in (outcomes[0][0], outcomes[1][0]):
                same = None
            else:
                same = _swarm_guard(lambda: _swarm_same(outcomes[0], outcomes[1]), p["call_s"])
                same = same[1] is True if same[0] == "ok" else False
            report["probes"].append([same, _swarm_shown(outcomes[0]), _swarm_shown(outcomes[1])])
    sys.stdout.flush()
    print("\n" + p["marker"] + json.dumps(report), flush=True)


_swarm_main({payload!r})
"""
)


def differential_script(first: str, second: str, tests: list[str], probes: list[tuple[str, str]], marker: str) -> str:
    """A script that runs `second`'s prompt tests and calls both solutions on every probe (see _DIFFERENTIAL)."""
    payload = {"solutions": [first, second], "tests": tests, "probes": [list(p) for p in probes],
               "marker": marker, "call_s": PROBE_CALL_S, "define_s": 2 * PROBE_CALL_S + 1.0,
               "budget_s": PROBE_BUDGET_S}  # fmt: skip
    return _DIFFERENTIAL.replace("{payload!r}", repr(payload))


def _reported(stdout: str, marker: str) -> Any:
    for line in reversed(stdout.splitlines()):
        if line.startswith(marker):
            try:
                return json.loads(line[len(marker) :])
            except ValueError:
                return None
    return None


def _outcome_kind(shown: Any) -> str:
    """'returned int', 'raised KeyError', 'timeout': what a call gave, without the value itself."""
    if not isinstance(shown, list) or len(shown) != 3:
        return "unknown"
    kind, name = shown[0], shown[1]
    if kind == "timeout":
        return "timeout"
    return f"{kind if kind in ('returned', 'raised') else 'unknown'} {_error_name(name)}"


TIMED_OUT, REFUSED_BY_BOTH, REFUSED_BY_WITNESS = "timed_out", "refused_by_both", "refused_by_witness"
AGREED, DIFFERED = "agreed", "differed"
NOT_RUN = (TIMED_OUT, REFUSED_BY_BOTH, REFUSED_BY_WITNESS)  # probes that are evidence neither way


def probe_verdict(same: bool | None, *, answer_raised: bool, witness_raised: bool) -> str:
    """How one probe counts between the answer and a witness: `same` is None when either call timed out
    (not run), else whether the outcomes are equal. A witness that raises where the answer does not (or
    raises another exception) refuses the probe: the input is outside what that witness handles (an empty
    list, a base its check rejects), which says nothing of the answer's value there. Both raising different
    exceptions is the same refusal. The answer raising where the witness returns a value is a difference:
    the answer may fail on an input the prompt allows. Only AGREED and DIFFERED probes are run."""
    if same is None:
        return TIMED_OUT
    if same:
        return AGREED
    if witness_raised:
        return REFUSED_BY_BOTH if answer_raised else REFUSED_BY_WITNESS
    return DIFFERED


def refuses_most(run: int, refused: int) -> str | None:
    """Why a candidate that passes the prompt's tests is still no witness: it does not answer most of the
    probes it did not time out on (it refuses, raises on, as many as it answers), so it does not handle the
    inputs the answer is checked on; None when it is one."""
    return f"refused {refused} of {run + refused} probes" if refused and refused >= run else None


def differential_summary(
    result: SandboxResult, probes: list[tuple[str, str]], tests: list[str], marker: str
) -> dict[str, Any]:
    """What the differential run says, without anything the solutions returned or printed (kinds only);
    those are kept under RAW_OUTPUT_KEY for staff."""
    summary: dict[str, Any] = {
        "probes_derived": len(probes), "probes_run": 0, "probes_agreed": 0, "probes_timed_out": 0,
        "probes_refused_by_both": 0, "probes_refused_by_witness": 0,
        "agree": False, "second_tests_failed": None, "second_error": None, "disagreement": None,
        "exit_code": result.exit_code, "timed_out": result.timed_out, "killed_reason": result.killed_reason,
        "duration_ms": round(result.duration_s * 1000, 1),
    }  # fmt: skip
    raw: dict[str, Any] = {"stdout": result.stdout[-500:], "stderr": result.stderr[-500:], "disagreement": None}
    report = _reported(result.stdout, marker)
    valid = (
        isinstance(report, dict)
        and isinstance(report.get("defined"), list)
        and len(report["defined"]) == 2
        and isinstance(report.get("probes"), list)
        and len(report["probes"]) <= len(probes)
    )
    if not valid:
        summary["second_error"] = f"killed ({result.killed_reason})" if result.killed_reason else "did not report"
        summary[RAW_OUTPUT_KEY] = raw
        return summary
    defined = report["defined"]
    if any(d is not None for d in defined):
        summary["second_error"] = "defining: " + ", ".join(_error_name(d) for d in defined if d is not None)
        summary[RAW_OUTPUT_KEY] = raw
        return summary
    results = report.get("tests")
    failed = [r for r in results if r is not None] if isinstance(results, list) else list(tests)
    summary["second_tests_failed"] = len(failed)
    if failed:
        summary["second_error"] = _error_name(failed[0])
    for index, row in enumerate(report["probes"]):
        shown = row if isinstance(row, list) and len(row) == 3 else [False, None, None]
        raised = [isinstance(side, list) and side[:1] == ["raised"] for side in shown[1:]]
        verdict = probe_verdict(shown[0] if shown[0] is None else shown[0] is True, answer_raised=raised[0],
                                witness_raised=raised[1])  # fmt: skip
        if verdict in NOT_RUN:
            summary[f"probes_{verdict}"] += 1
            continue
        summary["probes_run"] += 1
        if verdict == AGREED:
            summary["probes_agreed"] += 1
        elif summary["disagreement"] is None:
            name, call = probes[index]
            summary["disagreement"] = {"probe": f"{name}{call[:200]}", "first": _outcome_kind(shown[1]),
                                       "second": _outcome_kind(shown[2])}  # fmt: skip
            raw["disagreement"] = {"first": shown[1], "second": shown[2]}
    summary["agree"] = not failed and summary["probes_run"] == summary["probes_agreed"]
    if not failed and (refusing := refuses_most(summary["probes_run"], summary["probes_refused_by_witness"])):
        summary["second_error"], summary["agree"] = refusing, False
    summary[RAW_OUTPUT_KEY] = raw
    return summary


def defined_functions(code: str) -> set[str]:
    try:
        tree = parse_source(code)
    except SyntaxError:
        return set()
    return {node.name for node in ast.walk(tree) if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))}


def sandbox_missing() -> str | None:
    """Why no model-written code can run here ("sandbox unavailable: ..."), or None when it can."""
    sandbox = sandbox_status()
    return None if sandbox["ok"] else f"sandbox unavailable: {sandbox['reason']}"


class DrawSchedule:
    """When the head may start another draw (one generation and its sandbox run): only when the longest
    draw of this request so far, started now, would end by `limit` (time.perf_counter()), so the head
    uses the time the request has and never overruns it. `hard`: the limit is the request's deadline, so
    the first witness must fit too (without one, the first witness is drawn whatever the time)."""

    def __init__(self, limit: float, *, hard: bool) -> None:
        self.limit = limit
        self.hard = hard
        self.longest_s = 0.0

    @classmethod
    def for_head(cls, started: float, timeout_s: float, deadline: float | None) -> DrawSchedule:
        """Within the head's own timeout and the council's deadline when there is one, else REDRAW_WITHIN_S."""
        if deadline is None:
            return cls(started + REDRAW_WITHIN_S, hard=False)
        return cls(min(started + timeout_s, deadline), hard=True)

    def took(self, since: float) -> None:
        """A draw that started at `since` has ended."""
        self.longest_s = max(self.longest_s, time.perf_counter() - since)

    def allows(self, *, first_witness: bool = False) -> bool:
        if first_witness and not self.hard:
            return True
        return time.perf_counter() + self.longest_s < self.limit


class CodeHead(Head):
    name = "code"
    skill_type = "code"
    timeout_s = 100.0  # up to 1 + MAX_WITNESSES generations of a few hundred tokens on a small CPU, and sandbox runs
    sandbox_wall_s = 5.0

    def applies(self, prompt: str) -> bool:
        return is_code_request(prompt)

    def answer(self, prompt: str, ctx: HeadContext) -> Ballot:
        started = time.perf_counter()
        if ctx.generate is None or (missing := sandbox_missing()):
            return self.abstain(started, "no local model" if ctx.generate is None else missing)
        schedule = DrawSchedule.for_head(started, self.timeout_s, ctx.deadline)
        messages = [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": prompt}]
        max_tokens = max(ctx.max_tokens, 256)
        code = extract_solution(ctx.generate(messages, max_tokens=max_tokens, temperature=ctx.temperature).text)
        functions = defined_functions(code)
        if not functions:
            return self.ballot(code, 0.0, started, reason="no function definition that parses")
        tests = derive_tests(prompt, functions)
        if not tests:
            return self.ballot(code, UNTESTED_CONFIDENCE, started, functions=sorted(functions), tests=[])
        try:
            passed, summary = self.run_tests(code, tests)
            schedule.took(started)
            drawn = 1
            # An answer that fails the prompt's own tests is wrong whatever else holds: another is sampled
            # (the same instruction, the next seed) while another draw fits, and the first that passes is
            # the answer; the evidence below is then gathered for that one.
            while not passed and drawn < MAX_ANSWERS and schedule.allows():
                since = time.perf_counter()
                other = extract_solution(ctx.generate(messages, max_tokens=max_tokens, temperature=SECOND_TEMPERATURE,
                                                      seed=ANSWER_SEED + drawn - 1).text)  # fmt: skip
                drawn += 1
                other_functions = defined_functions(other)
                if other_functions & functions:
                    other_passed, other_summary = self.run_tests(other, tests)
                    if other_passed:
                        code, functions, passed, summary = other, other_functions, True, other_summary
                schedule.took(since)
        except SandboxUnavailable as exc:
            return self.abstain(started, f"sandbox unavailable: {exc}")
        evidence: dict[str, Any] = {"functions": sorted(functions), "tests": tests, "passed": passed,
                                    "sandbox": summary, "answers_drawn": drawn}  # fmt: skip
        if not passed:
            return self.ballot(code, FAILED_CONFIDENCE, started, **evidence)
        try:
            differential = self.differential(prompt, ctx.generate, ctx.max_tokens, code, functions, tests,
                                             schedule=schedule)  # fmt: skip
        except SandboxUnavailable as exc:
            return self.abstain(started, f"sandbox unavailable: {exc}")
        return self.ballot(code, differential_confidence(differential), started, **evidence,
                           differential=differential)  # fmt: skip

    def run_tests(self, code: str, tests: list[str]) -> tuple[bool, dict[str, Any]]:
        """Whether `code` passes every test in the sandbox, and the run's summary (raw output for staff)."""
        marker = f"__swarm_tests_{secrets.token_hex(8)}__:"
        result = run_python(code=script_with_tests(code, tests, marker), wall_s=self.sandbox_wall_s)
        summary = sandbox_summary(result, tests, marker)
        summary[RAW_OUTPUT_KEY] = {"stdout": result.stdout[-500:], "stderr": result.stderr[-500:]}
        return result.ok and summary["tests_failed"] == 0, summary

    def differential(
        self,
        prompt: str,
        generate: Generate,
        max_tokens: int,
        code: str,
        functions: set[str],
        tests: list[str],
        *,
        schedule: DrawSchedule,
    ) -> dict[str, Any]:
        """Second solutions, each compared with `code` on new probes in a sandbox run, until the witnesses'
        votes settle it (trusted_by, or trust out of reach: see MAX_WITNESSES); the evidence of the witness
        that settled it (the first that disagreed when none did; the last candidate's when no candidate was a
        witness), with `votes` and `witnesses_drawn`. Each candidate is drawn only when `schedule` allows it."""
        probes = derive_probes(tests, functions)
        if not probes:
            return _no_witness(probes, "no probes")
        drawn_summaries: list[dict[str, Any]] = []
        for drawn in range(1, MAX_WITNESSES + 1):
            if not schedule.allows(first_witness=drawn == 1):
                break
            since = time.perf_counter()
            seed = SECOND_SEED + drawn - 1
            drawn_summaries.append(self._witness(prompt, generate, max_tokens, code, tests, probes, seed=seed))
            schedule.took(since)
            if settled(drawn_summaries, MAX_WITNESSES - drawn):
                break
        if not drawn_summaries:
            return _no_witness(probes, "no time left for a second solution")
        votes = _votes(drawn_summaries)
        witnesses = [w for w in drawn_summaries if not w.get("second_error")]
        if trusted_by(votes):  # shown: the witness that settled it
            shown = [w for w in witnesses if _agrees(w)][-1]
        elif votes["disagree"]:  # the first that disagreed
            shown = next(w for w in witnesses if w.get("disagreement"))
        else:
            shown = drawn_summaries[-1]
        return {**shown, "witnesses_drawn": len(drawn_summaries), "votes": votes}

    def _witness(
        self,
        prompt: str,
        generate: Generate,
        max_tokens: int,
        code: str,
        tests: list[str],
        probes: list[tuple[str, str]],
        *,
        seed: int,
    ) -> dict[str, Any]:
        """One second solution, drawn with `seed`, run against the prompt tests and `code` on the probes."""
        gen = generate(
            [{"role": "system", "content": SECOND_SYSTEM_PROMPT}, {"role": "user", "content": prompt}],
            max_tokens=max(max_tokens, 256),
            temperature=SECOND_TEMPERATURE,
            seed=seed,
        )
        second = extract_solution(gen.text)
        missing = sorted({name for name, _ in probes} - defined_functions(second))
        if missing:
            return {"probes_derived": len(probes), "probes_run": 0, "probes_agreed": 0, "agree": False,
                    "second_error": f"no {missing[0]}() that parses"}  # fmt: skip
        marker = f"__swarm_diff_{secrets.token_hex(8)}__:"
        result = run_python(code=differential_script(code, second, tests, probes, marker), wall_s=DIFF_WALL_S,
                            cpu_s=DIFF_CPU_S)  # fmt: skip
        return differential_summary(result, probes, tests, marker)


def _no_witness(probes: list[tuple[str, str]], why: str) -> dict[str, Any]:
    return {"probes_derived": len(probes), "probes_run": 0, "probes_agreed": 0, "agree": False, "second_error": why,
            "witnesses_drawn": 0, "votes": _votes([])}  # fmt: skip


def _agrees(summary: dict[str, Any]) -> bool:
    """A witness's vote for the answer: it agrees on every probe that ran, and at least MIN_PROBES ran."""
    return bool(summary.get("agree")) and summary.get("probes_run", 0) >= MIN_PROBES


def _votes(summaries: list[dict[str, Any]]) -> dict[str, int]:
    """How many witnesses (second solutions that pass the prompt tests) agree with the answer, how many
    disagree on a probe; a witness with too few probes run is neither."""
    witnesses = [w for w in summaries if not w.get("second_error")]
    return {
        "agree": sum(_agrees(w) for w in witnesses),
        "disagree": sum(bool(w.get("disagreement")) for w in witnesses),
    }


def trusted_by(votes: dict[str, int]) -> bool:
    """The witnesses' verdict: one agrees and none disagrees, or at least two agree and they outnumber
    those that disagree (a witness is a sample of the same model: one that disagrees may be the one
    that is wrong, but only more witnesses agreeing with the answer can say so)."""
    agree, disagree = votes["agree"], votes["disagree"]
    return (agree >= 1 and disagree == 0) or (agree >= 2 and agree > disagree)


def reachable(votes: dict[str, int], left: int) -> bool:
    """Whether `left` more witnesses could still make trusted_by true."""
    return trusted_by({"agree": votes["agree"] + left, "disagree": votes["disagree"]})


def settled(summaries: list[dict[str, Any]], left: int) -> bool:
    """Whether no more witnesses are drawn after `summaries` (with `left` candidates still allowed): the
    votes trust the answer, or can no longer, or the last was a witness that agreed on too few probes
    (the same probes say no more for another)."""
    votes, last = _votes(summaries), summaries[-1]
    if trusted_by(votes) or not reachable(votes, left):
        return True
    return not last.get("second_error") and not _agrees(last) and not last.get("disagreement")


def differential_confidence(evidence: dict[str, Any]) -> float:
    """The confidence for code that passed the prompt tests, from the differential evidence (the votes of
    the witnesses, see trusted_by; evidence without votes: one witness's summary)."""
    votes = evidence.get("votes") or _votes([evidence])
    if trusted_by(votes):
        return PASSED_CONFIDENCE
    if votes["disagree"]:
        return DISAGREED_CONFIDENCE
    return UNCORROBORATED_CONFIDENCE
