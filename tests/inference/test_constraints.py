"""Constrained decoding (inference/constraints.py) and the generation options of the llama.cpp backend:
grammars for JSON and tool calls, JSON closed after a cut, logprobs, logit_bias (the real model)."""

from __future__ import annotations

import json

import jsonschema
import pytest

from inference import constraints
from inference.backends.base import InvalidOption
from inference.backends.llama import LlamaCppBackend
from inference.registry import load_registry
from routing.openai_api import StopText

WEATHER = {"name": "get_weather", "description": "Weather in a city",
           "parameters": {"type": "object", "properties": {"city": {"type": "string", "maxLength": 30}},
                          "required": ["city"]}}  # fmt: skip
TOOLS = {"tools": [{"type": "function", "function": WEATHER}]}


@pytest.mark.parametrize(("cut", "closed"), [
    ('{"a": 1, "b": "xy', '{"a": 1}'),
    ('{"a": [1, 2, 3', '{"a": [1, 2]}'),
    ('{"a": {"b": tru', '{"a": {}}'),
    ('{"a": 1, "b', '{"a": 1}'),
    ('{"a": 1,', '{"a": 1}'),
    ("{", "{}"),
    ('{"a": "x"} and more', '{"a": "x"}'),
    ('{"a": 12.5, "k": ', '{"a": 12.5}'),
    ('{"q": "say \\"hi', "{}"),
    ('{"q": "a}b", "r": [{"s": "]"', '{"q": "a}b", "r": [{"s": "]"}]}'),
])  # fmt: skip
def test_json_cut_by_max_tokens_is_closed_at_its_last_whole_value(cut, closed):
    assert constraints.close_json(cut) == closed
    json.loads(closed)


def test_tool_calls_are_read_from_the_answer_for_known_functions_only():
    text = '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Oslo"}}\n</tool_call>'
    (call,) = constraints.parse_tool_calls(text, {"get_weather": WEATHER})
    assert call["type"] == "function" and call["id"].startswith("call_")
    assert call["function"] == {"name": "get_weather", "arguments": '{"city": "Oslo"}'}
    assert constraints.parse_tool_calls(text.replace("get_weather", "rm_rf"), {"get_weather": WEATHER}) == []


def test_earlier_calls_and_results_are_written_for_the_model():
    history = [
        {"role": "user", "content": "Weather in Oslo?"},
        {"role": "assistant", "content": "", "tool_calls": [
            {"id": "call_1", "type": "function",
             "function": {"name": "get_weather", "arguments": '{"city": "Oslo"}'}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": "12 C"},
    ]  # fmt: skip
    built = constraints.build(history, TOOLS)
    assert built.messages[0]["role"] == "system" and "<tools>" in built.messages[0]["content"]
    assert built.messages[2] == {"role": "assistant", "content": '<tool_call>\n{"name": "get_weather", '
                                 '"arguments": {"city": "Oslo"}}\n</tool_call>'}  # fmt: skip
    assert built.messages[3] == {"role": "user", "content": "<tool_response>\n12 C\n</tool_response>"}
    assert constraints.build(history, {**TOOLS, "tool_choice": "none"}).grammar is None


def test_a_schema_the_converter_cannot_express_is_refused_up_front():
    bad = {"response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": {"$ref": "#/nowhere"}}}}
    with pytest.raises(constraints.ConstraintError) as caught:
        constraints.check(bad)
    assert caught.value.param == "response_format"


@pytest.mark.parametrize(("pieces", "sent", "stopped"), [
    (["Hel", "lo wor", "ld"], "Hello world", False),
    (["1, 2, ", "3, 4", ", 5, 6"], "1, 2, 3, 4, ", True),
    (["ab", "cSTO", "P and more"], "abc", True),
    (["abST", "x"], "abSTx", False),
])  # fmt: skip
def test_stop_text_holds_back_what_could_start_a_stop_sequence(pieces, sent, stopped):
    stop = StopText(["STOP", "5"])
    out = "".join(stop.feed(piece) for piece in pieces) + stop.flush()
    assert out == sent and stop.stopped is stopped


@pytest.fixture(scope="module")
def backend():
    backend = LlamaCppBackend(load_registry().get("smollm2-135m"))
    backend.load()
    yield backend
    backend.unload()


def test_logprobs_are_the_answer_token_by_token_up_to_the_last(backend):
    messages = [{"role": "user", "content": "List three colours."}]
    gen = backend.generate(messages, max_tokens=6, temperature=0.0, logprobs=2)
    assert gen.finish_reason == "length" and len(gen.logprobs) == gen.completion_tokens == 6
    assert "".join(entry["token"] for entry in gen.logprobs).strip() == gen.text
    assert all(len(entry["top_logprobs"]) == 2 and entry["logprob"] <= 0 for entry in gen.logprobs)
    assert [entry["token"] for entry in gen.logprobs] == [entry["top_logprobs"][0]["token"] for entry in gen.logprobs]


def test_a_token_id_outside_the_vocabulary_is_refused_before_generating(backend):
    with pytest.raises(InvalidOption) as caught:
        backend.generate([{"role": "user", "content": "hi"}], max_tokens=2, temperature=0.0,
                         logit_bias={str(10**7): 5.0})  # fmt: skip
    assert caught.value.param == "logit_bias"


def test_a_forced_tool_call_follows_the_function_schema(backend):
    built = constraints.build([{"role": "user", "content": "Weather in Rome?"}], {**TOOLS, "tool_choice": "required"})
    gen = backend.generate(built.messages, max_tokens=60, temperature=0.0, grammar=built.grammar)
    (call,) = built.read(built.complete(gen.text, gen.finish_reason))["tool_calls"]
    jsonschema.validate(json.loads(call["function"]["arguments"]), WEATHER["parameters"])


def test_json_mode_closes_what_max_tokens_cut(backend):
    built = constraints.build([{"role": "user", "content": "Describe a horse in detail."}],
                              {"response_format": {"type": "json_object"}})  # fmt: skip
    gen = backend.generate(built.messages, max_tokens=5, temperature=0.0, grammar=built.grammar)
    assert gen.finish_reason == "length"
    assert isinstance(json.loads(built.complete(gen.text, gen.finish_reason)), dict)
