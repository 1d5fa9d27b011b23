"""Request validation for the routing endpoints and the OpenAI-compatible API (shapes only; no logic).

`text_problem` is the one check of what prompt text may contain, whatever the endpoint: no NUL
characters and no unpaired surrogates (neither can be tokenized, stored, or encoded as UTF-8).
`check_prompt_size` is the one size limit (413 over SWARM_MAX_PROMPT_CHARS).
"""

from __future__ import annotations

import re
from typing import Any

from django.conf import settings
from rest_framework import serializers

from swarm_site.errors import PayloadTooLarge

# A pair (JSON "\ud83d\ude00") decodes to one character: a surrogate left in a decoded string is unpaired.
_SURROGATE = re.compile("[\ud800-\udfff]")
ROLES = ("system", "developer", "user", "assistant", "tool")


def text_problem(value: str) -> str | None:
    """Why `value` cannot be accepted as prompt text, or None when it can."""
    if (nul := value.find("\x00")) >= 0:
        return f"must not contain NUL characters (U+0000 at character {nul})"
    if (match := _SURROGATE.search(value)) is not None:
        return f"must not contain unpaired surrogates (U+{ord(match.group()):04X} at character {match.start()})"
    return None


def check_prompt_size(size: int, *, what: str = "prompt") -> None:
    """413 when `size` characters of prompt text are more than SWARM_MAX_PROMPT_CHARS."""
    limit = settings.SWARM_MAX_PROMPT_CHARS
    if size > limit:
        raise PayloadTooLarge(f"{what} {'have' if what.endswith('s') else 'has'} {size} characters; the limit is "
                              f"{limit}")  # fmt: skip


class StrictCharField(serializers.CharField):
    """A string, never a number or list coerced into one, holding text a model can take (text_problem)."""

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        if (problem := text_problem(data)) is not None:
            raise serializers.ValidationError(problem)
        return super().to_internal_value(data)


class PromptSerializer(serializers.Serializer):
    prompt = StrictCharField(trim_whitespace=True, allow_blank=False)
    max_tokens = serializers.IntegerField(required=False, min_value=1)
    temperature = serializers.FloatField(required=False, min_value=0.0, max_value=2.0)
    user = StrictCharField(required=False, allow_blank=True, max_length=256)  # sticky canary arm

    def validate_prompt(self, value: str) -> str:
        check_prompt_size(len(value))
        return value

    def validate_max_tokens(self, value: int) -> int:
        limit = settings.SWARM_MAX_TOKENS_LIMIT
        if value > limit:
            raise serializers.ValidationError(f"must be at most {limit}")
        return value

    def to_internal_value(self, data):
        if not isinstance(data, dict):
            raise serializers.ValidationError({"non_field_errors": ["the body must be a JSON object"]})
        values = super().to_internal_value(data)
        values.setdefault("max_tokens", settings.SWARM_DEFAULT_MAX_TOKENS)
        values.setdefault("temperature", 0.0)
        return values


class HybridSerializer(PromptSerializer):
    """The chat page's shape: `query` instead of `prompt`."""

    prompt = None
    query = StrictCharField(trim_whitespace=True, allow_blank=False)

    def validate_query(self, value: str) -> str:
        return self.validate_prompt(value)


def _invalid(where: str, message: str, *, param: str = "messages") -> serializers.ValidationError:
    """An error on `param` whose message names the exact place in the body, e.g. messages[0].content[1].text."""
    return serializers.ValidationError({param: [f"{where} {message}"]})


def _content_text(content: Any, index: int) -> str:
    """OpenAI content: a string, or a list of parts of which the text ones count (their text a string)."""
    where = f"messages[{index}].content"
    if isinstance(content, str):
        if (problem := text_problem(content)) is not None:
            raise _invalid(where, problem)
        return content
    if not isinstance(content, list):
        raise _invalid(where, "must be a string or a list of content parts")
    texts = []
    for number, part in enumerate(content):
        if not isinstance(part, dict):
            raise _invalid(f"{where}[{number}]", "must be a content part object")
        if part.get("type") != "text":
            continue  # images and other parts: the local models read text only
        text = part.get("text")
        if not isinstance(text, str):
            raise _invalid(f"{where}[{number}].text", f"must be a string; got {type(text).__name__}")
        if (problem := text_problem(text)) is not None:
            raise _invalid(f"{where}[{number}].text", problem)
        texts.append(text)
    return "".join(texts)


class ChatCompletionSerializer(serializers.Serializer):
    """POST /v1/chat/completions: the OpenAI request, validated like /orchestrate's prompt."""

    model = StrictCharField()
    messages = serializers.ListField(child=serializers.DictField(), allow_empty=False)
    stream = serializers.BooleanField(required=False, default=False)
    max_tokens = serializers.IntegerField(required=False, min_value=1)
    max_completion_tokens = serializers.IntegerField(required=False, min_value=1)
    temperature = serializers.FloatField(required=False, default=0.0, min_value=0.0, max_value=2.0)
    n = serializers.IntegerField(required=False, default=1, min_value=1, max_value=1)
    user = StrictCharField(required=False, allow_blank=True, max_length=256)

    def to_internal_value(self, data):
        if not isinstance(data, dict):
            raise serializers.ValidationError({"non_field_errors": ["the body must be a JSON object"]})
        return super().to_internal_value(data)

    @staticmethod
    def clean_messages(messages: list[dict[str, Any]]) -> list[dict[str, str]]:
        clean = []
        for index, message in enumerate(messages):
            role = message.get("role")
            if role not in ROLES:
                raise _invalid(f"messages[{index}].role", f"must be one of {', '.join(ROLES)}; got {role!r}")
            text = _content_text(message.get("content"), index)
            clean.append({"role": "system" if role == "developer" else role, "content": text})
        check_prompt_size(sum(len(m["content"]) for m in clean), what="messages")
        if not any(m["role"] == "user" and m["content"].strip() for m in clean):
            raise _invalid("messages", "must contain a non-empty user message")
        return clean

    def validate(self, data: dict[str, Any]) -> dict[str, Any]:
        data["messages"] = self.clean_messages(data["messages"])
        limit = settings.SWARM_MAX_TOKENS_LIMIT
        tokens = data.get("max_completion_tokens") or data.get("max_tokens") or settings.SWARM_DEFAULT_MAX_TOKENS
        if tokens > limit:
            raise _invalid("max_tokens", f"is too large: {tokens}; the limit is {limit}", param="max_tokens")
        data["max_tokens"] = tokens
        return data
