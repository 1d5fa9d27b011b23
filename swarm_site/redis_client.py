"""The API's own Redis connection (cache, heartbeats, versions), with short timeouts."""

from __future__ import annotations

from functools import lru_cache

import redis
from django.conf import settings
from redis.backoff import NoBackoff
from redis.retry import Retry

# What a Redis outage looks like to redis-py.
REDIS_ERRORS = (redis.ConnectionError, redis.TimeoutError, ConnectionError, OSError)


@lru_cache(maxsize=1)
def get_redis() -> redis.Redis:
    timeout = settings.SWARM_REDIS_TIMEOUT_S
    return redis.Redis.from_url(
        settings.REDIS_URL,
        socket_connect_timeout=timeout,
        socket_timeout=timeout,
        retry_on_timeout=False,
        health_check_interval=30,
        decode_responses=True,
    )


# Blocking reads (XREAD BLOCK of reply streams) wait in slices of BLOCK_SLICE_S; a reply later than a
# slice by BLOCK_MARGIN_S means Redis has stopped answering.
BLOCK_SLICE_S = 1.0
BLOCK_MARGIN_S = 1.5


@lru_cache(maxsize=1)
def get_blocking_redis() -> redis.Redis:
    """For blocking reads (XREAD BLOCK of reply streams): connects fast, and a read that outlasts its
    slice by BLOCK_MARGIN_S fails at once (no retries), so a stalled Redis ends the wait within seconds."""
    return redis.Redis.from_url(
        settings.REDIS_URL,
        socket_connect_timeout=settings.SWARM_REDIS_TIMEOUT_S,
        socket_timeout=BLOCK_SLICE_S + BLOCK_MARGIN_S,
        retry=Retry(NoBackoff(), 0),  # redis-py would otherwise retry a timed-out read several times
        decode_responses=True,
    )
