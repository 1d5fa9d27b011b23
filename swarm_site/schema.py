"""The API's OpenAPI 3 schema (drf-spectacular): `/api/schema/` (YAML, `?format=json`), Swagger UI at `/api/docs/`.

The views stay as they are. What each operation accepts, answers and fails with is written down
here, as view extensions keyed by the view's dotted path (`OpenApiViewExtension`); the security
schemes come from the views' own authentication classes (extensions below); request bodies come
from the views' serializers, with the limits that settings put on them added here. Every error
answer is documented with the one error shape of swarm_site/errors.py.

`python manage.py spectacular --validate --fail-on-warn` must stay clean (tests/swarm_site/test_schema.py),
and tests/integration/test_schema_fuzz.py checks the live stack against this schema with schemathesis.
"""

from __future__ import annotations

import re
from typing import Any

from django.conf import settings
from django.utils.module_loading import import_string
from drf_spectacular.extensions import (
    OpenApiAuthenticationExtension,
    OpenApiSerializerExtension,
    OpenApiViewExtension,
)
from drf_spectacular.plumbing import build_bearer_security_scheme_object
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_field,
    extend_schema_view,
)
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework import serializers

from mining.embeddings import DIMENSIONS

# --- Paths -------------------------------------------------------------------------------------

API_PREFIXES = ("/orchestrate", "/vote", "/hybrid", "/health", "/v1/", "/api/", "/admin/reload")
# Reads of the arbiter that need no credentials (a wrong token presented is still a 401).
OPEN_READS = {("/api/swap/lock", "get"), ("/api/schedule", "get"), ("/api/schedule/{id}", "get")}


def api_endpoints_only(endpoints: list[tuple[str, str, str, Any]], **kwargs: Any) -> list[tuple[str, str, str, Any]]:
    """Preprocessing hook: the JSON API only (not the Django admin, the chat page or the schema's own views)."""
    return [
        (path, regex, method, view)
        for path, regex, method, view in endpoints
        if path.startswith(API_PREFIXES) and not path.startswith(("/api/schema", "/api/docs"))
    ]


def finish_schema(result: dict[str, Any], generator: Any, request: Any, public: bool) -> dict[str, Any]:
    """Postprocessing hook: open reads say so; security schemes get descriptions."""
    for path, method in OPEN_READS:
        operation = result.get("paths", {}).get(path, {}).get(method)
        if operation is not None:
            operation["security"] = [*operation.get("security", []), {}]
    schemes = result.get("components", {}).get("securitySchemes", {})
    for name, scheme in schemes.items():
        session = scheme.get("in") == "cookie"
        scheme["description"] = SCHEME_TEXT["session"] if session else SCHEME_TEXT.get(name, "")
    return result


# --- Security schemes ----------------------------------------------------------------------------

SCHEME_TEXT = {
    "ApiKey": "An API key: `Authorization: Bearer sk-swarm-...` (`manage.py create_api_key`). "
    "Locally, callers on loopback may go without one (SWARM_ALLOW_ANONYMOUS_LOOPBACK; never in production).",
    "ArbiterToken": "The operator token (SWARM_ARBITER_TOKEN): `Authorization: Bearer <token>`.",
    "ArbiterTokenHeader": "The operator token (SWARM_ARBITER_TOKEN) in its own header.",
    "session": "A Django admin session of a staff user (with its CSRF token on writes).",
}


BEARER = "Bearer"  # the Authorization header's scheme word


class ApiKeyScheme(OpenApiAuthenticationExtension):
    target_class = "access.authentication.ApiKeyAuthentication"
    match_subclasses = True
    name = "ApiKey"

    def get_security_definition(self, auto_schema: Any) -> dict[str, Any]:
        return build_bearer_security_scheme_object(header_name="Authorization", token_prefix=BEARER)


class ArbiterTokenScheme(OpenApiAuthenticationExtension):
    target_class = "arbiter.auth.ArbiterTokenAuthentication"
    match_subclasses = True
    name = ["ArbiterToken", "ArbiterTokenHeader"]

    def get_security_requirement(self, auto_schema: Any) -> list[dict[str, list]]:
        return [{"ArbiterToken": []}, {"ArbiterTokenHeader": []}]  # either one

    def get_security_definition(self, auto_schema: Any) -> list[dict[str, Any]]:
        return [
            build_bearer_security_scheme_object(header_name="Authorization", token_prefix=BEARER),
            {"type": "apiKey", "in": "header", "name": "X-Swarm-Arbiter-Token"},
        ]


