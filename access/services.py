"""API key services: create, authenticate; the limits every caller is held to (rate, concurrency)."""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import Any

from django.db import DatabaseError
from django.utils import timezone

from access.key_cache import key_cache
from access.models import ApiKey, hash_key, new_raw_key
from swarm_site.redis_client import get_redis

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class NewKey:
    key: ApiKey
    raw: str  # shown once; only its digest is stored


def api_key_create(
    *,
    name: str,
    rate_limit_per_minute: int = 60,
    max_concurrent: int = 4,
    daily_budget_usd: Decimal | None = None,
) -> NewKey:
    raw = new_raw_key()
    key = ApiKey.objects.create(
        name=name,
        prefix=raw[:12],
        digest=hash_key(raw),
        rate_limit_per_minute=rate_limit_per_minute,
        max_concurrent=max_concurrent,
        daily_budget_usd=daily_budget_usd,
    )
    return NewKey(key=key, raw=raw)


# `last_used_at` is kept to the minute: writing it on every request would be a database write (a
# lock and a sync on SQLite) per API call, cache hits included.
LAST_USED_RESOLUTION = timedelta(minutes=1)


def api_key_authenticate(*, raw: str) -> ApiKey | None:
    """The live key with this secret: held by this process (access/key_cache.py) or one indexed read; a
    revoked or rotated secret stops at once. Raises DatabaseError when the key must be read and cannot."""
    key = key_cache.lookup(hash_key(raw), _live_key)
    if key is not None:
        now = timezone.now()
        if key.last_used_at is None or now - key.last_used_at >= LAST_USED_RESOLUTION:
            key.last_used_at = now  # first, so that the other threads holding this cached key skip the write
            try:
                ApiKey.objects.filter(pk=key.pk).update(last_used_at=now)
            except DatabaseError as exc:  # bookkeeping only: a cached key keeps working while the database is away
                log.warning("could not record the use of key %s...: %s", key.prefix, exc)
    return key


def _live_key(digest: str) -> ApiKey | None:
    return ApiKey.objects.filter(digest=digest, revoked=False).first()


def api_key_rotate(*, key: ApiKey) -> NewKey:
    """A new secret for the same key (name, limits, budget and history stay); the old secret stops at once."""
    raw = new_raw_key()
    key.prefix, key.digest = raw[:12], hash_key(raw)
    key.save(update_fields=["prefix", "digest"])
    return NewKey(key=key, raw=raw)


# A caller's two limits in one round trip: count the request in its minute (KEYS[1]; rate limit 0:
# not counted), then, when the request may generate, take one of its concurrency slots (KEYS[2], a
# sorted set: member a slot id, score its expiry; expired slots, of a web process that died holding
# one, are dropped first). Returns {0, 0}: admitted without a slot; {0, 1}: admitted holding ARGV[6];
# {1, 0}: over the rate; {2, expiry of the oldest slot}: every slot held.
# ARGV: rate limit, now, slot limit (0: none), slot expiry, -, member.
_CALLER_LIMITS = """
local rate = tonumber(ARGV[1])
if rate > 0 then
  local count = redis.call('INCR', KEYS[1])
  if count == 1 then redis.call('EXPIRE', KEYS[1], 120) end
  if count > rate then return {1, 0} end
end
if tonumber(ARGV[3]) == 0 then return {0, 0} end
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', ARGV[2])
if redis.call('ZCARD', KEYS[2]) >= tonumber(ARGV[3]) then
  local first = redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')
  return {2, first[2]}
end
redis.call('ZADD', KEYS[2], ARGV[4], ARGV[6])
redis.call('PEXPIRE', KEYS[2], math.ceil((tonumber(ARGV[4]) - tonumber(ARGV[2])) * 1000))
return {0, 1}
"""


def _script(client: Any, name: str, source: str) -> Any:
    """`source` registered on `client` once (EVALSHA: the script's text is not sent per request)."""
    scripts = client.__dict__.setdefault("_swarm_scripts", {})
    if name not in scripts:
        scripts[name] = client.register_script(source)
    return scripts[name]


class RateExceeded(Exception):
    def __init__(self, wait: float) -> None:
        super().__init__(f"over the rate limit; the window ends in {wait:.0f} s")
        self.wait = wait


def caller_admit(*, identity: str, rate_limit: int, slot_limit: int, hold_s: float,
                 now: float | None = None) -> Slot | None:  # fmt: skip
    """Count one request of `identity` in its minute (a fixed one-minute window shared by every web
    process; `rate_limit` 0: no limit) and, with `slot_limit`, take one of its concurrency slots for at
    most `hold_s`: one Redis round trip. Raises RateExceeded or SlotsFull (each with its wait);
    returns the slot taken, if any."""
    if not rate_limit and not slot_limit:
        return None
    now = now or time.time()
    member = uuid.uuid4().hex
    keys = [f"ratelimit:{identity}:{int(now // 60)}", f"slots:{identity}"]
    status, value = _script(get_redis(), "caller", _CALLER_LIMITS)(
        keys=keys, args=[rate_limit, now, slot_limit, now + hold_s, "", member]
    )
    if int(status) == 1:
        raise RateExceeded(60 - (now % 60))
    if int(status) == 2:
        raise SlotsFull(min(max(float(value) - now, 1.0), 5.0))
    return Slot(key=keys[1], member=member) if int(value) else None


@dataclass
class Slot:
    """One concurrent generation held by a caller; release it when the response is done."""

    key: str
    member: str
    released: bool = False

    def release(self) -> None:
        self.release_in(get_redis())

    def release_in(self, client: Any) -> None:
        """Give the slot back through `client`: the API's Redis client, or a pipeline its caller executes
        with other writes of the same request (one round trip, not one more). Once: later calls do nothing."""
        if self.released:
            return
        self.released = True
        client.zrem(self.key, self.member)


class SlotsFull(Exception):
    def __init__(self, wait: float) -> None:
        super().__init__(f"all slots held; the first frees within {wait:.0f} s")
        self.wait = wait


def slot_acquire(*, identity: str, limit: int, hold_s: float, now: float | None = None) -> Slot | None:
    """Hold one of `identity`'s `limit` concurrent generations for at most `hold_s`; None when unlimited.

    Expired slots (a web process that died holding one) are dropped first. Raises SlotsFull (with
    the seconds until the oldest slot expires at the latest) when all are held."""
    if not limit:
        return None
    return caller_admit(identity=identity, rate_limit=0, slot_limit=limit, hold_s=hold_s, now=now)
