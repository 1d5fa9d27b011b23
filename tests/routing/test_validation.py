"""One validator for prompt text on every endpoint; /v1 validated like /orchestrate; JSON bodies only."""

from __future__ import annotations

import pytest
from rest_framework.request import Request
from rest_framework.test import APIRequestFactory

from routing.openai_api import JsonOrStream
from routing.serializers import ChatCompletionSerializer, HybridSerializer, PromptSerializer, text_problem
from swarm_site.errors import PayloadTooLarge
from swarm_site.parsers import LimitedJSONParser


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("plain text", None),
        ("emoji \U0001f600 and accents é", None),
        ("nul \x00 here", "NUL characters (U+0000 at character 4)"),
        ("lone \ud800", "unpaired surrogates (U+D800 at character 5)"),
        ("\udfff low", "unpaired surrogates (U+DFFF at character 0)"),
    ],
)
def test_text_problem(text, problem):
    found = text_problem(text)
    assert (found is None) if problem is None else (problem in found)


def errors(serializer) -> dict:
    assert not serializer.is_valid()
    return serializer.errors


@pytest.mark.parametrize(("serializer", "body", "field"), [
    (PromptSerializer, {"prompt": "hi\x00"}, "prompt"),
    (PromptSerializer, {"prompt": "hi \ud800"}, "prompt"),
    (PromptSerializer, {"prompt": "hi", "user": "\udc00"}, "user"),
    (PromptSerializer, {"prompt": "hi", "user": 42}, "user"),
    (HybridSerializer, {"query": "a\x00"}, "query"),
])  # fmt: skip
def test_orchestrate_fields_refuse_unreadable_text(serializer, body, field):
    assert field in errors(serializer(data=body))


def chat(content, **extra) -> dict:
    return {"model": "swarm-auto", "messages": [{"role": "user", "content": content}], **extra}


@pytest.mark.parametrize(("content", "where"), [
    ([{"type": "text", "text": 123}], "messages[0].content[0].text must be a string; got int"),
    ([{"type": "text", "text": "a"}, {"type": "text", "text": None}], "messages[0].content[1].text must be a string"),
    ([{"type": "text"}], "messages[0].content[0].text must be a string; got NoneType"),
    (["hi"], "messages[0].content[0] must be a content part object"),
    (42, "messages[0].content must be a string or a list"),
    (None, "messages[0].content must be a string or a list"),
    ("a\x00b", "messages[0].content must not contain NUL"),
    ("a\ud800b", "messages[0].content must not contain unpaired surrogates"),
    ([{"type": "text", "text": "\udbff"}], "messages[0].content[0].text must not contain unpaired surrogates"),
])  # fmt: skip
def test_v1_content_is_checked_like_a_prompt_and_the_error_names_where(content, where):
    found = errors(ChatCompletionSerializer(data=chat(content)))
    assert list(found) == ["messages"] and where in str(found["messages"][0])


def test_v1_text_parts_are_joined():
    serializer = ChatCompletionSerializer(data=chat([{"type": "text", "text": "What is "},
                                                     {"type": "text", "text": "2+2?"}]))  # fmt: skip
    assert serializer.is_valid(), serializer.errors
    assert serializer.validated_data["messages"] == [{"role": "user", "content": "What is 2+2?"}]


def test_v1_parts_the_models_cannot_read_are_refused_not_skipped():
    """An image dropped silently would be a question answered without what it asked about."""
    found = errors(ChatCompletionSerializer(data=chat([{"type": "text", "text": "What is in this picture?"},
                                                       {"type": "image_url", "image_url": {"url": "x"}}])))  # fmt: skip
    assert "messages[0].content[1].type must be 'text'" in str(found["messages"][0])


def test_v1_over_the_character_limit_is_a_413_like_orchestrate(settings):
    settings.SWARM_MAX_PROMPT_CHARS = 100
    with pytest.raises(PayloadTooLarge, match="messages have 101 characters; the limit is 100"):
        messages = [{"role": "user", "content": "a" * 60}, {"role": "user", "content": "b" * 41}]
        ChatCompletionSerializer(data={"model": "swarm-auto", "messages": messages}).is_valid()
    with pytest.raises(PayloadTooLarge, match="prompt has 101 characters"):
        PromptSerializer(data={"prompt": "a" * 101}).is_valid()


def test_v1_body_that_is_not_an_object_is_a_400():
    assert "non_field_errors" in errors(ChatCompletionSerializer(data=["not", "an", "object"]))


@pytest.mark.parametrize(("content_type", "chosen"), [
    ("application/json", True),
    ("application/json; charset=utf-8", True),
    ("text/plain", False),
    ("text/plain;charset=UTF-8", False),
    ("application/x-www-form-urlencoded", False),
    ("multipart/form-data; boundary=x", False),
])  # fmt: skip
def test_v1_reads_a_body_only_when_its_content_type_says_json(content_type, chosen):
    request = Request(APIRequestFactory().post("/v1/chat/completions", data=b"{}", content_type=content_type))
    parser = JsonOrStream().select_parser(request, [LimitedJSONParser()])
    assert (parser is not None) is chosen
