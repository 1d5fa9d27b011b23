"""`swap_complete` / `swap_failed` webhooks, optionally HMAC-SHA256 signed.

POSTed as JSON to `settings.SWARM_SWAP_WEBHOOK_URL` (unset: nothing is sent) from a background
thread, after the swap's lock has been released, with a short timeout
(`SWARM_SWAP_WEBHOOK_TIMEOUT_S`, default 5 s), no redirects followed; failures are logged, never
raised. Headers:

    Content-Type: application/json
    X-Swarm-Event: swap_complete | swap_failed
    X-Swarm-Timestamp: <unix seconds>
    X-Swarm-Signature: sha256=<hex HMAC-SHA256(secret, f"{timestamp}.{body}")>   (when
                       SWARM_SWAP_WEBHOOK_SECRET is set)

A receiver checks it with `verify(body, timestamp, signature, secret)`: the exact body bytes, a
constant-time compare, and a timestamp within 5 minutes of its clock (either direction), so a
captured request cannot be replayed later.
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import json
import logging
import threading
import time
import urllib.request
import uuid
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings

log = logging.getLogger(__name__)

EVENTS = ("swap_complete", "swap_failed")
SIGNATURE_HEADER = "X-Swarm-Signature"
TIMESTAMP_HEADER = "X-Swarm-Timestamp"
EVENT_HEADER = "X-Swarm-Event"
TOLERANCE_S = 300
PREFIX = "sha256="
_DELIVERY_ERRORS = (OSError, ValueError, http.client.HTTPException)


def sign(body: bytes, timestamp: int | str, secret: str) -> str:
    """`sha256=<hex>` of HMAC-SHA256(secret, f"{timestamp}.{body}")."""
    message = f"{timestamp}.".encode() + body
    return PREFIX + hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def verify(
    body: bytes | str,
    timestamp: str | int | None,
    signature: str | None,
    secret: str,
    now: float | None = None,
    *,
    tolerance_s: float = TOLERANCE_S,
) -> bool:
    """True only for an untampered body signed with `secret` within `tolerance_s` of `now`."""
    if not secret or not signature or timestamp is None:
        return False
    try:
        stamp = int(str(timestamp).strip())
    except ValueError:
        return False
    current = time.time() if now is None else now
    if abs(current - stamp) > tolerance_s:
        return False
    raw = body.encode() if isinstance(body, str) else body
    return hmac.compare_digest(sign(raw, stamp, secret).encode(), signature.strip().encode())


def build(event: str, payload: dict[str, Any], *, secret: str | None, now: float | None = None) -> tuple[bytes, dict]:
    """The exact body bytes and headers of one delivery."""
    if event not in EVENTS:
        raise ValueError(f"unknown webhook event {event!r}")
    stamp = int(time.time() if now is None else now)
    document = {
        "id": uuid.uuid4().hex,
        "event": event,
        "sent_at": datetime.fromtimestamp(stamp, tz=UTC).isoformat(),
        **payload,
    }
    body = json.dumps(document, separators=(",", ":"), sort_keys=True, default=str).encode()
    headers = {"Content-Type": "application/json", EVENT_HEADER: event, TIMESTAMP_HEADER: str(stamp),
               "User-Agent": "swarm-arbiter"}  # fmt: skip
    if secret:
        headers[SIGNATURE_HEADER] = sign(body, stamp, secret)
    return body, headers


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None  # a 3xx is a failed delivery, not a hop to somewhere else


_opener = urllib.request.build_opener(_NoRedirect)


def deliver(
    event: str,
    payload: dict[str, Any],
    *,
    url: str | None = None,
    secret: str | None = None,
    timeout_s: float | None = None,
) -> int | None:
    """POST one event now. The HTTP status, or None when not configured or it failed (logged)."""
    url = url or getattr(settings, "SWARM_SWAP_WEBHOOK_URL", None)
    if not url:
        return None
    if urlsplit(url).scheme not in ("http", "https"):
        log.error("webhook %s not sent: SWARM_SWAP_WEBHOOK_URL must be http(s), got %r", event, url)
        return None
    secret = secret if secret is not None else getattr(settings, "SWARM_SWAP_WEBHOOK_SECRET", None)
    timeout = timeout_s or float(getattr(settings, "SWARM_SWAP_WEBHOOK_TIMEOUT_S", 5.0))
    body, headers = build(event, payload, secret=secret)
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")  # noqa: S310 - scheme checked
    try:
        with _opener.open(request, timeout=timeout) as response:
            code = response.status
    except _DELIVERY_ERRORS as exc:
        log.warning("webhook %s to %s failed: %s", event, url, exc)
        return None
    log.info("webhook %s delivered to %s: HTTP %s", event, url, code)
    return code


def fire(event: str, payload: dict[str, Any]) -> threading.Thread | None:
    """Deliver in a background thread (never on the caller's path, never under the lock).
    The thread, so a caller may join it; None when no URL is configured."""
    url = getattr(settings, "SWARM_SWAP_WEBHOOK_URL", None)
    if not url:
        return None
    config = {
        "url": url,
        "secret": getattr(settings, "SWARM_SWAP_WEBHOOK_SECRET", None) or "",
        "timeout_s": float(getattr(settings, "SWARM_SWAP_WEBHOOK_TIMEOUT_S", 5.0)),
    }  # read here: the thread must not depend on settings changing under it
    thread = threading.Thread(target=deliver, args=(event, payload), kwargs=config, name=f"swarm-webhook-{event}",
                              daemon=True)  # fmt: skip
    thread.start()
    return thread
