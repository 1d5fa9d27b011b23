"""/admin/reload: GET shows what serves and changes nothing; changes are POST only, by the arbiter
token or a staff session that passes CSRF; never an anonymous caller, not even on loopback."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from rest_framework.test import APIClient

from training.models import ServingState
from training.serving import SERVING_KEY

pytestmark = pytest.mark.django_db(transaction=True)

TOKEN = "reload-test-token"


@pytest.fixture(autouse=True)
def token(settings, api_redis):
    settings.SWARM_ARBITER_TOKEN = TOKEN


def loopback(**kwargs) -> APIClient:
    return APIClient(REMOTE_ADDR="127.0.0.1", **kwargs)


def test_a_cross_site_get_from_loopback_changes_nothing(api_redis):
    response = loopback().get("/admin/reload?lora=base", HTTP_ORIGIN="http://evil.example",
                              HTTP_SEC_FETCH_SITE="cross-site")  # fmt: skip
    assert response.status_code in (401, 403, 405)
    assert response["Content-Type"].startswith("application/json")
    assert api_redis.get(SERVING_KEY) is None
    assert not ServingState.objects.exists()


def test_get_with_a_change_is_refused_even_with_the_token(api_redis):
    response = loopback().get("/admin/reload?lora=base", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert response.status_code == 405 and "POST" in response.json()["error"]["message"]
    assert api_redis.get(SERVING_KEY) is None


def test_get_shows_what_serves_and_writes_nothing(api_redis):
    response = loopback().get("/admin/reload", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert response.status_code == 200
    assert response.json() == {"lora_version": 0, "stable": "base", "canary": None, "canary_weight": 0}
    assert api_redis.get(SERVING_KEY) is None and not ServingState.objects.exists()


def test_anonymous_loopback_may_not_change_what_serves(api_redis):
    response = loopback().post("/admin/reload", {"lora": "base"}, format="json")
    assert response.status_code == 401
    assert api_redis.get(SERVING_KEY) is None


def test_the_token_changes_it_by_post(api_redis):
    response = loopback().post("/admin/reload", {"lora": "base"}, format="json",
                               HTTP_AUTHORIZATION=f"Bearer {TOKEN}")  # fmt: skip
    assert response.status_code == 200 and response.json()["stable"] == "base"
    assert api_redis.get(SERVING_KEY) is not None


def test_a_staff_session_must_pass_csrf(api_redis):
    staff = get_user_model().objects.create_user("ops", password="pw-ops-1234", is_staff=True)
    client = loopback(enforce_csrf_checks=True)
    client.force_login(staff)
    refused = client.post("/admin/reload", {"lora": "base"}, format="json")
    assert refused.status_code == 403 and "CSRF" in refused.json()["error"]["message"]
    assert api_redis.get(SERVING_KEY) is None
    client.get("/admin/")  # a page of the admin sets the CSRF cookie (its logout form)
    csrf = client.cookies["csrftoken"].value
    accepted = client.post("/admin/reload", {"lora": "base"}, format="json", HTTP_X_CSRFTOKEN=csrf)
    assert accepted.status_code == 200


def test_a_session_user_who_is_not_staff_is_refused(api_redis):
    user = get_user_model().objects.create_user("someone", password="pw-someone-1234")
    client = loopback()
    client.force_login(user)
    assert client.post("/admin/reload", {"lora": "base"}, format="json").status_code == 403
