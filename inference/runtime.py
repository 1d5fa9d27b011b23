"""The model a worker process serves: loaded once per process, announced by a heartbeat."""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

from django.conf import settings

from inference.backends.base import Backend
from inference.backends.llama import LlamaCppBackend
from inference.registry import ModelSpec, active_model
from routing.sandbox import sandbox_status
from swarm_site.redis_client import REDIS_ERRORS, get_redis

log = logging.getLogger(__name__)

HEARTBEAT_PREFIX = "swarm:worker:"
# One field per serving process (<worker>/<pid>): how long its serving tasks take (an average that
# follows the recent ones) and when it last said so. The API's admission reads the hash to estimate
# how long a new request for the model would wait (routing/admission.py).
PLACES_KEY = "swarm:model:places"
SERVICE_EWMA_ALPHA = 0.2  # weight of the newest task in the average
_service_s: float | None = None  # this process's average serving-task time; None before its first task
_BACKENDS: dict[str, type[Backend]] = {"llama_cpp": LlamaCppBackend}
_backend: Backend | None = None
_lock = threading.Lock()
# One announce at a time in a process: each reads the state and writes it as one step, so a beat
# that read the state before a swap cannot land after the swap's own announce and undo it.
_announce_lock = threading.Lock()


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


def current_backend() -> Backend | None:
    """This process's backend if one is loaded (never loads)."""
    return _backend


# What loading a model raises: IntegrityError / VramGuardError (RuntimeError), llama.cpp's
# ValueError for a file it cannot read, OSError, KeyError for a backend with no implementation.
LOAD_ERRORS = (RuntimeError, ValueError, OSError, KeyError)


def _reload(previous: Backend | None) -> None:
    if previous is None:
        return
    try:
        previous.load()
    except LOAD_ERRORS as exc:
        log.error("could not reload %s after a failed swap: %s", previous.spec.alias, exc)


def swap_backend(spec: ModelSpec, *, before_commit: Callable[[], None] | None = None) -> tuple[Backend, str | None]:
    """Replace this process's backend with `spec`: (new backend, previous alias).

    The previous model is unloaded first (its memory is needed). `before_commit` runs once the new
    one is loaded and warm; if it, or the load, raises, the new model is unloaded, the previous one
    reloaded, and the exception propagates.
    """
    global _backend
    with _lock:
        previous = _backend
        previous_alias = previous.spec.alias if previous else None
        if previous is not None:
            previous.unload()
        _backend = None
        candidate: Backend | None = None
        try:
            candidate = build_backend(spec)
            candidate.load()
            candidate.generate([{"role": "user", "content": "hi"}], max_tokens=1, temperature=0.0)
            if before_commit is not None:
                before_commit()
        except BaseException:
            if candidate is not None:
                candidate.unload()
            _reload(previous)
            _backend = previous
            raise
        _backend = candidate
        return candidate, previous_alias


def worker_name() -> str:
    return os.environ.get("SWARM_WORKER_NAME") or f"worker@{host_name()}"


def host_name() -> str:
    """The host this process runs on, as the stack names it (SWARM_NODE, else the hostname)."""
    return settings.SWARM_NODE or socket.gethostname()


def heartbeat_payload() -> dict[str, Any]:
    info = _backend.describe() if _backend else {"loaded": False}
    return {
        "worker": worker_name(),
        "host": host_name(),
        "pid": os.getpid(),
        "queues": os.environ.get("SWARM_WORKER_QUEUES", ""),
        "model": info.get("alias"),
        "device": info.get("device"),
        "loaded": info.get("loaded", False),
        "sandbox": sandbox_status(),  # the code head runs its tests here: /health reports it
        "ts": time.time(),
    }


def record_service(seconds: float) -> None:
    """A serving task held this process for `seconds`: fold it into the average the heartbeat publishes."""
    global _service_s
    seconds = max(0.0, float(seconds))
    _service_s = seconds if _service_s is None else _service_s + SERVICE_EWMA_ALPHA * (seconds - _service_s)


def place_payload() -> dict[str, Any]:
    """This serving process as one of the stack's places for the model (PLACES_KEY)."""
    return {"service_s": None if _service_s is None else round(_service_s, 4), "ts": time.time()}


def announce(interval: float | None = None) -> None:
    """Write this worker's heartbeat (what /health and the exporter read) and this process's place now."""
    interval = interval or settings.SWARM_WORKER_HEARTBEAT_S
    try:
        with _announce_lock:
            pipe = get_redis().pipeline(transaction=False)
            pipe.set(HEARTBEAT_PREFIX + worker_name(), json.dumps(heartbeat_payload()), ex=max(int(interval * 3), 2))
            pipe.hset(PLACES_KEY, f"{worker_name()}/{os.getpid()}", json.dumps(place_payload()))
            pipe.execute()
    except REDIS_ERRORS as exc:  # Redis away: keep trying, the worker itself still runs
        log.warning("heartbeat failed: %s", exc)


def _beat_forever(interval: float) -> None:
    while True:
        announce(interval)
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
