"""The project's middleware: JSON errors on API paths, the request id in logs, and Django's session,
user and message middleware passed over where no session can be involved."""

from __future__ import annotations

import logging
from collections.abc import Callable

from django.conf import settings
from django.contrib.auth import middleware as auth_middleware
from django.contrib.messages import middleware as messages_middleware
from django.contrib.sessions import middleware as sessions_middleware
from django.core.exceptions import DisallowedHost
from django.http import HttpRequest, HttpResponse

from swarm_site.errors import json_error
from swarm_site.logs import request_id_var

log = logging.getLogger("swarm.errors")

_HTML_PREFIXES = ("/admin", "/static", "/chat", "/flower")


def is_api(request: HttpRequest) -> bool:
    """A request for the API (JSON), not for the admin, the chat page, static files or Flower."""
    return not request.path.startswith(_HTML_PREFIXES)


class JsonErrorMiddleware:
    """API clients always get JSON: 404s, 405s, a bad Host header and unexpected errors included (no
    tracebacks). It sits outside Django's CommonMiddleware (settings.MIDDLEWARE), which reads the Host."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if is_api(request):
            try:
                request.get_host()  # what CommonMiddleware would refuse with an HTML 400
            except DisallowedHost as exc:
                log.warning("refused a request to %s: %s", request.path, exc)
                return json_error(400, "Invalid Host header: this server does not serve that host name.",
                                  code="invalid_host", param="Host")  # fmt: skip
        response = self.get_response(request)
        if (
            is_api(request)
            and response.status_code in (400, 404, 405, 413, 500)
            and not response.get("Content-Type", "").startswith("application/json")
            and not getattr(response, "streaming", False)
        ):
            messages = {
                400: "Bad request.",
                404: f"No such endpoint: {request.path}",
                405: f"Method {request.method} is not allowed on {request.path}",
                413: "The request body is too large.",
                500: "Internal error; it has been logged.",
            }
            return json_error(response.status_code, messages[response.status_code])
        return response

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not is_api(request):
            return None
        log.exception("unhandled error on %s", request.path)
        return json_error(500, "Internal error; it has been logged.", code="internal_error")


class RequestIdMiddleware:
    """Log lines carry the request id only while that request runs (threads are reused)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        token = request_id_var.set(None)
        try:
            return self.get_response(request)
        finally:
            request_id_var.reset(token)


def sessionless(request: HttpRequest) -> bool:
    """An API call that carries no session cookie: it cannot read or write a session, be a logged-in
    staff user (access/authentication.py StaffSessionAuthentication) or show a flash message."""
    return is_api(request) and settings.SESSION_COOKIE_NAME not in request.COOKIES


class _OnlyWithSessions:
    """Runs the Django middleware it is mixed into except for a `sessionless` request (the admin's
    system checks still find Django's classes: these are subclasses)."""

    get_response: Callable[[HttpRequest], HttpResponse]

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if sessionless(request):
            return self.get_response(request)
        return super().__call__(request)  # type: ignore[misc]


class SessionMiddleware(_OnlyWithSessions, sessions_middleware.SessionMiddleware):
    pass


class AuthenticationMiddleware(_OnlyWithSessions, auth_middleware.AuthenticationMiddleware):
    pass


class MessageMiddleware(_OnlyWithSessions, messages_middleware.MessageMiddleware):
    pass
