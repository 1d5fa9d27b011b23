"""Thin task: the cloud retry chain runs on the cpu queue, off the serving worker."""

from __future__ import annotations

from typing import Any

from celery import shared_task

from budget.cloud import CloudUnavailable, cloud_answer
from budget.services import BudgetError


@shared_task(name="budget.tasks.cloud_answer", acks_late=True, reject_on_worker_lost=True)
def cloud_answer_task(*, request_id: str, prompt: str, max_tokens: int, temperature: float,
                      api_key_id: int | None = None, provider_name: str | None = None,
                      messages: list[dict[str, Any]] | None = None,
                      options: dict[str, Any] | None = None) -> dict[str, Any]:  # fmt: skip
    """Plain JSON out: the paid answer, or an UNSURE with the reason no paid call was made or succeeded."""
    try:
        return cloud_answer(request_id=request_id, prompt=prompt, max_tokens=max_tokens, temperature=temperature,
                            api_key_id=api_key_id, provider_name=provider_name, messages=messages,
                            options=options)  # fmt: skip
    except (BudgetError, CloudUnavailable) as exc:
        return {"unsure": True, "detail": str(exc)}
