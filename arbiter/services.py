"""Arbiter services: the API side of a model swap, and the schedule registry.

A swap (`POST /api/swap`):

1. the model alias is validated against the registry (the serializer; 400 when unknown);
2. the lock: taken by the API for this swap (TTL = swap deadline + margin; `LockHeld` -> 423),
   or the caller's own lease (token + fencing) is verified to be the live one;
3. `arbiter.tasks.swap_model` is published to the worker's queue (`gpu.<n>` for a named worker or
   device, else `gpu`: whichever serving worker is free takes it) with the lease's fencing
   number, and awaited up to `SWARM_SWAP_DEADLINE_S` or the request's shorter `deadline_s` (504
   beyond; the task expires then too);
   the worker re-checks the fencing number before and at its commit (arbiter/worker.py);
4. the API's own lease is released (a caller's lease stays theirs);
5. then, outside the lock, the `swap_complete` or `swap_failed` webhook is fired in a thread.
"""

from __future__ import annotations

import logging
from typing import Any

import kombu.exceptions
from celery.exceptions import TimeoutError as CeleryTimeout
from django.conf import settings
from django.db import transaction

from arbiter import lock, webhooks
from arbiter.errors import SwapFailed
from arbiter.models import ScheduledJob
from swarm_site.broker import AMQP_ERRORS
from swarm_site.errors import GatewayTimeout, ServiceUnavailable, WorkerFailed
from swarm_site.queues import CeleryQueue, gpu_queue_parts
from swarm_site.redis_client import REDIS_ERRORS

log = logging.getLogger(__name__)

_BROKER_ERRORS = (*REDIS_ERRORS, kombu.exceptions.OperationalError, *AMQP_ERRORS)  # AMQP: RabbitMQ as the broker
LOCK_MARGIN_S = 30.0  # the API's own lease outlives the swap deadline by this much


class UnknownWorker(ValueError):
    """No live serving worker goes by that name."""


def swap_deadline_s() -> float:
    return float(getattr(settings, "SWARM_SWAP_DEADLINE_S", 120.0))


def resolve_queue(worker: str | None) -> tuple[str, str | None]:
    """(queue, worker) for a swap target: a device index (`"0"` -> `gpu.0`), a worker name from
    the heartbeats (`gpu0@host` -> the `gpu.<n>` queue it consumes), or none (`gpu`)."""
    if worker is None or worker == "":
        return CeleryQueue.GPU.value, None
    from inference.runtime import live_workers

    if worker.isdigit():
        # Device N: the one live worker pinned to it (gpu.N or gpu.<host>.N); with hosts that each
        # have a device N, the caller must name the worker.
        holders = {q: beat.get("worker") for beat in live_workers() for q in _device_queues(beat)
                   if gpu_queue_parts(q)[1] == int(worker)}  # fmt: skip
        if len(holders) > 1:
            names = ", ".join(sorted(str(w) for w in holders.values()))
            raise UnknownWorker(f"device {worker} is on several hosts ({names}): name the worker")
        return (next(iter(holders)), None) if holders else (CeleryQueue.gpu(int(worker)), None)
    for beat in live_workers():
        if beat.get("worker") == worker:
            queues = _device_queues(beat)
            if queues:
                return queues[0], worker
            raise UnknownWorker(f"worker {worker!r} consumes no gpu.<n> queue ({beat.get('queues')!r})")
    raise UnknownWorker(f"no live serving worker named {worker!r}")


def _device_queues(beat: dict[str, Any]) -> list[str]:
    """The device queues (gpu.<n>, gpu.<host>.<n>) a heartbeat says its worker consumes."""
    return [q for q in str(beat.get("queues", "")).split(",") if gpu_queue_parts(q)]


def dispatch_swap(*, alias: str, fencing: int, queue: str, deadline_s: float) -> dict[str, Any]:
    """Publish the swap to `queue` and wait for the worker's answer (503 / 504 / 502 otherwise)."""
    from arbiter.tasks import swap_model

    try:
        pending = swap_model.apply_async(kwargs={"alias": alias, "fencing": fencing}, queue=queue, expires=deadline_s)
    except _BROKER_ERRORS as exc:
        raise ServiceUnavailable(f"the task queue is unavailable: {exc}") from None
    try:
        answer = pending.get(timeout=deadline_s, propagate=False)
    except CeleryTimeout:
        raise GatewayTimeout(f"no worker on {queue!r} finished the swap within {deadline_s:.0f}s") from None
    except _BROKER_ERRORS as exc:
        raise ServiceUnavailable(f"lost the connection to Redis while waiting: {exc}") from None
    failed = pending.failed()
    pending.forget()
    if failed:
        raise WorkerFailed(f"the worker failed on the swap: {type(answer).__name__}: {answer}")
    return answer


def _release_quietly(lease: lock.Lease) -> None:
    try:
        lock.release(lease.token)
    except lock.LockNotHeld as exc:
        log.warning("swap lease %d was gone before release: %s", lease.fencing, exc)
    except REDIS_ERRORS as exc:
        log.error("could not release swap lease %d (it expires at its TTL): %s", lease.fencing, exc)


def request_swap(
    *,
    alias: str,
    worker: str | None = None,
    lease_token: str | None = None,
    fencing: int | None = None,
    holder: str = "api",
    deadline_s: float | None = None,
) -> dict[str, Any]:
    """Load `alias` on a serving worker under the GPU lock. The worker's report on success;
    raises LockHeld (423), LockNotHeld / StaleFencing (409), SwapFailed (502), 503, 504."""
    queue, worker_name = resolve_queue(worker)
    deadline = min(deadline_s or swap_deadline_s(), swap_deadline_s())
    own: lock.Lease | None = None
    if lease_token:
        if fencing is None:
            raise ValueError("a lease token needs its fencing number")
        holder = lock.verify_lease(lease_token, fencing).holder or holder
    else:
        own = lock.acquire(holder, deadline + LOCK_MARGIN_S, f"swap to {alias}")
        fencing = own.fencing
    error: Exception | None = None
    try:
        outcome = dispatch_swap(alias=alias, fencing=fencing, queue=queue, deadline_s=deadline)
    except (GatewayTimeout, ServiceUnavailable, WorkerFailed) as exc:
        error = exc
        outcome = {"status": "failed", "model": alias, "fencing": fencing, "reason": str(exc.detail)}
    finally:
        if own is not None:
            _release_quietly(own)
    outcome = {**outcome, "holder": holder, "queue": queue, "requested_worker": worker_name}
    # Outside the lock (ours is released; a caller's lease is theirs to end).
    webhooks.fire("swap_complete" if outcome.get("status") == "swapped" else "swap_failed", outcome)
    if error is not None:
        raise error
    if outcome.get("status") == "refused":
        raise lock.StaleFencing(outcome.get("reason") or "stale fencing token")
    if outcome.get("status") != "swapped":
        raise SwapFailed(f"the worker could not load {alias}: {outcome.get('reason')}")
    return outcome


# --- schedule registry ----------------------------------------------------------------------------


def schedule_list() -> list[ScheduledJob]:
    return list(ScheduledJob.objects.all())


def schedule_get(pk: int) -> ScheduledJob | None:
    return ScheduledJob.objects.filter(pk=pk).first()


def schedule_create(**fields: Any) -> ScheduledJob:
    with transaction.atomic():
        return ScheduledJob.objects.create(**fields)


def schedule_delete(job: ScheduledJob) -> None:
    job.delete()
