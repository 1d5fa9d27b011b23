"""What an adapter was trained on, kept with it, so that its answers are trusted only near that.

A distilled adapter answers the questions it learned, and their paraphrases, from memory; it is
just as sure of a question that merely looks like one of them ("the largest city in Australia?"
after learning "the capital of Australia?"). So an adapter's sure answer is trusted (guarded
distilled trust, routing/heads/agent0.py) only when the prompt is close to a prompt it was trained
on and passes that prompt's group guard:

- groups: the trained prompts grouped by their answer (the same answer, normalized), each with the
  false-hit guard the pattern heads use (mining/guard.py: numbers, operators, negation, tense,
  units, entities, content words), compiled from the group's phrasings;
- nearest: the trained prompt most similar to the query (MiniLM embeddings, cosine), which must
  reach `min_similarity`, and whose group's guard must pass the query.

The record is JSON in AdapterVersion.record, written by the trainer with the gate's verdict
(`trust`: whether guarded trust held on the gate's checks, training/services.py); the serving
process reads it once per version.
"""

from __future__ import annotations

import logging
import re
import threading
import unicodedata
from dataclasses import dataclass
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

RECORD_VERSION = 1
# Tuned on the tuning part of mining/data/paraphrases.yaml (bench/distill.py reports both parts).
MIN_SIMILARITY = 0.75
MAX_PROMPTS_PER_GROUP = 64  # phrasings kept per answer (the guard and the neighbours need no more)


def answer_key(answer: str) -> str:
    """Answers that are the same once case, accents, spaces and end punctuation are set aside."""
    text = unicodedata.normalize("NFKC", answer).casefold().strip()
    return re.sub(r"\s+", " ", text).rstrip(" .!")


def build_record(examples: list[Any], *, min_similarity: float = MIN_SIMILARITY) -> dict[str, Any]:
    """The record of a training set (items with .prompt and .answer): its prompts grouped by answer,
    each group with its compiled guard. `trust` starts False: the gate sets it."""
    from mining.guard import compile_guard, extract_slots

    groups: dict[str, dict[str, Any]] = {}
    for example in examples:
        group = groups.setdefault(answer_key(example.answer), {"answer": example.answer, "prompts": []})
        if len(group["prompts"]) < MAX_PROMPTS_PER_GROUP and example.prompt not in group["prompts"]:
            group["prompts"].append(example.prompt)
    for group in groups.values():
        group["guard"] = compile_guard(extract_slots(p) for p in group["prompts"])
    return {"v": RECORD_VERSION, "min_similarity": min_similarity, "groups": list(groups.values()), "trust": False}


@dataclass(frozen=True)
class Match:
    """Whether a prompt is near what the adapter learned, and why not when it is not."""

    near: bool
    similarity: float
    answer: str | None  # the nearest group's trained answer
    reason: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"near": self.near, "similarity": round(self.similarity, 4), "trained_answer": self.answer,
                "reason": self.reason}  # fmt: skip