class SessionScheme(OpenApiAuthenticationExtension):
    """Django admin sessions, whichever SessionAuthentication subclass a view uses (one scheme name each:
    the schema names a scheme after the class it documents)."""

    target_class = "rest_framework.authentication.SessionAuthentication"
    match_subclasses = True
    priority = 1  # before drf-spectacular's own, which knows the base class only

    @property
    def name(self) -> str:  # type: ignore[override]
        cls = type(self.target) if not isinstance(self.target, type) else self.target
        if cls.__module__.startswith("rest_framework."):
            return "AdminSession"
        return cls.__module__.split(".")[0].capitalize() + cls.__name__.removesuffix("Authentication")

    def get_security_definition(self, auto_schema: Any) -> dict[str, Any]:
        return {"type": "apiKey", "in": "cookie", "name": settings.SESSION_COOKIE_NAME}


# --- The error shape -----------------------------------------------------------------------------


class ErrorDetailSerializer(serializers.Serializer):
    message = serializers.CharField(help_text="What went wrong, for people.")
    type = serializers.CharField(help_text="OpenAI's error type, e.g. invalid_request_error, rate_limit_error.")
    param = serializers.CharField(allow_null=True, help_text="The request field at fault, when there is one.")
    code = serializers.CharField(allow_null=True, help_text="A stable code for programs, e.g. invalid_api_key.")


class ErrorSerializer(serializers.Serializer):
    error = ErrorDetailSerializer()


ERROR_TEXT = {
    400: "Invalid request: the message (and `param`) name the field at fault.",
    401: "No credentials, or wrong ones (`WWW-Authenticate` names the scheme).",
    403: "The credentials may not do this.",
    404: "Not found (for /v1/chat/completions: the model does not exist; GET /v1/models lists them).",
    409: "Conflicts with the lock's state (lease not held, stale fencing token).",
    413: "The body, or the prompt in it, is larger than the server accepts (SWARM_MAX_BODY_BYTES, "
    "SWARM_MAX_PROMPT_CHARS).",
    415: "The body is not JSON (`Content-Type: application/json`).",
    423: "The GPU lock is held by someone else; `holder` and `expires_at` stand next to `error`, "
    "`Retry-After` says when it expires.",
    429: "Over the caller's rate or concurrency limit; `Retry-After` says when to try again.",
    502: "The worker failed on this request.",
    503: "A backing service (Redis, the database, the model registry) is unavailable, or the operator token "
    "is not configured.",
    504: "No worker answered before the deadline (SWARM_DEADLINE_S).",
}
RETRY_AFTER = OpenApiParameter(
    "Retry-After", OpenApiTypes.INT, OpenApiParameter.HEADER, response=[423, 429],
    description="Seconds to wait before trying again.",
)  # fmt: skip


def errors(*codes: int) -> dict[int, OpenApiResponse]:
    return {code: OpenApiResponse(ErrorSerializer, description=ERROR_TEXT[code]) for code in codes}


# The answers every endpoint that asks the model may give besides 200.
GENERATION_ERRORS = (400, 401, 403, 413, 415, 429, 502, 503, 504)
KEY_READ_ERRORS = (401, 403, 429, 503)
OPERATOR_READ_ERRORS = (401, 403, 503)
OPERATOR_WRITE_ERRORS = (400, 401, 403, 413, 415, 503)


# --- Request bodies: the views' serializers, with the limits settings put on them ----------------


def _limit_prompt_fields(schema: dict[str, Any], *names: str) -> dict[str, Any]:
    props = schema.get("properties", {})
    for name in names:
        if name in props:
            props[name]["maxLength"] = settings.SWARM_MAX_PROMPT_CHARS
            props[name]["description"] = (
                f"The question. Over SWARM_MAX_PROMPT_CHARS ({settings.SWARM_MAX_PROMPT_CHARS}) characters: 413."
            )
    for name in ("max_tokens", "max_completion_tokens"):
        if name in props:
            props[name]["maximum"] = settings.SWARM_MAX_TOKENS_LIMIT
            props[name]["description"] = (
                f"Most tokens to generate (default SWARM_DEFAULT_MAX_TOKENS, {settings.SWARM_DEFAULT_MAX_TOKENS}; "
                f"at most SWARM_MAX_TOKENS_LIMIT, {settings.SWARM_MAX_TOKENS_LIMIT})."
            )
    return schema


class PromptRequestSchema(OpenApiSerializerExtension):
    target_class = "routing.serializers.PromptSerializer"
    match_subclasses = True  # HybridSerializer: `query` instead of `prompt`

    def map_serializer(self, auto_schema: Any, direction: str) -> dict[str, Any]:
        schema = auto_schema._map_serializer(self.target, direction, bypass_extensions=True)
        return _limit_prompt_fields(schema, "prompt", "query")


