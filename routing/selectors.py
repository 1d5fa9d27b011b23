"""Read-only queries for the routing app."""

from __future__ import annotations

import time
from typing import Any

from django.db import DatabaseError, connection

from inference.runtime import live_workers
from swarm_site.redis_client import REDIS_ERRORS, get_redis


def _timed(check) -> dict[str, Any]:
    started = time.perf_counter()
    status = check()
    status["latency_ms"] = round((time.perf_counter() - started) * 1000, 2)
    return status


def _db() -> dict[str, Any]:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        return {"status": "ok", "vendor": connection.vendor}
    except DatabaseError as exc:
        return {"status": "down", "error": str(exc)}


def _redis() -> dict[str, Any]:
    try:
        get_redis().ping()
        return {"status": "ok"}
    except REDIS_ERRORS as exc:
        return {"status": "down", "error": str(exc)}


def health_report() -> dict[str, Any]:
    db = _timed(_db)
    redis_status = _timed(_redis)
    workers: dict[str, Any]
    if redis_status["status"] == "ok":
        try:
            alive = [w for w in live_workers() if w.get("loaded")]
            workers = {"status": "ok" if alive else "down", "workers": alive}
            if not alive:
                workers["error"] = "no serving worker has a model loaded"
        except REDIS_ERRORS as exc:
            workers = {"status": "unknown", "error": f"cannot read heartbeats: {exc}"}
    else:
        workers = {"status": "unknown", "error": "heartbeats live in Redis, which is down"}
    checks = {"db": db, "redis": redis_status, "workers": workers}
    down = [name for name, check in checks.items() if check["status"] != "ok"]
    return {"status": "ok" if not down else "degraded", "down": down, "checks": checks}
