"""agent0 trusts the base model's own factual answer only under the model's calibrated rule (model stubbed)."""

from __future__ import annotations

import pytest

from inference.registry import ModelTrust
from routing.cascade import run_council
from routing.heads.agent0 import (
    CALIBRATED_CONFIDENCE,
    CHAT_SYSTEM_PROMPT,
    SYSTEM_PROMPT,
    UNVERIFIED_CONFIDENCE,
    Agent0Head,
)
from routing.heads.base import HeadContext
from tests.routing.test_agent0_distilled import model

RULE = ModelTrust(rule="min_token_prob", threshold=0.6, report="reports/trust_x.json")
MEAN_RULE = ModelTrust(rule="token_confidence", threshold=0.9, report="reports/trust_x.json")
NOTES_ONLY = ModelTrust(rule=None, threshold=None, report=None)  # the model's own answers: no rule held


@pytest.mark.django_db  # an adapter's sure answer is looked up in its training record (guarded distilled trust)
@pytest.mark.parametrize(
    ("trust", "adapter", "mean", "least", "finish", "text", "expected"),
    [
        (RULE, None, 0.95, 0.7, "stop", "Ottawa.", CALIBRATED_CONFIDENCE),  # every token sure enough
        (RULE, None, 0.95, 0.6, "stop", "Ottawa.", CALIBRATED_CONFIDENCE),  # at the threshold
        (RULE, None, 0.99, 0.59, "stop", "Ottawa.", UNVERIFIED_CONFIDENCE),  # one token below it
        (MEAN_RULE, None, 0.91, 0.1, "stop", "Ottawa.", CALIBRATED_CONFIDENCE),  # the mean rule reads the mean
        (MEAN_RULE, None, 0.89, 0.9, "stop", "Ottawa.", UNVERIFIED_CONFIDENCE),
        (None, None, 0.99, 0.99, "stop", "Ottawa.", UNVERIFIED_CONFIDENCE),  # no calibrated rule: never
        (NOTES_ONLY, None, 0.99, 0.99, "stop", "Ottawa.", UNVERIFIED_CONFIDENCE),  # a block with notes only
        (RULE, "lora-v2", 0.99, 0.99, "stop", "Ottawa.", UNVERIFIED_CONFIDENCE),  # an adapter: not this rule
        (RULE, None, 0.99, 0.99, "length", "Ottawa", UNVERIFIED_CONFIDENCE * 0.8),  # cut off
        (RULE, None, None, None, "stop", "Ottawa.", UNVERIFIED_CONFIDENCE),  # sampled: no evidence
        (RULE, None, 0.99, 0.99, "stop", "What is the capital of Canada?", UNVERIFIED_CONFIDENCE),  # an echo
    ],
)
def test_calibrated_trust(trust, adapter, mean, least, finish, text, expected):
    ctx = HeadContext(generate=model(text, mean=mean, least=least, finish=finish), adapter=adapter, trust=trust)
    ballot = Agent0Head().answer("What is the capital of Canada?", ctx)
    assert ballot.confidence == pytest.approx(expected)
    assert ballot.evidence["calibrated"] is (expected == CALIBRATED_CONFIDENCE)


def test_small_talk_keeps_its_own_rule_and_a_calibrated_fact_clears_the_floor():
    ctx = HeadContext(generate=model("Hello!", mean=0.99, least=0.9), trust=RULE)
    assert Agent0Head().answer("how are you?", ctx).evidence["calibrated"] is False
    common = {"fast_heads": [], "llm_heads": [Agent0Head()], "max_tokens": 16, "temperature": 0.0,
              "min_confidence": 0.75}  # fmt: skip
    sure, unsure = model("Ottawa.", mean=0.98, least=0.9), model("Ottawa.", mean=0.98, least=0.3)
    assert run_council("Capital of Canada?", generate=sure, trust=RULE, **common).route == "council"
    assert run_council("Capital of Canada?", generate=unsure, trust=RULE, **common).route == "unsure"
    assert run_council("Capital of Canada?", generate=sure, trust=None, **common).route == "unsure"


