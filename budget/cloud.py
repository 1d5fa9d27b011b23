"""Escalation to paid, OpenAI-compatible providers: a retry chain under the budget.

For each provider in order (enabled, not retired today, key present): price the worst case,
skip it if it passes the per-request cap, reserve, call, settle to the reported usage. A provider
error, timeout, 429/5xx or a broken response releases the hold, backs off and tries the next.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any

import openai
from django.conf import settings
from django.db import DatabaseError
from django.db.models import Q

from access.models import ApiKey
from budget.models import LedgerEntry, Provider
from budget.pricing import prompt_token_bound
from budget.selectors import budget_status
from budget.services import (
    BudgetExceeded,
    BudgetExhausted,
    BudgetUnavailable,
    budget_release,
    budget_reserve,
    budget_settle,
    provider_record_call,
    utc_day,
)
from observability import metrics

log = logging.getLogger(__name__)

SYSTEM_PROMPT = "You are a precise assistant. Answer the question directly and concisely."
CLOUD_CONFIDENCE = 0.9
MAX_BACKOFF_S = 2.0


class CloudUnavailable(RuntimeError):
    """No provider could answer (none configured, all failed or retired)."""


class ProviderFailed(RuntimeError):
    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


@dataclass(frozen=True)
class Completion:
    text: str
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str
    tool_calls: list[dict[str, Any]] | None = None
    logprobs: list[dict[str, Any]] | None = None


# The OpenAI options a provider gets as they came (routing/serializers.py cleans them).
PASSED_OPTIONS = (
    "response_format",
    "tools",
    "tool_choice",
    "parallel_tool_calls",
    "stop",
    "seed",
    "top_p",
    "presence_penalty",
    "frequency_penalty",
    "logit_bias",
    "logprobs",
    "top_logprobs",
)


@lru_cache(maxsize=32)
def _client(base_url: str, api_key: str, timeout_s: float) -> openai.OpenAI:
    return openai.OpenAI(base_url=base_url, api_key=api_key, timeout=timeout_s, max_retries=0)


def _retry_after(exc: openai.APIStatusError) -> float | None:
    value = exc.response.headers.get("retry-after") if exc.response is not None else None
    try:
        return float(value) if value else None
    except ValueError:
        return None


def provider_complete(provider: Provider, messages: list[dict[str, Any]], *, max_tokens: int,
                      temperature: float, options: dict[str, Any] | None = None) -> Completion:  # fmt: skip
    """One call to one provider (with the client's OpenAI `options` passed as they are); every failure
    is a ProviderFailed."""
    api_key = os.environ.get(provider.api_key_env, "")
    client = _client(provider.base_url, api_key, provider.timeout_s)
    extra = {name: value for name, value in (options or {}).items() if name in PASSED_OPTIONS}
    try:
        response = client.chat.completions.create(
            model=provider.model, messages=messages, max_tokens=max_tokens, temperature=temperature, **extra
        )
    except openai.APIStatusError as exc:
        raise ProviderFailed(f"HTTP {exc.status_code}: {exc.message[:200]}", retry_after=_retry_after(exc)) from None
    except (openai.APIError, ValueError) as exc:  # timeouts, resets, truncated or bad JSON
        raise ProviderFailed(f"{type(exc).__name__}: {str(exc)[:200]}") from None
    if not response.choices or response.usage is None:
        raise ProviderFailed("response without choices or usage (truncated?)")
    choice = response.choices[0]
    text = (choice.message.content or "").strip()
    calls = [call.model_dump(exclude_none=True) for call in choice.message.tool_calls or []]
    if not text and not calls:
        raise ProviderFailed("empty answer")
    logprobs = choice.logprobs.model_dump()["content"] if choice.logprobs and choice.logprobs.content else None
    return Completion(
        text=text,
        prompt_tokens=int(response.usage.prompt_tokens),
        completion_tokens=int(response.usage.completion_tokens),
        finish_reason=choice.finish_reason or "stop",
        tool_calls=calls or None,
        logprobs=logprobs,
    )


def provider_chain(now: datetime | None = None) -> list[Provider]:
    today = utc_day(now)
    providers = Provider.objects.filter(enabled=True).filter(Q(retired_on__isnull=True) | ~Q(retired_on=today))
    return [p for p in providers if os.environ.get(p.api_key_env)]


def _previous_answer(request_id: str) -> dict[str, Any] | None:
    entry = LedgerEntry.objects.filter(request_id=request_id).select_related("provider").first()
    return _answer(entry, attempts=0) if entry else None


def _answer(entry: LedgerEntry, *, attempts: int) -> dict[str, Any]:
    return {
        "answer": entry.answer,
        "route": "cloud",
        "skill_type": "cloud",
        "confidence": CLOUD_CONFIDENCE,
        "provider": entry.provider.name,
        "prompt_tokens": entry.prompt_tokens,
        "completion_tokens": entry.completion_tokens,
        "cost_usd": float(entry.cost_usd),
        "reserved_usd": float(entry.reserved_usd),
        "attempts": attempts,
    }


def cloud_answer(*, request_id: str, prompt: str, max_tokens: int, temperature: float,
                 now: datetime | None = None, api_key_id: int | None = None,
                 provider_name: str | None = None, messages: list[dict[str, Any]] | None = None,
                 options: dict[str, Any] | None = None) -> dict[str, Any]:  # fmt: skip
    """Answer through the retry chain (or one named provider). Raises BudgetError (no paid call)
    or CloudUnavailable. `api_key_id`: the client's key, whose own daily budget applies too.
    `messages` (a client's whole conversation) replace the one-question prompt; `options` (its
    OpenAI options: response format, tools, sampling) go to the provider as they are."""
    if not settings.SWARM_CLOUD_ENABLED:
        raise CloudUnavailable("cloud escalation is off (SWARM_CLOUD_ENABLED=false)")
    try:
        previous = _previous_answer(request_id)
        status = budget_status(now)
        chain = [p for p in provider_chain(now) if provider_name in (None, p.name)]
        api_key = ApiKey.objects.filter(pk=api_key_id).first() if api_key_id else None
    except DatabaseError as exc:
        raise BudgetUnavailable(f"budget store unavailable, no paid call made: {exc}") from None
    if previous:  # a redelivered task: the call was made and paid once already
        return previous
    if status["remaining_usd"] <= 0:
        raise BudgetExhausted(f"BudgetExhausted: the daily pool of {status['pool_usd'].normalize()} is spent "
                              "until the UTC reset or budget_reset")  # fmt: skip
    if not messages:
        messages = [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": prompt}]
    bound = prompt_token_bound(messages, (options or {}).get("tools"))
    cap = status["per_request_cap_usd"]
    if not chain:
        raise CloudUnavailable("no cloud provider is enabled, unretired and has its key set")
    errors: list[str] = []
    over_cap: list[str] = []
    for attempt, provider in enumerate(chain):
        worst = provider.cost(bound, max_tokens)
        if worst > cap:
            over_cap.append(f"{provider.name} ${worst.normalize()}")
            continue
        held = budget_reserve(request_id=request_id, provider=provider, amount=worst, now=now, api_key=api_key)
        started = time.perf_counter()
        try:
            completion = provider_complete(provider, messages, max_tokens=max_tokens, temperature=temperature,
                                           options=options)  # fmt: skip
        except ProviderFailed as exc:
            budget_release(reservation=held.reservation)
            provider_record_call(provider=provider, request_id=request_id, ok=False, error=str(exc),
                                 latency_ms=(time.perf_counter() - started) * 1000, now=now)  # fmt: skip
            metrics.record_cloud_call(provider.name, "error", 0, retried=attempt > 0)
            errors.append(f"{provider.name}: {exc}")
            time.sleep(min(MAX_BACKOFF_S, exc.retry_after or 0.1 * 2**attempt))
            continue
        entry = budget_settle(
            reservation=held.reservation,
            prompt_tokens=completion.prompt_tokens,
            completion_tokens=completion.completion_tokens,
            answer=completion.text,
            now=now,
        )
        provider_record_call(provider=provider, request_id=request_id, ok=True,
                             latency_ms=(time.perf_counter() - started) * 1000, now=now)  # fmt: skip
        metrics.record_cloud_call(provider.name, "ok", entry.cost_usd, retried=attempt > 0)
        return {**_answer(entry, attempts=attempt + 1), "finish_reason": completion.finish_reason,
                "tool_calls": completion.tool_calls, "logprobs": completion.logprobs}  # fmt: skip
    if over_cap and not errors:
        raise BudgetExceeded(f"BudgetExceeded: cost per request exceeded {cap.normalize()} ({', '.join(over_cap)})")
    raise CloudUnavailable("every provider failed: " + "; ".join(errors + over_cap))
