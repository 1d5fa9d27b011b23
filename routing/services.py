"""Routing services: the API side (cache, enqueue, wait, log) and the worker side (the council)."""

from __future__ import annotations

import logging
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import kombu.exceptions
from celery.exceptions import TimeoutError as CeleryTimeout
from django.conf import settings
from django.db import OperationalError as DbOperationalError
from django.db import transaction

from inference.registry import active_model
from routing.cache import cache_get, cache_key, cache_put, current_adapter_version
from routing.cascade import Decision, run_council
from routing.models import Interaction
from swarm_site.errors import GatewayTimeout, ServiceUnavailable, WorkerFailed
from swarm_site.redis_client import REDIS_ERRORS

log = logging.getLogger(__name__)

TRANSIENT_DB_ERRORS = (DbOperationalError,)
_BROKER_ERRORS = (*REDIS_ERRORS, kombu.exceptions.OperationalError)

# --- worker side --------------------------------------------------------------------------------


def council_answer(*, prompt: str, max_tokens: int, temperature: float, request_id: str) -> dict[str, Any]:
    """Answer with the local council on this worker's model. Plain JSON out."""
    from inference.runtime import get_backend
    from routing.heads import council

    backend = get_backend()
    fast, llm = council()
    decision: Decision = run_council(
        prompt,
        fast_heads=list(fast),
        llm_heads=list(llm),
        generate=backend.generate,
        max_tokens=max_tokens,
        temperature=temperature,
        min_confidence=settings.SWARM_MIN_CONFIDENCE,
    )
    log.info("request %s answered by %s (%s)", request_id, decision.skill_type, decision.route)
    return {**decision.as_dict(), "model": backend.spec.alias}


# --- API side -----------------------------------------------------------------------------------


def new_request_id() -> str:
    return uuid.uuid4().hex


def _publish_log(payload: dict[str, Any]) -> None:
    from routing.tasks import log_interaction

    try:
        log_interaction.apply_async(args=[payload])
    except _BROKER_ERRORS as exc:  # the answer is already computed; losing its log line is the lesser harm
        log.error("could not queue interaction %s for the log: %s", payload.get("request_id"), exc)


def orchestrate_request(
    *, prompt: str, max_tokens: int, temperature: float, endpoint: str = "orchestrate"
) -> dict[str, Any]:
    """The hot path: exact cache, else the council on a worker within the deadline."""
    started = time.perf_counter()
    request_id = new_request_id()
    model = active_model().alias
    try:
        adapter = current_adapter_version()
        key = cache_key(
            prompt=prompt, model=model, adapter_version=adapter, max_tokens=max_tokens, temperature=temperature
        )
        hit = cache_get(key)
    except REDIS_ERRORS as exc:
        raise ServiceUnavailable(f"Redis is unavailable: {exc}") from None

    if hit is not None:
        result = {**hit, "cached": True, "route": "cache", "cached_route": hit.get("route")}
    else:
        deadline = settings.SWARM_DEADLINE_S
        ask = {"prompt": prompt, "max_tokens": max_tokens, "temperature": temperature, "request_id": request_id}
        result = _ask_worker(**ask, deadline_s=deadline - (time.perf_counter() - started))
        if result["route"] == "unsure" and settings.SWARM_CLOUD_ENABLED:
            result = _escalate(result, **ask, deadline_s=deadline - (time.perf_counter() - started))
        result["cached"] = False
        if result["route"] != "unsure":
            try:
                cache_put(key, _cacheable(result))
            except REDIS_ERRORS as exc:
                log.warning("could not cache %s: %s", request_id, exc)

    latency_ms = (time.perf_counter() - started) * 1000
    result.update(request_id=request_id, latency_ms=round(latency_ms, 2), model=model, adapter_version=adapter)
    result.setdefault("cost_usd", 0.0)
    _publish_log(_log_payload(result, prompt=prompt, endpoint=endpoint, max_tokens=max_tokens))
    return result


def _cacheable(result: dict[str, Any]) -> dict[str, Any]:
    keep = ("answer", "route", "skill_type", "confidence", "ballots", "scores", "reasons", "winner_head", "provider")
    return {k: result[k] for k in keep if k in result}


