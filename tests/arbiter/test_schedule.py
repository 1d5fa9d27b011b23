"""The schedule registry: the API writes (with the token), everyone reads; admin only shows."""

from __future__ import annotations

import pytest

from arbiter import lock
from arbiter.models import ScheduledJob
from tests.arbiter.conftest import auth

pytestmark = pytest.mark.django_db

URL = "/api/schedule"
NIGHTLY = {"name": "lora-nightly", "kind": "lora-nightly", "cron": "0 3 * * *", "owner": "trainer",
           "notes": "distil yesterday's UNSURE answers"}  # fmt: skip


def create(client, body=NIGHTLY, **headers):
    return client.post(URL, body, content_type="application/json", **(headers or auth()))


def test_crud(client):
    created = create(client)
    assert created.status_code == 201, created.content
    job = created.json()
    assert job["name"] == "lora-nightly" and job["schedule"] == "cron 0 3 * * *" and job["created_at"]
    once = create(client, {"name": "mine-once", "kind": "mining", "when": "2026-12-01T02:00:00Z", "owner": "miner"})
    assert once.status_code == 201
    listed = client.get(URL)
    assert listed.status_code == 200 and [j["name"] for j in listed.json()] == ["lora-nightly", "mine-once"]
    assert client.get(f"{URL}/{job['id']}").json()["owner"] == "trainer"
    assert client.delete(f"{URL}/{job['id']}", **auth()).status_code == 204
    assert list(ScheduledJob.objects.values_list("name", flat=True)) == ["mine-once"]
    missing = client.get(f"{URL}/{job['id']}")
    assert missing.status_code == 404 and missing.json()["error"]["type"] == "not_found_error"


def test_writes_need_the_token_reads_do_not(client):
    refused = create(client, HTTP_AUTHORIZATION="Bearer wrong")
    assert refused.status_code == 401 and refused.json()["error"]["type"] == "authentication_error"
    assert client.post(URL, NIGHTLY, content_type="application/json").status_code == 401
    job = create(client).json()
    assert client.delete(f"{URL}/{job['id']}").status_code == 401
    assert client.get(URL).status_code == 200 and client.get(f"{URL}/{job['id']}").status_code == 200
    assert ScheduledJob.objects.count() == 1


@pytest.mark.parametrize(
    ("body", "param"),
    [({**NIGHTLY, "cron": "99 * * * *"}, "cron"), ({**NIGHTLY, "cron": "0 3 * *"}, "cron"),
     ({**NIGHTLY, "cron": ""}, None), ({**NIGHTLY, "kind": "gaming"}, "kind"), ({**NIGHTLY, "owner": ""}, "owner")],
)  # fmt: skip
def test_invalid_entries_are_400(client, body, param):
    response = create(client, body)
    assert response.status_code == 400, response.content
    assert response.json()["error"]["param"] == param
    assert not ScheduledJob.objects.exists()


def test_duplicate_names_are_400(client):
    create(client)
    assert create(client).status_code == 400


@pytest.fixture
def job():
    return ScheduledJob.objects.create(**NIGHTLY)


def test_admin_is_read_only(admin_client, job):
    base = "/admin/arbiter/scheduledjob/"
    assert admin_client.get(base).status_code == 200
    assert admin_client.get(f"{base}{job.pk}/change/").status_code == 200  # inspect
    assert admin_client.get(f"{base}add/").status_code == 403
    assert admin_client.post(f"{base}{job.pk}/change/", {**NIGHTLY, "owner": "x"}).status_code == 403
    assert admin_client.post(f"{base}{job.pk}/delete/", {"post": "yes"}).status_code == 403
    page = admin_client.get(base).content.decode()
    assert "delete_selected" not in page
    assert ScheduledJob.objects.get().owner == "trainer"


def test_admin_shows_the_lock_holder(admin_client, job):
    free = admin_client.get("/admin/arbiter/scheduledjob/").content.decode()
    assert "The GPU lock is free." in free
    lock.acquire("trainer@box", 60, "lora-nightly")
    held = admin_client.get("/admin/arbiter/scheduledjob/").content.decode()
    assert "held by &#x27;trainer@box&#x27; for &#x27;lora-nightly&#x27;" in held
