"""One error shape for every API response: {"error": {"message", "type", "param", "code"}}."""

from __future__ import annotations

import re
from typing import Any

from django.core.exceptions import RequestDataTooBig
from django.http import JsonResponse
from rest_framework import exceptions, status
from rest_framework.response import Response


class ServiceUnavailable(exceptions.APIException):
    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_detail = "A backing service is unavailable."
    default_code = "service_unavailable"


class GatewayTimeout(exceptions.APIException):
    status_code = status.HTTP_504_GATEWAY_TIMEOUT
    default_detail = "No worker answered before the deadline."
    default_code = "deadline_exceeded"


class WorkerFailed(exceptions.APIException):
    status_code = status.HTTP_502_BAD_GATEWAY
    default_detail = "The worker failed on this request."
    default_code = "worker_failed"


class ModelSaturated(exceptions.APIException):
    """The local model's queue is already as deep as the deadline allows: answered at once, with
    Retry-After, instead of holding a thread until the deadline (cheap routes keep answering)."""

    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_detail = "The local model is saturated."
    default_code = "model_saturated"

    def __init__(self, detail: str, *, wait: float) -> None:
        super().__init__(detail)
        self.wait = max(1.0, wait)


class PayloadTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = "The request is too large."
    default_code = "payload_too_large"


class ContextLengthExceeded(exceptions.APIException):
    """The prompt (and the completion asked for) do not fit the model's context window: OpenAI's 400."""

    status_code = status.HTTP_400_BAD_REQUEST
    default_detail = "The messages do not fit the model's context window."
    default_code = "context_length_exceeded"

    def __init__(self, detail: str | None = None, *, param: str | None = "messages") -> None:
        super().__init__(detail)
        self.param = param


_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    405: "invalid_request_error",
    413: "invalid_request_error",
    415: "invalid_request_error",
    423: "locked_error",
    429: "rate_limit_error",
    500: "server_error",
    502: "server_error",
    503: "service_unavailable_error",
    504: "timeout_error",
}


_SURROGATES = re.compile("[\ud800-\udfff]")


def printable(text: str) -> str:
    """`text` with unpaired surrogates replaced by U+FFFD: they cannot be encoded as UTF-8, so one
    echoed back in a message would turn the error response itself into a 500."""
    return _SURROGATES.sub("\ufffd", text)


def error_body(
    status_code: int, message: str, *, code: str | None = None, param: str | None = None, kind: str | None = None
) -> dict:
    return {
        "error": {
            "message": printable(message),
            "type": kind or _TYPES.get(status_code, "invalid_request_error" if status_code < 500 else "server_error"),
            "param": printable(param) if param else param,
            "code": code,
        }
    }


def json_error(status_code: int, message: str, *, code: str | None = None, param: str | None = None) -> JsonResponse:
    return JsonResponse(error_body(status_code, message, code=code, param=param), status=status_code)


def _first_message(detail: Any) -> tuple[str, str | None]:
    """Flatten DRF's nested error detail into one message and the field it names."""
    if isinstance(detail, dict):
        for field, value in detail.items():
            message, _ = _first_message(value)
            name = None if field == "non_field_errors" else str(field)
            return (f"{name}: {message}" if name else message), name
    if isinstance(detail, list) and detail:
        return _first_message(detail[0])
    return str(detail), None


def json_exception_handler(exc: Exception, context: dict) -> Response | None:
    if isinstance(exc, RequestDataTooBig):
        exc = PayloadTooLarge("The request body is larger than the server accepts.")
    if isinstance(exc, exceptions.APIException):
        message, param = _first_message(exc.detail)
        param = getattr(exc, "param", None) or param
        code = exc.get_codes()
        if isinstance(code, (dict, list)):
            code = "invalid"
        headers = {}
        if getattr(exc, "auth_header", None):  # DRF sets it on 401s: WWW-Authenticate tells the scheme
            headers["WWW-Authenticate"] = exc.auth_header
        if getattr(exc, "wait", None):
            headers["Retry-After"] = str(int(exc.wait))
        return Response(
            error_body(exc.status_code, message, code=str(code), param=param, kind=getattr(exc, "error_type", None)),
            status=exc.status_code,
            headers=headers,
        )
    return None  # not ours: the middleware turns it into a JSON 500 and logs it