def _run_task(task, *, kwargs: dict[str, Any], task_id: str, deadline_s: float) -> dict[str, Any]:
    """Publish one task and wait for its JSON result until `deadline_s` (503 / 504 / 502 otherwise)."""
    if deadline_s <= 0:
        raise GatewayTimeout(f"the request deadline passed before {task.name} could run (request {task_id})")
    try:
        async_result = task.apply_async(kwargs=kwargs, task_id=task_id, expires=deadline_s)
    except _BROKER_ERRORS as exc:
        raise ServiceUnavailable(f"the task queue is unavailable: {exc}") from None
    try:
        answer = async_result.get(timeout=deadline_s, propagate=False)
    except CeleryTimeout:
        raise GatewayTimeout(f"no worker answered within the deadline (request {task_id})") from None
    except _BROKER_ERRORS as exc:
        raise ServiceUnavailable(f"lost the connection to Redis while waiting: {exc}") from None
    failed = async_result.failed()
    async_result.forget()  # read once; nobody needs it in Redis any more
    if failed:
        raise WorkerFailed(f"the worker failed on request {task_id}: {type(answer).__name__}: {answer}")
    return answer


def _ask_worker(*, prompt: str, max_tokens: int, temperature: float, request_id: str, deadline_s: float) -> dict:
    from routing.tasks import orchestrate

    kwargs = {"prompt": prompt, "max_tokens": max_tokens, "temperature": temperature, "request_id": request_id}
    return _run_task(orchestrate, kwargs=kwargs, task_id=request_id, deadline_s=deadline_s)


def _ask_cloud(*, prompt: str, max_tokens: int, temperature: float, request_id: str, deadline_s: float) -> dict:
    """The local council was unsure: the paid retry chain, on the cpu queue, under the budget."""
    from budget.tasks import cloud_answer_task

    kwargs = {"prompt": prompt, "max_tokens": max_tokens, "temperature": temperature, "request_id": request_id}
    return _run_task(cloud_answer_task, kwargs=kwargs, task_id=f"{request_id}-cloud", deadline_s=deadline_s)


def _escalate(local: dict[str, Any], *, prompt: str, max_tokens: int, temperature: float, request_id: str,
              deadline_s: float) -> dict[str, Any]:  # fmt: skip
    cloud = _ask_cloud(prompt=prompt, max_tokens=max_tokens, temperature=temperature, request_id=request_id,
                       deadline_s=deadline_s)  # fmt: skip
    if cloud.get("unsure"):
        return {**local, "detail": cloud["detail"]}
    return {**local, **cloud, "local_ballots": local.get("ballots", [])}


def _log_payload(result: dict[str, Any], *, prompt: str, endpoint: str, max_tokens: int) -> dict[str, Any]:
    return {
        "request_id": result["request_id"],
        "created_at": datetime.now(UTC).isoformat(),
        "endpoint": endpoint,
        "prompt": prompt,
        "answer": result.get("answer", ""),
        "route": result.get("route", ""),
        "skill_type": result.get("skill_type", ""),
        "confidence": result.get("confidence", 0.0),
        "latency_ms": result.get("latency_ms", 0.0),
        "cost_usd": result.get("cost_usd", 0.0),
        "model": result.get("model", ""),
        "provider": result.get("provider") or "",
        "detail": (result.get("detail") or "")[:500],
        "adapter_version": result.get("adapter_version", ""),
        "cached": result.get("cached", False),
        "status": Interaction.Status.UNSURE if result.get("route") == "unsure" else Interaction.Status.OK,
        "prompt_tokens": result.get("prompt_tokens", 0),
        "completion_tokens": result.get("completion_tokens", 0),
        "ballots": result.get("ballots", []),
    }


def interaction_record(*, payload: dict[str, Any]) -> Interaction:
    """Store one interaction; a redelivered log task updates the same row instead of adding one."""
    fields = {k: v for k, v in payload.items() if k != "request_id"}
    fields["created_at"] = datetime.fromisoformat(fields["created_at"])
    with transaction.atomic():
        interaction, _ = Interaction.objects.update_or_create(request_id=payload["request_id"], defaults=fields)
    return interaction
