"""The access policy through the real views, database and Redis: keys, anonymous loopback, proxies, limits."""

from __future__ import annotations

import time
from functools import partial

import pytest
from rest_framework.test import APIClient

from access.authentication import client_address, is_cross_site
from access.services import SlotsFull, api_key_create, api_key_rotate, slot_acquire

pytestmark = pytest.mark.django_db

BODY = {"prompt": "hi", "max_tokens": 8}


def call(path: str = "/orchestrate", body=None, *, remote: str = "127.0.0.1", key: str | None = None, **headers):
    client = APIClient(REMOTE_ADDR=remote)
    if key:
        headers["HTTP_AUTHORIZATION"] = f"Bearer {key}"
    if body is None:
        return client.get(path, **headers)
    return client.post(path, body, format="json", **headers)


def assert_error(response, status: int, kind: str) -> dict:
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/json")
    error = response.json()["error"]
    assert error["type"] == kind and error["message"]
    return error


@pytest.mark.parametrize("path", ["/orchestrate", "/vote", "/hybrid", "/v1/chat/completions"])
def test_a_caller_off_loopback_needs_a_key(path, api_redis):
    body = {"query": "hi"} if path == "/hybrid" else BODY
    if path.startswith("/v1"):
        body = {"model": "swarm-auto", "messages": [{"role": "user", "content": "hi"}]}
    error = assert_error(call(path, body, remote="203.0.113.9"), 401, "authentication_error")
    assert "API key" in error["message"]


@pytest.mark.parametrize("path", ["/api/stats", "/v1/models"])
def test_reads_need_a_key_too(path, api_redis):
    assert_error(call(path, remote="203.0.113.9"), 401, "authentication_error")


def test_a_wrong_key_is_refused_even_on_loopback(api_redis):
    error = assert_error(call(body=BODY, key="sk-swarm-not-a-key"), 401, "authentication_error")
    assert error["code"] == "invalid_api_key"


def test_anonymous_loopback_only_in_the_local_default(api_redis, settings):
    # Admitted, then held to the anonymous max_tokens cap: a 400 before any work is queued.
    response = call(body={"prompt": "hi", "max_tokens": settings.SWARM_ANON_MAX_TOKENS + 1})
    error = assert_error(response, 400, "invalid_request_error")
    assert error["param"] == "max_tokens" and "without an API key" in error["message"]
    settings.SWARM_ALLOW_ANONYMOUS_LOOPBACK = False
    assert_error(call(body=BODY), 401, "authentication_error")


@pytest.mark.parametrize(
    "headers",
    [
        {"HTTP_X_FORWARDED_FOR": "198.51.100.7"},  # a proxy on this host forwarded it
        {"HTTP_X_REAL_IP": "198.51.100.7"},
        {"HTTP_FORWARDED": "for=198.51.100.7"},
        {"HTTP_SEC_FETCH_SITE": "cross-site"},  # a page of another site, in the user's browser
        {"HTTP_ORIGIN": "http://evil.example"},
        {"HTTP_ORIGIN": "null"},
    ],
)
def test_proxied_or_cross_site_traffic_is_never_taken_for_loopback(headers, api_redis):
    assert_error(call(body=BODY, **headers), 401, "authentication_error")


def test_a_same_origin_page_on_loopback_is_admitted(api_redis, settings):
    response = call(body={"prompt": "hi", "max_tokens": 10_000}, HTTP_ORIGIN="http://testserver",
                    HTTP_SEC_FETCH_SITE="same-origin")  # fmt: skip
    assert response.status_code == 400  # admitted; refused only for its max_tokens


class FakeRequest:
    def __init__(self, remote: str, **meta: str) -> None:
        self.META = {"REMOTE_ADDR": remote, **meta}


def test_forwarded_for_is_read_only_from_trusted_proxies(settings):
    settings.SWARM_TRUSTED_PROXIES = ["10.0.0.0/8", "::1"]
    # Not a trusted proxy: its header is ignored.
    assert client_address(FakeRequest("203.0.113.9", HTTP_X_FORWARDED_FOR="127.0.0.1")) == "203.0.113.9"
    # A trusted proxy: the nearest untrusted hop, read right to left (the client wrote what is left of it).
    chain = "127.0.0.1, 198.51.100.7, 10.0.0.3"
    assert client_address(FakeRequest("10.0.0.2", HTTP_X_FORWARDED_FOR=chain)) == "198.51.100.7"
    assert client_address(FakeRequest("::1", HTTP_X_FORWARDED_FOR="198.51.100.8")) == "198.51.100.8"
    assert client_address(FakeRequest("10.0.0.2", HTTP_X_FORWARDED_FOR="not-an-ip")) == "not-an-ip"
    assert client_address(FakeRequest("10.0.0.2")) == "10.0.0.2"


def test_a_trusted_proxy_on_loopback_does_not_make_its_clients_anonymous_loopback(api_redis, settings):
    settings.SWARM_TRUSTED_PROXIES = ["127.0.0.1"]
    assert_error(call(body=BODY, HTTP_X_FORWARDED_FOR="198.51.100.7"), 401, "authentication_error")
    assert_error(call(body=BODY), 401, "authentication_error")  # even with the header stripped


def test_cross_site_detection():
    assert is_cross_site(FakeRequest("127.0.0.1", HTTP_ORIGIN="http://evil.example", HTTP_HOST="127.0.0.1:8000"))
    assert not is_cross_site(FakeRequest("127.0.0.1", HTTP_ORIGIN="http://127.0.0.1:8000", HTTP_HOST="127.0.0.1:8000"))
    assert not is_cross_site(FakeRequest("127.0.0.1"))


