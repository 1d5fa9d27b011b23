"""API key services: create, authenticate, rate-limit."""

from __future__ import annotations

import time
from dataclasses import dataclass
from decimal import Decimal

from django.utils import timezone

from access.models import ApiKey, hash_key, new_raw_key
from swarm_site.redis_client import get_redis


@dataclass(frozen=True)
class NewKey:
    key: ApiKey
    raw: str  # shown once; only its digest is stored


def api_key_create(*, name: str, rate_limit_per_minute: int = 60, daily_budget_usd: Decimal | None = None) -> NewKey:
    raw = new_raw_key()
    key = ApiKey.objects.create(
        name=name,
        prefix=raw[:12],
        digest=hash_key(raw),
        rate_limit_per_minute=rate_limit_per_minute,
        daily_budget_usd=daily_budget_usd,
    )
    return NewKey(key=key, raw=raw)


def api_key_authenticate(*, raw: str) -> ApiKey | None:
    key = ApiKey.objects.filter(digest=hash_key(raw), revoked=False).first()
    if key is not None:
        ApiKey.objects.filter(pk=key.pk).update(last_used_at=timezone.now())
    return key


def api_key_rate_check(*, key: ApiKey, now: float | None = None) -> float | None:
    """Count this request in the key's current minute; the seconds to wait when over the limit, else None."""
    if not key.rate_limit_per_minute:
        return None
    now = now or time.time()
    window = int(now // 60)
    counter = f"ratelimit:{key.pk}:{window}"
    pipe = get_redis().pipeline()
    pipe.incr(counter)
    pipe.expire(counter, 120)
    count, _ = pipe.execute()
    if count > key.rate_limit_per_minute:
        return 60 - (now % 60)
    return None
