"""The access policy on a running stack (real gunicorn, workers, Redis, database): keys on every
endpoint, requests per minute and concurrent generations per key, counted across web processes."""

from __future__ import annotations

import itertools
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from tests.stack import wait_for

pytestmark = pytest.mark.integration

STORY = [{"role": "user", "content": "Write a long story about a dragon and a knight."}]


@pytest.mark.parametrize(("path", "body"), [
    ("/orchestrate", {"prompt": "What is 7*8?"}),
    ("/vote", {"prompt": "What is 7*8?"}),
    ("/hybrid", {"query": "What is 7*8?"}),
    ("/v1/chat/completions", {"model": "swarm-auto", "messages": [{"role": "user", "content": "What is 7*8?"}]}),
])  # fmt: skip
def test_every_endpoint_needs_a_key_where_anonymous_use_is_off(stack, path, body):
    refused = requests.post(f"{stack.url}{path}", json=body, timeout=30)
    assert refused.status_code == 401 and refused.json()["error"]["type"] == "authentication_error"
    assert refused.headers["WWW-Authenticate"] == "Bearer"
    answered = requests.post(f"{stack.url}{path}", json=body, headers=stack.auth, timeout=60)
    assert answered.status_code == 200, answered.text


def test_requests_per_minute_hold_under_concurrency(stack):
    key = stack.create_key("per-minute", "--rate", "5", "--concurrency", "0")
    headers = {"Authorization": f"Bearer {key}"}
    with ThreadPoolExecutor(10) as pool:
        responses = list(pool.map(lambda _: requests.get(f"{stack.url}/v1/models", headers=headers, timeout=30),
                                  range(12)))  # fmt: skip
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200] * 5 + [429] * 7
    limited = next(r for r in responses if r.status_code == 429)
    assert limited.json()["error"]["type"] == "rate_limit_error"
    assert 1 <= int(limited.headers["Retry-After"]) <= 60


def test_a_stream_holds_its_keys_slot_until_it_ends(stack):
    key = stack.create_key("one-at-a-time", "--rate", "0", "--concurrency", "1")
    headers = {"Authorization": f"Bearer {key}"}
    body = {"model": "smollm2-135m", "stream": True, "max_tokens": 120, "messages": STORY}
    with requests.post(f"{stack.url}/v1/chat/completions", json=body, headers=headers, stream=True,
                       timeout=60) as stream:  # fmt: skip
        lines = stream.iter_lines()
        assert len(list(itertools.islice((x for x in lines if b'"content": "' in x), 2))) == 2  # generating
        second = requests.post(f"{stack.url}/orchestrate", json={"prompt": "What is 2+2?"}, headers=headers,
                               timeout=30)  # fmt: skip
        assert second.status_code == 429, second.text
        assert "at most 1 in flight" in second.json()["error"]["message"]
        assert 1 <= int(second.headers["Retry-After"]) <= 5
        assert b"data: [DONE]" in list(lines)  # read to the end
    # The slot comes back once the server has closed the finished response.
    answered = wait_for(
        lambda: (r := requests.post(f"{stack.url}/orchestrate", json={"prompt": "What is 2+2?"}, headers=headers,
                                    timeout=30)).status_code == 200 and r,
        timeout=10, interval=0.2, what="the slot freed after the stream",
    )  # fmt: skip
    assert answered.json()["answer"]
