"""Request validation for the routing endpoints and the OpenAI-compatible API (shapes only; no logic).

`text_problem` is the one check of what prompt text may contain, whatever the endpoint: no NUL
characters and no unpaired surrogates (neither can be tokenized, stored, or encoded as UTF-8).
`check_prompt_size` is the one size limit (413 over SWARM_MAX_PROMPT_CHARS).
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from typing import Any

from django.conf import settings
from rest_framework import serializers
from rest_framework.fields import empty

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


class SharedFieldsSerializer(serializers.Serializer):
    """A serializer whose instances take shallow copies of the declared fields.

    DRF deep-copies every declared field for each instance, and a field's deep copy runs its __init__
    again (validators, messages): 0.55 of the 0.65 ms that validating a chat completion took, on every
    request. The declared fields are templates that are never bound or changed; a shallow copy of each,
    bound to this instance, validates the same way.

    Validating a body, only the fields it sets are taken, with those that are required or have a
    default: an OpenAI request declares some twenty optional fields and sets two or three, and each
    field left out cost a copy and a skipped validation on every request."""

    def get_fields(self) -> dict[str, serializers.Field]:
        declared = self._declared_fields
        body = getattr(self, "initial_data", None)
        if not isinstance(body, Mapping):  # no body (a schema, a nested use): every field
            return {name: copy.copy(field) for name, field in declared.items()}
        return {name: copy.copy(field) for name, field in declared.items()
                if name in body or field.required or field.default is not empty}  # fmt: skip


class StrictCharField(serializers.CharField):
    """A string, never a number or list coerced into one, holding text a model can take (text_problem)."""

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        if (problem := text_problem(data)) is not None:
            raise serializers.ValidationError(problem)
        return super().to_internal_value(data)


class PromptSerializer(SharedFieldsSerializer):
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


def _content_text(content: Any, index: int, *, optional: bool = False) -> str:
    """OpenAI content: a string, or a list of text parts (their text a string). Parts of another type
    (images, audio, files) are refused: the local models read text only, and a part dropped would
    be a question answered without what it asked about. `optional`: null is no text (an assistant
    turn that only called tools)."""
    where = f"messages[{index}].content"
    if content is None and optional:
        return ""
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
            raise _invalid(f"{where}[{number}].type", f"must be 'text': parts of type {part.get('type')!r} are not "
                           "supported (the models here read text only)")  # fmt: skip
        text = part.get("text")
        if not isinstance(text, str):
            raise _invalid(f"{where}[{number}].text", f"must be a string; got {type(text).__name__}")
        if (problem := text_problem(text)) is not None:
            raise _invalid(f"{where}[{number}].text", problem)
        texts.append(text)
    return "".join(texts)


_FUNCTION_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
MAX_TOOLS = 128
RESPONSE_FORMATS = ("text", "json_object", "json_schema")


def _tool_calls(calls: Any, index: int) -> list[dict[str, Any]]:
    """An assistant turn's `tool_calls`, as the client sent them back: id, type function, name, arguments."""
    where = f"messages[{index}].tool_calls"
    if not isinstance(calls, list) or not calls:
        raise _invalid(where, "must be a non-empty list")
    clean = []
    for number, call in enumerate(calls):
        function = call.get("function") if isinstance(call, dict) else None
        if not isinstance(function, dict) or call.get("type", "function") != "function":
            raise _invalid(f"{where}[{number}]", "must be a function call object")
        name, arguments = function.get("name"), function.get("arguments", "")
        if not isinstance(name, str) or not isinstance(arguments, str):
            raise _invalid(f"{where}[{number}].function", "needs a string name and string arguments")
        for text in (name, arguments):
            if (problem := text_problem(text)) is not None:
                raise _invalid(f"{where}[{number}].function", problem)
        clean.append({"id": str(call.get("id", "")), "type": "function",
                      "function": {"name": name, "arguments": arguments}})  # fmt: skip
    return clean


def _clean_tools(tools: Any) -> list[dict[str, Any]]:
    """`tools`: up to 128 functions with names OpenAI accepts and object parameters."""
    if not isinstance(tools, list) or len(tools) > MAX_TOOLS:
        raise _invalid("tools", f"must be a list of at most {MAX_TOOLS} tools", param="tools")
    clean, seen = [], set()
    for number, tool in enumerate(tools):
        where = f"tools[{number}]"
        if not isinstance(tool, dict) or tool.get("type") != "function" or not isinstance(tool.get("function"), dict):
            raise _invalid(where, "must be {\"type\": \"function\", \"function\": {...}} (only function tools are "
                           "supported)", param="tools")  # fmt: skip
        function = tool["function"]
        name = function.get("name")
        if not isinstance(name, str) or not _FUNCTION_NAME.match(name):
            raise _invalid(f"{where}.function.name", "must be 1 to 64 letters, digits, _ or -", param="tools")
        if name in seen:
            raise _invalid(f"{where}.function.name", f"repeats {name!r}", param="tools")
        seen.add(name)
        parameters = function.get("parameters", {"type": "object", "properties": {}})
        if not isinstance(parameters, dict):
            raise _invalid(f"{where}.function.parameters", "must be a JSON schema object", param="tools")
        description = function.get("description", "")
        if not isinstance(description, str) or (problem := text_problem(description)) is not None:
            raise _invalid(f"{where}.function.description", problem or "must be a string", param="tools")
        clean.append({"type": "function", "function": {"name": name, "description": description,
                                                       "parameters": parameters}})  # fmt: skip
    return clean


