"""The new /v1 features through real clients: LangChain's ChatOpenAI (structured output in its three
methods, a tool call round trip, streamed tool calls and streamed usage) and LiteLLM (JSON mode,
required tool calls, streamed usage).

The local model is tiny: these tests assert what the server guarantees (grammar-constrained JSON and
schema-valid calls, the response and stream shapes, the history accepted back), never how smart the
answers are. Each test also checks what the client really sent, so a client upgrade that changes the
request is seen here rather than silently testing something else.
"""

from __future__ import annotations

import json
import os

import httpx
import pytest
from pydantic import BaseModel

pytestmark = pytest.mark.integration
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # LiteLLM must not fetch its price list

LOCAL = "smollm2-135m"
CITY_PROMPT = "Name a big city and its population."


class City(BaseModel):
    name: str
    population: int


WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Get the current weather in a city.",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}


@pytest.fixture
def sent() -> list[dict]:
    """The JSON bodies the client posted, in order."""
    return []


@pytest.fixture
def chat(stack, api_key, sent):
    """ChatOpenAI on the local model, its requests recorded in `sent`."""
    from langchain_openai import ChatOpenAI

    def record(request: httpx.Request) -> None:
        sent.append(json.loads(request.read()))

    http_client = httpx.Client(event_hooks={"request": [record]}, timeout=60)

    def make(**options) -> ChatOpenAI:
        options.setdefault("max_tokens", 128)
        return ChatOpenAI(model=LOCAL, base_url=f"{stack.url}/v1", api_key=api_key, temperature=0, max_retries=0,
                          timeout=60, http_client=http_client, **options)  # fmt: skip

    yield make
    http_client.close()


def get_weather(city: str) -> str:
    """Get the current weather in a city."""
    return f"It is sunny and 22 C in {city}."


# --- LangChain: structured output -------------------------------------------------------------


def test_langchain_structured_output_default_is_a_strict_json_schema_and_validates(chat, sent):
    city = chat(max_tokens=200).with_structured_output(City).invoke(CITY_PROMPT)
    assert isinstance(city, City) and city.name
    [body] = sent
    assert body["response_format"]["type"] == "json_schema"
    assert body["response_format"]["json_schema"]["name"] == "City"
    assert body["response_format"]["json_schema"]["strict"] is True


def test_langchain_structured_output_by_function_calling_validates(chat, sent):
    city = chat(max_tokens=200).with_structured_output(City, method="function_calling").invoke(CITY_PROMPT)
    assert isinstance(city, City) and city.name
    [body] = sent
    assert body["tool_choice"] == {"type": "function", "function": {"name": "City"}}
    assert body["parallel_tool_calls"] is False and [t["function"]["name"] for t in body["tools"]] == ["City"]


def test_langchain_json_mode_returns_a_json_object(chat, sent):
    # json_object guarantees a JSON object, not which keys it has (the schema is not sent), so
    # json_mode is asked for a plain dict here.
    prompt = "Name a big city and its population, as JSON with keys name and population."
    answer = chat(max_tokens=200).with_structured_output(method="json_mode").invoke(prompt)
    assert isinstance(answer, dict) and answer
    [body] = sent
    assert body["response_format"] == {"type": "json_object"}


# --- LangChain: tools ---------------------------------------------------------------------------


def test_langchain_tool_call_round_trip(chat, sent):
    from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
    from langchain_core.tools import tool

    weather = tool(get_weather)
    question = HumanMessage("What is the weather in Paris?")
    call = chat().bind_tools([weather], tool_choice="get_weather").invoke([question])
    assert isinstance(call, AIMessage) and not call.invalid_tool_calls
    [tool_call] = call.tool_calls
    assert tool_call["name"] == "get_weather" and isinstance(tool_call["args"], dict)
    assert isinstance(tool_call["args"]["city"], str) and tool_call["id"]
    assert call.response_metadata["finish_reason"] == "tool_calls"

    result = weather.invoke(tool_call)  # a ToolMessage answering this call's id
    assert isinstance(result, ToolMessage) and result.tool_call_id == tool_call["id"]
    # Same tools bound, none to call: the model answers in text from the history.
    answer = chat().bind_tools([weather], tool_choice="none").invoke([question, call, result])
    assert isinstance(answer, AIMessage) and not answer.tool_calls
    assert isinstance(answer.content, str) and answer.content.strip()

    history = sent[1]["messages"]
    assert [m["role"] for m in history] == ["user", "assistant", "tool"]
    assert history[1]["tool_calls"][0]["id"] == tool_call["id"] == history[2]["tool_call_id"]
    assert sent[1]["tool_choice"] == "none"


