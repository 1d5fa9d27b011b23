"""Production settings pass `manage.py check --deploy` with no warning; a weak SECRET_KEY stops the start;
behind the TLS proxy the security headers are sent, and the local default stays plain HTTP."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
HOST = "swarm.example.com"


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("SWARM_", "DJANGO_", "SECRET_KEY", "DATABASE"))}
    return {**base, "DJANGO_SETTINGS_MODULE": "swarm_site.settings", "SWARM_VAR_DIR": str(tmp_path), **extra}


def _production(tmp_path: Path, **extra: str) -> dict[str, str]:
    return _env(tmp_path, SWARM_ENV="production", SECRET_KEY=secrets.token_urlsafe(50), ALLOWED_HOSTS=HOST, **extra)


def _run(argv: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=240)


def _settings(env: dict[str, str], *names: str) -> dict:
    code = ("import django, json; django.setup(); from django.conf import settings; "
            f"print(json.dumps({{n: getattr(settings, n, None) for n in {list(names)!r}}}))")  # fmt: skip
    proc = _run([sys.executable, "-c", code], env)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_check_deploy_passes_with_no_warnings_in_production(tmp_path):
    proc = _run([sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"], _production(tmp_path))
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output
    assert "System check identified no issues" in proc.stdout, output
    assert "WARNING" not in output.upper().replace("--FAIL-LEVEL WARNING", ""), output


def test_check_deploy_fails_when_a_production_default_is_turned_off(tmp_path):
    """The test above can fail: without the redirect, Django's deploy check warns (security.W008)."""
    env = _production(tmp_path, DJANGO_SECURE_SSL_REDIRECT="false")
    proc = _run([sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"], env)
    assert proc.returncode != 0 and "security.W008" in proc.stdout + proc.stderr


@pytest.mark.parametrize(
    "key",
    [
        "k" * 60,  # long, but one character
        secrets.token_urlsafe(20),  # short
        "django-insecure-" + secrets.token_urlsafe(50),  # Django's generated placeholder
    ],
)
def test_a_weak_secret_key_is_refused_in_production(tmp_path, key):
    env = {**_production(tmp_path), "SECRET_KEY": key}
    proc = _run([sys.executable, "manage.py", "check"], env)
    assert proc.returncode != 0
    last = proc.stderr.strip().splitlines()[-1]
    assert "ImproperlyConfigured" in last and "SECRET_KEY" in last, proc.stderr


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("DJANGO_SECURE_HSTS_SECONDS", "a year"),
        ("DJANGO_SECURE_SSL_REDIRECT", "sometimes"),
        ("DJANGO_SECURE_PROXY_SSL_HEADER", "X-Forwarded-Proto"),
        ("DJANGO_X_FRAME_OPTIONS", "ALLOWALL"),
        ("DJANGO_SECURE_REFERRER_POLICY", "whatever"),
    ],
)
def test_a_bad_security_setting_is_a_startup_error_naming_it(tmp_path, variable, value):
    proc = _run([sys.executable, "manage.py", "check"], _production(tmp_path, **{variable: value}))
    assert proc.returncode != 0
    assert variable in proc.stderr.strip().splitlines()[-1], proc.stderr


NAMES = ("SECURE_SSL_REDIRECT", "SECURE_HSTS_SECONDS", "SECURE_HSTS_INCLUDE_SUBDOMAINS", "SECURE_HSTS_PRELOAD",
         "SESSION_COOKIE_SECURE", "CSRF_COOKIE_SECURE", "SECURE_PROXY_SSL_HEADER")  # fmt: skip


def test_tls_settings_are_on_in_production_and_off_locally(tmp_path):
    production = _settings(_production(tmp_path), *NAMES)
    assert production == {
        "SECURE_SSL_REDIRECT": True, "SECURE_HSTS_SECONDS": 31_536_000, "SECURE_HSTS_INCLUDE_SUBDOMAINS": True,
        "SECURE_HSTS_PRELOAD": True, "SESSION_COOKIE_SECURE": True, "CSRF_COOKIE_SECURE": True,
        "SECURE_PROXY_SSL_HEADER": ["HTTP_X_FORWARDED_PROTO", "https"],
    }  # fmt: skip
    local = _settings(_env(tmp_path), *NAMES)
    assert local == {
        "SECURE_SSL_REDIRECT": False, "SECURE_HSTS_SECONDS": 0, "SECURE_HSTS_INCLUDE_SUBDOMAINS": False,
        "SECURE_HSTS_PRELOAD": False, "SESSION_COOKIE_SECURE": False, "CSRF_COOKIE_SECURE": False,
        "SECURE_PROXY_SSL_HEADER": None,
    }  # fmt: skip
    overridden = _settings(_production(tmp_path, DJANGO_SECURE_HSTS_SECONDS="3600", DJANGO_SECURE_HSTS_PRELOAD="false",
                                       DJANGO_SECURE_PROXY_SSL_HEADER="X-Forwarded-Scheme: https"), *NAMES)  # fmt: skip
    assert overridden["SECURE_HSTS_SECONDS"] == 3600 and overridden["SECURE_HSTS_PRELOAD"] is False
    assert overridden["SECURE_PROXY_SSL_HEADER"] == ["HTTP_X_FORWARDED_SCHEME", "https"]


def test_behind_the_proxy_production_redirects_plain_http_and_sends_hsts(tmp_path):
    """Requests through Django's full stack: plain HTTP is sent to HTTPS (health probes excepted), and
    what the proxy marks as HTTPS gets HSTS, nosniff, X-Frame-Options and the referrer policy."""
    code = f"""
import django, json
django.setup()
from django.test import Client
c = Client()
plain = c.get("/api/schema/", HTTP_HOST="{HOST}")
tls = c.get("/api/schema/", HTTP_HOST="{HOST}", HTTP_X_FORWARDED_PROTO="https")
probe = c.get("/metrics", HTTP_HOST="{HOST}")
print(json.dumps({{"plain": [plain.status_code, plain.get("Location")], "probe": probe.status_code,
                  "tls": [tls.status_code, {{h: tls.get(h) for h in ("Strict-Transport-Security",
                  "X-Content-Type-Options", "X-Frame-Options", "Referrer-Policy")}}]}}))
"""
    proc = _run([sys.executable, "-c", code], _production(tmp_path, PROMETHEUS_MULTIPROC_DIR=str(tmp_path)))
    assert proc.returncode == 0, proc.stderr
    seen = json.loads(proc.stdout.strip().splitlines()[-1])
    assert seen["plain"] == [301, f"https://{HOST}/api/schema/"]
    assert seen["probe"] == 200  # the host's own Prometheus scrapes plain HTTP
    assert seen["tls"] == [200, {"Strict-Transport-Security": "max-age=31536000; includeSubDomains; preload",
                                 "X-Content-Type-Options": "nosniff", "X-Frame-Options": "DENY",
                                 "Referrer-Policy": "same-origin"}]  # fmt: skip
