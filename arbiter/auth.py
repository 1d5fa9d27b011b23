"""Who may use the arbiter API: holders of the arbiter token, and staff for force-release.

The token is `settings.SWARM_ARBITER_TOKEN`. When it is unset:

- in production (`settings.PRODUCTION`) the API answers 503 "arbiter token not configured":
  nothing is writable until an operator sets one;
- elsewhere (local, test) a random token is generated once into `$SWARM_VAR_DIR/arbiter_token`
  (created with O_EXCL, mode 0600, so concurrent processes agree on one token and other users of
  the machine cannot read it); local tools read it from there: `cat var/arbiter_token`. The API
  never accepts a request without a token, even on loopback.

Clients send it as `Authorization: Bearer <token>` or `X-Swarm-Arbiter-Token: <token>`.
"""

from __future__ import annotations

import hmac
import logging
from pathlib import Path
from typing import Any

from django.conf import settings
from rest_framework import authentication, exceptions, permissions
from rest_framework.request import Request
from rest_framework.views import APIView

from swarm_site.errors import ServiceUnavailable
from swarm_site.local_secrets import local_secret

log = logging.getLogger(__name__)

CREDENTIAL_FILE_NAME = "arbiter_token"
HEADER = "HTTP_X_SWARM_ARBITER_TOKEN"


class TokenNotConfigured(ServiceUnavailable):
    default_detail = "arbiter token not configured (set SWARM_ARBITER_TOKEN)"
    default_code = "arbiter_token_not_configured"


class ArbiterClient:
    """The caller that presented the arbiter token."""

    is_authenticated = True
    is_staff = False
    username = "arbiter-token"

    def get_username(self) -> str:
        return self.username


def token_file() -> Path:
    return Path(settings.VAR_DIR) / CREDENTIAL_FILE_NAME


def _local_token() -> str:
    return local_secret(token_file(), what="SWARM_ARBITER_TOKEN")


def arbiter_token() -> str | None:
    """The token the API expects, or None when none is configured (production without one)."""
    configured = getattr(settings, "SWARM_ARBITER_TOKEN", None)
    if configured:
        return str(configured)
    if getattr(settings, "PRODUCTION", False):
        return None
    token = _local_token()
    return token or None


def presented_token(request: Request) -> str | None:
    """The token in `Authorization: Bearer` or `X-Swarm-Arbiter-Token`; None when neither is sent.

    A malformed Authorization header is refused (401) rather than ignored.
    """
    header = authentication.get_authorization_header(request).decode(errors="replace").strip()
    if header:
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            raise exceptions.AuthenticationFailed("Malformed Authorization header; expected 'Bearer <token>'.")
        return value.strip()
    other = request.META.get(HEADER, "").strip()
    return other or None


class ArbiterTokenAuthentication(authentication.BaseAuthentication):
    """A request that presents a token must present the right one (401 otherwise)."""

    def authenticate(self, request: Request) -> tuple[ArbiterClient, str] | None:
        presented = presented_token(request)
        if presented is None:
            return None
        expected = arbiter_token()
        if expected is None:
            raise TokenNotConfigured()
        if not hmac.compare_digest(presented.encode(), expected.encode()):
            raise exceptions.AuthenticationFailed("Incorrect arbiter token.", code="invalid_arbiter_token")
        return ArbiterClient(), "arbiter-token"

    def authenticate_header(self, request: Request) -> str:
        return 'Bearer realm="swarm-arbiter"'


class StaffSessionAuthentication(authentication.SessionAuthentication):
    """Django's session (with its CSRF check), consulted only for `DELETE ?force=true`."""

    def authenticate(self, request: Request) -> tuple[Any, None] | None:
        if request.method != "DELETE" or not force_requested(request):
            return None
        return super().authenticate(request)


def force_requested(request: Request) -> bool:
    return request.query_params.get("force", "").strip().lower() in {"1", "true", "yes", "on"}


def require_token(request: Request) -> None:
    if arbiter_token() is None:
        raise TokenNotConfigured()
    if not isinstance(request.user, ArbiterClient):
        raise exceptions.NotAuthenticated(
            "This endpoint needs the arbiter token: 'Authorization: Bearer <token>' or 'X-Swarm-Arbiter-Token'."
        )


def require_staff(request: Request) -> str:
    """The staff user's name, or 403."""
    user = request.user
    if user is None or not getattr(user, "is_authenticated", False) or isinstance(user, ArbiterClient):
        raise exceptions.PermissionDenied("force-release needs a logged-in staff user (Django admin session).")
    if not (user.is_active and user.is_staff):
        raise exceptions.PermissionDenied("force-release is for staff users only.")
    return user.get_username()


class ArbiterTokenRequired(permissions.BasePermission):
    """Every method needs the token; a view with `allows_force_release` checks `DELETE ?force=true`
    itself (a staff session instead of the token)."""

    def has_permission(self, request: Request, view: APIView) -> bool:
        if getattr(view, "allows_force_release", False) and request.method == "DELETE" and force_requested(request):
            return True  # the view demands a staff session
        require_token(request)
        return True


class ReadOpenWriteToken(ArbiterTokenRequired):
    """GET/HEAD/OPTIONS are open (no secrets in the answer); writes need the token."""

    def has_permission(self, request: Request, view: APIView) -> bool:
        if request.method in permissions.SAFE_METHODS:
            return True
        return super().has_permission(request, view)
