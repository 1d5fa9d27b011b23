"""The OpenAI-compatible API: /v1/models and /v1/chat/completions (JSON and SSE streams).

Models: `swarm-auto` is the cascade (cache -> council -> paid chain when unsure); the local
model's alias is that model alone on the whole conversation; `cloud/<provider>` is one paid
provider under the budget. The cascade answers the conversation's last user message.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from typing import Any

from django.http import StreamingHttpResponse
from rest_framework import exceptions
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from access.authentication import client_address, enforce_token_cap
from budget.models import Provider
from inference.registry import active_model
from routing import services
from routing.serializers import ChatCompletionSerializer
from swarm_site.errors import error_body

log = logging.getLogger(__name__)

AUTO_MODEL = "swarm-auto"


class ModelNotFound(exceptions.APIException):
    status_code = 404
    default_code = "model_not_found"
    error_type = "invalid_request_error"  # what OpenAI answers for an unknown model


def available_models() -> dict[str, str]:
    """model id -> route."""
    models = {AUTO_MODEL: services.AUTO, active_model().alias: active_model().alias}
    for provider in Provider.objects.filter(enabled=True):
        models[f"{services.CLOUD_PREFIX}{provider.name}"] = f"{services.CLOUD_PREFIX}{provider.name}"
    return models


def _completion_id(request_id: str) -> str:
    return f"chatcmpl-{request_id}"


def _swarm(result: dict[str, Any]) -> dict[str, Any]:
    keys = ("route", "skill_type", "confidence", "cost_usd", "cached", "provider", "detail", "latency_ms", "request_id",
            "adapter_version")  # fmt: skip
    return {k: result.get(k) for k in keys}


def _headers(result: dict[str, Any]) -> dict[str, str]:
    return {
        "x-swarm-route": str(result.get("route")),
        "x-swarm-confidence": str(result.get("confidence")),
        "x-swarm-cost-usd": f"{result.get('cost_usd') or 0:.8f}",
        "x-request-id": str(result.get("request_id")),
    }


def _finish_reason(result: dict[str, Any]) -> str:
    if result.get("finish_reason") == "length":
        return "length"
    return "content_filter" if result.get("route") == "unsure" else "stop"


class JsonOrStream(DefaultContentNegotiation):
    """OpenAI clients send `Accept: text/event-stream` for streams: the view answers SSE itself and
    JSON otherwise (errors included), whatever the Accept header says. The body must be JSON by its
    Content-Type (415 otherwise): a browser sends text/plain across sites without asking first."""

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type


class ChatCompletionsView(APIView):
    content_negotiation_class = JsonOrStream
    generates = True  # holds one of the caller's concurrent generations (access/authentication.py)

    def post(self, request: Request):
        body = ChatCompletionSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        models = available_models()
        if data["model"] not in models:
            raise ModelNotFound(f"The model `{data['model']}` does not exist; GET /v1/models lists them.")
        enforce_token_cap(request, data["max_tokens"])
        messages = data["messages"]
        ask = {
            "prompt": next(m["content"] for m in reversed(messages) if m["role"] == "user"),
            "max_tokens": data["max_tokens"], "temperature": data["temperature"], "endpoint": "v1",
            "messages": messages, "route": models[data["model"]], "api_key_id": getattr(request.auth, "pk", None),
        }  # fmt: skip
        ask["client"] = services.client_identity(api_key_id=ask["api_key_id"], user=data.get("user"),
                                                 address=client_address(request))  # fmt: skip
        if data["stream"]:
            return self._stream(data["model"], ask)
        result = services.orchestrate_request(**ask)
        return Response(self._completion(data["model"], result), headers=_headers(result))

    @staticmethod
    def _completion(model: str, result: dict[str, Any]) -> dict[str, Any]:
        prompt_tokens, completion_tokens = result.get("prompt_tokens", 0), result.get("completion_tokens", 0)
        return {
            "id": _completion_id(result["request_id"]), "object": "chat.completion", "created": int(time.time()),
            "model": model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": result["answer"]},
                         "finish_reason": _finish_reason(result)}],
            "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                      "total_tokens": prompt_tokens + completion_tokens},
            "swarm": _swarm(result),
        }  # fmt: skip

    def _stream(self, model: str, ask: dict[str, Any]) -> StreamingHttpResponse:
        state, events = services.orchestrate_stream(**ask)
        created = int(time.time())
        completion_id = _completion_id(state.request_id)

        def chunk(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> str:
            payload = {"id": completion_id, "object": "chat.completion.chunk", "created": created, "model": model,
                       "choices": [{"index": 0, "delta": delta, "finish_reason": finish}], **extra}  # fmt: skip
            return f"data: {json.dumps(payload)}\n\n"

        def sse() -> Iterator[str]:
            yield chunk({"role": "assistant", "content": ""})
            streamed = []
            try:
                for event in events:
                    if event["type"] == "ping":
                        yield ": ping\n\n"  # keeps proxies open and notices a client that left
                    elif event["type"] == "token":
                        streamed.append(event["text"])
                        yield chunk({"content": event["text"]})
                    else:
                        result = event["result"]
                        if "".join(streamed).strip() != result["answer"].strip() and result["route"] != "unsure":
                            yield chunk({"content": result["answer"]})  # decided without token-by-token generation
                        yield chunk({}, _finish_reason(result), swarm=_swarm(result))
            except exceptions.APIException as exc:
                error = error_body(exc.status_code, str(exc.detail), code=exc.default_code,
                                   param=getattr(exc, "param", None))  # fmt: skip
                yield f"data: {json.dumps(error)}\n\n"
            except Exception:  # logged; the client still gets an error and the end of the stream
                log.exception("stream %s failed", state.request_id)
                error = error_body(500, "Internal error; it has been logged.", code="internal_error")
                yield f"data: {json.dumps(error)}\n\n"
            finally:
                events.close()
            yield "data: [DONE]\n\n"

        response = StreamingHttpResponse(sse(), content_type="text/event-stream")
        response["Cache-Control"] = "no-cache"
        response["X-Accel-Buffering"] = "no"
        response["x-request-id"] = state.request_id
        return response


class ModelsView(APIView):
    content_negotiation_class = JsonOrStream

    def get(self, request: Request) -> Response:
        owners = {services.AUTO: "swarm"}
        data = [
            {"id": model, "object": "model", "created": 0,
             "owned_by": owners.get(route, "swarm-cloud" if route.startswith(services.CLOUD_PREFIX) else "swarm-local")}
            for model, route in available_models().items()
        ]  # fmt: skip
        return Response({"object": "list", "data": data})
