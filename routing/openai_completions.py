"""OpenAI's legacy text completion, POST /v1/completions, on the local model (JSON and SSE streams).

The prompt is completed as raw text: no chat template, no council, no cache. Only the local model's
alias is served here (`swarm-auto` and `cloud/<provider>` are 400s on `model`). Every request field
is in routing/openai_fields.COMPLETION_FIELDS: honoured, or refused with a 400 naming it. The
worker's side is routing.tasks.complete_text -> services.text_answer -> Backend.complete_text.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from typing import Any

from django.conf import settings
from django.http import StreamingHttpResponse
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from access.authentication import client_address, enforce_token_cap
from inference.registry import active_model
from routing import services
from routing.openai_api import (
    JsonOrStream,
    ModelNotFound,
    _finish_reason,
    _headers,
    _swarm,
    _usage,
    available_models,
    event_stream,
)
from routing.openai_fields import unsupported_value
from routing.serializers import (
    StreamOptionsSerializer,
    StrictCharField,
    _clean_logit_bias,
    _clean_stop,
    _invalid,
    check_prompt_size,
    text_problem,
)

log = logging.getLogger(__name__)

DEFAULT_MAX_TOKENS = 16  # OpenAI's default for this endpoint
MAX_LOGPROBS = 5  # the legacy API's limit


def completion_id(request_id: str) -> str:
    return f"cmpl-{request_id}"


def _clean_prompt(value: Any) -> str:
    """A string, or a list of exactly one: the text to complete (several prompts would be n > 1)."""
    if isinstance(value, list):
        if len(value) == 1 and isinstance(value[0], str):
            value = value[0]
        elif value and all(isinstance(item, str) for item in value):
            raise _invalid("prompt", f"has {len(value)} prompts: one prompt per request is supported (one "
                           "choice per request, like n = 1)", param="prompt")  # fmt: skip
        elif value and all(isinstance(item, (int, list)) and not isinstance(item, bool) for item in value):
            raise _invalid("prompt", "is token ids: they are not supported (ids of another tokenizer cannot be "
                           "read); send the text", param="prompt")  # fmt: skip
        else:
            raise _invalid("prompt", "must be a string or a list of exactly one string", param="prompt")
    if not isinstance(value, str):
        raise _invalid("prompt", "must be a string or a list of exactly one string", param="prompt")
    if not value:
        raise _invalid("prompt", "must not be empty", param="prompt")
    if (problem := text_problem(value)) is not None:
        raise _invalid("prompt", problem, param="prompt")
    check_prompt_size(len(value))
    return value


class TextCompletionSerializer(serializers.Serializer):
    """POST /v1/completions: OpenAI's legacy completion request. `validated_data["prompt"]` is the text,
    `validated_data["options"]` the sampling options that are set (JSON, for the worker)."""

    model = StrictCharField()
    prompt = serializers.JSONField()
    max_tokens = serializers.IntegerField(required=False, min_value=1, allow_null=True)
    temperature = serializers.FloatField(required=False, default=0.0, min_value=0.0, max_value=2.0)
    top_p = serializers.FloatField(required=False, allow_null=True, min_value=0.0, max_value=1.0)
    stop = serializers.JSONField(required=False, allow_null=True)
    seed = serializers.IntegerField(required=False, allow_null=True, min_value=-(2**63), max_value=2**63 - 1)
    presence_penalty = serializers.FloatField(required=False, allow_null=True, min_value=-2.0, max_value=2.0)
    frequency_penalty = serializers.FloatField(required=False, allow_null=True, min_value=-2.0, max_value=2.0)
    logit_bias = serializers.JSONField(required=False, allow_null=True)
    logprobs = serializers.IntegerField(required=False, allow_null=True, min_value=0, max_value=MAX_LOGPROBS)
    echo = serializers.BooleanField(required=False, allow_null=True)
    stream = serializers.BooleanField(required=False, default=False)
    stream_options = StreamOptionsSerializer(required=False, allow_null=True)
    n = serializers.IntegerField(required=False, default=1, min_value=1, max_value=1)
    best_of = serializers.IntegerField(required=False, allow_null=True, min_value=1, max_value=1)
    user = StrictCharField(required=False, allow_blank=True, max_length=256)

    def to_internal_value(self, data):
        from routing.openai_fields import COMPLETION_FIELDS, refuse_unknown

        if not isinstance(data, dict):
            raise serializers.ValidationError({"non_field_errors": ["the body must be a JSON object"]})
        refuse_unknown(data, COMPLETION_FIELDS)
        if data.get("temperature", 0) is None:
            data = {**data, "temperature": 0.0}
        return super().to_internal_value(data)

    def validate(self, data: dict[str, Any]) -> dict[str, Any]:
        data["prompt"] = _clean_prompt(data["prompt"])
        limit = settings.SWARM_MAX_TOKENS_LIMIT
        tokens = data.get("max_tokens") or DEFAULT_MAX_TOKENS
        if tokens > limit:
            raise _invalid("max_tokens", f"is too large: {tokens}; the limit is {limit}", param="max_tokens")
        data["max_tokens"] = tokens
        if data.get("stream_options") and not data.get("stream"):
            raise _invalid("stream_options", "is only allowed when stream is true", param="stream_options")
        if data.get("echo") and data.get("logprobs") is not None:
            raise _invalid("echo", "cannot be combined with logprobs here: the prompt's tokens are not scored",
                           param="echo")  # fmt: skip
        data["options"] = self._options(data)
        return data

    @staticmethod
    def _options(data: dict[str, Any]) -> dict[str, Any]:
        """The sampling options that are set, cleaned, as services._generation_params reads them."""
        options: dict[str, Any] = {}
        if data.get("stop") is not None:
            options["stop"] = _clean_stop(data["stop"])
        for name in ("seed", "top_p", "presence_penalty", "frequency_penalty"):
            if data.get(name) is not None:
                options[name] = data[name]
        if data.get("logit_bias"):
            options["logit_bias"] = _clean_logit_bias(data["logit_bias"])
        if data.get("logprobs") is not None:
            options["logprobs"] = True
            options["top_logprobs"] = data["logprobs"]
        return options


def _local_model(model: str) -> str:
    """The local model's alias, when `model` names it; a 400 for the other served models, else a 404."""
    alias = active_model().alias
    if model == alias:
        return alias
    if model in available_models():
        raise unsupported_value("model", f"The model `{model}` does not serve text completion: /v1/completions "
                                f"is served by the local model only; use `{alias}` (or /v1/chat/completions "
                                "for the other models).")  # fmt: skip
    raise ModelNotFound(f"The model `{model}` does not exist; GET /v1/models lists them.")


