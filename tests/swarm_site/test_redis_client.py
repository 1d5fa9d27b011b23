"""swarm_site/redis_client.py: Sentinel URLs read as kombu and Celery read them, and the one client factory.
No server: the clients are made, not connected. What a Sentinel URL sets for Celery: test_settings.py."""

from __future__ import annotations

import pytest
import redis
import redis.sentinel
from django.core.exceptions import ImproperlyConfigured

from swarm_site.env import env_broker_url, env_redis_url
from swarm_site.redis_client import SentinelURL, is_sentinel_url, parse_sentinel_url, redis_from_url

THREE = "sentinel://10.0.0.1:26379;sentinel://10.0.0.2:26379;sentinel://10.0.0.3:26379/0"


def test_the_documented_form_names_three_sentinels_and_database_0():
    assert is_sentinel_url(THREE) and not is_sentinel_url("redis://127.0.0.1:6379/0")
    assert parse_sentinel_url(THREE) == SentinelURL(
        sentinels=(("10.0.0.1", 26379), ("10.0.0.2", 26379), ("10.0.0.3", 26379)), db=0
    )


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("sentinel://h1", SentinelURL(sentinels=(("h1", 26379),))),  # the default port
        ("sentinel://h1:26380/3;sentinel://h2:26381/3", SentinelURL(sentinels=(("h1", 26380), ("h2", 26381)), db=3)),
        ("sentinel://h1/0;sentinel://h2", SentinelURL(sentinels=(("h1", 26379), ("h2", 26379)), db=0)),
        (
            "sentinel://:s%40cret@h1:26379/2;sentinel://:s%40cret@h2:26379/2",
            SentinelURL(sentinels=(("h1", 26379), ("h2", 26379)), db=2, password="s@cret"),
        ),
        (
            "sentinel://app:pw@h1;sentinel://app:pw@h2",
            SentinelURL(sentinels=(("h1", 26379), ("h2", 26379)), username="app", password="pw"),
        ),
        ("sentinel://[::1]:26379", SentinelURL(sentinels=(("::1", 26379),))),
    ],
)
def test_every_part_names_the_same_database_and_credentials(url, expected):
    assert parse_sentinel_url(url) == expected


@pytest.mark.parametrize(
    ("url", "says"),
    [
        # kombu moves to the next part when a sentinel is down, and reads that part's database and password.
        ("sentinel://h1;sentinel://h2/3", "is database 3, the first part 0"),
        ("sentinel://h1/3;sentinel://h2", "is database 0, the first part 3"),
        ("sentinel://h1/1;sentinel://h2/2", "is database 2"),
        ("sentinel://:a@h1;sentinel://:b@h2", "other credentials"),
        ("sentinel://:a@h1;sentinel://h2", "other credentials"),
        ("sentinel://h1;redis://h2:6379/0", "not a sentinel:// address"),
        ("sentinel://h1;;sentinel://h2", "empty sentinel"),
        ("sentinel://h1/zero", "must be a number"),
        ("sentinel://h1:port", "bad port"),
        ("sentinel:///0", "names no host"),
    ],
)
def test_a_list_kombu_would_read_otherwise_on_another_sentinel_is_refused(url, says):
    with pytest.raises(ValueError, match=says):
        parse_sentinel_url(url)


def test_settings_refuse_a_bad_sentinel_url_naming_the_variable(monkeypatch):
    monkeypatch.setenv("REDIS_URL", "sentinel://h1;sentinel://h2/3")
    with pytest.raises(ImproperlyConfigured, match=r"REDIS_URL=.*is database 3"):
        env_redis_url("REDIS_URL", "redis://127.0.0.1:6379/0")
    monkeypatch.setenv("CELERY_BROKER_URL", "sentinel://h1;redis://h2")
    with pytest.raises(ImproperlyConfigured, match="CELERY_BROKER_URL="):
        env_broker_url("CELERY_BROKER_URL", "redis://127.0.0.1:6379/0")
    monkeypatch.setenv("REDIS_URL", THREE)
    assert env_redis_url("REDIS_URL", "redis://127.0.0.1:6379/0") == THREE


def test_a_redis_url_gives_a_plain_client_with_the_options():
    client = redis_from_url("redis://127.0.0.1:6390/4", socket_timeout=0.5, decode_responses=True)
    pool = client.connection_pool
    assert type(pool) is redis.ConnectionPool
    kwargs = pool.connection_kwargs
    assert (kwargs["host"], kwargs["port"], kwargs["db"], kwargs["socket_timeout"]) == ("127.0.0.1", 6390, 4, 0.5)


def test_a_sentinel_url_gives_a_client_of_the_named_primary():
    client = redis_from_url(
        "sentinel://:pw@10.0.0.1:26379/5;sentinel://:pw@10.0.0.2:26380/5",
        master="swarm-main",
        socket_connect_timeout=0.5,
        socket_timeout=2.5,
        decode_responses=True,
    )
    pool = client.connection_pool
    assert isinstance(pool, redis.sentinel.SentinelConnectionPool)
    assert pool.service_name == "swarm-main" and pool.is_master
    kwargs = pool.connection_kwargs
    assert (kwargs["db"], kwargs["password"], kwargs["socket_timeout"], kwargs["decode_responses"]) == (
        5, "pw", 2.5, True)  # fmt: skip
    sentinels = pool.sentinel_manager.sentinels
    assert [(s.connection_pool.connection_kwargs["host"], s.connection_pool.connection_kwargs["port"])
            for s in sentinels] == [("10.0.0.1", 26379), ("10.0.0.2", 26380)]  # fmt: skip
    for sentinel in sentinels:  # asked with the connect timeout and no retries: a silent one is skipped at once
        options = sentinel.connection_pool.connection_kwargs
        assert options["socket_timeout"] == options["socket_connect_timeout"] == 0.5
        assert options["retry"].get_retries() == 0
        assert "password" not in options or options["password"] is None  # the password is the primary's


def test_the_master_name_defaults_to_the_setting(settings):
    settings.SWARM_REDIS_SENTINEL_MASTER = "from-settings"
    assert redis_from_url(THREE).connection_pool.service_name == "from-settings"
