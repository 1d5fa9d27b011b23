"""Cloud escalation through the real stack: UNSURE locally -> paid provider on loopback, under the budget."""

from __future__ import annotations

import subprocess
import sys
import uuid

import psycopg
import pytest

from tests.fake_provider import FakeProvider
from tests.stack import ROOT, Stack, free_port, wait_for

pytestmark = pytest.mark.integration

UNSURE_PROMPT = "Explain why the sky looks blue in one sentence."
KEY_ENV = "SWARM_TEST_PROVIDER_KEY"


@pytest.fixture(scope="module")
def cloud_stack(module_redis):
    stack = Stack.build(redis_url=module_redis.url, SWARM_CLOUD_ENABLED="true", **{KEY_ENV: "test-key"})
    try:
        yield stack.start()
    finally:
        stack.stop()


def use_provider(stack: Stack, base_url: str, *, price_in: str = "1", price_out: str = "2") -> None:
    stack.manage("budget_provider", "test-cloud", "--base-url", base_url, "--model", "fake", "--key-env", KEY_ENV,
                 "--price-in", price_in, "--price-out", price_out, "--order", "1", "--enable", "--only")  # fmt: skip
    stack.manage("budget_policy", "--cap", "0.02", "--pool", "0.10")
    stack.manage("budget_reset")


def ask(stack: Stack, prompt: str = UNSURE_PROMPT, *, anonymous: bool = False) -> dict:
    response = stack.post("/orchestrate", {"prompt": f"{prompt} ({uuid.uuid4().hex[:6]})"}, anonymous=anonymous)
    assert response.status_code == 200, response.text
    return response.json()


def test_the_seed_drill_over_the_cap_aborts_before_any_paid_call(cloud_stack):
    with FakeProvider() as server:
        use_provider(cloud_stack, server.base_url, price_in="0", price_out="2000")  # 128 tokens -> $0.256
        body = ask(cloud_stack)
        assert body["route"] == "unsure" and body["answer"] == "UNSURE"
        assert "cost per request exceeded 0.02" in body["detail"]
        assert server.calls == 0


def test_an_unsure_answer_is_escalated_paid_and_recorded(cloud_stack):
    with FakeProvider(answer="Rayleigh scattering.", usage=(30, 4)) as server:
        use_provider(cloud_stack, server.base_url, price_in="1", price_out="2")
        body = ask(cloud_stack)
        assert body["route"] == "cloud" and body["provider"] == "test-cloud"
        assert body["answer"] == "Rayleigh scattering." and server.calls == 1
        assert body["cost_usd"] == pytest.approx((30 * 1 + 4 * 2) / 1e6)
        query = f"L.objects.filter(request_id='{body['request_id']}').values_list('cost_usd', flat=True)[0]"
        ledger = cloud_stack.manage("shell", "-c", f"from budget.models import LedgerEntry as L; print({query})")
        assert float(ledger.split()[-1]) == pytest.approx(body["cost_usd"])


def test_a_named_provider_gets_the_whole_request_and_its_tool_calls_come_back(cloud_stack):
    call = {"id": "call_abc", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Oslo"}'}}
    tools = [{"type": "function", "function": {"name": "get_weather", "description": "", "parameters": {
        "type": "object", "properties": {"city": {"type": "string"}}}}}]  # fmt: skip
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Weather in Oslo?"}]
    with FakeProvider(tool_calls=[call]) as server:
        use_provider(cloud_stack, server.base_url)
        body = {"model": "cloud/test-cloud", "messages": messages, "tools": tools, "tool_choice": "required",
                "max_tokens": 20, "seed": 5, "stop": ["END"]}  # fmt: skip
        response = cloud_stack.post("/v1/chat/completions", body)
        assert response.status_code == 200, response.text
        choice = response.json()["choices"][0]
        assert choice["finish_reason"] == "tool_calls" and choice["message"]["content"] is None
        assert choice["message"]["tool_calls"] == [call]
        (sent,) = server.requests
        assert sent["messages"] == messages and sent["tools"] == tools and sent["tool_choice"] == "required"
        assert (sent["seed"], sent["stop"], sent["max_tokens"]) == (5, ["END"], 20)
        schema = {"type": "json_schema", "json_schema": {"name": "city", "schema": {"type": "object"}, "strict": True}}
        server.tool_calls = None
        response = cloud_stack.post("/v1/chat/completions", {"model": "cloud/test-cloud", "messages": messages,
                                                             "response_format": schema})  # fmt: skip
        assert response.status_code == 200, response.text
        assert server.requests[-1]["response_format"] == schema


def test_the_real_llama_cpp_server_acts_as_the_cloud(cloud_stack):
    port = free_port()
    model = ROOT / "var" / "models" / "SmolLM2-135M-Instruct.Q4_1.gguf"
    server = subprocess.Popen([sys.executable, "-m", "llama_cpp.server", "--model", str(model), "--host", "127.0.0.1",
                               "--port", str(port), "--n_ctx", "2048"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        import requests

        wait_for(lambda: requests.get(f"http://127.0.0.1:{port}/v1/models", timeout=1).ok, timeout=60,
                 what="llama_cpp.server")  # fmt: skip
        use_provider(cloud_stack, f"http://127.0.0.1:{port}/v1")
        body = ask(cloud_stack)
        assert body["route"] == "cloud" and body["answer"] and body["cost_usd"] > 0
    finally:
        server.kill()
        server.wait(10)


def test_budget_store_down_means_no_paid_call(private_redis):
    name = f"swarm_test_{uuid.uuid4().hex[:8]}"
    admin = "postgresql://postgres@127.0.0.1:5432/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    stack = Stack.build(redis_url=private_redis.url, database_url=f"postgres://postgres@127.0.0.1:5432/{name}",
                        SWARM_CLOUD_ENABLED="true", **{KEY_ENV: "test-key"})  # fmt: skip
    try:
        with FakeProvider() as server:
            stack.start()
            use_provider(stack, server.base_url)
            with psycopg.connect(admin, autocommit=True) as conn:  # the budget store goes away
                conn.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
                conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,))
            # A key cannot be checked without the database: a clear 503, never a 500.
            keyed = stack.post("/orchestrate", {"prompt": UNSURE_PROMPT})
            assert keyed.status_code == 503 and "key store" in keyed.json()["error"]["message"]
            body = ask(stack, anonymous=True)  # the local default's keyless caller needs no database
            assert body["route"] == "unsure" and "budget store unavailable" in body["detail"]
            assert server.calls == 0
    finally:
        stack.stop()
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