def test_requests_per_minute_per_key_then_429_with_retry_after(api_redis):
    limited = api_key_create(name="limited", rate_limit_per_minute=3).raw
    other = api_key_create(name="other", rate_limit_per_minute=3).raw
    statuses = [call("/v1/models", key=limited).status_code for _ in range(5)]
    assert statuses == [200, 200, 200, 429, 429]
    response = call("/v1/models", key=limited)
    error = assert_error(response, 429, "rate_limit_error")
    assert error["code"] == "rate_limit_exceeded" and "3 requests per minute" in error["message"]
    assert 1 <= int(response["Retry-After"]) <= 60
    assert call("/v1/models", key=other).status_code == 200  # one key's limit is its own


def test_anonymous_callers_are_limited_per_address(api_redis, settings):
    settings.SWARM_ANON_RATE_PER_MINUTE = 2
    statuses = [call("/v1/models").status_code for _ in range(3)]
    assert statuses == [200, 200, 429]


def test_concurrent_generation_slots(api_redis):
    first = slot_acquire(identity="key:1", limit=2, hold_s=60)
    second = slot_acquire(identity="key:1", limit=2, hold_s=60)
    with pytest.raises(SlotsFull) as full:
        slot_acquire(identity="key:1", limit=2, hold_s=60)
    assert 1 <= full.value.wait <= 5
    assert slot_acquire(identity="key:2", limit=2, hold_s=60) is not None  # per caller
    first.release()
    first.release()  # twice is harmless
    assert slot_acquire(identity="key:1", limit=2, hold_s=60) is not None
    second.release()
    assert slot_acquire(identity="key:9", limit=0, hold_s=60) is None  # 0: no limit


def test_a_slot_held_by_a_process_that_died_expires(api_redis):
    slot_acquire(identity="key:3", limit=1, hold_s=0.2)  # never released
    with pytest.raises(SlotsFull):
        slot_acquire(identity="key:3", limit=1, hold_s=60)
    time.sleep(0.3)
    assert slot_acquire(identity="key:3", limit=1, hold_s=60) is not None


def test_a_rotated_key_stops_working_at_once(api_redis):
    new = api_key_create(name="rotating", rate_limit_per_minute=0)
    assert call("/v1/models", key=new.raw).status_code == 200
    rotated = api_key_rotate(key=new.key)
    assert_error(call("/v1/models", key=new.raw), 401, "authentication_error")
    assert call("/v1/models", key=rotated.raw).status_code == 200


def test_health_stays_open(api_redis):
    assert call("/health", remote="203.0.113.9").status_code in (200, 503)  # never 401


def test_a_staff_session_is_a_caller_a_plain_session_is_not(api_redis):
    from django.contrib.auth import get_user_model

    from access.authentication import is_staff

    staff = get_user_model().objects.create_user("ops", password="pw-ops-1234", is_staff=True)
    client = APIClient(REMOTE_ADDR="203.0.113.9")
    client.force_login(staff)
    assert client.get("/v1/models").status_code == 200  # no key needed off loopback
    plain = get_user_model().objects.create_user("someone", password="pw-someone-1234")
    other = APIClient(REMOTE_ADDR="203.0.113.9")
    other.force_login(plain)
    assert other.get("/v1/models").status_code == 401  # a session alone is not enough

    class Req:
        def __init__(self, user):
            self.user = user

    assert is_staff(Req(staff)) and not is_staff(Req(plain))


def test_last_used_is_written_once_a_minute_not_on_every_request(django_assert_num_queries, settings):
    from datetime import timedelta

    settings.SWARM_KEY_CACHE_S = 0  # every request reads the key (tests/access/test_key_cache.py: held keys)
    from access.models import ApiKey
    from access.services import api_key_authenticate

    new = api_key_create(name="busy")
    with django_assert_num_queries(2):  # the read, and the first use written
        assert api_key_authenticate(raw=new.raw).pk == new.key.pk
    with django_assert_num_queries(1):  # the read only: a second request within the minute writes nothing
        assert api_key_authenticate(raw=new.raw).pk == new.key.pk
    ApiKey.objects.filter(pk=new.key.pk).update(last_used_at=ApiKey.objects.get(pk=new.key.pk).last_used_at
                                                - timedelta(minutes=2))  # fmt: skip
    with django_assert_num_queries(2):
        api_key_authenticate(raw=new.raw)


def test_the_rate_and_the_concurrency_are_checked_together(api_redis):
    from access.services import RateExceeded, caller_admit

    now = time.time() // 60 * 60 + 30  # the middle of a minute: all four in one window
    admit = partial(caller_admit, identity="key:41", rate_limit=3, hold_s=60, now=now)
    slot = admit(slot_limit=1)
    assert slot is not None and api_redis.zcard("slots:key:41") == 1
    with pytest.raises(SlotsFull):  # the one slot is held
        admit(slot_limit=1)
    assert admit(slot_limit=0) is None  # a read: counted, no slot
    with pytest.raises(RateExceeded) as over:  # the fourth request of the minute
        admit(slot_limit=0)
    assert over.value.wait == 30
    slot.release()
    assert api_redis.zcard("slots:key:41") == 0 and int(api_redis.get(f"ratelimit:key:41:{int(now // 60)}")) == 4
