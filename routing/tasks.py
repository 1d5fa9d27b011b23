"""Thin Celery tasks: plain JSON in, one service call, plain JSON out."""

from __future__ import annotations

from typing import Any

from celery import shared_task

from routing import services


@shared_task(name="routing.tasks.orchestrate", acks_late=True, reject_on_worker_lost=True)
def orchestrate(
    *,
    prompt: str,
    max_tokens: int,
    temperature: float,
    request_id: str,
    stream: bool = False,
    adapter: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Runs on a serving (gpu) worker: the local council answers (on the request's adapter), or says UNSURE."""
    return services.council_answer(
        prompt=prompt, max_tokens=max_tokens, temperature=temperature, request_id=request_id, stream=stream,
        adapter=adapter,
    )  # fmt: skip


@shared_task(name="routing.tasks.generate", acks_late=True, reject_on_worker_lost=True)
def generate(
    *,
    messages: list[dict[str, str]],
    max_tokens: int,
    temperature: float,
    request_id: str,
    stream: bool = False,
    adapter: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Runs on a serving (gpu) worker: the model alone, for clients that name a local model."""
    return services.model_answer(
        messages=messages, max_tokens=max_tokens, temperature=temperature, request_id=request_id, stream=stream,
        adapter=adapter,
    )  # fmt: skip


@shared_task(
    name="routing.tasks.log_interaction",
    acks_late=True,
    autoretry_for=services.TRANSIENT_DB_ERRORS,
    retry_backoff=True,
    max_retries=5,
)
def log_interaction(payload: dict[str, Any]) -> None:
    """Runs on the default queue: writes one interaction row (idempotent per request id)."""
    services.interaction_record(payload=payload)
