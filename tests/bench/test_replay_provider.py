"""The reference-replay provider over real HTTP on loopback."""

from __future__ import annotations

import subprocess
import sys

import openai
import pytest
import requests

from bench.replay_provider import (
    UNKNOWN_ANSWER,
    ReplayProvider,
    count_tokens,
    load_references,
    normalize_prompt,
    prompt_tokens,
)
from bench.titanic.suite import DATA_PATH, ROOT, load_suite


@pytest.fixture(scope="module")
def provider():
    with ReplayProvider(load_references(DATA_PATH)) as server:
        yield server


def test_token_accounting_is_the_documented_rule():
    assert count_tokens("") == 0
    assert count_tokens("one two three") == 4  # ceil(3 * 1.3)
    assert prompt_tokens([{"role": "user", "content": "one two three"}]) == 4 + 4 + 2


def test_answers_a_suite_prompt_with_its_reference_and_reports_usage(provider):
    item = next(i for i in load_suite().items if i.id == "factual-001")
    client = openai.OpenAI(base_url=provider.base_url, api_key="unused", max_retries=0)
    messages = [{"role": "system", "content": "You are a precise assistant."},
                {"role": "user", "content": "  " + item.prompt.upper() + " "}]  # fmt: skip
    response = client.chat.completions.create(model="titanic-replay", messages=messages, max_tokens=64)
    assert response.choices[0].message.content == item.reference
    assert response.choices[0].finish_reason == "stop"
    assert response.usage.prompt_tokens == prompt_tokens(messages)
    assert response.usage.completion_tokens == count_tokens(item.reference)
    assert response.usage.total_tokens == response.usage.prompt_tokens + response.usage.completion_tokens


def test_unknown_prompt_gets_the_fixed_refusal(provider):
    before = requests.get(provider.base_url.removesuffix("/v1") + "/stats", timeout=5).json()
    body = {"model": "m", "messages": [{"role": "user", "content": "a prompt that is not in the suite"}]}
    response = requests.post(f"{provider.base_url}/chat/completions", json=body, timeout=5).json()
    assert response["choices"][0]["message"]["content"] == UNKNOWN_ANSWER
    after = requests.get(provider.base_url.removesuffix("/v1") + "/stats", timeout=5).json()
    assert after["unknown"] == before["unknown"] + 1


def test_long_reference_is_cut_at_max_tokens(provider):
    item = next(i for i in load_suite().items if i.category == "code" and len(i.reference.split()) > 10)
    body = {"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": item.prompt}]}
    response = requests.post(f"{provider.base_url}/chat/completions", json=body, timeout=5).json()
    assert response["choices"][0]["finish_reason"] == "length"
    assert response["usage"]["completion_tokens"] <= 5


def test_models_and_bad_requests(provider):
    models = requests.get(f"{provider.base_url}/models", timeout=5).json()
    assert models["data"][0]["id"] == "titanic-replay"
    bad = requests.post(f"{provider.base_url}/chat/completions", data=b"not json", timeout=5)
    assert bad.status_code == 400 and "error" in bad.json()
    no_user = requests.post(f"{provider.base_url}/chat/completions", json={"messages": []}, timeout=5)
    assert no_user.status_code == 400


def test_binds_loopback_only():
    with pytest.raises(ValueError, match="loopback"):
        ReplayProvider({}, host="0.0.0.0")


def test_cli_serves_the_data_file(tmp_path):
    proc = subprocess.Popen([sys.executable, str(ROOT / "bench" / "replay_provider.py"), "--port", "0", "--data",
                             str(DATA_PATH)], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)  # fmt: skip
    try:
        base_url = proc.stdout.readline().strip()
        assert base_url.startswith("http://127.0.0.1:") and base_url.endswith("/v1")
        body = {"model": "m", "messages": [{"role": "user", "content": "What is the capital of Canada?"}]}
        answer = requests.post(f"{base_url}/chat/completions", json=body, timeout=5).json()
        assert answer["choices"][0]["message"]["content"] == "Ottawa"
    finally:
        proc.terminate()
        proc.wait(10)


def test_normalization_ignores_case_and_spacing():
    assert normalize_prompt("  What is   the Capital\nof JAPAN? ") == normalize_prompt("what is the capital of japan?")