MESSAGE_SCHEMA = {
    "type": "object",
    "required": ["role", "content"],
    "properties": {
        "role": {"type": "string", "enum": ["system", "developer", "user", "assistant", "tool"]},
        "content": {
            "oneOf": [
                {"type": "string"},
                {
                    "type": "array",
                    "description": "Content parts; the text ones are read (the local models read text only).",
                    "items": {
                        "type": "object",
                        "required": ["type"],
                        "properties": {"type": {"type": "string", "example": "text"}, "text": {"type": "string"}},
                    },
                },
            ]
        },
        "name": {"type": "string"},
    },
}


class ChatRequestSchema(OpenApiSerializerExtension):
    target_class = "routing.serializers.ChatCompletionSerializer"

    def map_serializer(self, auto_schema: Any, direction: str) -> dict[str, Any]:
        schema = auto_schema._map_serializer(self.target, direction, bypass_extensions=True)
        props = schema.get("properties", {})
        if "messages" in props:
            props["messages"] = {
                "type": "array", "minItems": 1, "items": MESSAGE_SCHEMA,
                "description": "The conversation; it needs a non-empty user message. The cascade (swarm-auto) "
                "answers the last user message, a model alias the whole conversation.",
            }  # fmt: skip
        if "model" in props:
            props["model"]["description"] = "`swarm-auto` (the cascade), the local model's alias, or cloud/<provider>."
        if "stream" in props:
            props["stream"]["description"] = "true: answer as `text/event-stream` (chat.completion.chunk events)."
        return _limit_prompt_fields(schema)


EMBEDDING_INPUT_SCHEMA = {
    "oneOf": [
        {"type": "string", "minLength": 1},
        {"type": "array", "minItems": 1, "maxItems": 2048, "items": {"type": "string", "minLength": 1}},
    ],
    "description": "The text, or a list of up to 2048 texts; none empty, each at most 256 tokens of the model's "
    "tokenizer (400 `context_length_exceeded` past that: refused, never cut). Token-id arrays are refused (400).",
}


class EmbeddingRequestSchema(OpenApiSerializerExtension):
    target_class = "routing.openai_resources.EmbeddingRequestSerializer"

    def map_serializer(self, auto_schema: Any, direction: str) -> dict[str, Any]:
        from routing.openai_resources import EMBEDDING_MODEL

        schema = auto_schema._map_serializer(self.target, direction, bypass_extensions=True)
        props = schema.get("properties", {})
        limit = settings.SWARM_MAX_PROMPT_CHARS
        total = f" All texts together: at most SWARM_MAX_PROMPT_CHARS ({limit}) characters (413)."
        props["input"] = {**EMBEDDING_INPUT_SCHEMA, "description": EMBEDDING_INPUT_SCHEMA["description"] + total}
        props["model"] = {
            "type": "string",
            "enum": [EMBEDDING_MODEL],
            "description": "The embedding model (another id: 404 `model_not_found`).",
        }
        props["dimensions"] = {
            "type": "integer",
            "enum": [DIMENSIONS, None],
            "nullable": True,
            "description": f"The model's vectors have {DIMENSIONS} dimensions; another value is a 400.",
        }
        props["encoding_format"]["description"] = (
            "`float` (the default): lists of numbers; `base64`: the little-endian float32 bytes, base64-encoded."
        )
        schema["additionalProperties"] = False  # any other field is a 400 naming it
        return schema


class TextCompletionRequestSchema(OpenApiSerializerExtension):
    target_class = "routing.openai_completions.TextCompletionSerializer"

    def map_serializer(self, auto_schema: Any, direction: str) -> dict[str, Any]:
        from inference.registry import active_model

        schema = auto_schema._map_serializer(self.target, direction, bypass_extensions=True)
        props = schema.get("properties", {})
        limit = settings.SWARM_MAX_PROMPT_CHARS
        text = {"type": "string", "minLength": 1, "maxLength": limit}
        props["prompt"] = {
            "oneOf": [text, {"type": "array", "items": text, "minItems": 1, "maxItems": 1}],
            "description": f"The text to complete (no chat template), or a list of exactly one; at most "
            f"SWARM_MAX_PROMPT_CHARS ({limit}) characters (413). Several prompts and token-id arrays are a 400.",
        }
        props["model"] = {"type": "string", "enum": [active_model().alias],
                          "description": "The local model's alias (swarm-auto and cloud/<provider>: 400; an unknown "
                          "id: 404 `model_not_found`)."}  # fmt: skip
        if "max_tokens" in props:
            props["max_tokens"]["maximum"] = settings.SWARM_MAX_TOKENS_LIMIT
            props["max_tokens"]["description"] = (
                f"Most tokens to generate (default 16; at most SWARM_MAX_TOKENS_LIMIT, "
                f"{settings.SWARM_MAX_TOKENS_LIMIT})."
            )
        if "stream" in props:
            props["stream"]["description"] = "true: answer as `text/event-stream` (text_completion events)."
        schema["additionalProperties"] = False  # any other field is a 400 naming it
        return schema


