"""Bad input gets a 4xx JSON error with a message, never a 500 or a traceback."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import threading
import time

import pytest
import requests

from tests.stack import Stack, wait_for

pytestmark = pytest.mark.integration

CASES = [
    ("malformed json", "/orchestrate", '{"prompt": "hi"', 400),
    ("not an object", "/orchestrate", '["hi"]', 400),
    ("missing prompt", "/orchestrate", "{}", 400),
    ("empty prompt", "/orchestrate", '{"prompt": ""}', 400),
    ("blank prompt", "/orchestrate", '{"prompt": "   "}', 400),
    ("prompt is a number", "/orchestrate", '{"prompt": 42}', 400),
    ("prompt is a list", "/orchestrate", '{"prompt": ["hi"]}', 400),
    ("max_tokens is text", "/orchestrate", '{"prompt": "hi", "max_tokens": "many"}', 400),
    ("max_tokens negative", "/orchestrate", '{"prompt": "hi", "max_tokens": -3}', 400),
    ("max_tokens too big", "/orchestrate", '{"prompt": "hi", "max_tokens": 100000}', 400),
    ("temperature too hot", "/orchestrate", '{"prompt": "hi", "temperature": 9}', 400),
    ("prompt over the limit", "/orchestrate", '{"prompt": "' + "a" * 9000 + '"}', 413),
    ("hybrid without query", "/hybrid", '{"prompt": "hi"}', 400),
    ("vote with null prompt", "/vote", '{"prompt": null}', 400),
]


@pytest.mark.parametrize(("name", "path", "body", "status"), CASES, ids=[c[0] for c in CASES])
def test_bad_input_is_a_clear_json_error(stack, name, path, body, status):
    response = stack.post(path, body, raw=True, timeout=10)
    assert response.status_code == status
    error = response.json()["error"]
    assert error["message"] and "Traceback" not in response.text


def test_huge_body_is_refused_without_a_500(stack):
    body = '{"prompt": "' + "b" * 3_000_000 + '"}'
    response = stack.post("/orchestrate", body, raw=True, timeout=20)
    assert response.status_code in (400, 413)
    assert response.json()["error"]["message"]


def test_wrong_content_type_is_415(stack, api_key):
    response = requests.post(
        f"{stack.url}/orchestrate",
        data="prompt=hi",
        headers={"Content-Type": "application/x-www-form-urlencoded", "Authorization": f"Bearer {api_key}"},
        timeout=10,
    )
    assert response.status_code == 415
    assert response.json()["error"]["message"]


@pytest.mark.parametrize(("method", "path", "status"), [("GET", "/orchestrate", 405), ("GET", "/nowhere", 404)])
def test_wrong_method_and_unknown_path_are_json(stack, api_key, method, path, status):
    response = requests.request(method, f"{stack.url}{path}", headers={"Authorization": f"Bearer {api_key}"},
                                timeout=10)  # fmt: skip
    assert response.status_code == status
    assert response.json()["error"]["message"]


# --- Input robustness: every malformed request gets a 4xx JSON error at once, never a 5xx or a hang ---

API_PATHS = ["/orchestrate", "/vote", "/hybrid", "/v1/chat/completions"]
LOCAL = "smollm2-135m"


def _post_raw(stack, path: str, data, api_key: str, content_type: str = "application/json", **headers):
    headers = {"Content-Type": content_type, "Authorization": f"Bearer {api_key}", **headers}
    return requests.post(f"{stack.url}{path}", data=data, headers=headers, timeout=30)


def _chat(stack, api_key: str, body: dict, **kwargs) -> requests.Response:
    return requests.post(f"{stack.url}/v1/chat/completions", json=body, timeout=60,
                         headers={"Authorization": f"Bearer {api_key}"}, **kwargs)  # fmt: skip


def _error(response: requests.Response, status: int) -> dict:
    assert response.status_code == status, response.text[:500]
    assert response.headers["Content-Type"].startswith("application/json")
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"} and error["message"]
    return error


@pytest.mark.parametrize("path", API_PATHS)
def test_json_nested_100000_deep_is_a_400_on_every_endpoint(stack, api_key, path):
    body = "[" * 100_000 + "]" * 100_000
    error = _error(_post_raw(stack, path, body, api_key), 400)
    assert "nested more than 64 levels" in error["message"]


@pytest.mark.parametrize("path", API_PATHS)
def test_a_text_plain_body_is_a_415_on_every_endpoint(stack, api_key, path):
    body = json.dumps(
        {"prompt": "hi", "query": "hi", "model": "swarm-auto", "messages": [{"role": "user", "content": "hi"}]}
    )
    error = _error(_post_raw(stack, path, body, api_key, content_type="text/plain"), 415)
    assert "text/plain" in error["message"]


@pytest.mark.parametrize(
    ("name", "content", "where"),
    [
        ("text is a number", [{"type": "text", "text": 123}], "messages[0].content[0].text"),
        ("text is null", [{"type": "text", "text": "ok"}, {"type": "text", "text": None}],
         "messages[0].content[1].text"),
        ("part is not an object", ["hi"], "messages[0].content[0]"),
        ("lone surrogate in a part", [{"type": "text", "text": "hi \ud800"}], "messages[0].content[0].text"),
        ("lone surrogate", "hi \udfff there", "messages[0].content"),
        ("NUL character", "hi\x00there", "messages[0].content"),
    ],
)  # fmt: skip
def test_v1_content_that_no_model_can_read_is_a_400_naming_it(stack, api_key, name, content, where):
    body = {"model": "swarm-auto", "messages": [{"role": "user", "content": content}]}
    error = _error(_chat(stack, api_key, body), 400)
    assert error["param"] == "messages" and where in error["message"], error


@pytest.mark.parametrize(
    ("path", "body", "param"),
    [
        ("/orchestrate", {"prompt": "hi \ud800"}, "prompt"),
        ("/orchestrate", {"prompt": "hi\x00"}, "prompt"),
        ("/vote", {"prompt": "hi", "user": "u\udc00"}, "user"),
        ("/hybrid", {"query": "hi", "user": "nul\x00"}, "user"),
    ],
)  # fmt: skip
def test_orchestrate_refuses_nul_and_unpaired_surrogates_in_every_field(stack, path, body, param):
    error = _error(stack.post(path, body, timeout=30), 400)
    assert error["param"] == param


def test_a_surrogate_pair_is_answered_and_logged(stack, api_key):
    body = {"model": "swarm-auto", "messages": [{"role": "user", "content": "What is 2+3? \ud83d\ude00"}]}
    response = _chat(stack, api_key, body)
    assert response.status_code == 200, response.text
    request_id = response.json()["swarm"]["request_id"]
    db_path = stack.env["DATABASE_URL"].removeprefix("sqlite:///")

    def logged():
        with sqlite3.connect(db_path) as conn:
            return conn.execute("SELECT prompt FROM routing_interaction WHERE request_id = ?", (request_id,)).fetchone()

    assert wait_for(logged, timeout=15, what="the interaction row") == ("What is 2+3? \U0001f600",)


def test_over_the_character_limit_is_a_413_on_v1(stack, api_key):
    body = {"model": "swarm-auto", "messages": [{"role": "user", "content": "a" * 9000}]}
    error = _error(_chat(stack, api_key, body), 413)
    assert "9000 characters" in error["message"]


def test_a_bad_host_header_is_a_json_400(stack, api_key):
    response = _post_raw(stack, "/orchestrate", json.dumps({"prompt": "hi"}), api_key, Host="evil.example")
    error = _error(response, 400)
    assert error["code"] == "invalid_host" and "Host" in error["message"]


DIGITS = "7 " * 3950  # 7,900 characters (under the 8,000 limit), 7,900 tokens: four times the model's window
TOO_LONG = [
    ("1,000 short messages", LOCAL, [{"role": "user", "content": "hi"}] * 1000, 16, None),
    ("7,900 characters to the council", "swarm-auto", [{"role": "user", "content": DIGITS}], 16, "resulted in"),
    ("prompt + max_tokens over n_ctx", LOCAL, [{"role": "user", "content": "word " * 1200}], 1000, "in the completion"),
]  # fmt: skip


@pytest.mark.parametrize(("name", "model", "messages", "max_tokens", "detail"), TOO_LONG, ids=[c[0] for c in TOO_LONG])
def test_a_prompt_over_the_context_window_is_openai_s_400(stack, api_key, name, model, messages, max_tokens, detail):
    started = time.monotonic()
    response = _chat(stack, api_key, {"model": model, "messages": messages, "max_tokens": max_tokens})
    error = _error(response, 400)
    assert error["code"] == "context_length_exceeded" and error["param"] == "messages"
    assert error["message"].startswith("This model's maximum context length is 2048 tokens. However, ")
    assert detail is None or detail in error["message"]
    assert time.monotonic() - started < 10


def test_orchestrate_names_the_prompt_when_it_overflows_the_context(stack):
    error = _error(stack.post("/orchestrate", {"prompt": DIGITS}, timeout=30), 400)
    assert error["code"] == "context_length_exceeded" and error["param"] == "prompt"
    assert "your prompt resulted in" in error["message"]


def _sse(response: requests.Response) -> list[str]:
    return [line.decode()[len("data: ") :] for line in response.iter_lines() if line.startswith(b"data: ")]


@pytest.mark.parametrize("model", [LOCAL, "swarm-auto"])
def test_a_streamed_context_overflow_ends_with_an_error_chunk_then_done_at_once(stack, api_key, model):
    messages = [{"role": "user", "content": "hi"}] * 1000 if model == LOCAL else [{"role": "user", "content": DIGITS}]
    started = time.monotonic()
    with _chat(stack, api_key, {"model": model, "messages": messages, "stream": True}, stream=True) as response:
        assert response.status_code == 200
        events = _sse(response)
    assert time.monotonic() - started < 10, "the worker refused at once; the stream must end at once too"
    assert events[-1] == "[DONE]"
    error = json.loads(events[-2])["error"]
    assert error["code"] == "context_length_exceeded" and error["param"] == "messages"
    assert error["message"].startswith("This model's maximum context length is 2048 tokens.")


# --- A Redis that stops answering ends the requests in flight within seconds ---

STALL_S = 7
ENDS_WITHIN_S = 5


@pytest.fixture
def stall_stack(private_redis):
    stack = Stack.build(redis_url=private_redis.url)
    try:
        yield stack.start(), private_redis
    finally:
        os.kill(private_redis.proc.pid, signal.SIGCONT)  # never leave it stopped
        stack.stop()


def _in_background(run) -> tuple[threading.Thread, dict]:
    box: dict = {}

    def target():
        try:
            run(box)
        except Exception as exc:  # noqa: BLE001 - the test reads it from the box
            box["exception"] = exc
        box["ended"] = time.monotonic()

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    return thread, box


def test_a_redis_stall_ends_requests_in_flight_with_503_and_an_error_chunk(stall_stack):
    stack, server = stall_stack
    story = [{"role": "user", "content": "Write a very long story about a dragon and a knight."}]
    first_token = threading.Event()

    def stream(box):
        body = {"model": LOCAL, "stream": True, "max_tokens": 1000, "messages": story}
        with requests.post(f"{stack.url}/v1/chat/completions", json=body, stream=True, timeout=60,
                           headers=stack.auth) as response:  # fmt: skip
            box["status"] = response.status_code
            box["events"] = []
            for line in response.iter_lines():
                if line.startswith(b"data: "):
                    box["events"].append(line.decode()[len("data: ") :])
                    if b'"content": "' in line and len(box["events"]) > 2:
                        first_token.set()

    def plain(box):
        box["response"] = stack.post("/orchestrate", {"prompt": "Tell me a long story about a lighthouse.",
                                                      "max_tokens": 600}, timeout=60)  # fmt: skip

    streaming_thread, streamed = _in_background(stream)
    assert first_token.wait(30), streamed
    plain_thread, waited = _in_background(plain)
    time.sleep(1.0)  # the plain request is published and waiting behind the stream

    os.kill(server.proc.pid, signal.SIGSTOP)
    stalled = time.monotonic()
    streaming_thread.join(ENDS_WITHIN_S + 1)
    plain_thread.join(max(0.1, stalled + ENDS_WITHIN_S + 1 - time.monotonic()))
    time.sleep(max(0.0, stalled + STALL_S - time.monotonic()))
    os.kill(server.proc.pid, signal.SIGCONT)

    assert "exception" not in streamed and "exception" not in waited, (streamed, waited)
    assert streamed.get("ended", float("inf")) - stalled <= ENDS_WITHIN_S, streamed
    assert streamed["status"] == 200 and streamed["events"][-1] == "[DONE]"
    assert json.loads(streamed["events"][-2])["error"]["code"] == "service_unavailable"

    assert waited.get("ended", float("inf")) - stalled <= ENDS_WITHIN_S, waited
    error = _error(waited["response"], 503)
    assert "Redis" in error["message"]

    stack.wait_healthy(timeout=60)  # and the service comes back with Redis
