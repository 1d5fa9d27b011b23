"""Guarded distilled trust: agent0 trusts a distilled adapter's answer only when it was sure of every
token AND the prompt is near a prompt the adapter was trained on, passing that group's false-hit
guard (training/record.py), and the adapter's gate allowed it (model stubbed; real database,
embeddings and guard)."""

from __future__ import annotations

import pytest

from inference.backends.base import Generation
from routing.cascade import run_council
from routing.heads.agent0 import DISTILLED_CONFIDENCE, UNVERIFIED_CONFIDENCE, Agent0Head
from routing.heads.base import HeadContext
from training.datasets import Example
from training.models import AdapterVersion
from training.record import build_record, forget_records

pytestmark = pytest.mark.django_db

TRAINED = [
    Example("What is the capital of Australia?", "Canberra", "cloud"),
    Example("Which city is the capital of Australia?", "Canberra", "cloud"),
    Example("Australia's capital city is which city?", "Canberra", "cloud"),
    Example("How many moons does Mars have?", "2", "cloud"),
    Example("What is the number of moons of Mars?", "2", "cloud"),
]


def model(text: str, *, mean: float | None, least: float | None, finish: str = "stop"):
    def generate(messages, **params):
        return Generation(text=text, prompt_tokens=10, completion_tokens=4, finish_reason=finish, latency_ms=1.0,
                          token_confidence=mean, min_token_prob=least)  # fmt: skip

    return generate


@pytest.fixture
def lora_v2():
    """lora-v2 trained on TRAINED, its gate passed (record.trust)."""
    forget_records()
    record = {**build_record(TRAINED), "trust": True}
    AdapterVersion.objects.create(number=2, base_model="qwen2.5-coder-0.5b", base_sha256="0" * 64,
                                  path="lora-v2/adapter.gguf", sha256="2" * 64, rank=8, alpha=16,
                                  record=record)  # fmt: skip
    yield "lora-v2"
    forget_records()


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
def test_sure_tokens_on_a_trained_question(lora_v2, adapter, mean, least, finish, expected):
    ctx = HeadContext(generate=model("Canberra.", mean=mean, least=least, finish=finish), adapter=adapter)
    ballot = Agent0Head().answer("What is the capital of Australia?", ctx)
    assert ballot.confidence == pytest.approx(expected)
    assert ballot.evidence["distilled"] is (expected == DISTILLED_CONFIDENCE)


@pytest.mark.parametrize(
    ("prompt", "trusted"),
    [
        ("Which city is Australia's capital?", True),  # an unseen paraphrase, in the group's words
        ("What is the largest city in Australia?", False),  # a near miss: a word no member used
        ("What is the capital of Austria?", False),  # another entity
        ("How many moons does Jupiter have?", False),
        ("Tell me about the history of tea.", False),  # far from anything trained
    ],
)
def test_only_prompts_near_what_the_adapter_learned_are_trusted(lora_v2, prompt, trusted):
    ctx = HeadContext(generate=model("Canberra.", mean=0.99, least=0.95), adapter=lora_v2)
    ballot = Agent0Head().answer(prompt, ctx)
    assert ballot.evidence["distilled"] is trusted, ballot.evidence["distilled_trust"]
    assert ballot.confidence == pytest.approx(DISTILLED_CONFIDENCE if trusted else UNVERIFIED_CONFIDENCE)
    if not trusted:
        assert ballot.evidence["distilled_trust"]["reason"]


def test_an_adapter_whose_gate_refused_trust_or_that_has_no_record_is_not_trusted(lora_v2, settings):
    sure = HeadContext(generate=model("Canberra.", mean=0.99, least=0.99), adapter=lora_v2)
    AdapterVersion.objects.filter(number=2).update(record={**build_record(TRAINED), "trust": False})
    forget_records()
    ballot = Agent0Head().answer("What is the capital of Australia?", sure)
    assert ballot.confidence == UNVERIFIED_CONFIDENCE and "gate" in ballot.evidence["distilled_trust"]["reason"]
    AdapterVersion.objects.filter(number=2).update(record={})
    forget_records()
    ballot = Agent0Head().answer("What is the capital of Australia?", sure)
    assert (
        ballot.confidence == UNVERIFIED_CONFIDENCE
        and "no training record" in ballot.evidence["distilled_trust"]["reason"]
    )


def test_trust_can_be_turned_off(lora_v2, settings):
    settings.SWARM_DISTILLED_TRUST = False
    ctx = HeadContext(generate=model("Canberra.", mean=0.99, least=0.99), adapter=lora_v2)
    assert Agent0Head().answer("What is the capital of Australia?", ctx).confidence == UNVERIFIED_CONFIDENCE


def test_small_talk_is_not_distilled_and_a_distilled_fact_clears_the_floor(lora_v2):
    ctx = HeadContext(generate=model("Hello!", mean=0.99, least=0.9), adapter=lora_v2)
    assert Agent0Head().answer("how are you?", ctx).evidence["distilled"] is False
    common = {"fast_heads": [], "llm_heads": [Agent0Head()], "max_tokens": 16, "temperature": 0.0,
              "min_confidence": 0.75}  # fmt: skip
    sure = model("Canberra.", mean=0.98, least=0.9)
    assert run_council("Capital of Australia?", generate=sure, adapter=lora_v2, **common).route == "council"
    assert run_council("Capital of Australia?", generate=sure, adapter=None, **common).route == "unsure"
