"""Thin Celery tasks: plain JSON in, one service call, plain JSON out."""

from __future__ import annotations

from typing import Any

from celery import shared_task


@shared_task(name="arbiter.tasks.swap_model", acks_late=True, reject_on_worker_lost=False)
def swap_model(*, alias: str, fencing: int) -> dict[str, Any]:
    """Runs on a serving worker (queue `gpu.<n>` or `gpu`): load `alias` under lease `fencing`.

    Not requeued when the process dies mid-swap: the API has answered by then, and a replay
    would be refused by the fencing check anyway once the lease is gone.
    """
    from arbiter.worker import swap_model_in_worker

    return swap_model_in_worker(alias, fencing)
