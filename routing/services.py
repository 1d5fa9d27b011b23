"""Routing services: the worker side (the council, the plain model) and the API side (cache,
enqueue, wait or relay tokens, escalate, log)."""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache, partial
from typing import Any

import kombu.exceptions
import redis
from celery.exceptions import TimeoutError as CeleryTimeout
from django.conf import settings
from django.db import OperationalError as DbOperationalError
from django.db import transaction
from redis.backoff import NoBackoff
from redis.retry import Retry
from rest_framework.exceptions import APIException

from inference.backends.base import ContextWindowExceeded, Generation, InvalidOption
from inference.registry import active_model
from observability import metrics
from routing import streaming
from routing.admission import admit, release
from routing.cache import cache_key, cache_put, cached_answer
from routing.cascade import Decision, fast_decision, run_council
from routing.interaction_log import InteractionLogUnavailable, interaction_append, interaction_fields, storable
from routing.models import Interaction
from swarm_site.broker import AMQP_ERRORS
from swarm_site.errors import ContextLengthExceeded, GatewayTimeout, ServiceUnavailable, WorkerFailed
from swarm_site.logs import request_id_var
from swarm_site.redis_client import REDIS_ERRORS, redis_from_url
from training.serving import BASE as BASE_VERSION
from training.serving import Arm, Snapshot, adapter_ref, choose_arm, read_snapshot_with

log = logging.getLogger(__name__)

TRANSIENT_DB_ERRORS = (DbOperationalError,)
_BROKER_ERRORS = (*REDIS_ERRORS, kombu.exceptions.OperationalError, *AMQP_ERRORS)  # AMQP: RabbitMQ as the broker
AUTO = "auto"  # the cascade; "cloud/<provider>" one paid provider; anything else one local model
CLOUD_PREFIX = "cloud/"
COMPLETIONS = "completions"  # Ask.endpoint of OpenAI's legacy text completion: the local model on raw text

# --- worker side --------------------------------------------------------------------------------


def _serving_backend(adapter: dict[str, Any] | None):
    """This worker's backend with the request's adapter on it: (backend, adapter version served).

    An adapter that cannot be loaded (neither on this host nor in the adapter store, corrupt: refused
    by its SHA-256) is logged and the request is answered by the base model instead, and says so; the
    API then does not cache it.
    """
    from inference.runtime import get_backend

    backend = get_backend()
    try:
        ref = adapter_ref(adapter)  # this host's copy, fetched from the adapter store when missing
        backend.use_adapter(ref)
    except Exception as exc:  # noqa: BLE001 - any load failure: serve the base model, never fail the request
        log.error("could not load adapter %s, answering with the base model: %s", adapter and adapter["version"], exc)
        backend.use_adapter(None)
        return backend, BASE_VERSION
    return backend, ref.version if ref else BASE_VERSION


@contextmanager
def _replying(sink: streaming.TokenSink) -> Iterator[None]:
    """An error the task raises reaches the waiting API through the request's stream at once (then
    propagates, so Celery records the failure as before)."""
    try:
        yield
    except Exception as exc:
        try:
            sink.fail(f"{type(exc).__name__}: {exc}")
        except REDIS_ERRORS as unreachable:
            log.error("could not report the failure of %s to the API: %s", sink.request_id, unreachable)
        raise


def _refusal(exc: ContextWindowExceeded) -> dict[str, Any]:
    """The result of a request refused before generation (the API answers it with a 400)."""
    log.info("refused: %s", exc)
    return {"refused": exc.as_dict()}


