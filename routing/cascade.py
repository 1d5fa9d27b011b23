"""The local council: fast exact heads first, the LLM heads when they are not enough, then a vote.

The cascade's cheaper stages (exact cache, mined pattern heads) and its last resort (the cloud)
wrap this; see routing/services.py. Heads run concurrently where independent, each with its
own timeout; a head that fails or overruns yields an error ballot, never an exception.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from functools import partial
from typing import Any

from inference.backends.base import Generation
from inference.registry import ModelTrust
from routing.heads.base import Ballot, Generate, Head, HeadContext
from routing.vote import VoteResult, vote

log = logging.getLogger(__name__)

UNSURE_ANSWER = "UNSURE"
VERIFIED = 0.9  # a fast exact head this sure (math, knowledge table, unit tables) skips the LLM
_pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="swarm-head")


@dataclass
class Decision:
    answer: str
    route: str  # "council" | "unsure"
    skill_type: str
    confidence: float
    ballots: list[Ballot]
    scores: dict[str, float]
    reasons: dict[str, str]
    prompt_tokens: int = 0
    completion_tokens: int = 0
    latency_ms: float = 0.0
    winner_head: str | None = None

    @property
    def unsure(self) -> bool:
        return self.route == "unsure"

    def as_dict(self) -> dict[str, Any]:
        return {
            "answer": self.answer,
            "route": self.route,
            "skill_type": self.skill_type,
            "confidence": round(self.confidence, 4),
            "winner_head": self.winner_head,
            "ballots": [b.as_dict() for b in self.ballots],
            "scores": self.scores,
            "reasons": self.reasons,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "council_latency_ms": round(self.latency_ms, 2),
        }


class MeteredGenerate:
    """Serializes calls into one model (a llama context is not thread-safe) and counts tokens."""

    def __init__(self, generate: Generate, lock: threading.Lock | None = None) -> None:
        self._generate = generate
        self._lock = lock or threading.Lock()
        self.prompt_tokens = 0
        self.completion_tokens = 0

    def __call__(self, messages: list[dict[str, str]], **params: Any) -> Generation:
        return self.run(self._generate, messages, **params)

    def run(self, call: Generate, messages: list[dict[str, str]], **params: Any) -> Generation:
        """Any entry into the same model (e.g. its streaming call), serialized and metered alike."""
        with self._lock:
            gen = call(messages, **params)
        self.prompt_tokens += gen.prompt_tokens
        self.completion_tokens += gen.completion_tokens
        return gen


def _error_ballot(head: Head, started: float, message: str) -> Ballot:
    return Ballot(
        head=head.name,
        answer="",
        confidence=0.0,
        skill_type=head.skill_type,
        latency_ms=(time.perf_counter() - started) * 1000,
        error=message,
    )


def run_head(head: Head, prompt: str, ctx: HeadContext) -> Ballot:
    """One head, in this thread; any failure becomes an error ballot (logged with its traceback)."""
    started = time.perf_counter()
    try:
        return head.answer(prompt, ctx)
    except Exception as exc:
        log.exception("head %s failed", head.name)
        return _error_ballot(head, started, f"{type(exc).__name__}: {exc}")


def run_concurrently(heads: list[Head], prompt: str, ctx: HeadContext) -> list[Ballot]:
    started = time.perf_counter()
    futures = [(head, _pool.submit(run_head, head, prompt, ctx)) for head in heads]
    ballots = []
    for head, future in futures:
        remaining = head.timeout_s - (time.perf_counter() - started)
        try:
            ballots.append(future.result(timeout=max(0.0, remaining)))
        except FutureTimeout:
            future.cancel()
            ballots.append(_error_ballot(head, started, f"timed out after {head.timeout_s}s"))
    return ballots


def _decision(result: VoteResult, ballots: list[Ballot], metered: MeteredGenerate | None, started: float) -> Decision:
    winner = result.winner
    return Decision(
        answer=winner.answer if winner else UNSURE_ANSWER,
        route="council" if winner else "unsure",
        skill_type=winner.skill_type if winner else "unsure",
        confidence=result.scores[winner.head] if winner else 0.0,
        ballots=ballots,
        scores=result.scores,
        reasons=result.reasons,
        prompt_tokens=metered.prompt_tokens if metered else 0,
        completion_tokens=metered.completion_tokens if metered else 0,
        latency_ms=(time.perf_counter() - started) * 1000,
        winner_head=winner.head if winner else None,
    )


def _fast_stage(
    prompt: str, fast_heads: list[Head], ctx: HeadContext, min_confidence: float
) -> tuple[list[Ballot], VoteResult]:
    """The exact heads that apply, concurrently, and their vote at the verified floor."""
    ballots = run_concurrently([h for h in fast_heads if h.applies(prompt)], prompt, ctx)
    return ballots, vote(ballots, min_confidence=max(min_confidence, VERIFIED))


def fast_decision(
    prompt: str, *, fast_heads: list[Head], max_tokens: int, temperature: float, min_confidence: float
) -> Decision | None:
    """The council's first stage alone, without a model: the decision it returns early with (a
    verified exact answer), or None when the model would be needed. Runs where no model is loaded
    (the API), so a deterministic answer never waits for, or holds, a model slot."""
    started = time.perf_counter()
    ctx = HeadContext(max_tokens=max_tokens, temperature=temperature)
    ballots, early = _fast_stage(prompt, fast_heads, ctx, min_confidence)
    return _decision(early, ballots, None, started) if early.winner is not None else None


def run_council(
    prompt: str,
    *,
    fast_heads: list[Head],
    llm_heads: list[Head],
    generate: Generate | None,
    max_tokens: int,
    temperature: float,
    min_confidence: float,
    stream_generate: Generate | None = None,
    on_token: Callable[[str], bool] | None = None,
    adapter: str | None = None,
    trust: ModelTrust | None = None,
    base_generate: Generate | None = None,
    deadline: float | None = None,
) -> Decision:
    """`stream_generate` + `on_token`: the model's streaming call and where its tokens go;
    `adapter`: the LoRA adapter the model serves this request with (None: the base model);
    `trust`: the model's calibrated trust rule (config/models.yaml), if it has one;
    `base_generate`: the same model's call without its adapter (used only when `adapter` is set);
    `deadline`: time.perf_counter() by which the council must decide (HeadContext.deadline)."""
    started = time.perf_counter()
    metered = MeteredGenerate(generate) if generate else None
    stream = None
    if metered and stream_generate and on_token:
        stream = partial(metered.run, partial(stream_generate, on_piece=on_token))
    base = partial(metered.run, base_generate) if metered and base_generate and adapter else None
    ctx = HeadContext(generate=metered, max_tokens=max_tokens, temperature=temperature, stream=stream, adapter=adapter,
                      trust=trust, base_generate=base, deadline=deadline)  # fmt: skip

    ballots, early = _fast_stage(prompt, fast_heads, ctx, min_confidence)
    if early.winner is not None:
        return _decision(early, ballots, metered, started)

    # The LLM heads share one model, so they take turns (MeteredGenerate holds the lock).
    ballots += [run_head(head, prompt, ctx) for head in llm_heads if head.applies(prompt)]
    return _decision(vote(ballots, min_confidence=min_confidence), ballots, metered, started)
