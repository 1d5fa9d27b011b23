"""Settings of the anchor project: Django + DRF and nothing else (no database, no sessions, no auth).

Environment: ANCHOR_REDIS_URL (the Redis the view reads; bench/hotpath.py points it at the gateway's own),
ANCHOR_KEY (the key it GETs)."""

from __future__ import annotations

import os

SECRET_KEY = "hotpath-anchor-not-a-secret"  # noqa: S105 - nothing here is signed
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
ROOT_URLCONF = "bench.anchor.urls"
WSGI_APPLICATION = "bench.anchor.wsgi.application"
INSTALLED_APPS = ["rest_framework"]
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.middleware.common.CommonMiddleware",
]
DATABASES: dict = {}
USE_TZ = True
REST_FRAMEWORK = {
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "DEFAULT_AUTHENTICATION_CLASSES": [],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.AllowAny"],
    "DEFAULT_THROTTLE_CLASSES": [],
    "UNAUTHENTICATED_USER": None,
}

ANCHOR_REDIS_URL = os.environ.get("ANCHOR_REDIS_URL", "redis://127.0.0.1:6379/0")
ANCHOR_KEY = os.environ.get("ANCHOR_KEY", "hotpath:anchor:answer")