def council_answer(
    *,
    prompt: str,
    max_tokens: int,
    temperature: float,
    request_id: str,
    stream: bool = False,
    adapter: dict[str, Any] | None = None,
    deadline_at: float | None = None,
) -> dict[str, Any]:
    """Answer with the local council on this worker's model. Plain JSON out, also written to the
    request's stream (routing/streaming.py), where the API waits for it.

    `deadline_at` (epoch seconds, set by the API) is when the request's deadline passes; the council
    decides SWARM_COUNCIL_RESERVE_S before it (council_deadline), leaving that for the paid chain.

    With `stream`, tokens of an answer that is being generated for the client (agent0 on chat)
    go to the stream as they come, before the decision closes it. A prompt that does not fit the
    model's context window with `max_tokens` is refused before any head runs.
    """
    from routing.heads import council
    from routing.heads.agent0 import LONGEST_SYSTEM_PROMPT

    sink = streaming.TokenSink(request_id)
    with _replying(sink):
        backend, served = _serving_backend(adapter)
        try:
            backend.check_context([{"role": "system", "content": LONGEST_SYSTEM_PROMPT},
                                   {"role": "user", "content": prompt}], max_tokens=max_tokens)  # fmt: skip
        except ContextWindowExceeded as exc:
            return sink.finish(_refusal(exc))
        fast, llm = council()
        decision: Decision = run_council(
            prompt,
            fast_heads=list(fast),
            llm_heads=list(llm),
            generate=backend.generate,
            max_tokens=max_tokens,
            temperature=temperature,
            min_confidence=settings.SWARM_MIN_CONFIDENCE,
            stream_generate=backend.stream_generate if stream else None,
            on_token=sink.emit if stream else None,
            adapter=None if served == BASE_VERSION else served,
            trust=backend.spec.trust,
            base_generate=backend.generate_base,
            deadline=council_deadline(deadline_at),
        )
        log.info("request %s answered by %s (%s)", request_id, decision.skill_type, decision.route)
        result = {**decision.as_dict(), "model": backend.spec.alias, "streamed_tokens": sink.sent,
                  "adapter_version": served}  # fmt: skip
        return sink.finish(result)


def council_deadline(deadline_at: float | None) -> float | None:
    """The time.perf_counter() by which the council must decide: the request's deadline (`deadline_at`,
    epoch seconds, as the API's clock set it; hosts keep their clocks in step, as Celery's `expires` also
    assumes) less SWARM_COUNCIL_RESERVE_S. None without a deadline."""
    if deadline_at is None:
        return None
    return time.perf_counter() + (deadline_at - time.time()) - settings.SWARM_COUNCIL_RESERVE_S