class TrainedRecord:
    """A record ready to match prompts: its guards compiled, its prompts embedded (once)."""

    def __init__(self, data: dict[str, Any]) -> None:
        from mining.guard import HeadGuard

        if data.get("v") != RECORD_VERSION:
            raise ValueError(f"record version {data.get('v')!r} is not {RECORD_VERSION}")
        self.trust = bool(data.get("trust"))
        # The gate found the base model's calibrated trust rule (config/models.yaml) trusting no wrong
        # answer of this adapter's (unseen prompts, near misses): agent0 may keep applying it.
        self.calibrated = bool(data.get("calibrated"))
        self.min_similarity = float(data.get("min_similarity", MIN_SIMILARITY))
        self.groups = data["groups"]
        self.guards = [HeadGuard(g["guard"]) for g in self.groups]
        self.owner = [i for i, g in enumerate(self.groups) for _ in g["prompts"]]
        self._prompts = [p for g in self.groups for p in g["prompts"]]
        self._vectors: np.ndarray | None = None
        self._lock = threading.Lock()

    def vectors(self) -> np.ndarray:
        from mining.embeddings import embed

        with self._lock:
            if self._vectors is None:
                self._vectors = embed(self._prompts) if self._prompts else np.zeros((0, 1), dtype=np.float32)
            return self._vectors

    def match(self, prompt: str) -> Match:
        from mining.embeddings import embed
        from mining.guard import extract_slots

        vectors = self.vectors()
        if not len(vectors):
            return Match(False, 0.0, None, "the adapter's record holds no prompt")
        similarities = vectors @ embed([prompt])[0]
        best = int(np.argmax(similarities))
        similarity = float(similarities[best])
        group = self.owner[best]
        answer = self.groups[group]["answer"]
        if similarity < self.min_similarity:
            return Match(False, similarity, answer, f"not close to a trained prompt ({similarity:.2f} < "
                                                    f"{self.min_similarity:.2f})")  # fmt: skip
        verdict = self.guards[group].check(extract_slots(prompt))
        if not verdict.ok:
            return Match(False, similarity, answer, f"the trained group's guard: {verdict.reason}")
        return Match(True, similarity, answer)


_records: dict[str, TrainedRecord | None] = {}
_records_lock = threading.Lock()


def record_for(version: str) -> TrainedRecord | None:
    """The record of adapter `version` (from the database, once per process), None when it has none or
    the database cannot be read now (its answers are then not trusted; read again on the next one)."""
    from django.db import DatabaseError

    from training.models import AdapterVersion

    with _records_lock:
        if version in _records:
            return _records[version]
    try:
        data = AdapterVersion.objects.filter(number=_number(version)).values_list("record", flat=True).first()
    except DatabaseError as exc:
        log.warning("could not read adapter %s's training record (its answers are not trusted): %s", version, exc)
        return None
    try:
        record = TrainedRecord(data) if data else None
    except (ValueError, KeyError, TypeError) as exc:
        log.warning("adapter %s has an unreadable record (its answers are not trusted): %s", version, exc)
        record = None
    with _records_lock:
        _records[version] = record
    return record


def forget_records() -> None:
    with _records_lock:
        _records.clear()


def _number(version: str) -> int:
    from training.models import AdapterVersion

    number = version.removeprefix(AdapterVersion.VERSION_PREFIX)
    return int(number) if number.isdigit() else -1


_NUMBER = re.compile(r"(?<![\w.])\d+(?![\w.])")
_ENTITY = re.compile(r"(?<=[a-z,;:] )[A-Z][a-z]+(?: [A-Z][a-z]+)*")


def near_misses(examples: list[Any], *, limit: int = 40) -> list[tuple[str, str]]:
    """(prompt, the trained answer) pairs that look like trained prompts but ask something else: a
    number changed, or a named entity swapped for one of another trained prompt. An adapter that is
    sure of the trained answer to one of them, and trusted, is a false hit (the gate's check).

    Deterministic: one per trained prompt at most, in order, up to `limit`."""
    entities = sorted({e for ex in examples for e in _ENTITY.findall(ex.prompt)})
    misses: list[tuple[str, str]] = []
    seen = {ex.prompt for ex in examples}
    for index, example in enumerate(examples):
        if len(misses) >= limit:
            break
        prompt = example.prompt
        candidate = None
        if number := _NUMBER.search(prompt):
            changed = str(int(number.group()) * 2 + 3)
            candidate = prompt[: number.start()] + changed + prompt[number.end() :]
        elif (entity := _ENTITY.search(prompt)) and len(entities) > 1:
            others = [e for e in entities if e.casefold() not in prompt.casefold()]
            if others:
                other = others[index % len(others)]
                candidate = prompt[: entity.start()] + other + prompt[entity.end() :]
        if candidate and candidate not in seen:
            seen.add(candidate)
            misses.append((candidate, example.answer))
    return misses