def legacy_logprobs(content: list[dict[str, Any]] | None, *, start: int) -> dict[str, Any] | None:
    """The legacy `logprobs` object from the worker's per-token entries (chat's logprobs.content):
    `top_logprobs` holds the best alternatives and the sampled token; `text_offset` counts characters
    from the start of the prompt (`start`: the prompt's length)."""
    if content is None:
        return None
    tokens, token_logprobs, top, offsets = [], [], [], []
    offset = start
    for entry in content:
        best = {alt["token"]: alt["logprob"] for alt in entry["top_logprobs"]}
        best.setdefault(entry["token"], entry["logprob"])
        tokens.append(entry["token"])
        token_logprobs.append(entry["logprob"])
        top.append(best)
        offsets.append(offset)
        offset += len(entry["token"])
    return {"tokens": tokens, "token_logprobs": token_logprobs, "top_logprobs": top, "text_offset": offsets}


class CompletionsView(APIView):
    content_negotiation_class = JsonOrStream
    generates = True  # holds one of the caller's concurrent generations (access/authentication.py)

    def post(self, request: Request):
        body = TextCompletionSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        route = _local_model(data["model"])
        enforce_token_cap(request, data["max_tokens"])
        ask = {
            "prompt": data["prompt"], "max_tokens": data["max_tokens"], "temperature": data["temperature"],
            "endpoint": services.COMPLETIONS, "route": route, "api_key_id": getattr(request.auth, "pk", None),
            "options": data["options"],
        }  # fmt: skip
        ask["client"] = services.client_identity(api_key_id=ask["api_key_id"], user=data.get("user"),
                                                 address=client_address(request))  # fmt: skip
        echo = data["prompt"] if data.get("echo") else ""
        if data["stream"]:
            include_usage = bool((data.get("stream_options") or {}).get("include_usage"))
            return self._stream(data["model"], ask, echo=echo, include_usage=include_usage)
        result = services.orchestrate_request(**ask)
        return Response(self._completion(data["model"], data["prompt"], result, echo=echo), headers=_headers(result))

    @staticmethod
    def _completion(model: str, prompt: str, result: dict[str, Any], *, echo: str) -> dict[str, Any]:
        choice = {"text": echo + result["answer"], "index": 0,
                  "logprobs": legacy_logprobs(result.get("logprobs"), start=len(prompt)),
                  "finish_reason": _finish_reason(result)}  # fmt: skip
        return {
            "id": completion_id(result["request_id"]), "object": "text_completion", "created": int(time.time()),
            "model": model, "choices": [choice], "usage": _usage(result), "swarm": _swarm(result),
        }  # fmt: skip

    def _stream(self, model: str, ask: dict[str, Any], *, echo: str, include_usage: bool) -> StreamingHttpResponse:
        state, events = services.orchestrate_stream(**ask)
        created = int(time.time())
        cmpl_id = completion_id(state.request_id)
        usage_field = {"usage": None} if include_usage else {}

        def chunk(text: str, finish: str | None = None, logprobs: dict[str, Any] | None = None, **extra: Any) -> str:
            payload = {"id": cmpl_id, "object": "text_completion", "created": created, "model": model,
                       "choices": [{"text": text, "index": 0, "logprobs": logprobs, "finish_reason": finish}],
                       **usage_field, **extra}  # fmt: skip
            return f"data: {json.dumps(payload)}\n\n"

        def final(result: dict[str, Any], streamed: str) -> Iterator[str]:
            if rest := result["answer"].removeprefix(streamed):  # not generated piece by piece
                yield chunk(rest)
            logprobs = legacy_logprobs(result.get("logprobs"), start=len(ask["prompt"]))
            yield chunk("", _finish_reason(result), logprobs, swarm=_swarm(result))
            if include_usage:
                payload = {"id": cmpl_id, "object": "text_completion", "created": created, "model": model,
                           "choices": [], "usage": _usage(result)}  # fmt: skip
                yield f"data: {json.dumps(payload)}\n\n"

        return event_stream(state.request_id, events, opening=[chunk(echo)] if echo else [], token=chunk, final=final)