def test_langchain_streams_a_tool_call_with_usage(chat, sent):
    from langchain_core.tools import tool

    llm = chat(streaming=True, stream_usage=True).bind_tools([tool(get_weather)], tool_choice="required")
    chunks = list(llm.stream("What is the weather in Paris?"))
    message = sum(chunks[1:], chunks[0])
    [tool_call] = message.tool_calls
    assert tool_call["name"] == "get_weather" and isinstance(tool_call["args"]["city"], str) and tool_call["id"]
    assert not message.invalid_tool_calls and message.response_metadata["finish_reason"] == "tool_calls"
    usage = message.usage_metadata
    assert usage["input_tokens"] > 0 and usage["output_tokens"] > 0
    assert sent[0]["stream"] is True and sent[0]["tool_choice"] == "required"


# --- LangChain: streaming -----------------------------------------------------------------------


def test_langchain_streams_text_with_usage(chat, sent):
    llm = chat(max_tokens=64, streaming=True, stream_usage=True)
    message = None
    pieces = 0
    for chunk in llm.stream("hello"):
        pieces += bool(chunk.content)
        message = chunk if message is None else message + chunk
    assert pieces > 1 and isinstance(message.content, str) and message.content.strip()
    usage = message.usage_metadata
    assert usage["input_tokens"] > 0 and usage["output_tokens"] > 0
    assert usage["total_tokens"] == usage["input_tokens"] + usage["output_tokens"]
    [body] = sent
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}


# --- LiteLLM --------------------------------------------------------------------------------------


def litellm_completion(stack, api_key, model: str = LOCAL, **options):
    import litellm

    return litellm.completion(model=f"openai/{model}", api_base=f"{stack.url}/v1", api_key=api_key, **options)


@pytest.mark.parametrize("model", [LOCAL, "swarm-auto"])
def test_litellm_json_mode(stack, api_key, model):
    messages = [{"role": "user", "content": "Give a big city and its population as JSON."}]
    response = litellm_completion(stack, api_key, model, messages=messages, response_format={"type": "json_object"},
                                  max_tokens=100)  # fmt: skip
    choice = response.choices[0]
    assert choice.finish_reason == "stop"
    assert isinstance(json.loads(choice.message.content), dict)
    # The cascade cannot honour JSON mode: swarm-auto sends it to the local model and says why.
    assert response.swarm["route"] == "local"
    if model == "swarm-auto":
        assert "response_format" in response.swarm["detail"]


def test_litellm_required_tool_call(stack, api_key):
    messages = [{"role": "user", "content": "What is the weather in Paris?"}]
    response = litellm_completion(stack, api_key, messages=messages, tools=[WEATHER_TOOL], tool_choice="required",
                                  max_tokens=100)  # fmt: skip
    choice = response.choices[0]
    assert choice.finish_reason == "tool_calls" and not choice.message.content
    [call] = choice.message.tool_calls
    assert call.type == "function" and call.id and call.function.name == "get_weather"
    assert isinstance(json.loads(call.function.arguments)["city"], str)


def test_litellm_streams_usage_last(stack, api_key):
    import litellm

    messages = [{"role": "user", "content": "hello"}]
    chunks = list(litellm_completion(stack, api_key, messages=messages, stream=True,
                                     stream_options={"include_usage": True}, max_tokens=32))  # fmt: skip
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text.strip()
    usage = chunks[-1].usage
    assert usage.prompt_tokens > 0 and usage.completion_tokens > 0
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens
    assert all(getattr(c, "usage", None) is None for c in chunks[:-1])
    built = litellm.stream_chunk_builder(chunks, messages=messages)
    assert built.choices[0].message.content == text
    assert (built.usage.prompt_tokens, built.usage.completion_tokens) == (usage.prompt_tokens, usage.completion_tokens)
