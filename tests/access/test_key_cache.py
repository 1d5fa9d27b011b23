"""The web process's key cache (access/key_cache.py) on the real database and Redis: a key seen is not
read again, and any change to a key (here or in another process) ends it at once."""

from __future__ import annotations

import time

import pytest
import redis

from access.key_cache import CHANNEL, key_cache
from access.models import ApiKey
from access.services import api_key_authenticate, api_key_create, api_key_rotate
from tests.stack import free_port

pytestmark = pytest.mark.django_db(transaction=True)  # the change is published once its transaction commits


@pytest.fixture
def listening(api_redis):
    key_cache.reset()
    assert key_cache.wait_ready(5), "the key cache subscribes to Redis"
    yield api_redis
    key_cache.reset()


def eventually(predicate, timeout: float = 3.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return False


def test_a_key_seen_is_not_read_again(listening, django_assert_num_queries):
    new = api_key_create(name="hot", rate_limit_per_minute=0)
    with django_assert_num_queries(2):  # the read, and the first use recorded
        assert api_key_authenticate(raw=new.raw).pk == new.key.pk
    with django_assert_num_queries(0):
        for _ in range(5):
            assert api_key_authenticate(raw=new.raw).pk == new.key.pk


def test_a_change_published_by_another_process_ends_it(listening):
    new = api_key_create(name="revoked elsewhere", rate_limit_per_minute=0)
    held = api_key_create(name="held", rate_limit_per_minute=0)
    assert api_key_authenticate(raw=held.raw) is not None
    assert api_key_authenticate(raw=new.raw) is not None
    ApiKey.objects.filter(pk=new.key.pk).update(revoked=True)  # another process's change: no signal here
    assert api_key_authenticate(raw=new.raw) is not None  # still held: nothing said it changed
    api_key_create(name="another new key")  # a creation elsewhere changes nothing held
    assert api_key_authenticate(raw=new.raw) is not None
    listening.publish(CHANNEL, "1")  # what that process publishes after its commit
    assert eventually(lambda: api_key_authenticate(raw=new.raw) is None)


def test_a_save_here_ends_it_at_once_and_tells_the_others(listening):
    other = redis.Redis.from_url(_url(listening))
    pubsub = other.pubsub()
    pubsub.subscribe(CHANNEL)
    assert eventually(lambda: (pubsub.get_message(timeout=0.1) or {}).get("type") == "subscribe")
    new = api_key_create(name="rotated", rate_limit_per_minute=0)
    assert api_key_authenticate(raw=new.raw) is not None
    rotated = api_key_rotate(key=ApiKey.objects.get(pk=new.key.pk))
    assert api_key_authenticate(raw=new.raw) is None  # at once, in this process
    assert api_key_authenticate(raw=rotated.raw).pk == new.key.pk
    assert eventually(lambda: (pubsub.get_message(timeout=0.1) or {}).get("type") == "message")
    pubsub.close()


def test_the_admin_bulk_revoke_ends_it(listening, rf):
    from django.contrib.admin.sites import site

    from access.admin import ApiKeyAdmin

    new = api_key_create(name="bulk", rate_limit_per_minute=0)
    assert api_key_authenticate(raw=new.raw) is not None
    ApiKeyAdmin(ApiKey, site).revoke(rf.post("/"), ApiKey.objects.filter(pk=new.key.pk))
    assert api_key_authenticate(raw=new.raw) is None


def test_unknown_secrets_are_never_held(listening, django_assert_num_queries):
    for _ in range(3):
        with django_assert_num_queries(1):
            assert api_key_authenticate(raw="sk-swarm-not-a-key") is None


def test_without_the_subscription_every_request_reads_the_store(api_redis, settings, django_assert_num_queries):
    settings.REDIS_URL = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    key_cache.reset()
    try:
        new = api_key_create(name="cold", rate_limit_per_minute=0)
        assert not key_cache.wait_ready(0.5)
        api_key_authenticate(raw=new.raw)
        with django_assert_num_queries(1):
            assert api_key_authenticate(raw=new.raw).pk == new.key.pk
    finally:
        key_cache.reset()


def test_zero_seconds_turns_it_off(listening, settings, django_assert_num_queries):
    settings.SWARM_KEY_CACHE_S = 0
    new = api_key_create(name="uncached", rate_limit_per_minute=0)
    api_key_authenticate(raw=new.raw)
    with django_assert_num_queries(1):
        api_key_authenticate(raw=new.raw)


def _url(client: redis.Redis) -> str:
    kwargs = client.connection_pool.connection_kwargs
    return f"redis://{kwargs.get('host', '127.0.0.1')}:{kwargs.get('port', 6379)}/{kwargs.get('db', 0)}"
