"""The OpenAI-compatible API through real clients: the openai SDK, LiteLLM, raw HTTP for the error cases."""

from __future__ import annotations

import itertools
import json
import os
import time

import celery.states
import openai
import pytest
import redis
import requests

pytestmark = pytest.mark.integration
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # LiteLLM must not fetch its price list

CHAT = [{"role": "user", "content": "hello there"}]


@pytest.fixture
def client(stack, api_key) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{stack.url}/v1", api_key=api_key, max_retries=0, timeout=60)


def test_models_lists_the_cascade_the_local_model_and_providers(client):
    ids = [m.id for m in client.models.list().data]
    assert ids[:2] == ["swarm-auto", "smollm2-135m"] and any(i.startswith("cloud/") for i in ids)


def test_the_openai_client_gets_a_completion_with_swarm_headers(client):
    raw = client.chat.completions.with_raw_response.create(
        model="swarm-auto", messages=[{"role": "user", "content": "What is 7*8?"}])  # fmt: skip
    completion = raw.parse()
    assert completion.choices[0].message.content == "56" and completion.choices[0].finish_reason == "stop"
    assert raw.headers["x-swarm-route"] == "council" and raw.headers["x-swarm-confidence"] == "1.0"
    assert float(raw.headers["x-swarm-cost-usd"]) == 0.0


def test_the_openai_client_gets_a_real_stream(client):
    started = time.perf_counter()
    arrivals, pieces, last = [], [], None  # fmt: skip
    for chunk in client.chat.completions.create(model="swarm-auto", messages=CHAT, stream=True, max_tokens=64):
        last = chunk
        if chunk.choices and chunk.choices[0].delta.content:
            arrivals.append(time.perf_counter() - started)
            pieces.append(chunk.choices[0].delta.content)
    assert len(pieces) > 3, pieces
    # Generated token by token, not a finished answer cut up: the pieces arrive spread over the
    # generation (a slower machine only spreads them more).
    assert arrivals[-1] - arrivals[0] > 0.05, arrivals
    assert last.choices[0].finish_reason == "stop"
    assert last.model_extra["swarm"]["skill_type"] == "agent0"


def test_the_local_model_streams_and_a_client_that_leaves_cancels_generation(stack, api_key, shared_redis_url):
    store = redis.Redis.from_url(shared_redis_url)
    story = [{"role": "user", "content": "Write a very long story about a dragon and a knight."}]
    body = {"model": "smollm2-135m", "stream": True, "max_tokens": 1000, "messages": story}
    with requests.post(f"{stack.url}/v1/chat/completions", json=body, stream=True, timeout=60,
                       headers={"Authorization": f"Bearer {api_key}"}) as response:  # fmt: skip
        request_id = response.headers["x-request-id"]
        contents = (line for line in response.iter_lines() if line.startswith(b"data: ") and b'"content": "' in line)
        assert len(list(itertools.islice(contents, 4))) == 4
        # Running, and stored as such: the revoke that follows a disconnect must not mark it REVOKED.
        assert stored(store, request_id)["status"] == "STARTED"
    # The client is gone; the worker notices on its next token and stops.
    deadline = time.monotonic() + 30
    statuses = []
    while time.monotonic() < deadline:
        meta = stored(store, request_id)
        statuses.append(meta["status"])
        if meta["status"] in celery.states.READY_STATES:
            break
        time.sleep(0.01)
    assert set(statuses) <= {"STARTED", "SUCCESS"}, statuses
    result = meta["result"]
    assert result["finish_reason"] == "cancelled" and result["completion_tokens"] < 1000


def stored(store: redis.Redis, task_id: str) -> dict:
    raw = store.get(f"celery-task-meta-{task_id}")
    return json.loads(raw) if raw else {"status": "PENDING", "result": None}


def test_litellm_as_a_client(stack, api_key):
    import litellm

    response = litellm.completion(model="openai/swarm-auto", api_base=f"{stack.url}/v1", api_key=api_key,
                                  messages=[{"role": "user", "content": "factor x^2-5x+6"}])  # fmt: skip
    assert response.choices[0].message.content == "(x - 3)*(x - 2)"


def post(stack, body, key):
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return requests.post(f"{stack.url}/v1/chat/completions", json=body, headers=headers, timeout=30)


OK = {"model": "swarm-auto", "messages": CHAT}
ERRORS = [
    ("unknown model", {**OK, "model": "gpt-9"}, 404, "invalid_request_error", "model_not_found", None),
    ("bad role", {**OK, "messages": [{"role": "wizard", "content": "hi"}]}, 400, "invalid_request_error", None,
     "messages"),
    ("missing messages", {"model": "swarm-auto"}, 400, "invalid_request_error", None, "messages"),
    ("empty messages", {**OK, "messages": []}, 400, "invalid_request_error", None, "messages"),
    ("no user message", {**OK, "messages": [{"role": "system", "content": "be nice"}]}, 400,
     "invalid_request_error", None, "messages"),
    ("too many tokens", {**OK, "max_tokens": 10**6}, 400, "invalid_request_error", None, "max_tokens"),
    ("content not text", {**OK, "messages": [{"role": "user", "content": 42}]}, 400, "invalid_request_error",
     None, "messages"),
]  # fmt: skip


@pytest.mark.parametrize(("name", "body", "status", "kind", "code", "param"), ERRORS, ids=[e[0] for e in ERRORS])
def test_bad_requests_get_the_openai_error_shape(stack, api_key, name, body, status, kind, code, param):
    response = post(stack, body, api_key)
    assert response.status_code == status
    error = response.json()["error"]
    assert error["type"] == kind and error["message"] and set(error) == {"message", "type", "param", "code"}
    assert (code is None or error["code"] == code) and (param is None or error["param"] == param)


@pytest.mark.parametrize(("key", "code"), [(None, "not_authenticated"), ("sk-swarm-wrong", "invalid_api_key")])
def test_no_key_or_a_wrong_key_is_401(stack, key, code):
    response = post(stack, OK, key)
    assert response.status_code == 401
    assert response.json()["error"]["type"] == "authentication_error" and response.json()["error"]["code"] == code


def test_the_per_key_rate_limit_is_429(stack):
    key = stack.manage("create_api_key", "limited", "--rate", "2").strip().splitlines()[-1]
    statuses = [post(stack, {**OK, "messages": [{"role": "user", "content": "What is 2+2?"}]}, key).status_code
                for _ in range(3)]  # fmt: skip
    assert statuses == [200, 200, 429]
    assert post(stack, OK, key).json()["error"]["type"] == "rate_limit_error"


def test_an_sse_accept_header_is_welcome(stack, api_key):
    headers = {"Authorization": f"Bearer {api_key}", "Accept": "text/event-stream"}
    body = {**OK, "messages": [{"role": "user", "content": "What is 9*9?"}], "stream": True}
    with requests.post(f"{stack.url}/v1/chat/completions", json=body, headers=headers, stream=True, timeout=30) as r:
        assert r.status_code == 200 and r.headers["Content-Type"].startswith("text/event-stream")
        assert b"81" in r.content and r.content.rstrip().endswith(b"data: [DONE]")
    plain = requests.post(f"{stack.url}/v1/chat/completions", json={**OK, "model": "nope"}, headers=headers, timeout=30)
    assert plain.status_code == 404 and plain.json()["error"]["code"] == "model_not_found"
