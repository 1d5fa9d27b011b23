"""Thin tasks: LoRA training on the train queue; intake, nightly run and canary judge on the cpu queue."""

from __future__ import annotations

from typing import Any

from celery import shared_task

from training import rollout, services

LOCK_RETRY_S = 60


@shared_task(name="training.tasks.train", bind=True, acks_late=True, reject_on_worker_lost=True, max_retries=None)
def train(self, job_id: int) -> dict[str, Any]:
    """Train one job; while someone else holds the GPU swap lock, try again in a minute."""
    from arbiter.lock import LockHeld

    try:
        return services.run_job(job_id)
    except LockHeld as exc:
        raise self.retry(exc=exc, countdown=LOCK_RETRY_S) from None


@shared_task(name="training.tasks.poll_queue_file", ignore_result=True)
def poll_queue_file() -> list[int]:
    """Jobs written to tasks/lora_queue.json become queued jobs (celery-beat, every 2 s)."""
    return [job.pk for job in services.take_queue_file()]


@shared_task(name="training.tasks.nightly")
def nightly() -> int:
    """The 02:00 run: learn from everything trusted in the log."""
    return services.nightly_job().pk


@shared_task(name="training.tasks.judge_canary")
def judge_canary() -> dict[str, Any]:
    """Promote or roll back the running canary once it has served enough requests (every minute)."""
    return rollout.judge_canary()
