"""The arbiter's API errors, in the project's JSON shape (swarm_site/errors.py).

A 423 carries two extra top-level fields next to `error`: `holder` and `expires_at`, and a
Retry-After header with the seconds left on the lease.
"""

from __future__ import annotations

from typing import Any

from rest_framework import exceptions, status

from arbiter.lock import LockHeld, LockNotHeld, StaleFencing
from inference.registry import RegistryError
from swarm_site.errors import ServiceUnavailable
from swarm_site.redis_client import REDIS_ERRORS


class Locked(exceptions.APIException):
    status_code = status.HTTP_423_LOCKED
    default_detail = "The GPU lock is held by someone else."
    default_code = "lock_held"
    error_type = "locked_error"

    def __init__(self, exc: LockHeld) -> None:
        super().__init__(str(exc))
        self.extra: dict[str, Any] = {"holder": exc.status.holder, "expires_at": exc.status.expires_at_iso()}
        remaining = exc.status.remaining_s or 0
        self.wait = max(1, int(remaining + 0.999))


class Conflict(exceptions.APIException):
    status_code = status.HTTP_409_CONFLICT
    default_detail = "The request conflicts with the lock's state."
    default_code = "conflict"
    error_type = "conflict_error"


class SwapFailed(exceptions.APIException):
    status_code = status.HTTP_502_BAD_GATEWAY
    default_detail = "The worker could not load the model."
    default_code = "swap_failed"


def translate(exc: Exception) -> Exception:
    """Service exceptions -> API exceptions (anything else passes through unchanged)."""
    if isinstance(exc, LockHeld):
        return Locked(exc)
    if isinstance(exc, StaleFencing):
        return Conflict(str(exc), code="stale_fencing_token")
    if isinstance(exc, LockNotHeld):
        return Conflict(str(exc), code="lock_not_held")
    if isinstance(exc, REDIS_ERRORS):
        return ServiceUnavailable(f"Redis is unavailable: {exc}")
    if isinstance(exc, RegistryError):
        return ServiceUnavailable(f"the model registry is unusable: {exc}")
    return exc
