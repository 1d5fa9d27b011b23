"""The council's heads, built once per process."""

from __future__ import annotations

from functools import lru_cache

from routing.heads.base import Ballot, Head, HeadContext

__all__ = ["Ballot", "Head", "HeadContext", "council", "fast_heads"]


@lru_cache(maxsize=1)
def fast_heads() -> tuple[Head, ...]:
    """The exact heads (no model): run concurrently first, in the API and again on the worker."""
    from routing.heads.knowledge import KnowledgeHead
    from routing.heads.math import MathHead
    from routing.heads.micro import MicroHead
    from routing.heads.unknowable import UnknowableHead

    return MathHead(), MicroHead(), KnowledgeHead(), UnknowableHead()


@lru_cache(maxsize=1)
def council() -> tuple[tuple[Head, ...], tuple[Head, ...]]:
    """(fast heads run concurrently first, LLM heads run in turn when those are not enough)."""
    from django.conf import settings

    from routing.heads.agent0 import Agent0Head
    from routing.heads.code import CodeHead
    from routing.heads.reasoning import ReasoningHead

    llm: list[Head] = [CodeHead(), *([ReasoningHead()] if settings.SWARM_REASONING_HEAD else []), Agent0Head()]
    return fast_heads(), tuple(llm)
