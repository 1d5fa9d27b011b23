"""Shared fixtures. Integration stacks talk to the real Redis (DB 13) or a private redis-server."""

from __future__ import annotations

import os

import pytest
import redis

from tests.stack import PrivateRedis, Stack

TEST_REDIS_URL = os.environ.get("SWARM_TEST_REDIS_URL", "redis://127.0.0.1:6379/13")


@pytest.fixture(scope="session")
def shared_redis_url() -> str:
    client = redis.Redis.from_url(TEST_REDIS_URL)
    client.ping()
    client.flushdb()
    return TEST_REDIS_URL


@pytest.fixture(scope="session")
def stack(shared_redis_url):
    """The main stack: gunicorn + serving worker (real model) + bookkeeping worker."""
    s = Stack.build(redis_url=shared_redis_url, SWARM_ALLOW_ANONYMOUS_LOOPBACK="false")
    try:
        yield s.start()
    finally:
        s.stop()


@pytest.fixture(scope="session")
def api_key(stack) -> str:
    """A key on the main stack (which, unlike the local default, refuses anonymous calls); no limits."""
    return stack.key


@pytest.fixture(scope="module")
def module_redis():
    server = PrivateRedis()
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def private_redis():
    server = PrivateRedis()
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def api_redis(shared_redis_url, settings):
    """The API's own Redis client (rate counters, slots, serving state) on the tests' database, emptied."""
    from swarm_site.redis_client import get_redis

    settings.REDIS_URL = shared_redis_url
    get_redis.cache_clear()
    client = get_redis()
    client.flushdb()
    yield client
    get_redis.cache_clear()
