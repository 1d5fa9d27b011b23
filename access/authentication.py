"""The one access policy of the API: who the caller is, and how much it may ask for.

Every API view uses it through DRF's defaults (settings.REST_FRAMEWORK), except /health, /metrics
and the operator endpoints (arbiter token or staff session):

- A caller presents an API key, `Authorization: Bearer sk-swarm-...` (access/models.py), or is a
  staff user logged in to the admin (a session; writes pass Django's CSRF check).
- Without a key, a caller is admitted only while SWARM_ALLOW_ANONYMOUS_LOOPBACK is on (the local
  default; refused in production), only from a loopback address that no proxy forwarded, and never
  from a browser page of another site (`Sec-Fetch-Site: cross-site` or a foreign `Origin`).
  Anonymous callers are limited per address (SWARM_ANON_RATE_PER_MINUTE, SWARM_ANON_CONCURRENCY)
  and in `max_tokens` (SWARM_ANON_MAX_TOKENS).
- Keys are limited per key: `rate_limit_per_minute` and `max_concurrent` (admin or create_api_key).
- Over a limit: 429 with `Retry-After`, in the one JSON error shape (OpenAI's, also on /v1).
- Behind a proxy, SWARM_TRUSTED_PROXIES names it: only then is `X-Forwarded-For` read for the
  client address, and proxied traffic is never taken for loopback.
"""

from __future__ import annotations

import ipaddress
from functools import lru_cache
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.db import DatabaseError
from rest_framework import authentication, exceptions, throttling
from rest_framework.request import Request

from access.services import RateExceeded, SlotsFull, api_key_authenticate, caller_admit
from swarm_site.errors import ServiceUnavailable
from swarm_site.redis_client import REDIS_ERRORS

_FORWARDING_HEADERS = ("HTTP_X_FORWARDED_FOR", "HTTP_FORWARDED", "HTTP_X_REAL_IP", "HTTP_X_FORWARDED_HOST")


class RateLimited(exceptions.Throttled):
    default_code = "rate_limit_exceeded"

    def __init__(self, message: str, wait: float) -> None:
        super().__init__(wait=wait, detail=message)


class AnonymousClient:
    """A caller without a key, on loopback, while anonymous local use is allowed (the embedded default)."""

    pk = None
    is_authenticated = True
    is_staff = False
    is_active = False

    def __init__(self, address: str) -> None:
        self.address = address
        self.name = f"anonymous ({address})"

    def __str__(self) -> str:
        return self.name


@lru_cache(maxsize=8)
def _networks(spec: tuple[str, ...]) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    return tuple(ipaddress.ip_network(item, strict=False) for item in spec)


@lru_cache(maxsize=4096)  # a request asks several times, and callers' addresses repeat; addresses are immutable
def _ip(value: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    value = value.strip().strip("[]")
    try:
        ip = ipaddress.ip_address(value)
    except ValueError:
        return None
    mapped = getattr(ip, "ipv4_mapped", None)
    return mapped or ip


def _trusted(ip: ipaddress.IPv4Address | ipaddress.IPv6Address | None) -> bool:
    return ip is not None and any(ip in net for net in _networks(tuple(settings.SWARM_TRUSTED_PROXIES)))


def client_address(request) -> str:
    """The caller's address: REMOTE_ADDR, or, when that is a trusted proxy, the nearest untrusted
    hop of `X-Forwarded-For` (read right to left, so a client cannot forge the hops in front of it)."""
    meta = getattr(request, "META", {})
    remote = meta.get("REMOTE_ADDR", "")
    if not _trusted(_ip(remote)):
        return remote
    hops = [hop.strip() for hop in meta.get("HTTP_X_FORWARDED_FOR", "").split(",") if hop.strip()]
    for hop in reversed(hops):
        ip = _ip(hop)
        if ip is None:
            return hop  # not an address: whoever wrote it is the client, and it is not loopback
        if not _trusted(ip):
            return str(ip)
    return hops[0] if hops else remote


def is_proxied(request) -> bool:
    """The request came through a proxy: from a trusted proxy, or carrying forwarding headers."""
    meta = getattr(request, "META", {})
    return _trusted(_ip(meta.get("REMOTE_ADDR", ""))) or any(meta.get(h) for h in _FORWARDING_HEADERS)


def is_direct_loopback(request) -> bool:
    ip = _ip(getattr(request, "META", {}).get("REMOTE_ADDR", ""))
    return ip is not None and ip.is_loopback and not is_proxied(request)


def is_cross_site(request) -> bool:
    """A browser page of another site made this request (fetch metadata or a foreign Origin)."""
    meta = getattr(request, "META", {})
    if meta.get("HTTP_SEC_FETCH_SITE", "").lower() == "cross-site":
        return True
    origin = meta.get("HTTP_ORIGIN")
    if not origin:
        return False
    host = meta.get("HTTP_HOST") or meta.get("SERVER_NAME", "")
    if not meta.get("HTTP_HOST") and meta.get("SERVER_PORT", "80") not in ("80", "443"):
        host = f"{host}:{meta['SERVER_PORT']}"
    return origin == "null" or urlsplit(origin).netloc.lower() != host.lower()


def anonymous_loopback_allowed(request) -> bool:
    """True for a keyless caller the local default admits: direct loopback, not another site's page."""
    return settings.SWARM_ALLOW_ANONYMOUS_LOOPBACK and is_direct_loopback(request) and not is_cross_site(request)


class ApiKeyAuthentication(authentication.BaseAuthentication):
    """`Authorization: Bearer <key>`; without one, the anonymous loopback caller or 401."""

    keyword = "Bearer"

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).decode(errors="replace")
        if not header:
            if anonymous_loopback_allowed(request):
                return (AnonymousClient(client_address(request)), None)
            raise exceptions.NotAuthenticated(
                "You didn't provide an API key. Send it as 'Authorization: Bearer sk-swarm-...'."
            )
        scheme, _, raw = header.partition(" ")
        if scheme != self.keyword or not raw.strip():
            raise exceptions.AuthenticationFailed("Malformed Authorization header; expected 'Bearer <key>'.")
        try:
            key = api_key_authenticate(raw=raw.strip())
        except DatabaseError:
            raise ServiceUnavailable("The key store (database) is unavailable; try again shortly.") from None
        if key is None:
            raise exceptions.AuthenticationFailed("Incorrect API key provided.", code="invalid_api_key")
        return (key, key)

    def authenticate_header(self, request):
        return self.keyword