# --- The response's shape, for the OpenAPI document (swarm_site/schema.py) -------------------------


class TextCompletionLogprobsSerializer(serializers.Serializer):
    tokens = serializers.ListField(child=serializers.CharField(allow_blank=True, trim_whitespace=False))
    token_logprobs = serializers.ListField(child=serializers.FloatField())
    top_logprobs = serializers.ListField(
        child=serializers.DictField(child=serializers.FloatField()),
        help_text="Per token: the best alternatives and the sampled token.",
    )
    text_offset = serializers.ListField(
        child=serializers.IntegerField(), help_text="Each token's character offset from the start of the prompt."
    )


class TextCompletionChoiceSerializer(serializers.Serializer):
    text = serializers.CharField(allow_blank=True, trim_whitespace=False)
    index = serializers.IntegerField()
    logprobs = TextCompletionLogprobsSerializer(allow_null=True)
    finish_reason = serializers.CharField(help_text="stop (or a stop sequence) or length")


class TextCompletionUsageSerializer(serializers.Serializer):
    prompt_tokens = serializers.IntegerField()
    completion_tokens = serializers.IntegerField()
    total_tokens = serializers.IntegerField()


class TextCompletionResponseSerializer(serializers.Serializer):
    id = serializers.CharField(help_text="cmpl-<request id>")
    object = serializers.CharField(help_text="text_completion")
    created = serializers.IntegerField()
    model = serializers.CharField()
    choices = TextCompletionChoiceSerializer(many=True)
    usage = TextCompletionUsageSerializer()
    swarm = serializers.DictField(help_text="How the gateway answered (not in OpenAI's API): route, request_id, ...")
