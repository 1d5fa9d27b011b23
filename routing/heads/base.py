"""The head interface: every specialist answers a prompt with a Ballot."""

from __future__ import annotations

import ast
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from inference.backends.base import Generation
from inference.registry import ModelTrust

# The local model, supplied by the worker: generate(messages, max_tokens=, temperature=) -> Generation.
Generate = Callable[..., Generation]


# CPython 3.11's AST converter keeps its recursion depth in interpreter-wide state: two threads
# turning source into AST objects at once can fail with "SystemError: AST constructor recursion depth
# mismatch". The heads run side by side in threads (the council, the API's exact heads), so every parse
# of theirs goes through this one lock; a prompt-sized parse takes microseconds.
_AST_LOCK = threading.Lock()


def parse_source(source: str, mode: str = "exec") -> ast.AST:
    """`ast.parse(source, mode=mode)`, one thread at a time (raises what ast.parse raises)."""
    with _AST_LOCK:
        return ast.parse(source, mode=mode)


@dataclass(frozen=True)
class Ballot:
    """One head's vote: its answer, how sure it is, and why."""

    head: str
    answer: str
    confidence: float
    skill_type: str
    latency_ms: float = 0.0
    evidence: dict[str, Any] = field(default_factory=dict)
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "head": self.head,
            "answer": self.answer,
            "confidence": round(self.confidence, 4),
            "skill_type": self.skill_type,
            "latency_ms": round(self.latency_ms, 2),
            "evidence": self.evidence,
            "error": self.error,
        }


@dataclass
class HeadContext:
    """What a head may use besides the prompt.

    `stream`, when set, generates like `generate` while relaying each token to the client as it
    is produced; a head uses it only when its answer is going to be the reply (agent0 on chat).
    `adapter` names the LoRA adapter the model serves this request with, if any; `base_generate`, set
    with an adapter, generates like `generate` by the base model alone. `trust` is the rule under which
    the base model's own answers are trusted (calibrated per model; see agent0). `deadline`: a head that
    can do more with more time (the code head's redraws and witnesses) stops starting work that would
    not end by it.
    """

    generate: Generate | None = None
    max_tokens: int = 128
    temperature: float = 0.0
    stream: Generate | None = None
    adapter: str | None = None  # the distilled LoRA adapter on the model (None: the base model)
    base_generate: Generate | None = None  # the model without `adapter` (None: no adapter, or none to take off)
    # The base model's calibrated trust rule (config/models.yaml `trust`, fitted by bench/trust.py); None: none.
    trust: ModelTrust | None = None
    # time.perf_counter() by which the council must have decided (the request's deadline less
    # SWARM_COUNCIL_RESERVE_S, for what follows it); None: no deadline known (an offline caller).
    deadline: float | None = None


class Head(ABC):
    """A specialist. `applies` is a cheap filter; `answer` does the work."""

    name: str = "head"
    skill_type: str = "general"
    timeout_s: float = 5.0

    def applies(self, prompt: str) -> bool:  # pragma: no cover - default
        return True

    @abstractmethod
    def answer(self, prompt: str, ctx: HeadContext) -> Ballot: ...

    def ballot(self, answer: str, confidence: float, started: float, **evidence: Any) -> Ballot:
        """Build a ballot stamped with the time since `started` (a perf_counter value)."""
        return Ballot(
            head=self.name,
            answer=answer,
            confidence=max(0.0, min(1.0, confidence)),
            skill_type=self.skill_type,
            latency_ms=(time.perf_counter() - started) * 1000,
            evidence=evidence,
        )

    def abstain(self, started: float, reason: str) -> Ballot:
        return self.ballot("", 0.0, started, abstained=reason)
