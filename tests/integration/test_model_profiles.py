"""The model profiles through a running stack: the default Qwen2.5-Coder-0.5B earns trust on a fact that
WordNet's notes confirm (its `trust.reference` rule in config/models.yaml), the tiny SmolLM2 profile
never does (it has no rule).

"Who developed the theory of general relativity?" is answered by no exact head (no table, no parser):
only the model, asked again with the nearest notes ("Einstein, Albert Einstein: physicist born in
Germany who formulated the special theory of relativity and the general theory of relativity ...").
The answer must name Einstein, stand on that note, and win the vote without a paid call.
"""

from __future__ import annotations

import pytest

from inference.registry import load_registry
from tests.stack import ROOT, Stack

pytestmark = pytest.mark.integration

QWEN = "qwen2.5-coder-0.5b"
TINY = "smollm2-135m"
FACT = "Who developed the theory of general relativity?"


def agent0(body: dict) -> dict:
    return next(b for b in body["ballots"] if b["head"] == "agent0")


@pytest.fixture(scope="module")
def qwen_stack(module_redis):
    if not load_registry().get(QWEN).local_path(ROOT / "var" / "models").is_file():  # where stacks load from
        pytest.skip(f"{QWEN} is not prefetched (python manage.py prefetch_models {QWEN})")
    stack = Stack.build(redis_url=module_redis.url, SWARM_MODEL=QWEN)
    try:
        yield stack.start()
    finally:
        stack.stop()


def test_qwen_serves_and_earns_trust_on_a_fact_its_notes_confirm(qwen_stack):
    health = qwen_stack.wait_healthy()
    assert QWEN in str(health), health
    response = qwen_stack.post("/vote", {"prompt": FACT, "temperature": 0})
    assert response.status_code == 200, response.text
    body = response.json()
    ballot = agent0(body)
    assert ballot["evidence"]["calibrated"] is False, ballot  # no rule trusts its own answers alone
    grounded = ballot["evidence"]["grounded"]
    assert grounded["trusted"] is True and "Einstein" in grounded["note"], ballot
    assert grounded["coverage"] >= load_registry().get(QWEN).trust.reference.min_coverage
    assert body["winner"]["head"] == "agent0" and "Einstein" in body["winner"]["answer"], body


def test_a_question_no_note_stands_behind_is_not_trusted(qwen_stack):
    response = qwen_stack.post("/vote", {"prompt": "What is the capital of Veltaria?", "temperature": 0})
    assert response.status_code == 200, response.text
    ballot = agent0(response.json())
    assert ballot["confidence"] < 0.75 and not ballot["evidence"].get("grounded", {}).get("trusted"), ballot


def test_the_tiny_profile_has_no_rule_and_trusts_no_fact(stack):
    if (stack.env.get("SWARM_MODEL") or load_registry().default) != TINY:
        pytest.skip(f"the session stack serves another model than {TINY} (make test serves it: TEST_MODEL)")
    assert load_registry().get(TINY).trust is None
    response = stack.post("/vote", {"prompt": FACT, "temperature": 0})
    assert response.status_code == 200, response.text
    ballot = agent0(response.json())
    assert ballot["evidence"]["calibrated"] is False and ballot["confidence"] < 0.75, ballot
