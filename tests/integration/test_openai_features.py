"""The OpenAI request fields beyond messages, through the openai SDK against the live stack: JSON mode
and JSON schemas, tools, logprobs, stop, seed, usage in streams, routing of swarm-auto, refusals."""

from __future__ import annotations

import json
import math

import jsonschema
import openai
import pytest

pytestmark = pytest.mark.integration

LOCAL = "smollm2-135m"
SUBJECTS = [
    "a cat", "a city", "a book", "a car", "a river", "a planet", "a song", "a chef", "a bridge", "a tree",
    "a robot", "a mountain", "a painter", "a dog", "a ship", "a festival", "a teacher", "a bird", "a castle", "a lamp",
    "a garden", "a train", "a pilot", "a museum", "a fish",
]  # fmt: skip
PERSON = {
    "type": "object",
    "properties": {"name": {"type": "string", "maxLength": 40}, "age": {"type": "integer", "minimum": 0},
                   "hobbies": {"type": "array", "items": {"type": "string", "maxLength": 30}, "maxItems": 3}},
    "required": ["name", "age", "hobbies"],
    "additionalProperties": False,
}  # fmt: skip
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The current weather in a city.",
        "parameters": {"type": "object", "properties": {"city": {"type": "string", "maxLength": 40},
                                                        "unit": {"enum": ["celsius", "fahrenheit"]}},
                       "required": ["city", "unit"], "additionalProperties": False},
    },
}  # fmt: skip
TIME = {"type": "function", "function": {"name": "get_time", "description": "The time in a time zone.",
                                         "parameters": {"type": "object", "properties": {"zone": {"type": "string"}},
                                                        "required": ["zone"]}}}  # fmt: skip
ASK_WEATHER = [{"role": "user", "content": "What is the weather in Paris right now?"}]


@pytest.fixture
def client(stack, api_key) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{stack.url}/v1", api_key=api_key, max_retries=0, timeout=120)


