from __future__ import annotations

from datetime import UTC, datetime

import pytest

from routing.cache import cache_key, normalize_prompt
from routing.models import Interaction
from routing.services import interaction_record

KEY = {"model": "m", "adapter_version": "base", "max_tokens": 128, "temperature": 0.0}


def test_normalization_ignores_case_spacing_and_unicode_form():
    assert normalize_prompt("  Hello\tWORLD ") == normalize_prompt("hello world") == "hello world"
    assert normalize_prompt("ﬁne") == normalize_prompt("fine")


@pytest.mark.parametrize("change", [{"model": "other"}, {"adapter_version": "v2"}, {"max_tokens": 64},
                                    {"temperature": 0.7}])  # fmt: skip
def test_everything_that_shapes_the_answer_is_in_the_key(change):
    assert cache_key(prompt="hi", **KEY) != cache_key(prompt="hi", **{**KEY, **change})


def test_key_is_sha256_under_the_cache_prefix():
    key = cache_key(prompt="hi", **KEY)
    assert key.startswith("cache:") and len(key) == len("cache:") + 64
    assert key == cache_key(prompt=" HI ", **KEY)


@pytest.mark.django_db
def test_a_redelivered_log_task_updates_the_same_row():
    payload = {"request_id": "r1", "created_at": datetime.now(UTC).isoformat(), "prompt": "p", "answer": "a",
               "route": "council", "skill_type": "math", "confidence": 1.0, "latency_ms": 3.0}  # fmt: skip
    interaction_record(payload=payload)
    interaction_record(payload={**payload, "answer": "a2"})
    assert Interaction.objects.count() == 1 and Interaction.objects.get().answer == "a2"