def _clean_tool_choice(choice: Any, tools: list[dict[str, Any]]) -> str | dict[str, Any]:
    names = [t["function"]["name"] for t in tools]
    if choice in ("none", "auto", "required"):
        if choice == "required" and not tools:
            raise _invalid("tool_choice", "'required' needs tools", param="tool_choice")
        return choice
    name = choice.get("function", {}).get("name") if isinstance(choice, dict) else None
    if not isinstance(choice, dict) or choice.get("type") != "function" or not isinstance(name, str):
        raise _invalid("tool_choice", "must be 'none', 'auto', 'required' or {\"type\": \"function\", \"function\": "
                       "{\"name\": ...}}", param="tool_choice")  # fmt: skip
    if name not in names:
        raise _invalid("tool_choice", f"names {name!r}, which is not in tools", param="tool_choice")
    return {"type": "function", "function": {"name": name}}


def _clean_response_format(value: Any) -> dict[str, Any]:
    kind = value.get("type") if isinstance(value, dict) else None
    if kind not in RESPONSE_FORMATS:
        raise _invalid("response_format", f"type must be one of {', '.join(RESPONSE_FORMATS)}",
                       param="response_format")  # fmt: skip
    if kind != "json_schema":
        return {"type": kind}
    spec = value.get("json_schema")
    if not isinstance(spec, dict) or not isinstance(spec.get("name"), str) or not _FUNCTION_NAME.match(spec["name"]):
        raise _invalid("response_format.json_schema", "needs a name (1 to 64 letters, digits, _ or -)",
                       param="response_format")  # fmt: skip
    schema = spec.get("schema", {"type": "object"})
    if not isinstance(schema, dict):
        raise _invalid("response_format.json_schema.schema", "must be a JSON schema object", param="response_format")
    return {"type": "json_schema", "json_schema": {"name": spec["name"], "schema": schema,
                                                   "strict": bool(spec.get("strict"))}}  # fmt: skip


def _clean_stop(value: Any) -> list[str]:
    stops = [value] if isinstance(value, str) else value
    if not isinstance(stops, list) or not 1 <= len(stops) <= 4 or not all(isinstance(s, str) and s for s in stops):
        raise _invalid("stop", "must be a non-empty string or a list of 1 to 4 of them", param="stop")
    for stop in stops:
        if (problem := text_problem(stop)) is not None:
            raise _invalid("stop", problem, param="stop")
    return stops


def _clean_logit_bias(value: Any) -> dict[str, float]:
    if not isinstance(value, dict) or len(value) > 300:
        raise _invalid("logit_bias", "must be an object of at most 300 token ids", param="logit_bias")
    clean = {}
    for token, bias in value.items():
        if (
            not str(token).isdigit()
            or isinstance(bias, bool)
            or not isinstance(bias, (int, float))
            or not -100 <= bias <= 100
        ):
            raise _invalid("logit_bias", f"maps token ids to a bias from -100 to 100; got {token!r}: {bias!r}",
                           param="logit_bias")  # fmt: skip
        clean[str(int(token))] = float(bias)
    return clean


class StreamOptionsSerializer(serializers.Serializer):
    include_usage = serializers.BooleanField(required=False, default=False)
    include_obfuscation = serializers.BooleanField(required=False, default=False)

    def to_internal_value(self, data):
        if isinstance(data, dict) and (unknown := set(data) - {"include_usage", "include_obfuscation"}):
            raise serializers.ValidationError(f"unknown option {sorted(unknown)[0]!r}")
        values = super().to_internal_value(data)
        if values.pop("include_obfuscation"):
            raise serializers.ValidationError("include_obfuscation is not supported (a local stream needs no padding)")
        return values


