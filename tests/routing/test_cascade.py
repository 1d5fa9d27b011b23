"""The council's mechanics with stand-in heads and a stand-in model (the LLM is an external boundary here)."""

from __future__ import annotations

import time

import pytest

from inference.backends.base import Generation
from routing.cascade import run_council
from routing.heads.base import Ballot, Head, HeadContext
from routing.heads.code import CodeHead


class Fixed(Head):
    def __init__(self, name: str, answer: str, confidence: float, *, delay: float = 0.0, boom: bool = False):
        self.name = self.skill_type = name
        self._answer, self._confidence, self._delay, self._boom = answer, confidence, delay, boom
        self.timeout_s = 0.5
        self.calls = 0

    def answer(self, prompt: str, ctx: HeadContext) -> Ballot:
        self.calls += 1
        self.deadline = ctx.deadline
        started = time.perf_counter()
        time.sleep(self._delay)
        if self._boom:
            raise RuntimeError("head exploded")
        return self.ballot(self._answer, self._confidence, started)


def council(fast, llm, generate=None, prompt="q"):
    return run_council(prompt, fast_heads=fast, llm_heads=llm, generate=generate, max_tokens=16, temperature=0.0,
                       min_confidence=0.75)  # fmt: skip


def test_a_verified_fast_head_answers_without_waking_the_llm_heads():
    llm = Fixed("agent0", "something", 0.8)
    decision = council([Fixed("math", "56", 1.0)], [llm])
    assert decision.answer == "56" and decision.skill_type == "math" and llm.calls == 0


def test_unverified_fast_heads_fall_through_to_the_llm_heads():
    llm = Fixed("agent0", "Hello!", 0.8)
    decision = council([Fixed("micro", "Hi there", 0.6)], [llm])
    assert llm.calls == 1 and decision.skill_type == "agent0"


def test_a_head_that_raises_is_an_error_ballot():
    decision = council([Fixed("math", "", 0, boom=True)], [Fixed("agent0", "Hello!", 0.8)])
    error = next(b for b in decision.ballots if b.head == "math")
    assert "head exploded" in error.error and decision.skill_type == "agent0"


def test_a_head_that_overruns_its_timeout_is_an_error_ballot():
    started = time.perf_counter()
    decision = council([Fixed("slow", "late", 1.0, delay=2.0)], [])
    assert "timed out" in decision.ballots[0].error
    assert time.perf_counter() - started < 1.5
    assert decision.route == "unsure" and decision.answer == "UNSURE" and decision.confidence == 0.0


def test_fast_heads_run_concurrently():
    heads = [Fixed(f"h{i}", "", 0.0, delay=0.3) for i in range(4)]
    for head in heads:
        head.timeout_s = 2.0
    started = time.perf_counter()
    council(heads, [])
    assert time.perf_counter() - started < 1.0  # four 0.3 s heads, not 1.2 s in a row


def fake_model(text: str):
    def generate(messages, **params) -> Generation:
        return Generation(text=text, prompt_tokens=10, completion_tokens=5, finish_reason="stop", latency_ms=1.0)

    return generate


PROMPT = "Write a python function add(a, b) that returns the sum. add(2, 3) -> 5"


@pytest.mark.parametrize(
    ("written", "confidence", "passed"),
    [
        ("```python\ndef add(a, b):\n    return a + b\n```", 0.9, True),
        ("```python\ndef add(a, b):\n    return a - b\n```", 0.05, False),
        ("```python\ndef add(a, b):\n    while True: pass\n```", 0.05, False),
    ],
)
def test_code_confidence_follows_the_sandboxed_tests(written, confidence, passed):
    head = CodeHead()
    head.sandbox_wall_s = 2.0
    ballot = head.answer(PROMPT, HeadContext(generate=fake_model(written)))
    assert ballot.confidence == confidence and ballot.evidence["passed"] is passed


def test_code_without_tests_is_unverified_and_a_stub_cannot_win():
    untested = CodeHead().answer("Write a python function greet()", HeadContext(generate=fake_model(
        "def greet():\n    return 'hi'")))  # fmt: skip
    assert untested.confidence == 0.5
    stub = council([], [CodeHead()], generate=fake_model("def custom_function():\n    # TODO\n    pass"),
                   prompt="def custom_function()")  # fmt: skip
    assert stub.ballots[0].head == "code" and stub.scores["code"] == 0.0
    assert stub.route == "unsure" and stub.confidence == 0.0


def test_the_council_task_carries_the_requests_deadline_and_decides_its_reserve_before_it(settings) -> None:
    from routing import services
    from routing.tasks import orchestrate

    settings.SWARM_DEADLINE_S, settings.SWARM_COUNCIL_RESERVE_S = 60.0, 15.0
    ask = services.Ask(prompt="Write a python function f(x).", max_tokens=4, temperature=0.0)
    assert services._worker_task(ask) is orchestrate
    kwargs = ask.worker_kwargs(stream=False)
    assert set(kwargs) <= set(orchestrate.__wrapped__.__code__.co_varnames)  # the task takes every one
    assert time.time() + 59.0 < kwargs["deadline_at"] <= time.time() + 60.0
    council = services.council_deadline(kwargs["deadline_at"])
    assert council is not None and time.perf_counter() + 44.0 < council <= time.perf_counter() + 45.0
    assert services.council_deadline(None) is None


def test_the_llm_heads_see_the_councils_deadline():
    llm = Fixed("agent0", "Hello!", 0.8)
    run_council("q", fast_heads=[], llm_heads=[llm], generate=None, max_tokens=16, temperature=0.0,
                min_confidence=0.75, deadline=1234.5)  # fmt: skip
    assert llm.deadline == 1234.5
    council([], [llm])
    assert llm.deadline is None