# --- Response bodies -----------------------------------------------------------------------------


class BallotSerializer(serializers.Serializer):
    head = serializers.CharField()
    answer = serializers.CharField()
    confidence = serializers.FloatField()
    skill_type = serializers.CharField()
    latency_ms = serializers.FloatField()
    evidence = serializers.DictField()
    error = serializers.CharField(allow_null=True)


class _AnswerFields(serializers.Serializer):
    answer = serializers.CharField(help_text="The answer, or UNSURE.")
    route = serializers.CharField(help_text="Who answered: cache, pattern, council, local, cloud or unsure.")
    skill_type = serializers.CharField(allow_null=True)
    confidence = serializers.FloatField(allow_null=True)
    latency_ms = serializers.FloatField()
    cost_usd = serializers.FloatField()
    cached = serializers.BooleanField()
    request_id = serializers.CharField()
    provider = serializers.CharField(allow_null=True, help_text="The paid provider, when one answered.")
    detail = serializers.CharField(allow_null=True)


class AnswerSerializer(_AnswerFields):
    model = serializers.CharField(allow_null=True)
    adapter_version = serializers.CharField(allow_null=True)


class VoteAnswerSerializer(AnswerSerializer):
    ballots = BallotSerializer(many=True)
    scores = serializers.DictField(child=serializers.FloatField())
    reasons = serializers.DictField(child=serializers.CharField())
    winner = BallotSerializer(allow_null=True)
    min_confidence = serializers.FloatField(help_text="The vote's floor: a winner scores at least this, else UNSURE.")


class HybridAnswerSerializer(_AnswerFields):
    pass


class HealthCheckSerializer(serializers.Serializer):
    status = serializers.CharField(help_text="ok, down or unknown")
    latency_ms = serializers.FloatField(required=False)
    error = serializers.CharField(required=False)


class HealthReportSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=["ok", "degraded"])
    down = serializers.ListField(child=serializers.CharField())
    checks = serializers.DictField(child=HealthCheckSerializer())


class OpenAIModelSerializer(serializers.Serializer):
    id = serializers.CharField()
    object = serializers.CharField()
    created = serializers.IntegerField()
    owned_by = serializers.CharField()


class ModelListSerializer(serializers.Serializer):
    object = serializers.CharField()
    data = OpenAIModelSerializer(many=True)


class ChatMessageSerializer(serializers.Serializer):
    role = serializers.CharField()
    content = serializers.CharField()


class ChatChoiceSerializer(serializers.Serializer):
    index = serializers.IntegerField()
    message = ChatMessageSerializer()
    finish_reason = serializers.CharField(help_text="stop, length, or content_filter (UNSURE)")


class UsageSerializer(serializers.Serializer):
    prompt_tokens = serializers.IntegerField()
    completion_tokens = serializers.IntegerField()
    total_tokens = serializers.IntegerField()


class SwarmDetailSerializer(serializers.Serializer):
    route = serializers.CharField()
    skill_type = serializers.CharField(allow_null=True)
    confidence = serializers.FloatField(allow_null=True)
    cost_usd = serializers.FloatField(allow_null=True)
    cached = serializers.BooleanField(allow_null=True)
    provider = serializers.CharField(allow_null=True)
    detail = serializers.CharField(allow_null=True)
    latency_ms = serializers.FloatField(allow_null=True)
    request_id = serializers.CharField()
    adapter_version = serializers.CharField(allow_null=True)


class ChatCompletionResponseSerializer(serializers.Serializer):
    id = serializers.CharField()
    object = serializers.CharField()
    created = serializers.IntegerField()
    model = serializers.CharField()
    choices = ChatChoiceSerializer(many=True)
    usage = UsageSerializer()
    swarm = SwarmDetailSerializer(help_text="How the gateway answered (not in OpenAI's API).")


@extend_schema_field({
    "oneOf": [
        {"type": "array", "items": {"type": "number"}, "minItems": DIMENSIONS, "maxItems": DIMENSIONS},
        {"type": "string", "format": "byte", "description": f"base64 of {DIMENSIONS} little-endian float32 values"},
    ],
})  # fmt: skip
class EmbeddingVectorField(serializers.JSONField):
    """A unit-length vector: numbers (`encoding_format` float) or base64 of its float32 bytes."""


