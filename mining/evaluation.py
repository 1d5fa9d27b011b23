"""The paraphrase data set (mining/data/paraphrases.yaml) and helpers to measure pattern heads against it.

Used by bench/pattern_lookup.py and bench/spiral.py; tests/mining has its own small seeding helpers.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Callable, Iterable
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml
from django.utils import timezone

from mining.runtime import PatternHit
from routing.models import Interaction
from routing.vote import answers_agree

DATA_PATH = Path(__file__).resolve().parent / "data" / "paraphrases.yaml"
_ids = itertools.count()


def load_groups(path: Path = DATA_PATH) -> list[dict[str, Any]]:
    """Groups of {id, kind, answer, paraphrases, near_misses}."""
    return yaml.safe_load(path.read_text(encoding="utf-8"))["groups"]


def log_cloud_answer(prompt: str, answer: str, *, when: datetime | None = None) -> Interaction:
    """An interaction as if the local council was unsure and the cloud answered `answer`."""
    return Interaction.objects.create(
        request_id=f"eval-{uuid.uuid4().hex[:12]}-{next(_ids)}",
        created_at=when or timezone.now(),
        prompt=prompt,
        answer=answer,
        route="cloud",
        skill_type="cloud",
        confidence=0.9,
        provider="simulated",
    )


def evaluate(groups: Iterable[dict[str, Any]], lookup: Callable[[str], PatternHit | None], *,
             seen: int = 3) -> dict[str, Any]:  # fmt: skip
    """Precision / recall on the unseen paraphrases (index >= `seen`) and false hits on the near misses."""
    lookups = hits = correct = 0
    wrong: list[dict[str, str]] = []
    near = near_hits = 0
    false_hits: list[dict[str, str]] = []
    for group in groups:
        for prompt in group["paraphrases"][seen:]:
            lookups += 1
            hit = lookup(prompt)
            if hit is None:
                continue
            hits += 1
            if answers_agree(hit.answer, group["answer"]):
                correct += 1
            else:
                wrong.append({"group": group["id"], "prompt": prompt, "answer": hit.answer})
        for prompt in group.get("near_misses", []):
            near += 1
            hit = lookup(prompt)
            if hit is not None:
                near_hits += 1
                false_hits.append({"group": group["id"], "prompt": prompt, "answer": hit.answer})
    return {
        "unseen_lookups": lookups,
        "hits": hits,
        "correct": correct,
        "precision": round(correct / hits, 4) if hits else None,
        "recall": round(correct / lookups, 4) if lookups else None,
        "wrong": wrong,
        "near_misses": near,
        "near_miss_false_hits": near_hits,
        "false_hits": false_hits,
    }