def test_small_talk_is_told_what_swarm_is_and_questions_keep_the_calibrated_prompt():
    seen: list[str] = []

    def generate(messages, **params):
        seen.append(messages[0]["content"])
        return model("Hello!", mean=0.99, least=0.9)(messages, **params)

    ctx = HeadContext(generate=generate, trust=RULE)
    assert Agent0Head().answer("who are you?", ctx).evidence["chat"] is True
    assert Agent0Head().answer("What is the capital of Canada?", ctx).evidence["chat"] is False
    assert seen == [CHAT_SYSTEM_PROMPT, SYSTEM_PROMPT]  # the trust rule was fitted under SYSTEM_PROMPT
    assert "not container" in CHAT_SYSTEM_PROMPT and "Swarm" in CHAT_SYSTEM_PROMPT


@pytest.mark.django_db  # the adapter's answer is looked up in its (missing) training record first
@pytest.mark.parametrize(
    ("base_least", "chat", "expected"),
    [(0.9, False, "base"), (0.3, False, "adapter"), (0.9, True, "adapter")],
)
def test_an_adapter_s_untrusted_answer_gives_way_to_the_base_model_s_calibrated_one(base_least, chat, expected):
    """Under an adapter the base model's calibrated rule does not hold for the adapter's answers; when the
    adapter's answer is not trusted, the base model answers alone, under its own rule (never for small talk)."""
    asked: list[str] = []

    def base(messages, **params):
        asked.append(messages[1]["content"])
        return model("Ottawa.", mean=0.99, least=base_least)(messages, **params)

    prompt = "how are you?" if chat else "What is the capital of Canada?"
    ctx = HeadContext(generate=model("Toronto.", mean=0.99, least=0.99), adapter="lora-v2", trust=RULE,
                      base_generate=base)  # fmt: skip
    ballot = Agent0Head().answer(prompt, ctx)
    assert asked == ([] if chat else [prompt])
    if expected == "base":
        assert (ballot.answer, ballot.confidence) == ("Ottawa.", CALIBRATED_CONFIDENCE)
        assert ballot.evidence["adapter"] is None and ballot.evidence["calibrated"] is True
        assert ballot.evidence["base_model"] == {"adapter": "lora-v2", "reply": "Toronto."}
    else:
        assert ballot.answer != "Ottawa." and ballot.evidence["adapter"] == "lora-v2"
        assert "base_model" not in ballot.evidence and ballot.evidence["calibrated"] is False


@pytest.mark.django_db
def test_the_council_hands_the_base_model_to_agent0_only_under_an_adapter():
    common = {"fast_heads": [], "llm_heads": [Agent0Head()], "max_tokens": 16, "temperature": 0.0,
              "min_confidence": 0.75, "trust": RULE}  # fmt: skip
    adapter_says, base_says = model("Toronto.", mean=0.99, least=0.2), model("Ottawa.", mean=0.99, least=0.9)
    decision = run_council("Capital of Canada?", generate=adapter_says, adapter="lora-v2", base_generate=base_says,
                           **common)  # fmt: skip
    assert (decision.route, decision.answer) == ("council", "Ottawa.")
    unused = run_council("Capital of Canada?", generate=adapter_says, base_generate=base_says, **common)
    assert unused.route == "unsure"  # no adapter on: the model's own answer, not trusted, and nothing else asked


def test_an_adapter_keeps_the_calibrated_rule_only_where_its_gate_measured_it():
    from types import SimpleNamespace

    from routing.heads.agent0 import calibrated_trust
    from training.record import RECORD_VERSION, TrainedRecord

    sure = SimpleNamespace(text="Ottawa.", finish_reason="stop", min_token_prob=0.99, token_confidence=0.99)
    kept = TrainedRecord({"v": RECORD_VERSION, "groups": [], "calibrated": True})
    refused = TrainedRecord({"v": RECORD_VERSION, "groups": []})  # a gate that did not measure it, or found it wrong
    assert calibrated_trust(sure, trust=RULE, adapter=None)
    assert calibrated_trust(sure, trust=RULE, adapter="lora-v3", record=kept)
    assert not calibrated_trust(sure, trust=RULE, adapter="lora-v3", record=refused)
    assert not calibrated_trust(sure, trust=None, adapter="lora-v3", record=kept)
