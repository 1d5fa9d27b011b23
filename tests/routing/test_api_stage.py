"""What the API answers itself, and what it turns away, before any worker is involved (real views,
database and Redis; no worker runs here, so anything that reached the queue would time out)."""

from __future__ import annotations

import time

import pytest
from rest_framework.test import APIClient

from access.services import slot_acquire
from routing import admission
from routing.cascade import fast_decision
from routing.heads import fast_heads
from swarm_site.errors import ModelSaturated

pytestmark = pytest.mark.django_db


def _post(body: dict, path: str = "/orchestrate"):
    return APIClient(REMOTE_ADDR="127.0.0.1").post(path, body, format="json")


@pytest.mark.parametrize(
    ("prompt", "answer", "skill"),
    [("What is 17*23?", "391", "math"), ("Convert 5 km to meters", "5000", "micro")],
)
def test_the_exact_heads_answer_as_the_council_s_first_stage(prompt, answer, skill):
    decision = fast_decision(prompt, fast_heads=list(fast_heads()), max_tokens=64, temperature=0.0,
                             min_confidence=0.75)  # fmt: skip
    assert decision is not None and answer in decision.answer and decision.skill_type == skill
    assert decision.route == "council" and decision.confidence >= 0.9 and decision.winner_head


@pytest.mark.parametrize("prompt", ["Write a haiku about the sea", "def custom_function()", "hi"])
def test_prompts_that_need_the_model_are_left_to_the_worker(prompt):
    assert fast_decision(prompt, fast_heads=list(fast_heads()), max_tokens=64, temperature=0.0,
                         min_confidence=0.75) is None  # fmt: skip


def test_a_math_prompt_is_answered_by_the_api_without_a_worker(api_redis, settings):
    settings.SWARM_DEADLINE_S = 3.0  # had it been queued, no worker would answer: a 504 after 3 s
    started = time.monotonic()
    response = _post({"prompt": "What is 17*23?", "max_tokens": 16})
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["answer"] == "391" and body["route"] == "council" and body["skill_type"] == "math"
    assert body["cached"] is False and time.monotonic() - started < 2.5
    again = _post({"prompt": "What is 17*23?", "max_tokens": 16}).json()
    assert again["route"] == "cache" and again["answer"] == "391"  # cached like the worker's answer


def test_a_full_model_queue_is_a_503_with_retry_after_at_once_while_exact_answers_go_on(api_redis, settings):
    settings.SWARM_MODEL_ADMIT = 2
    held = [slot_acquire(identity=admission.MODEL_SLOTS_KEY, limit=2, hold_s=60) for _ in range(2)]
    started = time.monotonic()
    response = _post({"prompt": "Write a haiku about the sea", "max_tokens": 16})
    assert time.monotonic() - started < 1.0  # not a thread held until the deadline
    assert response.status_code == 503 and int(response["Retry-After"]) >= 1
    error = response.json()["error"]
    assert error["code"] == "model_saturated" and "2 requests" in error["message"]
    chat = _post({"model": "swarm-auto", "messages": [{"role": "user", "content": "Tell me a story"}]},
                 path="/v1/chat/completions")  # fmt: skip
    assert chat.status_code == 503 and chat.json()["error"]["code"] == "model_saturated"
    assert _post({"prompt": "What is 12*12?", "max_tokens": 16}).json()["answer"] == "144"  # no model needed
    for slot in held:
        slot.release()
    assert api_redis.zcard(f"slots:{admission.MODEL_SLOTS_KEY}") == 0


def test_a_refused_request_holds_no_place(api_redis, settings):
    settings.SWARM_MODEL_ADMIT = 1
    held = slot_acquire(identity=admission.MODEL_SLOTS_KEY, limit=1, hold_s=60)
    with pytest.raises(ModelSaturated):
        admission.admit(30.0)
    held.release()
    slot = admission.admit(30.0)  # the place freed by the answer is taken by the next request
    assert slot is not None and api_redis.zcard(f"slots:{admission.MODEL_SLOTS_KEY}") == 1
    admission.release(slot)
    assert api_redis.zcard(f"slots:{admission.MODEL_SLOTS_KEY}") == 0


def test_the_serving_state_and_the_cached_answer_come_in_one_round_trip_and_a_change_is_seen(api_redis):
    from training import serving

    def key_for(snapshot: serving.Snapshot) -> str:
        return f"cache:test:{snapshot.stable.version}"

    api_redis.set("cache:test:base", "under base")
    api_redis.set("cache:test:lora-v2", "under lora-v2")
    assert serving.read_snapshot_with(key_for)[1:] == ("cache:test:base", "under base")
    v2 = serving.Snapshot(generation=2, stable=serving.Arm(version="lora-v2", path="p", sha256="s"))
    api_redis.set(serving.SERVING_KEY, v2.as_json())  # published by another process meanwhile
    snapshot, key, value = serving.read_snapshot_with(key_for)  # the guess (base) was stale: derived again
    assert snapshot == v2 and (key, value) == ("cache:test:lora-v2", "under lora-v2")
    assert serving.read_snapshot_with(key_for)[1:] == ("cache:test:lora-v2", "under lora-v2")


def test_half_of_a_process_s_threads_at_most_wait_on_the_model(api_redis, settings):
    settings.SWARM_WEB_THREADS, settings.SWARM_MODEL_ADMIT = 4, 100  # two places here, plenty in the stack
    held = [admission.admit(30.0), admission.admit(30.0)]
    with pytest.raises(ModelSaturated, match="this server's 2 places"):
        admission.admit(30.0)
    admission.release(held.pop())
    admission.release(held[0])
    admission.release(held[0])  # twice: released once
    again = [admission.admit(30.0), admission.admit(30.0)]
    for admitted in again:
        admission.release(admitted)
    assert api_redis.zcard(f"slots:{admission.MODEL_SLOTS_KEY}") == 0


def test_a_caller_s_slot_is_given_back_in_the_round_trip_of_the_interaction_s_append(api_redis):
    from access.services import caller_admit
    from routing import services
    from routing.interaction_log import STREAM_KEY

    slot = caller_admit(identity="addr:slot-test", rate_limit=0, slot_limit=2, hold_s=60)
    assert api_redis.zcard(slot.key) == 1
    result = services.orchestrate_request(prompt="What is 17*23?", max_tokens=16, temperature=0.0, slots=(slot,))
    assert result["answer"] == "391" and result["route"] == "council"
    assert slot.released and api_redis.zcard(slot.key) == 0  # before any response was closed
    assert api_redis.xlen(STREAM_KEY) == 1  # and the interaction went with it
    slot.release()  # the middleware's release afterwards does nothing
    assert api_redis.zcard(slot.key) == 0