def user(text: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": text}]


# Each property below holds for every prompt: `make test` asks 10 (a fifth of the subjects, both wordings),
# `make test-slow` all 50 (about 3 minutes on a 2-core CPU).
SUBJECT_SETS = [pytest.param(SUBJECTS[::5], id="sample"), pytest.param(SUBJECTS, id="all", marks=pytest.mark.slow)]


@pytest.mark.parametrize("subjects", SUBJECT_SETS)
def test_json_mode_answers_always_parse(client, subjects):
    """Prompts in JSON mode: every answer is one JSON object."""
    prompts = [f"Describe {subject} in JSON." for subject in subjects] + [
        f"Give three facts about {subject}." for subject in subjects]  # fmt: skip
    failures = []
    for prompt in prompts:
        completion = client.chat.completions.create(model=LOCAL, messages=user(prompt), max_tokens=120,
                                                    response_format={"type": "json_object"})  # fmt: skip
        content = completion.choices[0].message.content
        try:
            assert isinstance(json.loads(content), dict)
        except (ValueError, AssertionError):
            failures.append((prompt, completion.choices[0].finish_reason, content))
    assert not failures, failures


@pytest.mark.parametrize("subjects", SUBJECT_SETS)
def test_json_schema_answers_always_validate(client, subjects):
    """Prompts with a strict JSON schema: every answer validates against it."""
    prompts = [f"Invent a person who likes {subject}." for subject in subjects] + [
        f"Describe the owner of {subject}." for subject in subjects]  # fmt: skip
    response_format = {"type": "json_schema", "json_schema": {"name": "person", "schema": PERSON, "strict": True}}
    failures = []
    for prompt in prompts:
        completion = client.chat.completions.create(model=LOCAL, messages=user(prompt), max_tokens=200,
                                                    response_format=response_format)  # fmt: skip
        content = completion.choices[0].message.content
        try:
            jsonschema.validate(json.loads(content), PERSON)
        except (ValueError, jsonschema.ValidationError) as exc:
            failures.append((prompt, completion.choices[0].finish_reason, content, str(exc)[:100]))
    assert not failures, failures


def test_the_sdk_parses_a_pydantic_model_from_a_json_schema(client):
    from pydantic import BaseModel

    class City(BaseModel):
        name: str
        country: str

    parsed = client.chat.completions.parse(model=LOCAL, messages=user("Name a big city."), response_format=City,
                                           max_tokens=80)  # fmt: skip
    assert isinstance(parsed.choices[0].message.parsed, City)


def test_swarm_auto_with_a_format_is_routed_to_the_local_model(client):
    raw = client.chat.completions.with_raw_response.create(
        model="swarm-auto", messages=user("What is 7*8?"), response_format={"type": "json_object"}, max_tokens=60
    )
    completion = raw.parse()
    assert isinstance(json.loads(completion.choices[0].message.content), dict)
    swarm = completion.model_extra["swarm"]
    assert swarm["route"] == "local" and "response_format" in swarm["detail"], swarm
    assert raw.headers["x-swarm-route"] == "local"


def test_a_required_tool_call_round_trip(client):
    first = client.chat.completions.create(model=LOCAL, messages=ASK_WEATHER, tools=[WEATHER, TIME],
                                           tool_choice="required", max_tokens=80)  # fmt: skip
    choice = first.choices[0]
    assert choice.finish_reason == "tool_calls" and choice.message.content is None
    (call,) = choice.message.tool_calls
    assert call.type == "function" and call.id.startswith("call_")
    assert call.function.name in ("get_weather", "get_time")
    schema = {"get_weather": WEATHER, "get_time": TIME}[call.function.name]["function"]["parameters"]
    jsonschema.validate(json.loads(call.function.arguments), schema)
    # The call and its result go back; the model answers in words.
    history = [
        *ASK_WEATHER,
        choice.message.model_dump(exclude_none=True),
        {"role": "tool", "tool_call_id": call.id, "content": '{"temperature": 18, "sky": "cloudy"}'},
    ]
    second = client.chat.completions.create(model=LOCAL, messages=history, tools=[WEATHER, TIME], max_tokens=60,
                                            tool_choice="none")  # fmt: skip
    assert second.choices[0].message.content and not second.choices[0].message.tool_calls


def test_a_named_tool_is_the_one_called(client):
    completion = client.chat.completions.create(
        model=LOCAL, messages=ASK_WEATHER, tools=[WEATHER, TIME], max_tokens=80,
        tool_choice={"type": "function", "function": {"name": "get_time"}})  # fmt: skip
    (call,) = completion.choices[0].message.tool_calls
    assert call.function.name == "get_time" and "zone" in json.loads(call.function.arguments)


def test_auto_tool_choice_gives_a_valid_call_or_a_plain_answer(client):
    for messages in (ASK_WEATHER, user("Say hello.")):
        choice = client.chat.completions.create(model=LOCAL, messages=messages, tools=[WEATHER], max_tokens=60,
                                                tool_choice="auto").choices[0]  # fmt: skip
        if choice.message.tool_calls:
            assert choice.finish_reason == "tool_calls"
            jsonschema.validate(json.loads(choice.message.tool_calls[0].function.arguments),
                                WEATHER["function"]["parameters"])  # fmt: skip
        else:
            assert choice.message.content and "<tool_call>" not in choice.message.content


def test_a_streamed_tool_call_arrives_as_deltas(client):
    calls: dict[int, dict[str, str]] = {}
    finish = None
    for chunk in client.chat.completions.create(model=LOCAL, messages=ASK_WEATHER, tools=[WEATHER], stream=True,
                                                tool_choice="required", max_tokens=80):  # fmt: skip
        if not chunk.choices:
            continue
        for delta in chunk.choices[0].delta.tool_calls or []:
            call = calls.setdefault(delta.index, {"name": "", "arguments": ""})
            call["name"] += delta.function.name or ""
            call["arguments"] += delta.function.arguments or ""
        finish = chunk.choices[0].finish_reason or finish
    assert finish == "tool_calls" and calls[0]["name"] == "get_weather"
    jsonschema.validate(json.loads(calls[0]["arguments"]), WEATHER["function"]["parameters"])


def test_logprobs_cover_the_answer_token_by_token(client):
    completion = client.chat.completions.create(model=LOCAL, messages=user("Count: one, two, three,"), max_tokens=12,
                                                logprobs=True, top_logprobs=3)  # fmt: skip
    choice = completion.choices[0]
    tokens = choice.logprobs.content
    assert len(tokens) == completion.usage.completion_tokens
    assert "".join(t.token for t in tokens).strip() == choice.message.content
    for token in tokens:
        assert token.logprob <= 0 and len(token.top_logprobs) == 3 and bytes(token.bytes).decode() == token.token
        best = token.top_logprobs[0].logprob
        assert token.logprob <= best + 1e-6 and sum(math.exp(t.logprob) for t in token.top_logprobs) <= 1 + 1e-4
    # Greedy decoding takes the most likely token at every step.
    assert all(t.token == t.top_logprobs[0].token for t in tokens)


def test_a_stream_brings_its_logprobs_with_the_finish_chunk(client):
    chunks = list(
        client.chat.completions.create(
            model=LOCAL,
            messages=user("Name two colours."),
            max_tokens=8,
            stream=True,
            logprobs=True,
            stream_options={"include_usage": True},
        )
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    (finish,) = [c for c in chunks if c.choices and c.choices[0].finish_reason]
    tokens = finish.choices[0].logprobs.content
    assert len(tokens) == chunks[-1].usage.completion_tokens
    assert "".join(t.token for t in tokens).strip() == text.strip()


def test_stop_ends_the_answer_before_the_stop_text(client):
    local = client.chat.completions.create(model=LOCAL, messages=user("Count from 1 to 10, separated by commas."),
                                           max_tokens=60, stop=["5"])  # fmt: skip
    assert "5" not in local.choices[0].message.content and local.choices[0].finish_reason == "stop"
    assert "4" in local.choices[0].message.content
    # The cascade's answer is cut the same way, cached or not.
    for _ in range(2):
        cascade = client.chat.completions.create(model="swarm-auto", messages=user("What is 7*8?"), stop=["6"])
        assert cascade.choices[0].message.content == "5" and cascade.choices[0].finish_reason == "stop"


def test_a_seed_makes_sampling_repeatable(client):
    def sample(seed: int) -> str:
        return client.chat.completions.create(model=LOCAL, messages=user("Invent a name for a cat."), seed=seed,
                                              temperature=1.2, max_tokens=16).choices[0].message.content  # fmt: skip

    assert sample(7) == sample(7)
    assert len({sample(seed) for seed in range(8, 12)}) > 1  # and sampling it is


@pytest.mark.parametrize("model", [LOCAL, "swarm-auto"])
def test_a_stream_ends_with_a_usage_chunk(client, model):
    chunks = list(client.chat.completions.create(model=model, messages=user("Say hello to Ann."), stream=True,
                                                 max_tokens=24, stream_options={"include_usage": True}))  # fmt: skip
    *body, last = chunks
    assert last.choices == [] and last.usage.prompt_tokens > 0 and last.usage.completion_tokens > 0
    assert last.usage.total_tokens == last.usage.prompt_tokens + last.usage.completion_tokens
    assert all(chunk.usage is None for chunk in body)
    assert body[-1].choices[0].finish_reason is not None


def test_a_stream_without_the_option_has_no_usage_chunk(client):
    chunks = list(client.chat.completions.create(model=LOCAL, messages=user("Hi"), stream=True, max_tokens=8))
    assert all(chunk.choices for chunk in chunks)


@pytest.mark.parametrize(("body", "param"), [
    ({"functions": [{"name": "f"}]}, "functions"),
    ({"store": True}, "store"),
    ({"audio": {"voice": "alloy"}}, "audio"),
    ({"frobnicate": 1}, "frobnicate"),
    ({"n": 2}, "n"),
    ({"logit_bias": {"999999999": 5}}, "logit_bias"),
    ({"top_logprobs": 2}, "top_logprobs"),
    ({"response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "object", "properties": {"a": {"$ref": "#/nowhere"}}}}}}, "response_format"),  # noqa: E501
    ({"tool_choice": "required"}, "tool_choice"),
    ({"stream_options": {"include_usage": True}}, "stream_options"),
    ({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "http://x"}}]}]},
     "messages"),
])  # fmt: skip
def test_what_cannot_be_honoured_is_a_400_naming_the_field(client, body, param):
    with pytest.raises(openai.BadRequestError) as caught:  # sent as the body says, whatever the SDK knows
        client.chat.completions.create(model=LOCAL, messages=user("Hi"), max_tokens=8, extra_body=body)
    assert caught.value.status_code == 400 and caught.value.param == param, caught.value.body