class ChatCompletionSerializer(SharedFieldsSerializer):
    """POST /v1/chat/completions: the OpenAI request, validated like /orchestrate's prompt.

    Every field is in routing/openai_fields.CHAT_FIELDS: honoured, routed, or refused with a 400
    naming it. `validated_data["options"]` holds the generation options that are set (JSON, for the
    worker and the providers) and `validated_data["routed"]` the fields the cascade cannot honour.
    """

    model = StrictCharField()
    messages = serializers.ListField(child=serializers.DictField(), allow_empty=False)
    stream = serializers.BooleanField(required=False, default=False)
    stream_options = StreamOptionsSerializer(required=False, allow_null=True)
    max_tokens = serializers.IntegerField(required=False, min_value=1, allow_null=True)
    max_completion_tokens = serializers.IntegerField(required=False, min_value=1, allow_null=True)
    temperature = serializers.FloatField(required=False, default=0.0, min_value=0.0, max_value=2.0)
    n = serializers.IntegerField(required=False, default=1, min_value=1, max_value=1)
    user = StrictCharField(required=False, allow_blank=True, max_length=256)
    stop = serializers.JSONField(required=False, allow_null=True)
    seed = serializers.IntegerField(required=False, allow_null=True, min_value=-(2**63), max_value=2**63 - 1)
    top_p = serializers.FloatField(required=False, allow_null=True, min_value=0.0, max_value=1.0)
    presence_penalty = serializers.FloatField(required=False, allow_null=True, min_value=-2.0, max_value=2.0)
    frequency_penalty = serializers.FloatField(required=False, allow_null=True, min_value=-2.0, max_value=2.0)
    logit_bias = serializers.JSONField(required=False, allow_null=True)
    logprobs = serializers.BooleanField(required=False, allow_null=True)
    top_logprobs = serializers.IntegerField(required=False, allow_null=True, min_value=0, max_value=20)
    response_format = serializers.JSONField(required=False, allow_null=True)
    tools = serializers.JSONField(required=False, allow_null=True)
    tool_choice = serializers.JSONField(required=False, allow_null=True)
    parallel_tool_calls = serializers.BooleanField(required=False, allow_null=True)

    def to_internal_value(self, data):
        from routing.openai_fields import CHAT_FIELDS, refuse_unknown

        if not isinstance(data, dict):
            raise serializers.ValidationError({"non_field_errors": ["the body must be a JSON object"]})
        refuse_unknown(data, CHAT_FIELDS)
        if data.get("temperature", 0) is None:
            data = {**data, "temperature": 0.0}
        return super().to_internal_value(data)

    @staticmethod
    def clean_messages(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
        clean = []
        for index, message in enumerate(messages):
            role = message.get("role")
            if role not in ROLES:
                raise _invalid(f"messages[{index}].role", f"must be one of {', '.join(ROLES)}; got {role!r}")
            calls = message.get("tool_calls") if role == "assistant" else None
            text = _content_text(message.get("content"), index, optional=calls is not None)
            turn: dict[str, Any] = {"role": "system" if role == "developer" else role, "content": text}
            if calls is not None:
                turn["tool_calls"] = _tool_calls(calls, index)
            if role == "tool":
                call_id = message.get("tool_call_id")
                if not isinstance(call_id, str) or not call_id:
                    raise _invalid(f"messages[{index}].tool_call_id", "is required for a tool message")
                turn["tool_call_id"] = call_id
            clean.append(turn)
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
        if data.get("stream_options") and not data.get("stream"):
            raise _invalid("stream_options", "is only allowed when stream is true", param="stream_options")
        data["options"] = self._options(data)
        return data

    @staticmethod
    def _options(data: dict[str, Any]) -> dict[str, Any]:
        """The generation options that are set, cleaned (routing.openai_fields.routed_options says which
        of them take swarm-auto to the local model)."""
        options: dict[str, Any] = {}
        if data.get("stop") is not None:
            options["stop"] = _clean_stop(data["stop"])
        for name in ("seed", "top_p", "presence_penalty", "frequency_penalty"):
            if data.get(name) is not None:  # at its no-op value too: llama.cpp's own default may differ (top_p)
                options[name] = data[name]
        if data.get("logit_bias"):
            options["logit_bias"] = _clean_logit_bias(data["logit_bias"])
        if data.get("top_logprobs") and not data.get("logprobs"):
            raise _invalid("top_logprobs", "needs logprobs: true", param="top_logprobs")
        if data.get("logprobs"):
            options["logprobs"] = True
            options["top_logprobs"] = data.get("top_logprobs") or 0
        if data.get("response_format") is not None:
            response_format = _clean_response_format(data["response_format"])
            if response_format["type"] != "text":
                options["response_format"] = response_format
        tools = _clean_tools(data["tools"]) if data.get("tools") is not None else []
        choice = _clean_tool_choice(data["tool_choice"], tools) if data.get("tool_choice") is not None else None
        if tools and choice != "none":
            options["tools"] = tools
            options["tool_choice"] = choice or "auto"
            if data.get("parallel_tool_calls") is False:
                options["parallel_tool_calls"] = False
        if "response_format" in options and "tools" in options:
            raise _invalid("response_format", "cannot be combined with tools here: send one or the other",
                           param="response_format")  # fmt: skip
        if "response_format" in options or "tools" in options:
            from inference.constraints import ConstraintError, check

            try:
                check(options)
            except ConstraintError as exc:
                raise _invalid(exc.param, str(exc), param=exc.param) from None
        return options
