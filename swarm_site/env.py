"""Strict reading of settings from the environment.

Every value comes from one variable; a value that does not parse is a startup error that
names the variable (``ImproperlyConfigured``), never a silent default.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import environ
from django.core.exceptions import ImproperlyConfigured

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}
_UNSET = object()


def load_dotenv(base_dir: Path) -> None:
    """Read `.env.swarm` then `.env` from the project root; the real environment wins."""
    for name in (".env.swarm", ".env"):
        path = base_dir / name
        if path.is_file():
            environ.Env.read_env(str(path), overwrite=False)


def _raw(name: str, default: Any) -> Any:
    value = os.environ.get(name)
    if value is None:
        if default is _UNSET:
            raise ImproperlyConfigured(f"{name} must be set in the environment")
        return default
    return value


def env_str(name: str, default: Any = _UNSET) -> str:
    return _raw(name, default)


def env_bool(name: str, default: Any = _UNSET) -> bool:
    value = _raw(name, default)
    if isinstance(value, bool):
        return value
    lowered = value.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name}={value!r} is not a boolean (use true/false)")


def env_int(name: str, default: Any = _UNSET, *, minimum: int | None = None) -> int:
    value = _raw(name, default)
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise ImproperlyConfigured(f"{name}={value!r} is not an integer") from None
    if minimum is not None and number < minimum:
        raise ImproperlyConfigured(f"{name}={number} must be >= {minimum}")
    return number


def env_float(name: str, default: Any = _UNSET, *, minimum: float | None = None) -> float:
    value = _raw(name, default)
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ImproperlyConfigured(f"{name}={value!r} is not a number") from None
    if minimum is not None and number < minimum:
        raise ImproperlyConfigured(f"{name}={number} must be >= {minimum}")
    return number


def env_list(name: str, default: Any = _UNSET) -> list[str]:
    value = _raw(name, default)
    if isinstance(value, list):
        return value
    return [item.strip() for item in value.split(",") if item.strip()]


def env_db(name: str, default: str) -> dict[str, Any]:
    value = _raw(name, default)
    scheme = value.split(":", 1)[0]
    if scheme not in environ.Env.DB_SCHEMES:
        known = ", ".join(sorted(environ.Env.DB_SCHEMES))
        raise ImproperlyConfigured(f"{name}={value!r} has an unknown database scheme {scheme!r} (known: {known})")
    try:
        config = environ.Env.db_url_config(value)
    except (ValueError, KeyError, environ.compat.ImproperlyConfigured) as exc:
        raise ImproperlyConfigured(f"{name}={value!r} is not a database URL: {exc}") from None
    return config


REDIS_SCHEMES = ("redis://", "rediss://", "unix://", "sentinel://")
BROKER_SCHEMES = (*REDIS_SCHEMES, "amqp://", "amqps://")


def env_redis_url(name: str, default: str) -> str:
    """A Redis URL, or a Sentinel list `sentinel://h1:26379;sentinel://h2:26379/0` (kombu's form; the
    primary's name is SWARM_REDIS_SENTINEL_MASTER)."""
    value = _raw(name, default)
    if not value.startswith(REDIS_SCHEMES):
        raise ImproperlyConfigured(f"{name}={value!r} is not a redis:// or sentinel:// URL")
    return _checked_sentinel(name, value)


def _checked_sentinel(name: str, value: str) -> str:
    """A sentinel:// list that redis_client.parse_sentinel_url reads (the same database and credentials as
    kombu and Celery), else ImproperlyConfigured naming the variable."""
    if value.startswith("sentinel://"):
        from swarm_site.redis_client import parse_sentinel_url

        try:
            parse_sentinel_url(value)
        except ValueError as exc:
            raise ImproperlyConfigured(f"{name}={value!r} is not a Sentinel URL: {exc}") from None
    return value


def env_broker_url(name: str, default: str) -> str:
    """Celery's broker: Redis (or Sentinel), or RabbitMQ (amqp://)."""
    value = _raw(name, default)
    if not value.startswith(BROKER_SCHEMES):
        raise ImproperlyConfigured(f"{name}={value!r} is not a redis://, sentinel:// or amqp:// URL")
    return _checked_sentinel(name, value)