def model_answer(
    *,
    messages: list[dict[str, Any]],
    max_tokens: int,
    temperature: float,
    request_id: str,
    stream: bool = False,
    adapter: dict[str, Any] | None = None,
    options: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The worker's model alone, on the whole conversation: no council, no verification. The
    conversation must fit the context window with `max_tokens`, else it is refused before generation.

    `options` are the OpenAI generation options (routing/serializers.py): a response format or tools
    become a grammar the sampler follows (inference/constraints.py); tool calls are read from the
    whole answer, so their tokens are not streamed."""
    from inference import constraints

    sink = streaming.TokenSink(request_id)
    with _replying(sink):
        backend, served = _serving_backend(adapter)
        constraint = constraints.build(messages, options or {})
        try:
            counted = backend.check_context(constraint.messages, max_tokens=max_tokens)
        except ContextWindowExceeded as exc:
            return sink.finish(_refusal(exc))
        params = _generation_params(options or {}, grammar=constraint.grammar)
        try:
            if stream and constraint.kind != "tools":
                gen = backend.stream_generate(constraint.messages, max_tokens=max_tokens, temperature=temperature,
                                              on_piece=sink.emit, **params)  # fmt: skip
            else:
                gen = backend.generate(constraint.messages, max_tokens=max_tokens, temperature=temperature, **params)
        except InvalidOption as exc:
            log.info("refused: %s", exc)
            return sink.finish({"refused": exc.as_dict()})
        text = constraint.complete(gen.text, gen.finish_reason)
        message = constraint.read(text)
        return sink.finish(_generated(
            gen, model=backend.spec.alias, sink=sink, served=served, answer=text, tool_calls=message["tool_calls"],
            prompt_tokens=gen.prompt_tokens or counted or 0,
            finish_reason="tool_calls" if message["tool_calls"] else gen.finish_reason,
        ))  # fmt: skip


def text_answer(
    *,
    prompt: str,
    max_tokens: int,
    temperature: float,
    request_id: str,
    stream: bool = False,
    adapter: dict[str, Any] | None = None,
    options: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The worker's model alone on a raw text prompt (OpenAI's legacy /v1/completions): no chat template,
    no council. The prompt must fit the context window with `max_tokens`, else it is refused before
    generation. `options` are the sampling options of routing/openai_completions.py."""
    sink = streaming.TokenSink(request_id)
    with _replying(sink):
        backend, served = _serving_backend(adapter)
        params = _generation_params(options or {}, grammar=None)
        try:
            gen = backend.complete_text(prompt, max_tokens=max_tokens, temperature=temperature,
                                        on_piece=sink.emit if stream else None, **params)  # fmt: skip
        except ContextWindowExceeded as exc:
            return sink.finish(_refusal(exc))
        except InvalidOption as exc:
            log.info("refused: %s", exc)
            return sink.finish({"refused": exc.as_dict()})
        return sink.finish(_generated(gen, model=backend.spec.alias, sink=sink, served=served))


def _generated(
    gen: Generation, *, model: str, sink: streaming.TokenSink, served: str, **overrides: Any
) -> dict[str, Any]:
    """The result of a generation by the model alone (no council): its text, tokens and logprobs."""
    result = {
        "answer": gen.text, "route": "local", "skill_type": "model", "confidence": 0.0,
        "prompt_tokens": gen.prompt_tokens, "completion_tokens": gen.completion_tokens,
        "finish_reason": gen.finish_reason, "logprobs": gen.logprobs, "model": model,
        "streamed_tokens": sink.sent, "adapter_version": served,
    }  # fmt: skip
    return {**result, **overrides}


def _generation_params(options: dict[str, Any], *, grammar: str | None) -> dict[str, Any]:
    """The backend's generation arguments for a request's OpenAI options."""
    params = {name: options[name] for name in ("stop", "seed", "top_p", "presence_penalty", "frequency_penalty",
                                                "logit_bias") if name in options}  # fmt: skip
    if options.get("logprobs"):
        params["logprobs"] = int(options.get("top_logprobs") or 0)
    if grammar:
        params["grammar"] = grammar
    return params


# --- API side -----------------------------------------------------------------------------------


@dataclass
class Ask:
    """One request as the API sees it."""

    prompt: str
    max_tokens: int
    temperature: float
    endpoint: str = "orchestrate"
    messages: list[dict[str, str]] | None = None  # the whole conversation (OpenAI API)
    route: str = AUTO
    api_key_id: int | None = None
    client: str | None = None  # who is asking (key, user, address): keeps a client on one canary arm
    options: dict[str, Any] = field(default_factory=dict)  # OpenAI generation options (routing/serializers.py)
    detail: str | None = None  # why the request took its route, when the API chose it (swarm-auto -> local)
    # The caller's concurrency slots (access.services.Slot), given back in the interaction's append, the
    # request's last round trip; a stream's are not passed: they are released after its last byte.
    slots: tuple[Any, ...] = ()
    request_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    started: float = field(default_factory=time.perf_counter)

    def __post_init__(self) -> None:
        request_id_var.set(self.request_id)  # every log line of this request names it
        self.arm: Arm = Arm()  # set by _lookup: the adapter this request is served with
        self.exact = False  # answered by an exact head in this process (no model, no adapter)

    def remaining(self) -> float:
        return settings.SWARM_DEADLINE_S - (time.perf_counter() - self.started)

    def worker_kwargs(self, *, stream: bool) -> dict[str, Any]:
        common = {"max_tokens": self.max_tokens, "temperature": self.temperature, "request_id": self.request_id,
                  "stream": stream, "adapter": self.arm.as_task()}  # fmt: skip
        if self.route == AUTO:
            return {"prompt": self.prompt, **common, "deadline_at": time.time() + self.remaining()}
        if self.endpoint == COMPLETIONS:  # a raw text prompt (routing/openai_completions.py)
            return {"prompt": self.prompt, **common, "options": self.options or None}
        if self.options:
            common["options"] = self.options
        return {"messages": self.messages or [{"role": "user", "content": self.prompt}], **common}

    def form(self) -> dict[str, Any] | None:
        """The options that shape the answer, for its cache key (stop sequences are cut by the API afterwards)."""
        return {k: v for k, v in self.options.items() if k != "stop"} or None


def client_identity(*, api_key_id: int | None, user: str | None, address: str | None) -> str:
    """Who is asking, for the sticky canary split: the API key (and the end user it names), or the address."""
    parts = [f"key:{api_key_id}" if api_key_id is not None else f"addr:{address or '-'}"]
    if user:
        parts.append(f"user:{user}")
    return "/".join(parts)


def _lookup(ask: Ask) -> tuple[str | None, str, dict[str, Any] | None]:
    """(cache key, adapter version, cached answer). Picks the request's adapter arm (stable or
    canary) into `ask.arm`. Only the cascade is cached; the key names the adapter."""

    def key_for(snapshot: Snapshot) -> str | None:
        ask.arm = choose_arm(snapshot, ask.client or ask.request_id)
        if ask.route != AUTO:
            return None
        return cache_key(prompt=ask.prompt, model=active_model().alias, adapter_version=ask.arm.version,
                         max_tokens=ask.max_tokens, temperature=ask.temperature, form=ask.form())  # fmt: skip

    try:
        _, key, raw = read_snapshot_with(key_for)  # one round trip: the serving state and the cached answer
    except REDIS_ERRORS as exc:
        raise ServiceUnavailable(f"Redis is unavailable: {exc}") from None
    return key, ask.arm.version, cached_answer(raw)


def _finish(ask: Ask, result: dict[str, Any], *, key: str | None, adapter: str, cached: bool) -> dict[str, Any]:
    """Cache a confident fresh answer, stamp the response, log the interaction off the response path."""
    result["cached"] = cached
    if isinstance(result.get("answer"), str):
        result["answer"] = storable(result["answer"])  # a provider's unpaired surrogate would break the response
    served = result.get("adapter_version", adapter)  # the worker says which adapter really answered
    entry = None
    if key and not cached and served == adapter and result["route"] not in ("unsure", "local"):
        entry = _cacheable(result)  # written with the interaction's append, in one round trip
    result.update(request_id=ask.request_id, latency_ms=round((time.perf_counter() - ask.started) * 1000, 2),
                  adapter_version=served)  # fmt: skip
    if "model" not in result:
        result["model"] = active_model().alias
    result.setdefault("cost_usd", 0.0)
    if ask.detail and not result.get("detail"):
        result["detail"] = ask.detail
    metrics.record_request(result["route"], result.get("skill_type"), result["latency_ms"] / 1000, cached,
                           cache_lookup=key is not None)  # fmt: skip
    if not cached and ask.route == AUTO and result["route"] != "pattern" and not ask.exact:  # the model answered
        outcome = "unsure" if result["route"] == "unsure" else "cloud" if result.get("provider") else "local"
        metrics.record_arm_request(ask.arm.name, outcome, result["latency_ms"] / 1000)
    _publish_log(_log_payload(result, ask=ask), cache=(key, entry) if key and entry is not None else None,
                 slots=ask.slots)  # fmt: skip
    return result


def _from_cache(hit: dict[str, Any]) -> dict[str, Any]:
    return {**hit, "route": "cache", "cached_route": hit.get("route")}


def _from_pattern(ask: Ask) -> dict[str, Any] | None:
    """A mined pattern head's answer (embedding + guard, in this process), or None."""
    if ask.route != AUTO:
        return None
    from mining.runtime import pattern_lookup

    hit = pattern_lookup(ask.prompt)
    if hit is None:
        return None
    return {"answer": hit.answer, "route": "pattern", "skill_type": "pattern", "confidence": hit.confidence,
            "pattern": hit.as_dict(), "cost_usd": 0.0}  # fmt: skip


# At most this many requests of one web process run the exact heads at once. Each is bounded by its
# heads' CPU deadlines (math: 0.5 s of its thread's CPU), but the threads share one interpreter: a
# burst of hostile inputs must not take every thread's turn from cache hits. A request waits up to
# _EXACT_WAIT_S for a place (an ordinary head answers in a few ms); past it, it goes to the worker's
# council, which runs the same heads.
_EXACT_HERE = threading.BoundedSemaphore(4)
_EXACT_WAIT_S = 0.05


def _from_fast_heads(ask: Ask) -> dict[str, Any] | None:
    """The council's exact heads (math, units and dates, the facts table), run here in the API
    under their own CPU deadlines: a verified answer is the council's early answer, without the
    queue or a model slot. None: the worker's council (which asks the model) is needed."""
    if ask.route != AUTO:
        return None
    from routing.heads import fast_heads

    if not _EXACT_HERE.acquire(timeout=_EXACT_WAIT_S):  # this process's share is busy: the worker's council does it
        return None
    try:
        decision = fast_decision(ask.prompt, fast_heads=list(fast_heads()), max_tokens=ask.max_tokens,
                                 temperature=ask.temperature, min_confidence=settings.SWARM_MIN_CONFIDENCE)  # fmt: skip
    finally:
        _EXACT_HERE.release()
    if decision is None:
        return None
    ask.exact = True
    return {**decision.as_dict(), "model": active_model().alias, "streamed_tokens": 0}


def _answered_here(ask: Ask) -> dict[str, Any] | None:
    """An answer this process can give without a worker: a mined pattern, else an exact head."""
    return _from_pattern(ask) or _from_fast_heads(ask)


def orchestrate_request(
    *, prompt: str, max_tokens: int, temperature: float, endpoint: str = "orchestrate", **extra: Any
) -> dict[str, Any]:
    """The hot path: exact cache, else the council (or one local model) on a worker within the
    deadline, then the paid chain if the council is unsure and escalation is on."""
    ask = Ask(prompt=prompt, max_tokens=max_tokens, temperature=temperature, endpoint=endpoint, **extra)
    key, adapter, hit = _lookup(ask)
    if hit is not None:
        return _finish(ask, _from_cache(hit), key=key, adapter=adapter, cached=True)
    if ask.route.startswith(CLOUD_PREFIX):
        return _finish(ask, _cloud(ask, {}), key=key, adapter=adapter, cached=False)
    if (here := _answered_here(ask)) is not None:
        return _finish(ask, here, key=key, adapter=adapter, cached=False)
    admission = admit(ask.remaining())
    try:
        _publish(_worker_task(ask), kwargs=ask.worker_kwargs(stream=False), task_id=ask.request_id,
                 deadline_s=ask.remaining())  # fmt: skip
        result = _worker_result(ask)
    finally:
        release(admission)
    _forget(ask.request_id)
    result = _maybe_escalate(ask, result)
    return _finish(ask, result, key=key, adapter=adapter, cached=False)


def orchestrate_stream(
    *, prompt: str, max_tokens: int, temperature: float, endpoint: str = "orchestrate", **extra: Any
) -> tuple[Ask, Iterator[dict[str, Any]]]:
    """Like orchestrate_request, as events: {"type": "token", "text"} while the answer is being
    generated, {"type": "ping"} while waiting, and last {"type": "final", "result"}. Closing the
    iterator early (the client left) cancels the generation."""
    ask = Ask(prompt=prompt, max_tokens=max_tokens, temperature=temperature, endpoint=endpoint, **extra)
    key, adapter, hit = _lookup(ask)  # raises before the first byte is sent
    if ask.route.startswith(CLOUD_PREFIX):
        paid = _finish(ask, _cloud(ask, {}), key=key, adapter=adapter, cached=False)  # not streamed by providers
        return ask, (event for event in [{"type": "final", "result": paid}])
    if hit is None and (here := _answered_here(ask)) is not None:
        return ask, (event for event in [{"type": "final", "result": _finish(ask, here, key=key, adapter=adapter,
                                                                                 cached=False)}])  # fmt: skip
    admission = None
    if hit is None:
        admission = admit(ask.remaining())
        try:
            _publish(_worker_task(ask), kwargs=ask.worker_kwargs(stream=True), task_id=ask.request_id,
                     deadline_s=ask.remaining())  # fmt: skip
        except APIException:
            release(admission)
            raise

    def events() -> Iterator[dict[str, Any]]:
        if hit is not None:
            yield {"type": "final", "result": _finish(ask, _from_cache(hit), key=key, adapter=adapter, cached=True)}
            return
        done = False
        try:
            result: dict[str, Any] = {}
            for event in _worker_events(ask):
                if event["type"] == "final":
                    result = event["result"]
                    break
                yield event
            _forget(ask.request_id)
            result = _maybe_escalate(ask, result)
            done = True
            yield {"type": "final", "result": _finish(ask, result, key=key, adapter=adapter, cached=False)}
        except APIException:
            done = True  # the task ended (failed, refused) or cannot be reached: nothing to cancel
            raise
        finally:
            release(admission)
            if not done:  # the client went away mid-answer
                _cancel(ask.request_id)

    return ask, events()


def _worker_events(ask: Ask) -> Iterator[dict[str, Any]]:
    """The serving task's events for `ask` (tokens, pings, then its final result), as they come on
    the request's stream. Its failure ends them at once with a 502, its refusal (a prompt too long
    for the model) with a 400, the deadline with a 504, and a Redis that does not answer within a
    few seconds with a 503."""
    try:
        for event in streaming.relay(ask.request_id, deadline_s=ask.remaining(),
                                     failure=partial(_task_failure, ask.request_id)):  # fmt: skip
            if event["type"] == "error":
                raise WorkerFailed(f"the worker failed on request {ask.request_id}: {event['message']}")
            if event["type"] == "final" and (refused := event["result"].get("refused")) is not None:
                _forget(ask.request_id)
                raise _refused_error(ask, refused)
            yield event
    except streaming.DeadlinePassed:
        raise GatewayTimeout(f"no worker answered within the deadline (request {ask.request_id})") from None
    except _BROKER_ERRORS as exc:
        raise ServiceUnavailable(f"lost the connection to Redis while waiting (request {ask.request_id}): "
                                 f"{exc}") from None  # fmt: skip


def _worker_result(ask: Ask) -> dict[str, Any]:
    """The serving task's final result (the errors of _worker_events otherwise)."""
    for event in _worker_events(ask):
        if event["type"] == "final":
            return event["result"]
    raise WorkerFailed(f"the reply to request {ask.request_id} ended without a result")


def _refused_error(ask: Ask, refused: dict[str, Any]) -> APIException:
    """The 400 for a request the worker refused before generating: a generation option the model
    cannot take (`param` names it), or a prompt that does not fit the context window."""
    if "param" in refused:
        from routing.openai_fields import UnsupportedParameter

        return UnsupportedParameter(refused["param"], refused["message"], code="invalid_value")
    return _context_error(ask, refused)


def _context_error(ask: Ask, refused: dict[str, Any]) -> ContextLengthExceeded:
    """OpenAI's 400 for a prompt that does not fit the model's context window, named as the endpoint names it."""
    param = {"v1": "messages", "hybrid": "query"}.get(ask.endpoint, "prompt")
    exc = ContextWindowExceeded(**{k: refused[k] for k in ("n_ctx", "prompt_tokens", "max_tokens")})
    return ContextLengthExceeded(exc.describe(what=param), param=param)


@lru_cache(maxsize=1)
def _result_store() -> redis.Redis:
    """Celery's result backend, read with the API's short timeout and no retries (see _task_failure)."""
    return redis_from_url(settings.CELERY_RESULT_BACKEND, socket_timeout=settings.SWARM_REDIS_TIMEOUT_S,
                          socket_connect_timeout=settings.SWARM_REDIS_TIMEOUT_S,
                          retry=Retry(NoBackoff(), 0))  # fmt: skip


def _task_failure(task_id: str) -> str | None:
    """Why the task failed, when its stored state says it did (FAILURE, REVOKED); else None.

    A task that fails inside the service writes its error to the stream itself; this catches one
    that failed before (unknown arguments, a worker that could not start it) or was revoked."""
    from swarm_site.celery import app

    raw = _result_store().get(app.backend.get_key_for_task(task_id))
    if raw is None:
        return None
    meta = json.loads(raw)
    if meta.get("status") == "REVOKED":
        return "the task was revoked before it ran"
    if meta.get("status") != "FAILURE":
        return None
    error = meta.get("result") or {}
    if isinstance(error, dict):
        message = error.get("exc_message")
        message = " ".join(map(str, message)) if isinstance(message, (list, tuple)) else message
        return f"{error.get('exc_type', 'Error')}: {message}"
    return str(error)


def _worker_task(ask: Ask):
    from routing.tasks import complete_text, generate, orchestrate

    if ask.endpoint == COMPLETIONS:
        return complete_text
    return orchestrate if ask.route == AUTO else generate


def _maybe_escalate(ask: Ask, result: dict[str, Any]) -> dict[str, Any]:
    if result["route"] != "unsure" or not settings.SWARM_CLOUD_ENABLED:
        return result
    return _cloud(ask, result)


def _cloud(ask: Ask, local: dict[str, Any]) -> dict[str, Any]:
    """The paid chain (or the one provider the route names), on the cpu queue, under the budget."""
    from budget.tasks import cloud_answer_task

    provider = ask.route.removeprefix(CLOUD_PREFIX) if ask.route.startswith(CLOUD_PREFIX) else None
    kwargs = {"prompt": ask.prompt, "max_tokens": ask.max_tokens, "temperature": ask.temperature,
              "request_id": ask.request_id, "api_key_id": ask.api_key_id, "provider_name": provider}  # fmt: skip
    if provider is not None and ask.messages:  # a client that names the provider: its whole request goes there
        kwargs.update(messages=ask.messages, options=ask.options or None)
    cloud = _run_task(cloud_answer_task, kwargs=kwargs, task_id=f"{ask.request_id}-cloud", deadline_s=ask.remaining())
    if cloud.get("unsure"):
        unsure = {"answer": "UNSURE", "route": "unsure", "skill_type": "unsure", "confidence": 0.0}
        return {**unsure, **local, "detail": cloud["detail"]}
    return {**local, **cloud, "local_ballots": local.get("ballots", [])}


def _cacheable(result: dict[str, Any]) -> dict[str, Any]:
    keep = ("answer", "route", "skill_type", "confidence", "ballots", "scores", "reasons", "winner_head", "provider")
    return {k: result[k] for k in keep if k in result}


def _publish(task, *, kwargs: dict[str, Any], task_id: str, deadline_s: float):
    if deadline_s <= 0:
        raise GatewayTimeout(f"the request deadline passed before {task.name} could run (request {task_id})")
    try:
        return task.apply_async(kwargs=kwargs, task_id=task_id, expires=deadline_s)
    except _BROKER_ERRORS as exc:
        raise ServiceUnavailable(f"the task queue is unavailable: {exc}") from None


WAIT_SLICE_S = 1.0


def _run_task(task, *, kwargs: dict[str, Any], task_id: str, deadline_s: float) -> dict[str, Any]:
    """Publish one task and wait for its JSON result until `deadline_s` (503 / 504 / 502 otherwise).

    The wait is made of short slices, each a read of the result backend bounded by its socket timeout
    (CELERY_REDIS_SOCKET_TIMEOUT), so a Redis that stops answering ends it with a 503 within seconds."""
    async_result = _publish(task, kwargs=kwargs, task_id=task_id, deadline_s=deadline_s)
    ends = time.monotonic() + deadline_s
    try:
        while True:
            left = ends - time.monotonic()
            if left <= 0:
                raise GatewayTimeout(f"no worker answered within the deadline (request {task_id})")
            try:
                answer = async_result.get(timeout=min(WAIT_SLICE_S, left), propagate=False)
                break
            except CeleryTimeout:
                continue
    except _BROKER_ERRORS as exc:
        raise ServiceUnavailable(f"lost the connection to Redis while waiting: {exc}") from None
    failed = async_result.failed()
    async_result.forget()  # read once; nobody needs it in Redis any more
    if failed:
        raise WorkerFailed(f"the worker failed on request {task_id}: {type(answer).__name__}: {answer}")
    return answer


def _forget(task_id: str) -> None:
    from celery.result import AsyncResult

    try:
        AsyncResult(task_id).forget()  # the stream carried the result
    except _BROKER_ERRORS as exc:
        log.warning("could not drop the stored result of %s: %s", task_id, exc)


def _cancel(request_id: str) -> None:
    from swarm_site.celery import app

    try:
        streaming.cancel(request_id)
        app.control.revoke(request_id)  # not started yet: never start
    except _BROKER_ERRORS as exc:
        log.warning("could not cancel %s: %s", request_id, exc)


def _publish_log(
    payload: dict[str, Any], *, cache: tuple[str, dict[str, Any]] | None = None, slots: tuple[Any, ...] = ()
) -> None:
    """Append the interaction to the log stream, which the writers in worker-cpu drain into the database
    (routing/interaction_log.py), with the fresh answer's cache entry (`cache`: key, value) and the
    release of the caller's concurrency `slots` in the same round trip. By default it never raises: the
    answer is already computed; a failure is counted (a failed cache write is logged; a slot not given
    back expires by itself). With SWARM_REDIS_MIN_REPLICAS_ACK (Sentinel) the log must hold it before the
    client is answered: a failed append is a 503 (the client tries again; no answer it was given is
    missing from the log)."""

    def also(pipe) -> None:
        if cache:
            cache_put(cache[0], cache[1], client=pipe)
        for slot in slots:
            slot.release_in(pipe)

    try:
        interaction_append(payload=payload, required=settings.SWARM_REDIS_MIN_REPLICAS_ACK > 0,
                           also=also if cache or slots else None)  # fmt: skip
    except InteractionLogUnavailable as exc:
        raise ServiceUnavailable(f"the interaction log is unavailable, request {payload.get('request_id')} was "
                                 f"not answered; try again: {exc}") from None  # fmt: skip


def _log_payload(result: dict[str, Any], *, ask: Ask) -> dict[str, Any]:
    return {
        "request_id": ask.request_id,
        "created_at": datetime.now(UTC).isoformat(),
        "endpoint": ask.endpoint,
        "prompt": ask.prompt,
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
    """Store one interaction (the legacy Celery task `routing.tasks.log_interaction`, for messages queued
    before the log moved to the Redis stream); a redelivered task updates the same row instead of adding
    one. Text that cannot be stored as it is (see `storable`) is stored with U+FFFD in its place, never lost."""
    fields = interaction_fields(payload=payload)
    request_id = fields.pop("request_id")
    with transaction.atomic():
        interaction, _ = Interaction.objects.update_or_create(request_id=request_id, defaults=fields)
    return interaction
