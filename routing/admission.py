"""Admission to the model's queue: a request that needs the model is admitted only when its answer
can be expected in time; otherwise it gets a 503 with Retry-After at once, not a thread held for a
504 a minute later, while the cache, the pattern and the exact heads keep answering.

The estimate comes from the serving processes themselves. Each one publishes, with its heartbeat,
how long its serving tasks take (an average that follows the recent ones) in the Redis hash
PLACES_KEY (inference/runtime.py::announce). From the live ones this module derives how many
answers per second the stack gives (the sum of 1 / task time) and so how many requests for the model
may be running or queued at once: as many as are answered within SWARM_ADMIT_WAIT_S (a quarter
of the deadline by default). That depth is held in a Redis sorted set shared by every web process
(access.services.slot_acquire: one Lua call, atomic), with SWARM_MODEL_ADMIT as a fixed cap on top
when set. Each web process also keeps at most half its threads waiting on the model.
"""

from __future__ import annotations

import json
import logging
import math
import threading
import time
from dataclasses import dataclass
from typing import Any

from django.conf import settings

from access.services import Slot, SlotsFull, slot_acquire
from inference.runtime import PLACES_KEY
from observability import metrics
from swarm_site.errors import ModelSaturated, ServiceUnavailable
from swarm_site.redis_client import REDIS_ERRORS, get_redis

log = logging.getLogger(__name__)

MODEL_SLOTS_KEY = "model"  # access.services slot identity: requests for the model, running or queued
CAPACITY_TTL_S = 1.0  # a web process reads the places at most this often
PRIOR_SERVICE_S = 2.0  # a serving process that has not finished a task yet is assumed this slow
STALE_AFTER_BEATS = 3  # a place not announced for this many heartbeat intervals is gone


@dataclass(frozen=True)
class Capacity:
    """The serving processes alive across the stack, and how many answers per second they give."""

    places: int
    answers_per_s: float

    @classmethod
    def from_places(cls, fields: dict[str, str], *, now: float, stale_after_s: float) -> tuple[Capacity, list[str]]:
        """(capacity, fields of places gone stale) from the PLACES_KEY hash."""
        places, per_s, stale = 0, 0.0, []
        for name, raw in fields.items():
            try:
                place = json.loads(raw)
                fresh = now - float(place["ts"]) <= stale_after_s
            except (ValueError, TypeError, KeyError):
                fresh = False
            if not fresh:
                stale.append(name)
                continue
            service_s = place.get("service_s")
            places += 1
            per_s += 1.0 / max(float(service_s) if service_s is not None else PRIOR_SERVICE_S, 0.01)
        return cls(places, per_s), stale

    def depth_limit(self, wait_s: float) -> int:
        """How many requests for the model may be running or queued at once so that the last one
        admitted is answered within `wait_s`: each place holds one, and the queue drains at
        answers_per_s. Unknown capacity (no serving process has announced itself): one place at
        the prior task time, so requests still queue for a worker that is starting."""
        places, per_s = (self.places, self.answers_per_s) if self.places else (1, 1.0 / PRIOR_SERVICE_S)
        return max(places, math.floor(wait_s * per_s))

    def retry_after_s(self) -> float:
        """When a place is likely to be free again: one answer's time."""
        return 1.0 / self.answers_per_s if self.answers_per_s else PRIOR_SERVICE_S


_capacity: tuple[float, Capacity] | None = None
_capacity_lock = threading.Lock()


def capacity() -> Capacity:
    """The stack's capacity for the model, read from Redis at most once every CAPACITY_TTL_S per process."""
    global _capacity
    now = time.monotonic()
    cached = _capacity
    if cached is not None and now - cached[0] < CAPACITY_TTL_S:
        return cached[1]
    with _capacity_lock:
        if _capacity is not None and now - _capacity[0] < CAPACITY_TTL_S:
            return _capacity[1]
        client = get_redis()
        found, stale = Capacity.from_places(
            client.hgetall(PLACES_KEY), now=time.time(),
            stale_after_s=STALE_AFTER_BEATS * settings.SWARM_WORKER_HEARTBEAT_S,
        )  # fmt: skip
        if stale:
            client.hdel(PLACES_KEY, *stale)
        _capacity = (now, found)
        return found


