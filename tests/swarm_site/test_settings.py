"""Settings come from the environment; a bad value is a startup error naming the variable."""

from __future__ import annotations

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
