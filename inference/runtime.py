"""The model a worker process serves: loaded once per process, announced by a heartbeat."""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
from typing import Any

from django.conf import settings

from inference.backends.base import Backend
from inference.backends.llama import LlamaCppBackend
from inference.registry import ModelSpec, active_model
from swarm_site.redis_client import REDIS_ERRORS, get_redis

log = logging.getLogger(__name__)

HEARTBEAT_PREFIX = "swarm:worker:"
_BACKENDS: dict[str, type[Backend]] = {"llama_cpp": LlamaCppBackend}
_backend: Backend | None = None
_lock = threading.Lock()


def build_backend(spec: ModelSpec) -> Backend:
    return _BACKENDS[spec.backend](spec)


def get_backend() -> Backend:
    """This process's loaded backend, loading the active model on first use."""
    global _backend
    with _lock:
        if _backend is None:
            backend = build_backend(active_model())
            backend.load()
            _backend = backend
        return _backend


def worker_name() -> str:
    return os.environ.get("SWARM_WORKER_NAME") or f"worker@{socket.gethostname()}"


def heartbeat_payload() -> dict[str, Any]:
    info = _backend.describe() if _backend else {"loaded": False}
    return {
        "worker": worker_name(),
        "pid": os.getpid(),
        "queues": os.environ.get("SWARM_WORKER_QUEUES", ""),
        "model": info.get("alias"),
        "device": info.get("device"),
        "loaded": info.get("loaded", False),
        "ts": time.time(),
    }


def _beat_forever(interval: float) -> None:
    key = HEARTBEAT_PREFIX + worker_name()
    while True:
        try:
            get_redis().set(key, json.dumps(heartbeat_payload()), ex=max(int(interval * 3), 2))
        except REDIS_ERRORS as exc:  # Redis away: keep trying, the worker itself still runs
            log.warning("heartbeat failed: %s", exc)
        time.sleep(interval)


def start_heartbeat() -> None:
    thread = threading.Thread(
        target=_beat_forever, args=(settings.SWARM_WORKER_HEARTBEAT_S,), name="swarm-heartbeat", daemon=True
    )
    thread.start()


def live_workers() -> list[dict[str, Any]]:
    """Heartbeats that have not expired: the workers alive now."""
    client = get_redis()
    keys = list(client.scan_iter(match=HEARTBEAT_PREFIX + "*", count=100))
    values = client.mget(keys) if keys else []
    return [json.loads(v) for v in values if v]
