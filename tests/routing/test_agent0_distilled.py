"""agent0 trusts a distilled adapter's answer only when trust is on and it was sure of every token (model stubbed)."""

from __future__ import annotations

import pytest

from inference.backends.base import Generation
from routing.cascade import run_council
from routing.heads.agent0 import DISTILLED_CONFIDENCE, UNVERIFIED_CONFIDENCE, Agent0Head
from routing.heads.base import HeadContext


def model(text: str, *, mean: float | None, least: float | None, finish: str = "stop"):
    def generate(messages, **params):
        return Generation(text=text, prompt_tokens=10, completion_tokens=4, finish_reason=finish, latency_ms=1.0,
                          token_confidence=mean, min_token_prob=least)  # fmt: skip

    return generate


@pytest.mark.parametrize(
    ("adapter", "mean", "least", "finish", "expected"),
    [
        ("lora-v2", 0.97, 0.8, "stop", DISTILLED_CONFIDENCE),  # a distilled adapter, sure of every token
        (None, 0.99, 0.9, "stop", UNVERIFIED_CONFIDENCE),  # the base model: never trusted on facts
        ("lora-v2", 0.85, 0.8, "stop", UNVERIFIED_CONFIDENCE),  # unsure on average
        ("lora-v2", 0.97, 0.3, "stop", UNVERIFIED_CONFIDENCE),  # one guessed token
        ("lora-v2", 0.97, 0.8, "length", UNVERIFIED_CONFIDENCE * 0.8),  # cut off
        ("lora-v2", None, None, "stop", UNVERIFIED_CONFIDENCE),  # sampled (temperature > 0): no measure
    ],
)
def test_distilled_trust(settings, adapter, mean, least, finish, expected):
    settings.SWARM_DISTILLED_TRUST = True
    ctx = HeadContext(generate=model("Canberra.", mean=mean, least=least, finish=finish), adapter=adapter)
    ballot = Agent0Head().answer("What is the capital of Australia?", ctx)
    assert ballot.confidence == pytest.approx(expected)
    assert ballot.evidence["distilled"] is (expected == DISTILLED_CONFIDENCE)


def test_trust_is_off_by_default():
    ctx = HeadContext(generate=model("Canberra.", mean=0.99, least=0.99), adapter="lora-v2")
    assert Agent0Head().answer("What is the capital of Australia?", ctx).confidence == UNVERIFIED_CONFIDENCE


def test_small_talk_is_not_distilled_and_a_distilled_fact_clears_the_floor(settings):
    settings.SWARM_DISTILLED_TRUST = True
    ctx = HeadContext(generate=model("Hello!", mean=0.99, least=0.9), adapter="lora-v2")
    assert Agent0Head().answer("how are you?", ctx).evidence["distilled"] is False
    common = {"fast_heads": [], "llm_heads": [Agent0Head()], "max_tokens": 16, "temperature": 0.0,
              "min_confidence": 0.75}  # fmt: skip
    sure = model("Canberra.", mean=0.98, least=0.9)
    assert run_council("Capital of Australia?", generate=sure, adapter="lora-v2", **common).route == "council"
    assert run_council("Capital of Australia?", generate=sure, adapter=None, **common).route == "unsure"
