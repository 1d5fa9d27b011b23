"""The API's own Redis connection (cache, heartbeats, versions), with short timeouts; and the one way every
process makes a Redis client from a URL: `redis_from_url` (plain Redis, or the primary named by Sentinel)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache
from typing import Any
from urllib.parse import unquote, urlsplit

import redis
import redis.sentinel
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from redis.backoff import NoBackoff
from redis.retry import Retry

# What a Redis outage looks like to redis-py.
REDIS_ERRORS = (redis.ConnectionError, redis.TimeoutError, ConnectionError, OSError)

SENTINEL_SCHEME = "sentinel://"
SENTINEL_PORT = 26379
DEFAULT_SENTINEL_MASTER = "swarm"


@dataclass(frozen=True)
class SentinelURL:
    """kombu's Sentinel URL `sentinel://[[user]:password@]h1:26379;sentinel://h2:26379;sentinel://h3:26379/0`
    read: the sentinels, and the database and credentials of the primary they name."""

    sentinels: tuple[tuple[str, int], ...]
    db: int = 0
    username: str | None = None
    password: str | None = None


def is_sentinel_url(url: str) -> bool:
    return url.startswith(SENTINEL_SCHEME)


def parse_sentinel_url(url: str) -> SentinelURL:
    """Read a Sentinel URL. Every part must name the same database and credentials, or none (database 0, no
    password): kombu (the broker) reads them from the part it is connected through, and moves to the next
    part when a sentinel does not answer; Celery (the result backend) reads the first part's. So
    `sentinel://h1:26379;sentinel://h2:26379/0` is database 0 everywhere, and database 3 is
    `sentinel://h1:26379/3;sentinel://h2:26379/3`. ValueError says what is wrong."""
    parts = [part.strip() for part in url.split(";")]
    if any(not part for part in parts):
        raise ValueError("an empty sentinel in the list (parts are separated by ';')")
    sentinels: list[tuple[str, int]] = []
    named: list[tuple[int, str | None, str | None]] = []
    for part in parts:
        if not is_sentinel_url(part):
            raise ValueError(f"{part!r} is not a sentinel:// address (every part of the list must be one)")
        split = urlsplit(part)
        try:
            port = split.port or SENTINEL_PORT
        except ValueError:
            raise ValueError(f"{part!r} has a bad port") from None
        if not split.hostname:
            raise ValueError(f"{part!r} names no host")
        path = split.path.strip("/")
        if path and not path.isdigit():
            raise ValueError(f"{part!r}: the database after '/' must be a number, not {path!r}")
        sentinels.append((split.hostname, port))
        named.append((int(path or 0), unquote(split.username) if split.username else None,
                      unquote(split.password) if split.password else None))  # fmt: skip
    db, username, password = named[0]
    for part, (other_db, other_user, other_password) in zip(parts[1:], named[1:], strict=True):
        if other_db != db:
            raise ValueError(f"{part!r} is database {other_db}, the first part {db}: kombu reads the database of "
                             f"the sentinel it uses, name the same one on every part")  # fmt: skip
        if (other_user, other_password) != (username, password):
            raise ValueError(f"{part!r} has other credentials than the first part: kombu reads those of the "
                             f"sentinel it uses, give the same on every part")  # fmt: skip
    return SentinelURL(sentinels=tuple(sentinels), db=db, username=username, password=password)


def sentinel_master_name() -> str:
    """The primary's name the sentinels monitor: SWARM_REDIS_SENTINEL_MASTER (Django settings when they are
    configured, else the environment; default "swarm")."""
    try:
        return settings.SWARM_REDIS_SENTINEL_MASTER
    except (ImproperlyConfigured, AttributeError):
        return os.environ.get("SWARM_REDIS_SENTINEL_MASTER", DEFAULT_SENTINEL_MASTER)


def redis_from_url(url: str, *, master: str | None = None, **kwargs: Any) -> redis.Redis:
    """A redis.Redis on `url` with the connection options `kwargs` (timeouts, retry, decode_responses...).

    redis://, rediss://, unix://: `redis.Redis.from_url`. sentinel:// (a list, see SentinelURL): a client of
    the primary that the sentinels name `master` (default SWARM_REDIS_SENTINEL_MASTER), with the URL's
    database and credentials. Each new connection asks the sentinels where the primary is (redis-py's
    SentinelConnectionPool); when it has moved (a failover), the idle connections to the old one are closed,
    and one that finds a demoted primary (READONLY) is closed and fails. The sentinels are asked with the
    connect timeout of the primary and without retries: a sentinel that does not answer is skipped."""
    if not is_sentinel_url(url):
        return redis.Redis.from_url(url, **kwargs)
    parsed = parse_sentinel_url(url)
    timeout = kwargs.get("socket_connect_timeout") or kwargs.get("socket_timeout")
    sentinel_kwargs: dict[str, Any] = {"retry": Retry(NoBackoff(), 0)}
    if timeout:  # a sentinel answers at once: its reads get the connect timeout, not a blocking read's
        sentinel_kwargs.update(socket_connect_timeout=timeout, socket_timeout=timeout)
    sentinel = redis.sentinel.Sentinel(list(parsed.sentinels), sentinel_kwargs=sentinel_kwargs)
    credentials = {"username": parsed.username, "password": parsed.password}
    return sentinel.master_for(
        master or sentinel_master_name(), db=parsed.db, **{k: v for k, v in credentials.items() if v}, **kwargs
    )


@lru_cache(maxsize=1)
def get_redis() -> redis.Redis:
    timeout = settings.SWARM_REDIS_TIMEOUT_S
    return redis_from_url(
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
    return redis_from_url(
        settings.REDIS_URL,
        socket_connect_timeout=settings.SWARM_REDIS_TIMEOUT_S,
        socket_timeout=BLOCK_SLICE_S + BLOCK_MARGIN_S,
        retry=Retry(NoBackoff(), 0),  # redis-py would otherwise retry a timed-out read several times
        decode_responses=True,
    )