def forget_capacity() -> None:
    """Read the places again on the next request (tests, a worker that has just announced itself)."""
    global _capacity
    _capacity = None


@dataclass
class Admission:
    """A request's places in the model's queue: one of the stack's (Redis) and one of this process's."""

    slot: Slot | None
    waits: threading.BoundedSemaphore | None = None  # this process's place, held until released


_WAITS: tuple[int, threading.BoundedSemaphore] | None = None


def _local_waits() -> threading.BoundedSemaphore:
    """This process's places for requests waiting on the model: half its threads (SWARM_WEB_THREADS),
    so waiting answers never take every thread from the cache and the exact heads."""
    global _WAITS
    size = max(1, settings.SWARM_WEB_THREADS // 2)
    if _WAITS is None or _WAITS[0] != size:
        _WAITS = (size, threading.BoundedSemaphore(size))
    return _WAITS[1]


def _saturated(detail: str, wait: float) -> ModelSaturated:
    metrics.record_admission_refused()
    return ModelSaturated(f"The local model is saturated: {detail}. Try again shortly.", wait=wait)


def admission_limit(remaining_s: float) -> tuple[int, Capacity]:
    """(the depth admitted now, the capacity it came from) for a request with `remaining_s` left."""
    found = capacity()
    limit = found.depth_limit(min(settings.SWARM_ADMIT_WAIT_S, remaining_s))
    if settings.SWARM_MODEL_ADMIT:
        limit = min(limit, settings.SWARM_MODEL_ADMIT)
    return limit, found


def admit(remaining_s: float) -> Admission:
    """Take a place in the model's queue for a request with `remaining_s` before its deadline, held
    until its answer is back (release). Refused at once (503 + Retry-After) when this process's
    places are taken or the stack's queue is already as deep as answers can come in time."""
    waits = _local_waits()
    if not waits.acquire(blocking=False):
        raise _saturated(f"this server's {settings.SWARM_WEB_THREADS // 2} places for it are taken", 1.0)
    try:
        limit, found = admission_limit(remaining_s)
        slot = slot_acquire(identity=MODEL_SLOTS_KEY, limit=limit, hold_s=remaining_s + 5)
    except SlotsFull as full:
        waits.release()
        raise _saturated(_full_detail(limit, found), min(full.wait, max(1.0, found.retry_after_s()))) from None
    except REDIS_ERRORS as exc:
        waits.release()
        raise ServiceUnavailable(f"Redis is unavailable: {exc}") from None
    except BaseException:
        waits.release()
        raise
    return Admission(slot=slot, waits=waits)


def _full_detail(limit: int, found: Capacity) -> str:
    if settings.SWARM_MODEL_ADMIT and limit == settings.SWARM_MODEL_ADMIT:
        return f"{limit} requests are already running or queued for it"
    return (f"{limit} requests are already running or queued for it, as many as its "
            f"{found.places or 'unknown'} serving places answer within {settings.SWARM_ADMIT_WAIT_S:g} s")  # fmt: skip


def release(admission: Admission | None) -> None:
    """Give back the places `admission` holds (once; a second call does nothing)."""
    if admission is None or admission.waits is None:
        return
    admission.waits, waits = None, admission.waits
    waits.release()
    if admission.slot is None:
        return
    try:
        admission.slot.release()
    except REDIS_ERRORS as exc:  # it expires by itself at the request's deadline
        log.warning("could not release a model slot: %s", exc)


def queue_report() -> dict[str, Any]:
    """What admission sees now (for /health): serving places, answers per second, the depth admitted
    for a request with the whole deadline ahead, and the requests running or queued."""
    limit, found = admission_limit(settings.SWARM_DEADLINE_S)
    held = get_redis().zcount(f"slots:{MODEL_SLOTS_KEY}", time.time(), "+inf")
    return {"places": found.places, "answers_per_s": round(found.answers_per_s, 3), "depth_limit": limit,
            "depth": held}  # fmt: skip
