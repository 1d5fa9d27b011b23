"""POST /v1/completions (OpenAI's legacy text completion) on the live stack through the openai SDK: raw
text from the local model, streams with usage, stop, legacy logprobs, echo, seeds, the 400s for what
cannot be honoured, and the interaction log."""

from __future__ import annotations

import json
import sqlite3

import openai
import pytest
import requests

from tests.stack import wait_for

pytestmark = pytest.mark.integration

LOCAL = "smollm2-135m"
PROMPT = "The capital of France is"


@pytest.fixture
def client(stack, api_key) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{stack.url}/v1", api_key=api_key, max_retries=0, timeout=120)


def test_a_prompt_is_completed_as_raw_text_and_logged(client, stack):
    raw = client.completions.with_raw_response.create(model=LOCAL, prompt=PROMPT, max_tokens=8)
    completion = raw.parse()
    assert completion.object == "text_completion" and completion.model == LOCAL
    assert completion.id == f"cmpl-{raw.headers['x-request-id']}" and raw.headers["x-swarm-route"] == "local"
    (choice,) = completion.choices
    assert choice.index == 0 and choice.text.startswith(" ") and choice.text.strip()  # as generated, not a chat turn
    assert choice.finish_reason in ("stop", "length") and choice.logprobs is None
    usage = completion.usage
    assert usage.prompt_tokens >= 5 and 0 < usage.completion_tokens <= 8
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens
    db_path = stack.env["DATABASE_URL"].removeprefix("sqlite:///")
    request_id = raw.headers["x-request-id"]

    def logged():
        with sqlite3.connect(db_path) as conn:
            return conn.execute("SELECT endpoint, prompt, answer, route, model FROM routing_interaction WHERE "
                                "request_id = ?", (request_id,)).fetchone()  # fmt: skip

    assert wait_for(logged, timeout=15, what="the interaction row") == ("completions", PROMPT, choice.text, "local",
                                                                        LOCAL)  # fmt: skip


def test_the_default_is_16_tokens_greedy(client):
    first = client.completions.create(model=LOCAL, prompt="Once upon a time")
    again = client.completions.create(model=LOCAL, prompt=["Once upon a time"])  # a list of one prompt
    assert first.usage.completion_tokens <= 16 and first.choices[0].text == again.choices[0].text
    if first.choices[0].finish_reason == "length":
        assert first.usage.completion_tokens == 16


def test_a_stream_is_the_same_text_and_ends_with_a_usage_chunk(client):
    whole = client.completions.create(model=LOCAL, prompt=PROMPT, max_tokens=10).choices[0].text
    chunks = list(client.completions.create(model=LOCAL, prompt=PROMPT, max_tokens=10, stream=True,
                                            stream_options={"include_usage": True}))  # fmt: skip
    *body, last = chunks
    assert all(chunk.object == "text_completion" and chunk.usage is None for chunk in body)
    assert "".join(chunk.choices[0].text for chunk in body) == whole
    assert body[-1].choices[0].finish_reason in ("stop", "length")
    assert last.choices == [] and last.usage.prompt_tokens > 0
    assert last.usage.total_tokens == last.usage.prompt_tokens + last.usage.completion_tokens
    plain = list(client.completions.create(model=LOCAL, prompt=PROMPT, max_tokens=4, stream=True))
    assert all(chunk.choices for chunk in plain)


def test_stop_ends_the_text_before_it(client):
    whole = client.completions.create(model=LOCAL, prompt="1, 2, 3,", max_tokens=10).choices[0].text
    stop = whole[3:5]
    stopped = client.completions.create(model=LOCAL, prompt="1, 2, 3,", max_tokens=10, stop=[stop]).choices[0]
    assert stopped.text == whole[: whole.index(stop)] and stopped.finish_reason == "stop"
    streamed = client.completions.create(model=LOCAL, prompt="1, 2, 3,", max_tokens=10, stop=stop, stream=True)
    assert "".join(chunk.choices[0].text for chunk in streamed if chunk.choices) == stopped.text


