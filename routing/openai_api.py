"""The OpenAI-compatible API: /v1/models and /v1/chat/completions (JSON and SSE streams).

Models: `swarm-auto` is the cascade (cache -> council -> paid chain when unsure); the local
model's alias is that model alone on the whole conversation; `cloud/<provider>` is one paid
provider under the budget. The cascade answers the conversation's last user message.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterator
from typing import Any

from django.http import StreamingHttpResponse
from rest_framework import exceptions
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from access.authentication import client_address, enforce_token_cap, held_slots
from budget.models import Provider
from inference.registry import active_model
from routing import services
from routing.openai_fields import routed_options
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


def model_route(model: str) -> str:
    """The route of a served model id; 404 in OpenAI's shape when none is. The local names are known
    without a database read (the providers are read only for another name: a cache hit makes none)."""
    alias = active_model().alias
    if model in (AUTO_MODEL, alias):
        return services.AUTO if model == AUTO_MODEL else alias
    route = available_models().get(model)
    if route is None:
        raise ModelNotFound(f"The model `{model}` does not exist; GET /v1/models lists them.")
    return route


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
    if result.get("tool_calls"):
        return "tool_calls"
    if result.get("finish_reason") == "length":
        return "length"
    return "content_filter" if result.get("route") == "unsure" else "stop"


def _usage(result: dict[str, Any]) -> dict[str, int]:
    prompt_tokens, completion_tokens = result.get("prompt_tokens") or 0, result.get("completion_tokens") or 0
    return {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens}  # fmt: skip


def _logprobs(result: dict[str, Any]) -> dict[str, Any] | None:
    content = result.get("logprobs")
    return None if content is None else {"content": content, "refusal": None}


class StopText:
    """OpenAI's `stop`: the answer ends before the first stop sequence, which is not sent.

    Streams are fed piece by piece: the text that could still be the start of a stop sequence is held
    back until the next piece shows whether it is. Every route goes through it, so a cached or a
    council answer stops where a model's would (a model that honoured it itself leaves nothing to cut).
    """

    def __init__(self, stops: list[str] | None) -> None:
        self.stops = stops or []
        self.held = ""
        self.stopped = False

    def feed(self, piece: str) -> str:
        """What of `piece` can be sent now."""
        if self.stopped:
            return ""
        text = self.held + piece
        cut = min((i for i in (text.find(stop) for stop in self.stops) if i >= 0), default=-1)
        if cut >= 0:
            self.stopped, self.held = True, ""
            return text[:cut]
        keep = max((n for stop in self.stops for n in range(len(stop) - 1, 0, -1) if text.endswith(stop[:n])),
                   default=0)  # fmt: skip
        self.held = text[len(text) - keep :] if keep else ""
        return text[: len(text) - keep]

    def flush(self) -> str:
        held, self.held = self.held, ""
        return "" if self.stopped else held

    def cut(self, text: str) -> str:
        """The whole answer, cut at the first stop sequence."""
        return self.feed(text) + self.flush()


def _route_for(model_route: str, options: dict[str, Any]) -> tuple[str, str | None]:
    """(route, why): `swarm-auto` with options the cascade cannot honour goes to the local model."""
    needs = routed_options(options)
    if model_route != services.AUTO or not needs:
        return model_route, None
    alias = active_model().alias
    return alias, f"routed to the local model {alias}: the cascade cannot honour {', '.join(needs)}"


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
        served = model_route(data["model"])
        enforce_token_cap(request, data["max_tokens"])
        messages, options = data["messages"], data["options"]
        route, why = _route_for(served, options)
        ask = {
            "prompt": next(m["content"] for m in reversed(messages) if m["role"] == "user"),
            "max_tokens": data["max_tokens"], "temperature": data["temperature"], "endpoint": "v1",
            "messages": messages, "route": route, "api_key_id": getattr(request.auth, "pk", None),
            "options": options, "detail": why,
        }  # fmt: skip
        ask["client"] = services.client_identity(api_key_id=ask["api_key_id"], user=data.get("user"),
                                                 address=client_address(request))  # fmt: skip
        stop = StopText(options.get("stop"))
        if data["stream"]:
            include_usage = bool((data.get("stream_options") or {}).get("include_usage"))
            return self._stream(data["model"], ask, stop=stop, include_usage=include_usage)
        result = services.orchestrate_request(**ask, slots=held_slots(request))
        return Response(self._completion(data["model"], result, stop), headers=_headers(result))

    @staticmethod
    def _completion(model: str, result: dict[str, Any], stop: StopText) -> dict[str, Any]:
        message: dict[str, Any] = {"role": "assistant", "content": stop.cut(result["answer"]), "refusal": None}
        if result.get("tool_calls"):
            message.update(content=None, tool_calls=result["tool_calls"])
        finish = "stop" if stop.stopped else _finish_reason(result)
        return {
            "id": _completion_id(result["request_id"]), "object": "chat.completion", "created": int(time.time()),
            "model": model,
            "choices": [{"index": 0, "message": message, "logprobs": _logprobs(result), "finish_reason": finish}],
            "usage": _usage(result),
            "swarm": _swarm(result),
        }  # fmt: skip

    def _stream(self, model: str, ask: dict[str, Any], *, stop: StopText, include_usage: bool) -> StreamingHttpResponse:
        state, events = services.orchestrate_stream(**ask)
        created = int(time.time())
        completion_id = _completion_id(state.request_id)
        usage_field = {"usage": None} if include_usage else {}

        def chunk(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> str:
            payload = {"id": completion_id, "object": "chat.completion.chunk", "created": created, "model": model,
                       "choices": [{"index": 0, "delta": delta, "logprobs": extra.pop("logprobs", None),
                                    "finish_reason": finish}], **usage_field, **extra}  # fmt: skip
            return f"data: {json.dumps(payload)}\n\n"

        def final(result: dict[str, Any], streamed: str) -> Iterator[str]:
            if result.get("tool_calls"):
                calls = [{"index": i, **call} for i, call in enumerate(result["tool_calls"])]
                yield chunk({"tool_calls": calls})
            elif streamed.strip() != result["answer"].strip() and result["route"] != "unsure":
                # Decided without token-by-token generation (the whole answer), or completed after it
                # (JSON that max_tokens cut, closed: the rest).
                rest = result["answer"].removeprefix(streamed) if streamed.strip() else result["answer"]
                if text := stop.feed(rest) + stop.flush():
                    yield chunk({"content": text})
            elif text := stop.flush():
                yield chunk({"content": text})
            finish = "stop" if stop.stopped else _finish_reason(result)
            yield chunk({}, finish, swarm=_swarm(result), logprobs=_logprobs(result))
            if include_usage:
                payload = {"id": completion_id, "object": "chat.completion.chunk", "created": created,
                           "model": model, "choices": [], "usage": _usage(result)}  # fmt: skip
                yield f"data: {json.dumps(payload)}\n\n"

        return event_stream(state.request_id, events, opening=[chunk({"role": "assistant", "content": ""})],
                            token=lambda text: chunk({"content": piece}) if (piece := stop.feed(text)) else None,
                            final=final)  # fmt: skip


def event_stream(
    request_id: str,
    events: Iterator[dict[str, Any]],
    *,
    opening: list[str],
    token: Callable[[str], str | None],
    final: Callable[[dict[str, Any], str], Iterator[str]],
) -> StreamingHttpResponse:
    """A request's events (routing/services.py orchestrate_stream) as server-sent events: `opening`,
    then `token(text)` for each generated piece (None: nothing to send yet), `final(result, streamed
    text)` for the result, pings while waiting, an error chunk for a failure, and `data: [DONE]` last."""

    def sse() -> Iterator[str]:
        yield from opening
        streamed = []
        try:
            for event in events:
                if event["type"] == "ping":
                    yield ": ping\n\n"  # keeps proxies open and notices a client that left
                elif event["type"] == "token":
                    streamed.append(event["text"])
                    if (out := token(event["text"])) is not None:
                        yield out
                else:
                    yield from final(event["result"], "".join(streamed))
        except exceptions.APIException as exc:
            error = error_body(exc.status_code, str(exc.detail), code=exc.default_code,
                               param=getattr(exc, "param", None))  # fmt: skip
            yield f"data: {json.dumps(error)}\n\n"
        except Exception:  # logged; the client still gets an error and the end of the stream
            log.exception("stream %s failed", request_id)
            error = error_body(500, "Internal error; it has been logged.", code="internal_error")
            yield f"data: {json.dumps(error)}\n\n"
        finally:
            events.close()
        yield "data: [DONE]\n\n"

    response = StreamingHttpResponse(sse(), content_type="text/event-stream")
    response["Cache-Control"] = "no-cache"
    response["X-Accel-Buffering"] = "no"
    response["x-request-id"] = request_id
    return response


class ModelsView(APIView):
    content_negotiation_class = JsonOrStream

    def get(self, request: Request) -> Response:
        from routing.openai_resources import model_cards  # which imports this module

        return Response({"object": "list", "data": model_cards()})
