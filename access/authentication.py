"""Bearer API keys for the OpenAI-compatible API (DRF authentication + throttle)."""

from __future__ import annotations

from django.conf import settings
from rest_framework import authentication, exceptions, throttling

from access.services import api_key_authenticate, api_key_rate_check
from swarm_site.errors import ServiceUnavailable
from swarm_site.redis_client import REDIS_ERRORS

LOOPBACK = {"127.0.0.1", "::1"}


class AnonymousLoopback:
    """The caller on loopback when anonymous use is allowed (the embedded local default)."""

    pk = None
    name = "anonymous (loopback)"
    daily_budget_usd = None
    rate_limit_per_minute = 0
    is_authenticated = True


def anonymous_loopback_allowed(request) -> bool:
    """True for a caller on loopback while anonymous local use is allowed (SWARM_ALLOW_ANONYMOUS_LOOPBACK)."""
    return settings.SWARM_ALLOW_ANONYMOUS_LOOPBACK and request.META.get("REMOTE_ADDR") in LOOPBACK


class BearerKeyAuthentication(authentication.BaseAuthentication):
    keyword = "Bearer"

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).decode(errors="replace")
        if not header:
            if anonymous_loopback_allowed(request):
                return (AnonymousLoopback(), None)
            raise exceptions.NotAuthenticated(
                "You didn't provide an API key. Send it as 'Authorization: Bearer sk-swarm-...'."
            )
        scheme, _, raw = header.partition(" ")
        if scheme != self.keyword or not raw.strip():
            raise exceptions.AuthenticationFailed("Malformed Authorization header; expected 'Bearer <key>'.")
        key = api_key_authenticate(raw=raw.strip())
        if key is None:
            raise exceptions.AuthenticationFailed("Incorrect API key provided.", code="invalid_api_key")
        return (key, key)

    def authenticate_header(self, request):
        return self.keyword


class PerKeyRateThrottle(throttling.BaseThrottle):
    def allow_request(self, request, view):
        key = request.auth
        if key is None:
            return True
        try:
            self._wait = api_key_rate_check(key=key)
        except REDIS_ERRORS:
            raise ServiceUnavailable("Redis is unavailable for rate limiting.") from None
        return self._wait is None

    def wait(self):
        return self._wait