class EmbeddingSerializer(serializers.Serializer):
    object = serializers.CharField(help_text="embedding")
    index = serializers.IntegerField(help_text="The input item's position.")
    embedding = EmbeddingVectorField()


class EmbeddingUsageSerializer(serializers.Serializer):
    prompt_tokens = serializers.IntegerField(help_text="Tokens of the model's tokenizer, [CLS] and [SEP] included.")
    total_tokens = serializers.IntegerField()


class EmbeddingListSerializer(serializers.Serializer):
    object = serializers.CharField(help_text="list")
    data = EmbeddingSerializer(many=True)
    model = serializers.CharField()
    usage = EmbeddingUsageSerializer()


SSE_TEXT = (
    "With `stream: true`: server-sent events. Each event is `data: <chat.completion.chunk JSON>`; the "
    "first carries the role, the next ones pieces of `delta.content`, the last `finish_reason` and the "
    "`swarm` object; `: ping` comments keep the connection open; `data: [DONE]` ends the stream. An "
    'error after the first byte comes as one `data: {"error": {...}}` event before `[DONE]`.'
)
SSE_EXAMPLE = (
    'data: {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 0, "model": "swarm-auto", '
    '"choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": null}]}\n\n'
    "data: [DONE]\n\n"
)


class ServerSentEventSerializer(serializers.Serializer):
    """One event of the stream (OpenAPI 3.0: the event-stream schema describes each event)."""

    data = serializers.CharField(
        help_text="A chat.completion.chunk as JSON, an error object as JSON, or `[DONE]` (the last event)."
    )
    event = serializers.CharField(required=False, help_text="Not sent: every event is a `message`.")
    id = serializers.CharField(required=False)
    retry = serializers.IntegerField(required=False)


class StatsSerializer(serializers.Serializer):
    requests_by_route = serializers.DictField(child=serializers.IntegerField())
    cache_hit_ratio = serializers.FloatField()
    requests = serializers.IntegerField()
    spend_today_usd = serializers.FloatField()
    remaining_today_usd = serializers.FloatField()
    pool_usd = serializers.FloatField()


class ServingSerializer(serializers.Serializer):
    lora_version = serializers.IntegerField(help_text="Goes up each time the stable adapter changes.")
    stable = serializers.CharField(allow_null=True, help_text="The adapter everyone gets (base: none).")
    canary = serializers.CharField(allow_null=True)
    canary_weight = serializers.IntegerField(help_text="Percent of clients on the canary.")


class ReloadSerializer(serializers.Serializer):
    lora = serializers.CharField(
        required=False,
        help_text="latest (the newest adapter that passed its gate), base or lora-v<N>; none: publish the state again",
    )
    force = serializers.BooleanField(
        required=False, default=False, help_text="serve an adapter that failed its gate (logged; otherwise a 409)"
    )


class GateSerializer(serializers.Serializer):
    passed = serializers.BooleanField()
    score = serializers.FloatField(allow_null=True, help_text="The adapter's accuracy on the evaluation set.")
    threshold = serializers.FloatField(allow_null=True, help_text="What it had to reach: the serving adapter's.")
    against = serializers.CharField(allow_null=True, help_text="The adapter it was compared with.")
    eval_set = serializers.CharField(allow_null=True, help_text="heldout, or the training set when none was held out.")
    trusted_wrong_rate = serializers.FloatField(allow_null=True, help_text="Sure of a wrong answer, how often.")
    trusted_wrong_rate_max = serializers.FloatField(allow_null=True)


class ReloadResultSerializer(ServingSerializer):
    gate = GateSerializer(allow_null=True, help_text="The gate's verdict on the adapter named (null: base or none).")
    forced = serializers.BooleanField(help_text="True when force=true served an adapter that failed its gate.")


class TrainingJobSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    source = serializers.CharField()
    status = serializers.CharField()
    detail = serializers.CharField()
    train_examples = serializers.IntegerField()
    heldout_examples = serializers.IntegerField()
    steps = serializers.IntegerField()
    seconds_per_step = serializers.FloatField()
    loss_first = serializers.FloatField(allow_null=True)
    loss_last = serializers.FloatField(allow_null=True)
    device = serializers.CharField()
    created_at = serializers.DateTimeField()
    started_at = serializers.DateTimeField(allow_null=True)
    finished_at = serializers.DateTimeField(allow_null=True)


class AdapterSerializer(serializers.Serializer):
    version = serializers.CharField()
    status = serializers.CharField()
    sha256 = serializers.CharField()
    rank = serializers.IntegerField()
    alpha = serializers.FloatField()
    detail = serializers.CharField()
    created_at = serializers.DateTimeField()


