"""/admin/reload: GET shows what serves and changes nothing; changes are POST only, by the arbiter
token or a staff session that passes CSRF; never an anonymous caller, not even on loopback."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from rest_framework.test import APIClient

from tests.training.adapter_factory import passed, rejected
from training.models import ServingState
from training.serving import SERVING_KEY, read_snapshot

pytestmark = pytest.mark.django_db(transaction=True)

TOKEN = "reload-test-token"


@pytest.fixture(autouse=True)
def token(settings, api_redis):
    settings.SWARM_ARBITER_TOKEN = TOKEN


def loopback(**kwargs) -> APIClient:
    return APIClient(REMOTE_ADDR="127.0.0.1", **kwargs)


def operator_post(path: str, body: dict | None = None):
    return loopback().post(path, body, format="json", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")


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


# --- `latest` means the newest adapter that passed its gate; a rejected one takes force=true ------


def test_the_run_books_drill_skips_a_newer_adapter_that_failed_its_gate(api_redis):
    passed(1)
    rejected(2)  # the one-prompt dev_test adapter: 0.000 vs 0.025 on the held-out set
    response = operator_post("/admin/reload?lora=latest")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["stable"] == "lora-v1" and body["lora_version"] == 1 and body["forced"] is False
    assert body["gate"]["passed"] is True and body["gate"]["score"] == 0.05
    assert read_snapshot().stable.version == "lora-v1"


def test_latest_when_no_adapter_passed_is_a_404_that_says_so(api_redis):
    rejected(1)
    response = operator_post("/admin/reload?lora=latest")
    assert response.status_code == 404
    error = response.json()["error"]
    assert error["type"] == "not_found_error" and error["code"] == "no_adapter_passed_gate"
    assert "no adapter has passed its gate yet" in error["message"]
    assert "lora=base serves the base model" in error["message"]
    assert api_redis.get(SERVING_KEY) is None


def test_a_rejected_adapter_named_without_force_is_a_409(api_redis):
    rejected(1)
    for force in ({}, {"force": False}, {"force": "false"}):
        response = operator_post("/admin/reload", {"lora": "lora-v1", **force})
        assert response.status_code == 409, (force, response.content)
        error = response.json()["error"]
        assert error["type"] == "conflict_error" and error["code"] == "adapter_failed_gate" and error["param"] == "lora"
        assert "lora-v1 failed its gate (accuracy 0.000 vs 0.025 (base) on the held-out set)" in error["message"]
        assert "force=true" in error["message"]
    assert api_redis.get(SERVING_KEY) is None


def test_force_in_the_query_serves_it_says_so_and_logs_the_token(api_redis, caplog):
    passed(1)
    rejected(2)
    with caplog.at_level("WARNING", logger="training.rollout"):
        response = operator_post("/admin/reload?lora=lora-v2&force=true")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["stable"] == "lora-v2" and body["lora_version"] == 1 and body["forced"] is True
    gate = body["gate"]
    assert gate["passed"] is False and gate["score"] == 0.0 and gate["threshold"] == 0.025
    assert gate["eval_set"] == "heldout" and gate["against"] == "base"
    assert read_snapshot().stable.version == "lora-v2"
    [warning] = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert "lora-v2" in warning and "arbiter token" in warning and "failed its gate" in warning
    # the next `latest` goes back to the newest adapter that passed
    assert operator_post("/admin/reload?lora=latest").json()["stable"] == "lora-v1"


def test_force_in_the_body_from_a_staff_session_logs_the_user(api_redis, caplog):
    rejected(1)
    staff = get_user_model().objects.create_user("ops", password="pw-ops-1234", is_staff=True)
    client = loopback()
    client.force_login(staff)
    with caplog.at_level("WARNING", logger="training.rollout"):
        response = client.post("/admin/reload", {"lora": "lora-v1", "force": True}, format="json")
    assert response.status_code == 200 and response.json()["forced"] is True
    assert any("'ops'" in r.getMessage() and "lora-v1" in r.getMessage() for r in caplog.records)


def test_force_must_be_true_or_false(api_redis):
    rejected(1)
    response = operator_post("/admin/reload", {"lora": "lora-v1", "force": "please"})
    assert response.status_code == 400 and response.json()["error"]["param"] == "force"
    assert api_redis.get(SERVING_KEY) is None


def test_the_admin_action_refuses_an_adapter_that_failed_its_gate(api_redis, admin_client):
    """The admin's "serve to everyone" action says why, and changes nothing; a passing one is served."""
    bad, good = rejected(1), passed(2)
    url = "/admin/training/adapterversion/"
    page = admin_client.post(url, {"action": "make_stable", "_selected_action": [bad.pk]}, follow=True)
    assert "failed its gate" in page.content.decode() and read_snapshot().stable.version == "base"
    page = admin_client.post(url, {"action": "make_stable", "_selected_action": [good.pk]}, follow=True)
    assert "failed its gate" not in page.content.decode() and read_snapshot().stable.version == "lora-v2"
