"""The lock API through Django's test client: 201 / 423 / 401 / 403 / 409, the JSON error shape."""

from __future__ import annotations

import os
import stat
import threading
import time

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from arbiter import lock
from tests.arbiter.conftest import TOKEN, auth

URL = "/api/swap/lock"


def take(client: Client, **body) -> object:
    return client.post(URL, {"holder": "tester", "ttl_s": 30, **body}, content_type="application/json", **auth())


def assert_error(response, status: int, kind: str) -> dict:
    assert response.status_code == status, response.content
    body = response.json()
    assert set(body["error"]) == {"message", "type", "param", "code"}
    assert body["error"]["type"] == kind
    return body


def test_post_takes_the_lock_and_get_shows_it_without_the_token(client):
    response = take(client, purpose="lora")
    assert response.status_code == 201
    lease = response.json()
    assert {"token", "fencing", "expires_at"} <= set(lease) and lease["holder"] == "tester"
    shown = client.get(URL)
    assert shown.status_code == 200
    body = shown.json()
    assert body["held"] and body["holder"] == "tester" and body["fencing"] == lease["fencing"]
    assert lease["token"] not in shown.content.decode() and "token" not in body


def test_a_second_taker_gets_423_with_holder_and_expiry(client):
    first = take(client).json()
    second = take(client, holder="intruder")
    body = assert_error(second, 423, "locked_error")
    assert body["holder"] == "tester" and body["expires_at"] == first["expires_at"]
    assert body["error"]["code"] == "lock_held"
    assert 1 <= int(second["Retry-After"]) <= 30


def test_twenty_concurrent_posts_one_201_nineteen_423():
    barrier = threading.Barrier(20)
    codes: list[int] = []

    def contender(n: int) -> None:
        c = Client()
        barrier.wait()
        codes.append(take(c, holder=f"c{n}").status_code)

    threads = [threading.Thread(target=contender, args=(n,)) for n in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    assert sorted(codes) == [201] + [423] * 19


def test_an_expired_lock_can_be_taken_over_http(client):
    assert take(client, ttl_s=1.0).status_code == 201
    assert take(client).status_code == 423
    time.sleep(1.2)
    assert take(client, holder="next").status_code == 201


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"HTTP_AUTHORIZATION": "Bearer wrong"},
        {"HTTP_X_SWARM_ARBITER_TOKEN": "wrong"},
        {"HTTP_AUTHORIZATION": f"Basic {TOKEN}"},
        {"HTTP_AUTHORIZATION": "Bearer"},
    ],
    ids=["missing", "wrong-bearer", "wrong-header", "not-bearer", "empty-bearer"],
)
def test_bad_token_is_401(client, headers):
    response = client.post(URL, {"holder": "x"}, content_type="application/json", **headers)
    assert_error(response, 401, "authentication_error")
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert not lock.status().held
    assert_error(client.delete(URL, {"token": "t"}, content_type="application/json", **headers), 401,
                 "authentication_error")  # fmt: skip


def test_the_token_header_alternative_works(client):
    response = client.post(URL, {"holder": "x"}, content_type="application/json", HTTP_X_SWARM_ARBITER_TOKEN=TOKEN)
    assert response.status_code == 201


def test_invalid_body_is_400(client):
    body = assert_error(take(client, ttl_s=0), 400, "invalid_request_error")
    assert body["error"]["param"] == "ttl_s"


def test_production_without_a_token_answers_503(client, settings):
    settings.SWARM_ARBITER_TOKEN = None
    settings.PRODUCTION = True
    body = assert_error(take(client), 503, "service_unavailable_error")
    assert "arbiter token not configured" in body["error"]["message"]
    response = client.post(URL, {}, content_type="application/json")
    assert_error(response, 503, "service_unavailable_error")


def test_locally_without_a_token_one_is_generated_into_var(client, settings, tmp_path):
    settings.SWARM_ARBITER_TOKEN = None
    settings.PRODUCTION = False
    settings.VAR_DIR = tmp_path
    assert_error(client.post(URL, {}, content_type="application/json"), 401, "authentication_error")
    path = tmp_path / "arbiter_token"
    generated = path.read_text().strip()
    assert len(generated) >= 40
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    ok = client.post(URL, {"holder": "x"}, content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {generated}")
    assert ok.status_code == 201
    assert path.read_text().strip() == generated  # generated once


def test_delete_with_the_lease_token_releases(client):
    lease = take(client).json()
    assert client.delete(URL, {"token": lease["token"]}, content_type="application/json", **auth()).status_code == 204
    assert not lock.status().held
    lease = take(client).json()
    assert client.delete(URL, HTTP_X_SWARM_LEASE_TOKEN=lease["token"], **auth()).status_code == 204
    assert not lock.status().held


def test_delete_with_the_wrong_lease_token_is_409(client):
    take(client)
    response = client.delete(URL, {"token": "not-mine"}, content_type="application/json", **auth())
    body = assert_error(response, 409, "conflict_error")
    assert body["error"]["code"] == "lock_not_held"
    assert lock.status().held
    assert_error(client.delete(URL, **auth()), 400, "invalid_request_error")  # no lease token at all


@pytest.fixture
def users(db):
    model = get_user_model()
    return (
        model.objects.create_user("staffer", password="pw", is_staff=True),
        model.objects.create_user("plain", password="pw"),
    )


def test_force_release_needs_a_staff_session(client, users):
    staff, plain = users
    take(client, holder="wedged")
    assert_error(client.delete(f"{URL}?force=true"), 403, "permission_error")  # anonymous
    assert_error(client.delete(f"{URL}?force=true", **auth()), 403, "permission_error")  # the token is not staff
    client.force_login(plain)
    assert_error(client.delete(f"{URL}?force=true"), 403, "permission_error")
    assert lock.status().held
    client.force_login(staff)
    assert client.delete(f"{URL}?force=true").status_code == 204
    assert not lock.status().held


def test_force_release_checks_csrf_for_the_session(users):
    staff, _ = users
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(staff)
    take(Client(), holder="wedged")
    response = browser.delete(f"{URL}?force=true")
    assert_error(response, 403, "permission_error")
    assert "CSRF" in response.json()["error"]["message"]
    assert lock.status().held


def test_force_does_not_bypass_the_token_elsewhere(client, users, db):
    staff, _ = users
    client.force_login(staff)
    assert_error(client.delete("/api/schedule/1?force=true"), 401, "authentication_error")


def test_redis_down_is_503(client, settings):
    settings.REDIS_URL = "redis://127.0.0.1:9/0"
    from swarm_site.redis_client import get_redis

    get_redis.cache_clear()
    assert_error(take(client), 503, "service_unavailable_error")
    assert_error(client.get(URL), 503, "service_unavailable_error")
