"""Thin Celery tasks: plain JSON in, one service call, plain JSON out."""

from __future__ import annotations

from typing import Any

from celery import shared_task

from routing import services

# The serving tasks record STARTED: a client that leaves mid-stream has the task revoked (in case it
# has not started yet), and Celery's other workers, which do not hold the running request, mark a
# revoked task whose stored state is still PENDING as REVOKED in the result backend. A STARTED task
# keeps its state until its own worker stores the (cancelled) result.
SERVING = {"acks_late": True, "reject_on_worker_lost": True, "track_started": True}


@shared_task(name="routing.tasks.orchestrate", **SERVING)
def orchestrate(
    *,
    prompt: str,
    max_tokens: int,
    temperature: float,
    request_id: str,
    stream: bool = False,
    adapter: dict[str, Any] | None = None,
    deadline_at: float | None = None,
) -> dict[str, Any]:
    """Runs on a serving (gpu) worker: the local council answers (on the request's adapter), or says UNSURE."""
    return services.council_answer(
        prompt=prompt, max_tokens=max_tokens, temperature=temperature, request_id=request_id, stream=stream,
        adapter=adapter, deadline_at=deadline_at,
    )  # fmt: skip


@shared_task(name="routing.tasks.generate", **SERVING)
def generate(
    *,
    messages: list[dict[str, Any]],
    max_tokens: int,
    temperature: float,
    request_id: str,
    stream: bool = False,
    adapter: dict[str, Any] | None = None,
    options: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Runs on a serving (gpu) worker: the model alone (with the request's OpenAI options), for
    clients that name a local model or ask what only it can do."""
    return services.model_answer(
        messages=messages, max_tokens=max_tokens, temperature=temperature, request_id=request_id, stream=stream,
        adapter=adapter, options=options,
    )  # fmt: skip


@shared_task(name="routing.tasks.complete_text", **SERVING)
def complete_text(
    *,
    prompt: str,
    max_tokens: int,
    temperature: float,
    request_id: str,
    stream: bool = False,
    adapter: dict[str, Any] | None = None,
    options: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Runs on a serving (gpu) worker: the model alone on a raw text prompt, without the chat template
    (OpenAI's legacy /v1/completions)."""
    return services.text_answer(
        prompt=prompt, max_tokens=max_tokens, temperature=temperature, request_id=request_id, stream=stream,
        adapter=adapter, options=options,
    )  # fmt: skip


# The tasks that hold a serving place while they run (timed for admission: routing/signals.py).
SERVING_TASKS = frozenset({orchestrate.name, generate.name, complete_text.name})


@shared_task(
    name="routing.tasks.log_interaction",
    acks_late=True,
    autoretry_for=services.TRANSIENT_DB_ERRORS,
    retry_backoff=True,
    max_retries=5,
)
def log_interaction(payload: dict[str, Any]) -> None:
    """Runs on the default queue: writes one interaction row (idempotent per request id). Nothing publishes
    it any more (the API appends to the Redis stream of routing/interaction_log.py); it stays registered so
    that messages queued by an older version are still written."""
    services.interaction_record(payload=payload)
