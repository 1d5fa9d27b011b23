"""The API's own Redis connection (cache, heartbeats, versions), with short timeouts."""

from __future__ import annotations

from functools import lru_cache

import redis
from django.conf import settings

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


@lru_cache(maxsize=1)
def get_blocking_redis() -> redis.Redis:
    """For blocking reads (XREAD BLOCK of token streams): connects fast, waits longer per read."""
    return redis.Redis.from_url(
        settings.REDIS_URL,
        socket_connect_timeout=settings.SWARM_REDIS_TIMEOUT_S,
        socket_timeout=5.0,
        decode_responses=True,
    )
