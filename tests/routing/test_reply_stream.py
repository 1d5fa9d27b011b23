"""A serving task's reply stream (real Redis): its failure, its refusal and a stalled Redis end the
API's wait at once; interaction text that cannot be stored is made storable, never lost."""

from __future__ import annotations

import os
import signal
import threading
import time
import uuid
from datetime import UTC, datetime
from functools import partial

import pytest
import redis
from celery.backends.redis import RedisBackend

from inference.backends.base import ContextWindowExceeded
from routing import services, streaming
from routing.models import Interaction
from swarm_site.celery import app
from swarm_site.errors import ContextLengthExceeded, ServiceUnavailable, WorkerFailed
from swarm_site.redis_client import get_blocking_redis, get_redis
from tests.conftest import TEST_REDIS_URL
from tests.stack import PrivateRedis


def _point_at(settings, url: str) -> None:
    settings.REDIS_URL = settings.CELERY_RESULT_BACKEND = url
    for cached in (get_redis, get_blocking_redis, services._result_store):
        cached.cache_clear()


@pytest.fixture
def store(settings):
    _point_at(settings, TEST_REDIS_URL)
    client = redis.Redis.from_url(TEST_REDIS_URL)
    ids: list[str] = []
    yield client, ids
    for request_id in ids:
        client.delete(streaming.stream_key(request_id), f"celery-task-meta-{request_id}")
    _point_at(settings, TEST_REDIS_URL)


def new_id(ids: list[str]) -> str:
    ids.append(uuid.uuid4().hex)
    return ids[-1]


def test_tokens_then_the_result(store):
    request_id = new_id(store[1])
    sink = streaming.TokenSink(request_id)
    sink.emit("Hel")
    sink.emit("lo")
    sink.finish({"answer": "Hello"})
    events = list(streaming.relay(request_id, deadline_s=5))
    assert events == [{"type": "token", "text": "Hel"}, {"type": "token", "text": "lo"},
                      {"type": "final", "result": {"answer": "Hello"}}]  # fmt: skip


def test_a_task_that_raises_ends_the_wait_at_once_with_a_502(store, monkeypatch):
    class Broken:
        spec = type("Spec", (), {"alias": "m"})

        def check_context(self, messages, *, max_tokens):
            return 3

        def stream_generate(self, messages, **params):
            params["on_piece"]("partial")
            raise RuntimeError("llama_decode returned -1")

    monkeypatch.setattr(services, "_serving_backend", lambda adapter: (Broken(), "base"))
    ask = services.Ask(prompt="hi", max_tokens=8, temperature=0.0, endpoint="v1", route="smollm2-135m")
    store[1].append(ask.request_id)
    with pytest.raises(RuntimeError, match="llama_decode"):  # the task still fails, as Celery records it
        services.model_answer(messages=[{"role": "user", "content": "hi"}], max_tokens=8, temperature=0.0,
                              request_id=ask.request_id, stream=True)  # fmt: skip
    started = time.monotonic()
    events = services._worker_events(ask)
    assert next(events) == {"type": "token", "text": "partial"}
    with pytest.raises(WorkerFailed, match="RuntimeError: llama_decode returned -1"):
        next(events)
    assert time.monotonic() - started < 0.5


def test_a_failure_celery_stored_before_the_task_could_write_ends_the_wait(store):
    request_id = new_id(store[1])
    RedisBackend(app=app, url=TEST_REDIS_URL).mark_as_failure(request_id, TypeError("unexpected keyword 'x'"))
    started = time.monotonic()
    events = list(streaming.relay(request_id, deadline_s=30, failure=partial(services._task_failure, request_id)))
    assert events == [{"type": "error", "message": "TypeError: unexpected keyword 'x'"}]
    assert time.monotonic() - started < streaming.PING_EVERY_S + 1


def test_a_refusal_is_openai_s_context_length_error(store, monkeypatch):
    monkeypatch.setattr(services, "_forget", lambda task_id: None)  # no Celery result to drop here
    refused = ContextWindowExceeded(n_ctx=2048, prompt_tokens=1900, max_tokens=500)
    for endpoint, param in (("v1", "messages"), ("orchestrate", "prompt"), ("hybrid", "query")):
        ask = services.Ask(prompt="hi", max_tokens=500, temperature=0.0, endpoint=endpoint)
        store[1].append(ask.request_id)
        streaming.TokenSink(ask.request_id).finish(services._refusal(refused))
        with pytest.raises(ContextLengthExceeded) as caught:
            list(services._worker_events(ask))
        assert caught.value.param == param and caught.value.status_code == 400
        assert str(caught.value.detail) == (
            "This model's maximum context length is 2048 tokens. However, you requested 2400 tokens "
            f"(1900 in the {param}, 500 in the completion). Please reduce the length of the {param} or completion."
        )


def test_a_stalled_redis_ends_the_wait_within_seconds(settings):
    server = PrivateRedis()
    server.start()
    try:
        _point_at(settings, server.url)
        ask = services.Ask(prompt="hi", max_tokens=8, temperature=0.0)
        box: dict = {}

        def wait():
            try:
                list(services._worker_events(ask))
            except Exception as exc:  # noqa: BLE001 - read below
                box["exc"] = exc
            box["ended"] = time.monotonic()

        thread = threading.Thread(target=wait, daemon=True)
        thread.start()
        time.sleep(1.5)  # waiting: a block or two already passed
        os.kill(server.proc.pid, signal.SIGSTOP)
        stalled = time.monotonic()
        thread.join(10)
        os.kill(server.proc.pid, signal.SIGCONT)
        assert isinstance(box.get("exc"), ServiceUnavailable), box
        assert box["ended"] - stalled <= streaming.PING_EVERY_S + streaming.READ_MARGIN_S + 0.5
    finally:
        server.stop()
        _point_at(settings, TEST_REDIS_URL)


def test_storable_replaces_what_a_database_cannot_hold():
    assert services.storable({"a\ud800": ["x\x00y", {"k": "\udfff"}], "n": 3, "ok": "é\U0001f600"}) == {
        "a\ufffd": ["x\ufffdy", {"k": "\ufffd"}], "n": 3, "ok": "é\U0001f600"}  # fmt: skip


@pytest.mark.django_db
def test_an_interaction_with_unstorable_text_is_stored_not_lost():
    payload = {"request_id": "rob-1", "created_at": datetime.now(UTC).isoformat(), "prompt": "hi \ud800 there\x00",
               "answer": "ans \udfff", "route": "council", "skill_type": "agent0", "confidence": 0.8,
               "ballots": [{"head": "agent0", "answer": "\ud800"}]}  # fmt: skip
    services.interaction_record(payload=payload)
    row = Interaction.objects.get(request_id="rob-1")
    assert row.prompt == "hi \ufffd there\ufffd" and row.answer == "ans \ufffd" and row.ballots[0]["answer"] == "\ufffd"