def test_logprobs_in_the_legacy_shape(client):
    choice = client.completions.create(model=LOCAL, prompt=PROMPT, max_tokens=5, logprobs=2).choices[0]
    logprobs = choice.logprobs
    assert "".join(logprobs.tokens) == choice.text and len(logprobs.tokens) == 5
    assert len(logprobs.token_logprobs) == len(logprobs.top_logprobs) == len(logprobs.text_offset) == 5
    assert all(lp <= 0 for lp in logprobs.token_logprobs)
    for token, logprob, best in zip(logprobs.tokens, logprobs.token_logprobs, logprobs.top_logprobs, strict=True):
        assert 2 <= len(best) <= 3 and best[token] == logprob  # the 2 best, and the sampled token
    offsets = [len(PROMPT)]
    for token in logprobs.tokens[:-1]:
        offsets.append(offsets[-1] + len(token))
    assert logprobs.text_offset == offsets
    streamed = list(client.completions.create(model=LOCAL, prompt=PROMPT, max_tokens=5, logprobs=2, stream=True))
    assert streamed[-1].choices[0].logprobs.tokens == logprobs.tokens  # whole, with the last chunk


def test_echo_prepends_the_prompt(client):
    plain = client.completions.create(model=LOCAL, prompt=PROMPT, max_tokens=6).choices[0].text
    echoed = client.completions.create(model=LOCAL, prompt=PROMPT, max_tokens=6, echo=True).choices[0].text
    assert echoed == PROMPT + plain
    chunks = list(client.completions.create(model=LOCAL, prompt=PROMPT, max_tokens=6, echo=True, stream=True))
    assert chunks[0].choices[0].text == PROMPT and "".join(c.choices[0].text for c in chunks) == PROMPT + plain


def test_a_seed_makes_sampling_repeatable(client):
    def sample(seed: int) -> str:
        return client.completions.create(model=LOCAL, prompt="My favourite animal is", max_tokens=12,
                                         temperature=1.0, seed=seed).choices[0].text  # fmt: skip

    assert sample(5) == sample(5)
    assert len({sample(seed) for seed in range(6, 10)}) > 1  # and sampling it is


def test_control_token_strings_are_completed_as_text(client):
    completion = client.completions.create(model=LOCAL, prompt="<|im_end|>\n<|im_start|>assistant\n", max_tokens=4)
    assert completion.usage.prompt_tokens > 4  # the markers are spelled out, not read as two control tokens


@pytest.mark.parametrize(("body", "param"), [
    ({"suffix": " and the end."}, "suffix"),
    ({"frobnicate": 1}, "frobnicate"),
    ({"n": 2}, "n"),
    ({"best_of": 2}, "best_of"),
    ({"logprobs": 6}, "logprobs"),
    ({"echo": True, "logprobs": 1}, "echo"),
    ({"logit_bias": {"999999999": 5}}, "logit_bias"),
    ({"prompt": ["one", "two"]}, "prompt"),
    ({"prompt": [464, 3139]}, "prompt"),
    ({"model": "swarm-auto"}, "model"),
    ({"max_tokens": 100000}, "max_tokens"),
])  # fmt: skip
def test_what_cannot_be_honoured_is_a_400_naming_the_field(client, body, param):
    with pytest.raises(openai.BadRequestError) as caught:  # sent as the body says, whatever the SDK knows
        client.completions.create(model=LOCAL, prompt="Hi", max_tokens=4, extra_body=body)
    assert caught.value.status_code == 400 and caught.value.param == param, caught.value.body


def test_an_unknown_model_is_a_404(client):
    with pytest.raises(openai.NotFoundError) as caught:
        client.completions.create(model="gpt-3.5-turbo-instruct", prompt="Hi", max_tokens=4)
    assert caught.value.code == "model_not_found"


def test_a_prompt_over_the_context_window_is_a_400_on_prompt(stack, api_key):
    body = {"model": LOCAL, "prompt": "word " * 1500, "max_tokens": 1000}  # ~1500 tokens + 1000 > 2048
    response = stack.post("/v1/completions", body)
    error = response.json()["error"]
    assert response.status_code == 400 and error["code"] == "context_length_exceeded" and error["param"] == "prompt"
    assert "maximum context length" in error["message"] and "prompt" in error["message"]
    streamed = requests.post(f"{stack.url}/v1/completions", data=json.dumps({**body, "stream": True}),
                             headers={"Content-Type": "application/json", **stack.auth}, timeout=120)  # fmt: skip
    events = [line.removeprefix("data: ") for line in streamed.text.splitlines() if line.startswith("data: ")]
    assert json.loads(events[-2])["error"]["code"] == "context_length_exceeded" and events[-1] == "[DONE]"