class TrainingStatusSerializer(serializers.Serializer):
    serving = ServingSerializer()
    jobs = TrainingJobSerializer(many=True)
    adapters = AdapterSerializer(many=True)


class LockStatusSerializer(serializers.Serializer):
    held = serializers.BooleanField()
    holder = serializers.CharField(allow_null=True)
    purpose = serializers.CharField(allow_null=True)
    fencing = serializers.IntegerField(allow_null=True)
    acquired_at = serializers.DateTimeField(allow_null=True)
    expires_at = serializers.DateTimeField(allow_null=True)
    remaining_s = serializers.FloatField(allow_null=True)


class LeaseSerializer(serializers.Serializer):
    token = serializers.CharField(help_text="The lease's secret: release or swap with it. Shown once.")
    fencing = serializers.IntegerField()
    expires_at = serializers.DateTimeField()
    holder = serializers.CharField()
    purpose = serializers.CharField()
    ttl_s = serializers.FloatField()


class SwapReportSerializer(serializers.Serializer):
    status = serializers.CharField(help_text="swapped")
    model = serializers.CharField()
    fencing = serializers.IntegerField(allow_null=True)
    holder = serializers.CharField()
    queue = serializers.CharField()
    requested_worker = serializers.CharField(allow_null=True)


# --- The operations ------------------------------------------------------------------------------


def _resolve(value: Any) -> Any:
    """A dotted path names a serializer of the project, imported when the schema is generated ("[]": a list)."""
    if isinstance(value, str) and value.endswith("[]"):
        return import_string(value.removesuffix("[]"))(many=True)
    if isinstance(value, str) and "." in value:
        return import_string(value)
    if isinstance(value, dict):
        return {key: _resolve(item) for key, item in value.items()}
    return value


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def _view(target: str, **methods: dict[str, Any]) -> type[OpenApiViewExtension]:
    """A view extension documenting `target`'s methods with `extend_schema(**methods[name])`."""

    class Documented(OpenApiViewExtension):
        target_class = target

        def view_replacement(self) -> type:
            documented = type(self.target.__name__, (self.target,), {"__module__": self.target.__module__})
            decorators = {
                method: extend_schema(
                    operation_id=f"{_snake(self.target.__name__.removesuffix('View'))}_{method}",
                    **{k: _resolve(v) if k in ("request", "responses") else v for k, v in kw.items()},
                )
                for method, kw in methods.items()
            }
            return extend_schema_view(**decorators)(documented)

    Documented.__name__ = Documented.__qualname__ = f"Documented{target.rsplit('.', 1)[-1]}"
    return Documented


def _ask(summary: str, request: Any, answer: Any, example: dict[str, Any]) -> dict[str, Any]:
    return {
        "summary": summary,
        "tags": ["answers"],
        "request": request,
        "responses": {200: answer, **errors(*GENERATION_ERRORS)},
        "parameters": [RETRY_AFTER],
        "examples": [OpenApiExample("a question", value=example, request_only=True)],
    }


PROMPT = "routing.serializers.PromptSerializer"