class StaffSessionAuthentication(authentication.SessionAuthentication):
    """A staff user logged in to the admin (with Django's CSRF check on writes); others go on to the key."""

    def authenticate(self, request):
        user = getattr(request._request, "user", None)
        if not (user and user.is_active and user.is_staff):
            return None
        self.enforce_csrf(request)
        return (user, None)

    def authenticate_header(self, request):
        return ApiKeyAuthentication.keyword  # DRF asks the first class: a 401 names the key's scheme


def caller_identity(request) -> tuple[str, str]:
    """(Redis identity, words for messages) of the caller the limits apply to."""
    key = getattr(request, "auth", None)
    if key is not None and getattr(key, "pk", None) is not None:
        return f"key:{key.pk}", f"API key {key.prefix}..."
    return f"addr:{client_address(request)}", "anonymous callers from this address"


def _limits(request) -> tuple[int, int]:
    """(requests per minute, concurrent generations) for this caller; 0 means no limit."""
    key = getattr(request, "auth", None)
    if key is not None and getattr(key, "pk", None) is not None:
        return key.rate_limit_per_minute, key.max_concurrent
    return settings.SWARM_ANON_RATE_PER_MINUTE, settings.SWARM_ANON_CONCURRENCY


class CallerLimitsThrottle(throttling.BaseThrottle):
    """Requests per minute per key or (anonymous) per address and, on views that set `generates = True`,
    concurrent generations per caller: both in one Redis round trip (access.services.caller_admit).

    A generation's slot is released when the response is closed (after the last byte of a stream),
    or at the deadline at the latest if the process dies holding it.
    """

    def allow_request(self, request: Request, view) -> bool:
        if request.user is None:
            return True  # an open endpoint (/health)
        identity, who = caller_identity(request)
        rate, concurrency = _limits(request)
        generates = getattr(view, "generates", False) and request.method == "POST"
        try:
            slot = caller_admit(identity=identity, rate_limit=rate, slot_limit=concurrency if generates else 0,
                                hold_s=settings.SWARM_DEADLINE_S + 30)  # fmt: skip
        except RateExceeded as over:
            raise RateLimited(f"Rate limit reached for {who}: {rate} requests per minute.", over.wait) from None
        except SlotsFull as full:
            raise RateLimited(f"Too many requests at once for {who}: at most {concurrency} in flight.",
                              full.wait) from None  # fmt: skip
        except REDIS_ERRORS:
            raise ServiceUnavailable("Redis is unavailable for rate limiting.") from None
        if slot is not None:
            request._request.swarm_slots = [*getattr(request._request, "swarm_slots", []), slot]
        return True


def held_slots(request) -> tuple[Any, ...]:
    """The caller's concurrency slots this request holds (CallerLimitsThrottle), for a service to give back
    with its last write (Slot.release_in); the rest are released when the response closes."""
    return tuple(getattr(getattr(request, "_request", request), "swarm_slots", ()))


def enforce_token_cap(request, max_tokens: int, *, param: str = "max_tokens") -> None:
    """Anonymous callers may not ask for more than SWARM_ANON_MAX_TOKENS (a clear 400, never a silent cut)."""
    cap = settings.SWARM_ANON_MAX_TOKENS
    if isinstance(getattr(request, "user", None), AnonymousClient) and max_tokens > cap:
        raise exceptions.ValidationError(
            {param: [f"must be at most {cap} without an API key (anonymous local use); send a key for more"]}
        )


def is_staff(request) -> bool:
    """True for an operator: an active staff user (session) or the arbiter token's client."""
    from arbiter.auth import ArbiterClient  # arbiter imports access: import here, not at the top

    user = getattr(request, "user", None)
    if isinstance(user, ArbiterClient):
        return True
    return bool(getattr(user, "is_active", False) and getattr(user, "is_staff", False))
