"""The model profiles through a running stack: the default Qwen2.5-Coder-0.5B earns trust on a fact it is
sure of (its calibrated rule in config/models.yaml), the tiny SmolLM2 profile never does (it has no rule).

"Who painted the Mona Lisa?" is answered by no exact head (no table, no parser): only the model. Qwen's
least token probability on it was 0.77 in the calibration run (reports/trust_20261206.json), above its
0.634 threshold; the answer must name Leonardo and win the vote without a paid call.
"""

from __future__ import annotations

import pytest

from inference.registry import load_registry
from tests.stack import ROOT, Stack

pytestmark = pytest.mark.integration

QWEN = "qwen2.5-coder-0.5b"
TINY = "smollm2-135m"
FACT = "Who painted the Mona Lisa?"


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


def test_qwen_serves_and_earns_trust_on_a_fact_it_is_sure_of(qwen_stack):
    health = qwen_stack.wait_healthy()
    assert QWEN in str(health), health
    response = qwen_stack.post("/vote", {"prompt": FACT, "temperature": 0})
    assert response.status_code == 200, response.text
    body = response.json()
    ballot = agent0(body)
    assert ballot["evidence"]["calibrated"] is True, ballot
    assert ballot["evidence"]["min_token_prob"] >= load_registry().get(QWEN).trust.threshold
    assert body["winner"]["head"] == "agent0" and "Leonardo" in body["winner"]["answer"], body


def test_sampled_answers_are_never_trusted_on_the_calibrated_rule(qwen_stack):
    response = qwen_stack.post("/vote", {"prompt": FACT, "temperature": 0.7})
    assert response.status_code == 200, response.text
    ballot = agent0(response.json())
    assert ballot["evidence"]["calibrated"] is False and ballot["confidence"] < 0.75, ballot


def test_the_tiny_profile_has_no_rule_and_trusts_no_fact(stack):
    if (stack.env.get("SWARM_MODEL") or load_registry().default) != TINY:
        pytest.skip(f"the session stack serves another model than {TINY} (make test serves it: TEST_MODEL)")
    assert load_registry().get(TINY).trust is None
    response = stack.post("/vote", {"prompt": FACT, "temperature": 0})
    assert response.status_code == 200, response.text
    ballot = agent0(response.json())
    assert ballot["evidence"]["calibrated"] is False and ballot["confidence"] < 0.75, ballot