_view(
    "routing.views.OrchestrateView",
    post=_ask("Answer a prompt through the cascade (cache, patterns, council, cloud when unsure)",
              PROMPT, AnswerSerializer, {"prompt": "What is 12 * 12?", "max_tokens": 16}),
)  # fmt: skip
_view(
    "routing.views.VoteView",
    post=_ask("Answer a prompt and show the council's vote: every ballot, the scores and the winner",
              PROMPT, VoteAnswerSerializer, {"prompt": "What is 7 + 5?", "max_tokens": 16}),
)  # fmt: skip
_view(
    "routing.views.HybridView",
    post=_ask("The chat page's endpoint: `query` instead of `prompt`", "routing.serializers.HybridSerializer",
              HybridAnswerSerializer, {"query": "What is 9 * 9?", "max_tokens": 16}),
)  # fmt: skip
_view(
    "routing.views.HealthView",
    get={
        "summary": "Health: the database, Redis and at least one serving worker with a model loaded",
        "tags": ["operations"],
        "responses": {
            200: OpenApiResponse(HealthReportSerializer, description="Everything is up."),
            503: OpenApiResponse(HealthReportSerializer, description="Degraded: `down` names what is not up."),
        },
    },
)
_view(
    "routing.openai_api.ModelsView",
    get={"summary": "The models /v1/chat/completions accepts", "tags": ["openai"],
         "responses": {200: ModelListSerializer, **errors(*KEY_READ_ERRORS)}, "parameters": [RETRY_AFTER]},
)  # fmt: skip
_view(
    "routing.openai_api.ChatCompletionsView",
    post={
        "summary": "OpenAI-compatible chat completion (JSON, or server-sent events with stream=true)",
        "description": SSE_TEXT,
        "tags": ["openai"],
        "request": "routing.serializers.ChatCompletionSerializer",
        "responses": {
            (200, "application/json"): OpenApiResponse(
                ChatCompletionResponseSerializer, description="The completion (JSON); with `stream: true`, events."
            ),
            (200, "text/event-stream"): OpenApiResponse(
                ServerSentEventSerializer, description="The completion (JSON); with `stream: true`, events.",
                examples=[OpenApiExample("a stream", value=SSE_EXAMPLE, response_only=True)],
            ),
            **{(code, "application/json"): response for code, response in errors(*GENERATION_ERRORS, 404).items()},
        },
        "parameters": [RETRY_AFTER],
        "examples": [
            OpenApiExample("a question", request_only=True, value={
                "model": "swarm-auto", "messages": [{"role": "user", "content": "What is 6 * 7?"}], "max_tokens": 16,
            }),
            OpenApiExample("a streamed answer", request_only=True, value={
                "model": "swarm-auto", "messages": [{"role": "user", "content": "Name a colour."}], "max_tokens": 16,
                "stream": True,
            }),
        ],
    },
)  # fmt: skip
_view(
    "routing.openai_resources.ModelDetailView",
    get={"summary": "One model /v1/models lists (ids may contain `/`, e.g. cloud/<provider>)", "tags": ["openai"],
         "responses": {200: OpenAIModelSerializer, **errors(*KEY_READ_ERRORS),
                       404: OpenApiResponse(ErrorSerializer, description="No such model (`model_not_found`).")},
         "parameters": [RETRY_AFTER, OpenApiParameter(
             "model_id", str, OpenApiParameter.PATH, description="A model id, as GET /v1/models lists it",
             examples=[OpenApiExample("the cascade", value="swarm-auto"),
                       OpenApiExample("the embedding model", value="all-minilm-l6-v2")])]},
)  # fmt: skip
_view(
    "routing.openai_resources.EmbeddingsView",
    post={
        "summary": "OpenAI-compatible embeddings: all-MiniLM-L6-v2, 384-d unit vectors (float or base64)",
        "tags": ["openai"],
        "request": "routing.openai_resources.EmbeddingRequestSerializer",
        "responses": {
            200: EmbeddingListSerializer,
            **errors(400, 401, 403, 413, 415, 429, 503),
            404: OpenApiResponse(ErrorSerializer, description="The model is not an embedding model here "
                                 "(`model_not_found`)."),
        },
        "parameters": [RETRY_AFTER],
        "examples": [
            OpenApiExample("one text", request_only=True,
                           value={"model": "all-minilm-l6-v2", "input": "The food was delicious."}),
            OpenApiExample("several, base64", request_only=True, value={
                "model": "all-minilm-l6-v2", "input": ["first text", "second text"], "encoding_format": "base64",
            }),
        ],
    },
)  # fmt: skip
_view(
    "routing.openai_completions.CompletionsView",
    post={
        "summary": "OpenAI-compatible legacy text completion on the local model (JSON, or server-sent events)",
        "description": "The prompt is completed as raw text by the local model alone (no chat template). With "
        "`stream: true`: server-sent events, each `data: <text_completion JSON>` with a piece of "
        "`choices[0].text`, the last with `finish_reason` (and `logprobs`), then with `stream_options."
        "include_usage` a chunk with `usage` and `choices: []`, then `data: [DONE]`.",
        "tags": ["openai"],
        "request": "routing.openai_completions.TextCompletionSerializer",
        "responses": {
            (200, "application/json"): "routing.openai_completions.TextCompletionResponseSerializer",
            (200, "text/event-stream"): OpenApiResponse(
                ServerSentEventSerializer, description="The completion (JSON); with `stream: true`, events."
            ),
            **{(code, "application/json"): response for code, response in errors(*GENERATION_ERRORS, 404).items()},
        },
        "parameters": [RETRY_AFTER],
        "examples": [
            OpenApiExample("a prompt", request_only=True,
                           value={"model": "smollm2-135m", "prompt": "The capital of France is", "max_tokens": 8}),
            OpenApiExample("a streamed completion", request_only=True, value={
                "model": "smollm2-135m", "prompt": "Once upon a time", "max_tokens": 8, "stream": True,
                "stream_options": {"include_usage": True},
            }),
        ],
    },
)  # fmt: skip
_view(
    "routing.stats.StatsView",
    get={"summary": "Requests by route and cache hit ratio (last 24 h), spend today and what is left",
         "tags": ["operations"], "responses": {200: StatsSerializer, **errors(*KEY_READ_ERRORS)},
         "parameters": [RETRY_AFTER]},
)  # fmt: skip
_view(
    "training.views.ReloadView",
    get={"summary": "What serves now (changes nothing)", "tags": ["operators"],
         "responses": {200: ServingSerializer, **errors(*OPERATOR_READ_ERRORS)}},
    post={
        "summary": "Serve another LoRA adapter now: latest, base or lora-v<N> (no restart)",
        "tags": ["operators"],
        "request": ReloadSerializer,
        "parameters": [OpenApiParameter("lora", str, OpenApiParameter.QUERY, required=False,
                                        description="latest (the newest adapter that passed its gate), base or "
                                                    "lora-v<N> (instead of the body)"),
                       OpenApiParameter("force", bool, OpenApiParameter.QUERY, required=False,
                                        description="true: serve an adapter that failed its gate (logged)")],
        "responses": {200: ReloadResultSerializer, **errors(*OPERATOR_WRITE_ERRORS),
                      404: OpenApiResponse(ErrorSerializer, description="No such adapter version, or `latest` "
                                           "while no adapter has passed its gate (code no_adapter_passed_gate)."),
                      409: OpenApiResponse(ErrorSerializer, description="The adapter named failed its gate (its "
                                           "score vs the threshold in the message); force=true serves it anyway "
                                           "(code adapter_failed_gate).")},
    },
)  # fmt: skip
_view(
    "training.views.TrainingStatusView",
    get={"summary": "What serves, the recent LoRA jobs and adapter versions", "tags": ["operators"],
         "responses": {200: TrainingStatusSerializer, **errors(*OPERATOR_READ_ERRORS)}},
)  # fmt: skip
_view(
    "arbiter.views.SwapLockView",
    get={"summary": "The GPU swap lock as anyone may see it (never the token)", "tags": ["arbiter"],
         "responses": {200: LockStatusSerializer, **errors(401, 503)}},
    post={"summary": "Take the GPU swap lock (a lease with a fencing number)", "tags": ["arbiter"],
          "request": "arbiter.serializers.LockRequestSerializer", "parameters": [RETRY_AFTER],
          "responses": {201: LeaseSerializer, **errors(*OPERATOR_WRITE_ERRORS, 423)}},
    delete={
        "summary": "Release the lease (its token), or force-release it (staff session, `force=true`)",
        "tags": ["arbiter"], "request": None,
        "parameters": [
            OpenApiParameter("X-Swarm-Lease-Token", str, OpenApiParameter.HEADER, required=False,
                             description="The lease token (or a JSON body {\"token\"})"),
            OpenApiParameter("force", bool, OpenApiParameter.QUERY, required=False,
                             description="Force-release by a staff user (Django admin session, CSRF token)"),
        ],
        "responses": {204: OpenApiResponse(description="Released."), **errors(400, 401, 403, 409, 503)},
    },
)  # fmt: skip
_view(
    "arbiter.views.SwapView",
    post={"summary": "Load another model on a serving worker under the GPU lock", "tags": ["arbiter"],
          "request": "arbiter.serializers.SwapRequestSerializer", "parameters": [RETRY_AFTER],
          "responses": {200: SwapReportSerializer, **errors(*OPERATOR_WRITE_ERRORS, 409, 423, 502, 504)}},
)  # fmt: skip
_view(
    "arbiter.views.ScheduleListView",
    get={"summary": "Scheduled GPU jobs", "tags": ["arbiter"],
         "responses": {200: "arbiter.serializers.ScheduledJobSerializer[]", **errors(401, 503)}},
    post={"summary": "Register a scheduled GPU job (cron or one-off)", "tags": ["arbiter"],
          "request": "arbiter.serializers.ScheduledJobSerializer",
          "responses": {201: "arbiter.serializers.ScheduledJobSerializer", **errors(*OPERATOR_WRITE_ERRORS)}},
)  # fmt: skip
_view(
    "arbiter.views.ScheduleDetailView",
    get={"summary": "One scheduled GPU job", "tags": ["arbiter"],
         "responses": {200: "arbiter.serializers.ScheduledJobSerializer", **errors(401, 404, 503)}},
    delete={"summary": "Remove a scheduled GPU job", "tags": ["arbiter"],
            "responses": {204: OpenApiResponse(description="Removed."), **errors(401, 403, 404, 503)}},
)  # fmt: skip


# --- The schema's own views ----------------------------------------------------------------------


class SchemaView(SpectacularAPIView):
    """GET /api/schema/: the OpenAPI 3 document (YAML; `?format=json` for JSON)."""


class SchemaDocsView(SpectacularSwaggerView):
    """GET /api/docs/: Swagger UI, its scripts and styles from our own static files (drf-spectacular-sidecar)."""

    url_name = "schema"
