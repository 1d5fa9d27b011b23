"""The router cascade through real HTTP: the issue's acceptance prompts and /vote's shape."""

from __future__ import annotations

import pytest
import sympy

pytestmark = pytest.mark.integration


def test_a_greeting_is_answered_by_agent0(stack):
    body = stack.post("/hybrid", {"query": "hi"}).json()
    assert body["skill_type"] == "agent0" and body["confidence"] >= 0.75 and body["answer"]


def test_a_stub_request_gets_confidence_zero(stack):
    body = stack.post("/hybrid", {"query": "def custom_function()"}).json()
    assert body["confidence"] == 0
    assert body["route"] == "unsure"


def test_factor_is_exact_and_fast(stack):
    body = stack.post("/hybrid", {"query": "factor x^2-5x+6"}).json()
    x = sympy.Symbol("x")
    assert sympy.expand(sympy.sympify(body["answer"]) - (x - 3) * (x - 2)) == 0
    assert body["skill_type"] == "math" and body["confidence"] == 1.0


def test_seven_times_eight_is_56(stack):
    body = stack.post("/hybrid", {"query": "What is 7*8?"}).json()
    assert body["answer"] == "56" and body["skill_type"] == "math"


def test_code_with_examples_is_tested_in_the_sandbox(stack):
    prompt = "Write a python function add(a, b) that returns the sum of a and b. add(2, 3) -> 5"
    body = stack.post("/vote", {"prompt": prompt}).json()
    code = next(b for b in body["ballots"] if b["head"] == "code")
    assert code["evidence"]["tests"] == ["assert add(2, 3) == 5, 'add(2, 3)'"]
    assert code["confidence"] == (0.9 if code["evidence"]["passed"] else 0.05)


def test_vote_returns_every_ballot_and_the_winner(stack):
    body = stack.post("/vote", {"prompt": "What is the capital of France?"}).json()
    assert "knowledge" in {b["head"] for b in body["ballots"]}
    assert body["winner"]["head"] == "knowledge" and body["answer"] == "Paris"
    assert body["scores"]["knowledge"] == body["confidence"]