def test_sampling_options_reach_the_model(client):
    import llama_cpp

    from inference.registry import active_model

    vocab = llama_cpp.Llama(model_path=str(active_model().local_path()), vocab_only=True, verbose=False)
    (banana,) = vocab.tokenize(b" banana", add_bos=False, special=False)
    ask = user("Name a fruit.")
    forced = client.chat.completions.create(model=LOCAL, messages=ask, max_tokens=3, logit_bias={str(banana): 100})
    assert forced.choices[0].message.content == "banana banana banana"
    # A nucleus this small keeps only the most likely token: any seed, any temperature, the greedy answer.
    greedy = client.chat.completions.create(model=LOCAL, messages=ask, max_tokens=12).choices[0].message.content
    for seed in (1, 2):
        narrow = client.chat.completions.create(model=LOCAL, messages=ask, max_tokens=12, temperature=1.5, seed=seed,
                                                top_p=1e-6)  # fmt: skip
        assert narrow.choices[0].message.content == greedy
    # Penalties on repeated tokens change what a repetitive answer says.
    echo = user("Write the word cat ten times.")
    plain = client.chat.completions.create(model=LOCAL, messages=echo, max_tokens=16).choices[0].message.content
    for penalty in ("presence_penalty", "frequency_penalty"):
        penalised = client.chat.completions.create(model=LOCAL, messages=echo, max_tokens=16, **{penalty: 2.0})
        assert penalised.choices[0].message.content != plain, penalty
