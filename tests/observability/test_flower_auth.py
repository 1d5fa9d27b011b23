"""Flower (task arguments are prompts) answers only with basic auth: a secret generated into var/
locally, FLOWER_BASIC_AUTH required in production."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from tests.stack import ROOT, free_port, wait_for

pytestmark = pytest.mark.integration


def env(tmp_path: Path, redis_url: str, **extra: str) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("SWARM_", "DJANGO_", "CELERY_", "FLOWER_"))}
    return {**base, "SWARM_ENV": "test", "SWARM_VAR_DIR": str(tmp_path), "REDIS_URL": redis_url, **extra}


def test_flower_refuses_callers_without_the_password(tmp_path, shared_redis_url):
    port = free_port()
    proc = subprocess.Popen([sys.executable, "manage.py", "run_flower", "--port", str(port)], cwd=ROOT,
                            env=env(tmp_path, shared_redis_url), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            start_new_session=True)  # fmt: skip
    try:
        url = f"http://127.0.0.1:{port}/"
        first = wait_for(lambda: [requests.get(url, timeout=2)], timeout=60, what="flower answers")[0]
        assert first.status_code == 401
        assert requests.get(f"{url}api/tasks", timeout=5).status_code == 401
        password = (tmp_path / "flower_password").read_text().strip()
        assert (tmp_path / "flower_password").stat().st_mode & 0o077 == 0  # only its owner can read it
        assert requests.get(url, auth=("admin", "wrong"), timeout=5).status_code == 401
        assert requests.get(url, auth=("admin", password), timeout=5).status_code == 200
        # The secret is not on the command line, where every user of the machine could read it.
        cmdline = Path(f"/proc/{proc.pid}/cmdline").read_bytes().decode(errors="replace")
        assert password not in cmdline
    finally:
        proc.kill()
        proc.wait(10)


def test_production_flower_needs_configured_credentials(tmp_path, shared_redis_url):
    production = env(tmp_path, shared_redis_url, SWARM_ENV="production", SECRET_KEY=secrets.token_urlsafe(50),
                     ALLOWED_HOSTS="swarm.example")  # fmt: skip
    done = subprocess.run([sys.executable, "manage.py", "run_flower", "--port", str(free_port())], cwd=ROOT,
                          env=production, capture_output=True, text=True, timeout=60)  # fmt: skip
    assert done.returncode != 0
    assert "FLOWER_BASIC_AUTH is required in production" in done.stdout + done.stderr
    assert not (tmp_path / "flower_password").exists()
