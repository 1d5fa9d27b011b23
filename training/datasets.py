"""Training data: answers worth learning, from the interaction log and from queued jobs.

What is worth learning (`trusted`): answers a paid provider gave, and local answers a verified head
gave (math checked by sympy, code run against tests, facts from the knowledge table: confidence >=
0.9). Small talk, unverified model text, UNSURE, cache and pattern replays and the unknowable head's
declines are not learned.

Deduplication is by the normalized prompt (case, Unicode form, spaces); a prompt whose trusted
answers disagree is dropped. The held-out split is decided by a hash of the normalized prompt, so
a prompt is held out on every night, never trained on by one run and tested on by the next.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from django.conf import settings

from routing.cache import normalize_prompt
from routing.vote import answers_agree

log = logging.getLogger(__name__)

VERIFIED_CONFIDENCE = 0.9
REPLAYED_ROUTES = ("cache", "pattern", "unsure", "local")
# Declines a rule gives (routing/heads/unknowable.py): the rule answers them again for free, and an adapter
# that learned "I cannot answer that" from "Who won the 2087 World Cup?" could refuse "... the 2018 World Cup?".
RULE_DECLINES = ("unknowable",)
MAX_PROMPT_CHARS = 1000
MAX_ANSWER_CHARS = 2000


@dataclass(frozen=True)
class Example:
    prompt: str
    answer: str
    source: str  # cloud | verified | given | teacher

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def trusted_interactions(*, since: datetime | None = None):
    """Interaction rows whose answers are worth learning (see the module doc), newest first."""
    from django.db.models import Q

    from routing.models import Interaction

    rows = Interaction.objects.filter(status=Interaction.Status.OK, cached=False).exclude(route__in=REPLAYED_ROUTES)
    rows = rows.filter(Q(provider__gt="") | Q(confidence__gte=VERIFIED_CONFIDENCE)).exclude(answer="")
    rows = rows.exclude(skill_type__in=RULE_DECLINES)
    if since is not None:
        rows = rows.filter(created_at__gte=since)
    return rows.order_by("-created_at")


def _source(row) -> str:
    return "cloud" if row.provider else "verified"


def dedupe(examples: list[Example]) -> list[Example]:
    """One example per normalized prompt (the first seen); prompts with disagreeing answers are dropped."""
    chosen: dict[str, Example] = {}
    conflicted: set[str] = set()
    for example in examples:
        key = normalize_prompt(example.prompt)
        if not key or key in conflicted:
            continue
        seen = chosen.get(key)
        if seen is None:
            chosen[key] = example
        elif not answers_agree(seen.answer, example.answer):
            conflicted.add(key)
            del chosen[key]
    if conflicted:
        log.info("dropped %d prompts whose trusted answers disagree", len(conflicted))
    return list(chosen.values())


def log_examples(*, since: datetime | None = None, limit: int = 20_000) -> list[Example]:
    rows = trusted_interactions(since=since)[:limit]
    examples = [
        Example(prompt=row.prompt, answer=row.answer, source=_source(row))
        for row in rows
        if len(row.prompt) <= MAX_PROMPT_CHARS and len(row.answer) <= MAX_ANSWER_CHARS
    ]
    return dedupe(examples)


def is_heldout(prompt: str, percent: int | None = None) -> bool:
    percent = settings.SWARM_LORA_HELDOUT_PERCENT if percent is None else percent
    digest = hashlib.sha256(normalize_prompt(prompt).encode()).digest()
    return int.from_bytes(digest[:4], "big") % 100 < percent


def split(examples: list[Example], percent: int | None = None) -> tuple[list[Example], list[Example]]:
    """(train, held out), by the prompt's hash (stable across runs)."""
    train, heldout = [], []
    for example in examples:
        (heldout if is_heldout(example.prompt, percent) else train).append(example)
    return train, heldout


def known_answer(prompt: str) -> Example | None:
    """The newest trusted logged answer to this prompt (same normalized text), if any."""
    wanted = normalize_prompt(prompt)
    candidates = trusted_interactions().filter(prompt__iexact=prompt.strip())[:20]
    for row in candidates:
        if normalize_prompt(row.prompt) == wanted:
            return Example(prompt=prompt, answer=row.answer, source=_source(row))
    return None


def teacher_answer(prompt: str) -> Example | None:
    """Ask the gateway's own cascade (verified heads, else the paid chain under the budget).

    This runs inside the trainer's task and waits for tasks on other queues (gpu, cpu), which other
    workers serve, so Celery's guard against waiting on a subtask is lifted for the call."""
    from celery.result import allow_join_result

    from routing.services import orchestrate_request

    with allow_join_result():
        result = orchestrate_request(prompt=prompt, max_tokens=settings.SWARM_DEFAULT_MAX_TOKENS, temperature=0.0,
                                     endpoint="training")  # fmt: skip
    confident = float(result.get("confidence") or 0) >= VERIFIED_CONFIDENCE  # a cache hit keeps its confidence
    trusted = bool(result.get("provider")) or (confident and result.get("route") not in ("unsure", "local"))
    if not trusted or not result.get("answer"):
        log.info("no trusted answer for %r (route %s): not learned", prompt[:60], result.get("route"))
        return None
    return Example(prompt=prompt, answer=result["answer"], source="cloud" if result.get("provider") else "teacher")


def job_examples(items: list[Any]) -> list[Example]:
    """A queued job's dataset: prompts (answered from the log, else by the cascade) or {prompt, answer} pairs."""
    examples: list[Example] = []
    for item in items:
        if isinstance(item, dict):
            prompt, answer = str(item.get("prompt", "")).strip(), str(item.get("answer", "")).strip()
        else:
            prompt, answer = str(item).strip(), ""
        if not prompt:
            continue
        if answer:
            examples.append(Example(prompt=prompt, answer=answer, source="given"))
            continue
        found = known_answer(prompt) or teacher_answer(prompt)
        if found is not None:
            examples.append(found)
    return dedupe(examples)
