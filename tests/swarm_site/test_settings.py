"""Settings come from the environment; a bad value is a startup error naming the variable."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _start(**env: str) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("SWARM_", "DJANGO_", "SECRET_KEY", "DATABASE"))}
    return subprocess.run(
        [sys.executable, "-c", "import django; django.setup(); from django.conf import settings; "
                               "print(settings.DATABASES['default']['ENGINE'])"],
        cwd=ROOT, env={**base, "DJANGO_SETTINGS_MODULE": "swarm_site.settings", **env},
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({"SWARM_DEADLINE_S": "soon"}, "SWARM_DEADLINE_S"),
        ({"DJANGO_DEBUG": "maybe"}, "DJANGO_DEBUG"),
        ({"SWARM_MAX_PROMPT_CHARS": "0"}, "SWARM_MAX_PROMPT_CHARS"),
        ({"REDIS_URL": "http://nope"}, "REDIS_URL"),
        ({"DATABASE_URL": "nosuchdb://x"}, "DATABASE_URL"),
        ({"SWARM_ENV": "staging"}, "SWARM_ENV"),
        ({"SWARM_ENV": "production"}, "SECRET_KEY"),
        (
            {
                "SWARM_ENV": "production",
                "SECRET_KEY": "x9-Qw7_Lm3vT8zR2pK6nB4yH1cF5dJ0gS7aE3uW9iO2lZ8qX6vN4",
                "SWARM_ALLOW_ANONYMOUS_LOOPBACK": "true",
            },
            "SWARM_ALLOW_ANONYMOUS_LOOPBACK",
        ),
        ({"SWARM_TRUSTED_PROXIES": "10.0.0.0/8,nginx"}, "SWARM_TRUSTED_PROXIES"),
        ({"REDIS_URL": "sentinel://h1;sentinel://h2/3"}, "REDIS_URL"),  # kombu would read database 0 on h1
        ({"SWARM_REDIS_REPLICA_ACK_TIMEOUT_MS": "500"}, "SWARM_REDIS_REPLICA_ACK_TIMEOUT_MS"),  # the 0.5 s timeout
        ({"SWARM_REDIS_MIN_REPLICAS_ACK": "-1"}, "SWARM_REDIS_MIN_REPLICAS_ACK"),
    ],
)
def test_a_bad_value_is_a_startup_error_naming_the_variable(env, variable):
    proc = _start(**env)
    assert proc.returncode != 0
    assert "ImproperlyConfigured" in proc.stderr and variable in proc.stderr.splitlines()[-1]


def test_embedded_default_is_sqlite_and_production_starts_with_a_key():
    assert _start().stdout.strip() == "django.db.backends.sqlite3"
    strong_key = "x9-Qw7_Lm3vT8zR2pK6nB4yH1cF5dJ0gS7aE3uW9iO2lZ8qX6vN4"  # production refuses a weak one
    assert _start(SWARM_ENV="production", SECRET_KEY=strong_key).returncode == 0


def test_database_url_switches_to_postgresql():
    assert _start(DATABASE_URL="postgres://postgres@127.0.0.1:5432/postgres").stdout.strip() == (
        "django.db.backends.postgresql"
    )


SHOW_CELERY = """
import json, django
django.setup()
from django.conf import settings
from swarm_site.celery import app
backend = app.backend
print(json.dumps({
    "broker": app.conf.broker_transport_options,
    "backend_options": app.conf.result_backend_transport_options,
    "backend": type(backend).__name__,
    "backend_master": backend._transport_options.get("master_name"),
    "pool": type(backend.client.connection_pool).__name__,
    "service": getattr(backend.client.connection_pool, "service_name", None),
    "db": backend.client.connection_pool.connection_kwargs.get("db"),
}))
"""


def _celery_view(**env: str) -> dict:
    """Celery's view of the settings in a new process with `env`."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("SWARM_", "DJANGO_", "CELERY_", "REDIS_URL"))}
    done = subprocess.run([sys.executable, "-c", SHOW_CELERY], cwd=ROOT, capture_output=True, text=True, timeout=60,
                          env={**base, "DJANGO_SETTINGS_MODULE": "swarm_site.settings", **env})  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_celery_finds_the_primary_by_name_through_the_sentinels():
    url = "sentinel://127.0.0.1:26390/2;sentinel://127.0.0.1:26391/2"
    view = _celery_view(REDIS_URL=url, SWARM_REDIS_SENTINEL_MASTER="main", SWARM_VISIBILITY_TIMEOUT_S="200")
    sentinel_kwargs = {"socket_timeout": 1.0, "socket_connect_timeout": 1.0}
    assert view["broker"] == {"visibility_timeout": 200, "master_name": "main", "sentinel_kwargs": sentinel_kwargs}
    assert view["backend_options"] == {"master_name": "main", "sentinel_kwargs": sentinel_kwargs}
    assert (view["backend"], view["backend_master"], view["pool"], view["service"], view["db"]) == (
        "SentinelBackend", "main", "SentinelConnectionPool", "main", 2)  # fmt: skip


def test_a_redis_url_keeps_celery_as_it_was():
    view = _celery_view(REDIS_URL="redis://127.0.0.1:6390/2")
    assert "master_name" not in view["broker"] and not view["backend_options"]
    assert (view["backend"], view["pool"], view["db"]) == ("RedisBackend", "ConnectionPool", 2)
