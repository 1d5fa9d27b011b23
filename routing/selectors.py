"""Read-only queries for the routing app."""

from __future__ import annotations

import time
from typing import Any

from django.conf import settings
from django.db import DatabaseError, connection

from inference.runtime import live_workers
from swarm_site.broker import broker_health, is_amqp
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


def _sandbox(workers: list[dict[str, Any]] | None) -> dict[str, Any]:
    """Whether the serving workers can run the code head's tests (their heartbeats say so).

    Informational: without a sandbox the code head abstains, everything else is served, so it never
    makes /health 503.
    """
    if workers is None:
        return {"ok": False, "reason": "unknown: the workers' heartbeats cannot be read"}
    reports = [w.get("sandbox") for w in workers]
    if not workers or not all(isinstance(r, dict) for r in reports):
        return {"ok": False, "reason": "no serving worker has reported its sandbox"}
    failing = [r for r in reports if not r.get("ok")]
    if failing:
        return {"ok": False, "reason": failing[0].get("reason") or "unknown", "workers_without": len(failing)}
    return {"ok": True, "reason": None, "isolation": reports[0].get("isolation")}


def health_report() -> dict[str, Any]:
    db = _timed(_db)
    redis_status = _timed(_redis)
    workers: dict[str, Any]
    alive: list[dict[str, Any]] | None = None
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
    if is_amqp(settings.CELERY_BROKER_URL):  # RabbitMQ as the broker (a Redis broker is the `redis` check)
        timeout_s = max(float(settings.SWARM_REDIS_TIMEOUT_S), 1.0)
        checks["broker"] = _timed(lambda: broker_health(settings.CELERY_BROKER_URL, timeout_s))
    down = [name for name, check in checks.items() if check["status"] != "ok"]
    report = {"status": "ok" if not down else "degraded", "down": down, "checks": checks, "sandbox": _sandbox(alive)}
    if redis_status["status"] == "ok":
        report["model_queue"] = _model_queue()
    return report


def _model_queue() -> dict[str, Any]:
    """What admission sees (informational): serving places, answers per second, depth admitted and held."""
    from routing.admission import queue_report

    try:
        return queue_report()
    except REDIS_ERRORS as exc:
        return {"error": f"cannot read the serving places: {exc}"}
