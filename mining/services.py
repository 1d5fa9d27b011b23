"""The mining job: cluster trusted prompts into pattern heads, update them, retire those that stopped agreeing.

Which interactions are trusted (the only ones mined, `trusted_filter` + `is_trusted`):

- status "ok", a non-empty answer that is not UNSURE and carries no stub marker;
- route "cloud" (a paid provider answered after the local council was unsure), or route "council" with
  confidence >= `min_confidence` (0.9) from a verified skill: `math` (sympy-checked), `knowledge` (the
  curated fact table), `micro` (unit tables, calendar arithmetic, greetings), or `code` only when its
  winning ballot ran the prompt's tests in the sandbox and they passed; or, with `calibrated_answers`
  (on), an `agent0` answer served under the model's calibrated trust rule (its ballot says
  `calibrated`: config/models.yaml, bench/trust.py) or its grounded rule (`grounded.trusted`:
  routing/reference.py, bench/reference.py), never its small talk or a distilled adapter's
  answer (an adapter learns from the mined log: mining its answers would let it confirm itself);
- never route "cache" (a copy of an answer already logged), "pattern" (our own answers: mining them
  would let a head confirm itself) or "unsure";
- the prompt is short (<= `max_prompt_chars`) and not about volatile facts (today, now, current, latest,
  weather, prices...): a head answers the same way for weeks.

A run: flush hit counters -> load the window (default 7 days, newest `limit` = 20,000) -> one point per
distinct normalized prompt -> embed -> HDBSCAN (leaf clusters, `min_cluster_size` 3) -> per cluster:
majority answer by `routing.vote.answers_agree`, agreement ratio over every member interaction; a
cluster agreeing >= `min_agreement` (90%) whose evidence also agrees (every trusted prompt in the
window that the head would answer) becomes a head or updates the matching one (shared source
interactions, else centroid similarity >= `match_similarity` with the same answer). Heads whose
cluster or evidence no longer agrees are retired (enabled=False, with the reason); heads disabled in
the admin are never re-enabled nor re-created. Any change bumps `swarm:patterns:version` (Redis INCR),
which makes every process rebuild its index.
"""

from __future__ import annotations

import hashlib
import logging
import re
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime, timedelta
from typing import Any

import numpy as np
from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from mining import state
from mining.embeddings import DIMENSIONS, MODEL_NAME, embed
from mining.guard import HeadGuard, Slots, compile_guard, extract_slots, merge_guards
from mining.models import MiningRun, PatternHead, PromptEmbedding
from mining.runtime import get_index
from observability import metrics
from routing.cache import normalize_prompt
from routing.models import Interaction
from routing.stubguard import stub_marker
from routing.vote import answers_agree
from swarm_site.redis_client import REDIS_ERRORS, get_redis

log = logging.getLogger(__name__)

UNSURE_ANSWER = "UNSURE"
VOLATILE = re.compile(
    r"\b(?:today|tonight|tomorrow|yesterday|now|currently|current|latest|recent|recently|"
    r"this\s+(?:week|month|year)|next\s+(?:week|month|year)|last\s+(?:week|month|year)|"
    r"weather|forecast|prices?|stocks?|news|scores?)\b",
    re.IGNORECASE,
)
LOCK_TTL_S = 3600


@dataclass(frozen=True)
class MiningParams:
    """Knobs of one run; `from_settings` reads `SWARM_MINING_<NAME>` overrides from Django settings."""

    window_days: float = 7.0
    limit: int = 20_000
    min_cluster_size: int = 3
    min_samples: int | None = None  # None: min_cluster_size - 1 (keeps 3-prompt clusters apart)
    cluster_selection_method: str = "leaf"
    min_agreement: float = 0.9
    min_confidence: float = 0.9
    verified_skills: tuple[str, ...] = ("math", "knowledge", "micro", "code")
    member_min_similarity: float = 0.70
    # A head's threshold: its least similar agreeing member's similarity less this margin, within floor and
    # ceiling. Chosen on the tuning groups of mining/data/paraphrases.yaml (bench/spiral.py): 0.05 missed 3
    # unseen tuning paraphrases that the guard passes (0.809 to the centroid with the threshold at 0.848),
    # 0.10 misses none of them and no near miss passes the guard at any margin (the guard, not similarity,
    # keeps near misses out); wider margins change nothing (the floor binds).
    threshold_margin: float = 0.10
    threshold_floor: float = 0.80
    threshold_ceiling: float = 0.97
    match_similarity: float = 0.90
    min_evidence: int = 2
    calibrated_answers: bool = True  # mine agent0's answers served under the model's calibrated trust rule
    max_prompt_chars: int = 300
    max_sources: int = 500
    pca_dims: int = 48
    pca_above: int = 2000  # reduce dimensions before HDBSCAN above this many distinct prompts (speed)

    @classmethod
    def from_settings(cls, **overrides: Any) -> MiningParams:
        values: dict[str, Any] = {}
        for f in fields(cls):
            name = f"SWARM_MINING_{f.name.upper()}"
            if hasattr(settings, name):
                values[f.name] = getattr(settings, name)
        values.update({k: v for k, v in overrides.items() if v is not None})
        if "verified_skills" in values:
            values["verified_skills"] = tuple(values["verified_skills"])
        return cls(**values)


@dataclass
class PromptGroup:
    """One distinct (normalized) prompt and every trusted interaction that asked it."""

    prompt: str
    ids: list[int] = field(default_factory=list)
    answers: list[str] = field(default_factory=list)


@dataclass
class Candidate:
    members: list[int]  # indexes into the run's prompt groups (agreeing ones)
    all_members: list[int]
    centroid: np.ndarray
    threshold: float
    canonical: str
    agreement: float
    support: int
    source_ids: list[int]
    guard: dict[str, Any]
    name: str
    samples: list[str]


@dataclass
class _Run:
    """What one run works on."""

    params: MiningParams
    groups: list[PromptGroup]
    vectors: np.ndarray
    slots: list[Slots]
    notes: list[str] = field(default_factory=list)
    created: int = 0
    updated: int = 0
    retired: int = 0
    touched: set[int] = field(default_factory=set)


# --------------------------------------------------------------------------- selection


def trusted_filter(params: MiningParams, since: datetime) -> Q:
    """The database side of the trust rule (see the module docstring)."""
    council = Q(route="council", confidence__gte=params.min_confidence, skill_type__in=params.verified_skills)
    if params.calibrated_answers:
        council |= Q(route="council", skill_type="agent0")  # is_trusted keeps the calibrated ones
    return (Q(route="cloud") | council) & Q(created_at__gte=since, status=Interaction.Status.OK) & ~Q(answer="")


def _evidence(ballots: Any, head: str) -> dict[str, Any]:
    """The evidence of `head`'s ballot among an interaction's ballots ({} when it cast none)."""
    for ballot in ballots or []:
        if isinstance(ballot, dict) and ballot.get("head") == head:
            return ballot.get("evidence") or {}
    return {}


def _code_tests_passed(ballots: Any) -> bool:
    evidence = _evidence(ballots, "code")
    return bool(evidence.get("passed")) and bool(evidence.get("tests"))


def _base_model_trusted(ballots: Any) -> bool:
    """agent0's answer was trusted under one of the base model's fitted rules, its own (`calibrated`) or read
    from WordNet's notes (`grounded`); not small talk, no adapter."""
    evidence = _evidence(ballots, "agent0")
    grounded = (evidence.get("grounded") or {}).get("trusted") is True
    trusted = evidence.get("calibrated") is True or grounded
    return trusted and not evidence.get("chat") and not evidence.get("adapter")


def is_trusted(row: dict[str, Any], params: MiningParams) -> bool:
    """The Python side of the trust rule: answer quality, code tests, prompt length and volatility."""
    answer = (row.get("answer") or "").strip()
    prompt = (row.get("prompt") or "").strip()
    if not answer or answer.upper() == UNSURE_ANSWER or stub_marker(answer):
        return False
    if not prompt or len(prompt) > params.max_prompt_chars or VOLATILE.search(prompt):
        return False
    if row.get("route") == "council" and row.get("skill_type") == "code":
        return _code_tests_passed(row.get("ballots"))
    if row.get("route") == "council" and row.get("skill_type") == "agent0":
        return params.calibrated_answers and _base_model_trusted(row.get("ballots"))
    return True


def trusted_interactions(params: MiningParams, *, now: datetime | None = None) -> list[dict[str, Any]]:
    since = (now or timezone.now()) - timedelta(days=params.window_days)
    rows = (
        Interaction.objects.filter(trusted_filter(params, since))
        .order_by("-created_at")
        .values("id", "prompt", "answer", "route", "skill_type", "ballots")[: params.limit]
    )
    return [row for row in rows if is_trusted(row, params)]


def group_prompts(rows: Iterable[dict[str, Any]]) -> list[PromptGroup]:
    """One group per normalized prompt (newest wording kept), in first-seen order."""
    groups: dict[str, PromptGroup] = {}
    for row in rows:
        key = normalize_prompt(row["prompt"])
        group = groups.setdefault(key, PromptGroup(prompt=row["prompt"].strip()))
        group.ids.append(row["id"])
        group.answers.append(row["answer"].strip())
    return list(groups.values())


# --------------------------------------------------------------------------- answers


def majority_answer(answers: Sequence[str]) -> tuple[str, float]:
    """The answer most others agree with (answers_agree), and the share of answers that agree with it."""
    if not answers:
        return "", 0.0
    reps: list[str] = []
    for answer in answers:
        if not any(answers_agree(answer, rep) for rep in reps):
            reps.append(answer)
    scored = [(sum(answers_agree(a, rep) for a in answers), -i, rep) for i, rep in enumerate(reps)]
    _, _, best = max(scored)
    agreeing = [a for a in answers if answers_agree(a, best)]
    # The canonical text: the most frequent agreeing wording (first seen = newest on ties).
    canonical = Counter(agreeing).most_common(1)[0][0]
    return canonical, len(agreeing) / len(answers)


# --------------------------------------------------------------------------- embeddings


def _embedding_key(prompt: str) -> str:
    return hashlib.sha256(f"{MODEL_NAME}\n{normalize_prompt(prompt)}".encode()).hexdigest()


def embed_cached(prompts: Sequence[str], *, keep_days: float = 14.0, chunk: int = 500) -> tuple[np.ndarray, int]:
    """Embeddings of `prompts` (rows in order), reusing PromptEmbedding rows; returns (vectors, reused).

    Rows older than `keep_days` are dropped first (so a prompt still asked is re-embedded now and then,
    and the table holds about two windows of prompts).
    """
    PromptEmbedding.objects.filter(created_at__lt=timezone.now() - timedelta(days=keep_days)).delete()
    keys = [_embedding_key(p) for p in prompts]
    known: dict[str, np.ndarray] = {}
    unique = list(dict.fromkeys(keys))
    for start in range(0, len(unique), chunk):
        for key, vector in PromptEmbedding.objects.filter(key__in=unique[start : start + chunk]).values_list(
            "key", "vector"
        ):
            row = np.frombuffer(bytes(vector), dtype="<f4")
            if row.shape == (DIMENSIONS,):
                known[key] = row
    first = {key: i for i, key in reversed(list(enumerate(keys)))}
    missing = [i for key, i in first.items() if key not in known]
    if missing:
        fresh = embed([prompts[i] for i in missing])
        PromptEmbedding.objects.bulk_create(
            [
                PromptEmbedding(key=keys[i], vector=v.astype("<f4").tobytes())
                for i, v in zip(missing, fresh, strict=True)
            ],
            batch_size=1000,
            ignore_conflicts=True,
        )
        known.update({keys[i]: v for i, v in zip(missing, fresh, strict=True)})
    if not prompts:
        return np.zeros((0, DIMENSIONS), dtype=np.float32), 0
    vectors = np.stack([known[k] for k in keys]).astype(np.float32)
    return vectors, len(first) - len(missing)


# --------------------------------------------------------------------------- clustering


def cluster_labels(vectors: np.ndarray, params: MiningParams) -> np.ndarray:
    """HDBSCAN labels (-1 = noise) over unit vectors; euclidean distance ranks like cosine there."""
    n = len(vectors)
    if n < params.min_cluster_size:
        return np.full(n, -1, dtype=int)
    import hdbscan

    data = vectors.astype(np.float64)
    if params.pca_dims and n > params.pca_above and data.shape[1] > params.pca_dims:
        from sklearn.decomposition import PCA

        data = PCA(n_components=params.pca_dims, random_state=0).fit_transform(data)
    min_samples = params.min_samples or max(1, params.min_cluster_size - 1)

    def fit(method: str) -> np.ndarray:
        clusterer = hdbscan.HDBSCAN(
            min_cluster_size=params.min_cluster_size,
            min_samples=min_samples,
            metric="euclidean",
            cluster_selection_method=method,
            allow_single_cluster=True,  # a window holding one question is one cluster, not noise
        )
        return np.asarray(clusterer.fit_predict(data), dtype=int)

    labels = fit(params.cluster_selection_method)
    if params.cluster_selection_method == "leaf" and (labels < 0).all():
        labels = fit("eom")  # a tree that never splits has no leaf below its root
    return labels


def _unit(vector: np.ndarray) -> np.ndarray:
    norm = float(np.linalg.norm(vector))
    return (vector / norm).astype(np.float32) if norm > 0 else vector.astype(np.float32)


def build_candidate(run: _Run, members: Sequence[int]) -> Candidate | str:
    """A head from one cluster, or the reason there is none."""
    p = run.params
    members = list(members)
    centroid = _unit(run.vectors[members].mean(axis=0))
    sims = run.vectors[members] @ centroid
    members = [m for m, s in zip(members, sims, strict=True) if s >= p.member_min_similarity]
    if len({normalize_prompt(run.groups[m].prompt) for m in members}) < p.min_cluster_size:
        return "too loose"
    answers = [a for m in members for a in run.groups[m].answers]
    canonical, agreement = majority_answer(answers)
    if agreement < p.min_agreement:
        return f"answers disagree ({agreement:.0%} agree with {canonical[:40]!r})"
    agreeing = [m for m in members if _mostly_agrees(run.groups[m].answers, canonical)]
    if len(agreeing) < p.min_cluster_size:
        return "too few agreeing prompts"
    centroid = _unit(run.vectors[agreeing].mean(axis=0))
    lowest = float((run.vectors[agreeing] @ centroid).min())
    threshold = min(p.threshold_ceiling, max(p.threshold_floor, lowest - p.threshold_margin))
    source_ids = sorted({i for m in agreeing for i in run.groups[m].ids})[-p.max_sources :]
    names = Counter(run.groups[m].prompt for m in agreeing)
    return Candidate(
        members=agreeing,
        all_members=members,
        centroid=centroid,
        threshold=round(threshold, 4),
        canonical=canonical,
        agreement=round(agreement, 4),
        support=sum(len(run.groups[m].ids) for m in agreeing),
        source_ids=source_ids,
        guard=compile_guard(run.slots[m] for m in agreeing),
        name=names.most_common(1)[0][0][:200],
        samples=[run.groups[m].prompt for m in agreeing][:10],
    )


def _mostly_agrees(answers: Sequence[str], canonical: str) -> bool:
    return sum(answers_agree(a, canonical) for a in answers) * 2 > len(answers)


def evidence(run: _Run, centroid: np.ndarray, threshold: float, guard: HeadGuard, canonical: str) -> tuple[int, float]:
    """(answers, share agreeing with `canonical`) over the window's prompts this head would answer."""
    sims = run.vectors @ centroid if len(run.vectors) else np.zeros(0)
    answers = [
        a for i in np.flatnonzero(sims >= threshold) if guard.check(run.slots[i]).ok for a in run.groups[i].answers
    ]
    if not answers:
        return 0, 1.0
    return len(answers), sum(answers_agree(a, canonical) for a in answers) / len(answers)


# --------------------------------------------------------------------------- heads


def _retire(head: PatternHead, reason: str, run: _Run) -> None:
    if not head.enabled:
        return
    head.enabled = False
    head.retired_reason = reason[:300]
    head.version += 1
    head.save(update_fields=["enabled", "retired_reason", "version", "updated_at"])
    run.retired += 1
    run.touched.add(head.pk)
    log.info("retired pattern head %s: %s", head.pk, reason)


class _Heads:
    """The run's heads, with the centroids of those that existed at its start as one matrix."""

    def __init__(self, heads: list[PatternHead], window_ids: set[int]) -> None:
        self.all = heads
        self.by_id = {h.pk: h for h in heads}
        self.matrix = (
            np.stack([h.centroid_vector() for h in heads]) if heads else np.zeros((0, DIMENSIONS), dtype=np.float32)
        )
        self.created: list[PatternHead] = []
        # Source interaction -> head, for the interactions still in the window (the only ones a cluster can hold).
        self.owner = {i: h.pk for h in heads for i in h.source_interaction_ids if i in window_ids}

    def add(self, head: PatternHead) -> None:
        self.all.append(head)
        self.by_id[head.pk] = head
        self.created.append(head)

    def claim(self, head: PatternHead, ids: Iterable[int]) -> None:
        for i in ids:
            self.owner[i] = head.pk


def _match(cand: Candidate | None, ids: Iterable[int], heads: _Heads,
           match_similarity: float) -> tuple[PatternHead | None, bool]:  # fmt: skip
    """The existing head this cluster continues, and whether it was found by shared source interactions.

    Consecutive runs share most of their window, so a question still being asked keeps its head through
    its source interactions. Without any (it was not asked for a whole window), a head whose centroid is
    within `match_similarity` and whose answer agrees is continued; a close centroid with another answer
    is not the same question (the capital of Austria is near the capital of Australia).
    """
    overlap = Counter(heads.owner[i] for i in ids if i in heads.owner)
    if overlap:
        return heads.by_id[overlap.most_common(1)[0][0]], True
    if cand is None:
        return None, False
    sims = heads.matrix @ cand.centroid if len(heads.matrix) else np.zeros(0)
    scored = [(float(s), h) for s, h in zip(sims, heads.all, strict=False)]
    scored += [(float(h.centroid_vector() @ cand.centroid), h) for h in heads.created]
    for sim, head in sorted(scored, key=lambda pair: -pair[0]):
        if sim < match_similarity:
            break
        if answers_agree(head.canonical_answer, cand.canonical):
            return head, False
    return None, False


def _apply(run: _Run, cand: Candidate, head: PatternHead | None, *, by_sources: bool = True) -> PatternHead:
    """Create a head from `cand`, or update `head` with it.

    An update keeps the head's answer text (it agrees), merges its guard with the cluster's, and takes the
    cluster's centroid and threshold when the cluster holds the head's recent members (`by_sources`);
    otherwise it blends the centroids by support and keeps the lower threshold.
    """
    if head is None:
        head = PatternHead(
            name=cand.name,
            embedding_model=MODEL_NAME,
            threshold=cand.threshold,
            canonical_answer=cand.canonical,
            slots=cand.guard,
            support=cand.support,
            confidence=cand.agreement,
            source_interaction_ids=cand.source_ids,
            sample_prompts=cand.samples,
        )
        head.set_centroid(cand.centroid)
        head.save()
        run.created += 1
        run.touched.add(head.pk)
        return head
    before = (head.centroid_vector(), head.threshold, head.slots, head.confidence, head.enabled)
    if by_sources:
        head.set_centroid(cand.centroid)
        head.threshold = cand.threshold
    else:
        head.set_centroid(head.centroid_vector() * max(head.support, 1) + cand.centroid * cand.support)
        head.threshold = min(head.threshold, cand.threshold)
    head.slots = merge_guards(head.slots, cand.guard)
    head.confidence = cand.agreement
    sources = sorted(set(head.source_interaction_ids) | set(cand.source_ids))[-run.params.max_sources :]
    head.support = max(cand.support, len(sources))
    head.source_interaction_ids = sources
    head.sample_prompts = list(dict.fromkeys([*cand.samples, *head.sample_prompts]))[:10]
    head.enabled = True
    head.retired_reason = ""
    if _materially_changed(before, head):
        head.version += 1
        run.updated += 1
        run.touched.add(head.pk)
    head.save()
    return head


def _materially_changed(before: tuple[Any, ...], head: PatternHead) -> bool:
    """Whether the index would answer differently (batch padding moves embeddings by ~1e-7: not a change)."""
    centroid, threshold, slots, confidence, enabled = before
    return (
        float(centroid @ head.centroid_vector()) < 0.9999
        or abs(threshold - head.threshold) > 1e-3
        or abs(confidence - head.confidence) > 1e-3
        or slots != head.slots
        or enabled != head.enabled
    )


def _mine(run_row: MiningRun, params: MiningParams, now: datetime | None) -> None:
    timings: dict[str, float] = {}
    started = time.perf_counter()
    try:
        get_index().flush_hits()  # this process's own pending counts; serving processes add theirs each second
        run_row.hits_flushed = state.flush_hits()
    except REDIS_ERRORS as exc:
        run_row.notes += f"hit counts not flushed: {exc}\n"

    rows = trusted_interactions(params, now=now)
    groups = group_prompts(rows)
    run_row.interactions_seen = len(rows)
    run_row.distinct_prompts = len(groups)
    timings["select_s"] = time.perf_counter() - started

    t = time.perf_counter()
    vectors, reused = embed_cached([g.prompt for g in groups], keep_days=2 * params.window_days)
    timings["embed_s"] = time.perf_counter() - t
    run_row.notes += f"embeddings: {reused} reused, {len(groups) - reused} computed\n"
    run = _Run(params=params, groups=groups, vectors=vectors, slots=[extract_slots(g.prompt) for g in groups])

    t = time.perf_counter()
    labels = cluster_labels(vectors, params)
    timings["cluster_s"] = time.perf_counter() - t

    t = time.perf_counter()
    heads = _Heads(list(PatternHead.objects.filter(embedding_model=MODEL_NAME)), {row["id"] for row in rows})
    clusters = [np.flatnonzero(labels == label).tolist() for label in sorted(set(labels.tolist()) - {-1})]
    run_row.clusters = len(clusters)
    for members in clusters:
        with transaction.atomic():
            _mine_cluster(run, run_row, members, heads)
    with transaction.atomic():
        _retire_by_evidence(run, heads.all)
    timings["heads_s"] = time.perf_counter() - t

    run_row.heads_created, run_row.heads_updated, run_row.heads_retired = run.created, run.updated, run.retired
    run_row.timings = {k: round(v, 3) for k, v in timings.items()}
    run_row.notes += "".join(f"{note}\n" for note in run.notes[:200])
    if run_row.changed:
        run_row.patterns_version = state.bump_version()
        if run_row.patterns_version is None:
            run_row.notes += "Redis unavailable: the version was not bumped; indexes reload at the next change\n"
    metrics.set_patterns(PatternHead.objects.servable().count(), run_row.patterns_version)


def _mine_cluster(run: _Run, run_row: MiningRun, members: list[int], heads: _Heads) -> None:
    p = run.params
    cand = build_candidate(run, members)
    member_ids = [i for m in members for i in run.groups[m].ids]
    if isinstance(cand, str):
        run.notes.append(f"cluster of {len(members)} ({run.groups[members[0]].prompt[:60]!r}): {cand}")
        head, _ = _match(None, member_ids, heads, p.match_similarity)
        if head is not None and cand.startswith("answers disagree") and not head.disabled_by_admin:
            _retire(head, f"cluster {cand}", run)
        return
    head, by_sources = _match(cand, member_ids, heads, p.match_similarity)
    n, agree = evidence(run, cand.centroid, cand.threshold, HeadGuard(cand.guard), cand.canonical)
    if n >= p.min_evidence and agree < p.min_agreement:
        run.notes.append(f"cluster {cand.name[:60]!r}: evidence disagrees ({agree:.0%} of {n} answers)")
        if head is not None and not head.disabled_by_admin:
            _retire(head, f"answers disagree: {agree:.0%} of {n} recent answers agree", run)
        return
    run_row.clusters_agreeing += 1
    if head is not None and head.disabled_by_admin:
        run.notes.append(f"cluster {cand.name[:60]!r}: continues head {head.pk}, disabled in admin; left alone")
        return
    if head is not None and not answers_agree(head.canonical_answer, cand.canonical):
        _retire(head, f"answer changed to {cand.canonical[:80]!r}", run)
        head = None
    saved = _apply(run, cand, head, by_sources=by_sources)
    if head is None:
        heads.add(saved)
    heads.claim(saved, member_ids)


def _retire_by_evidence(run: _Run, heads: list[PatternHead], chunk: int = 512) -> None:
    """Retire enabled heads whose recent evidence disagrees with their answer."""
    live = [h for h in heads if h.enabled and h.pk not in run.touched]
    if not live or not len(run.vectors):
        return
    for start in range(0, len(live), chunk):
        part = live[start : start + chunk]
        centroids = np.stack([h.centroid_vector() for h in part])
        sims = run.vectors @ centroids.T  # (prompts, heads)
        for j, head in enumerate(part):
            hits = np.flatnonzero(sims[:, j] >= head.threshold)
            if len(hits) == 0:
                continue
            try:
                guard = HeadGuard(head.slots)
            except (KeyError, ValueError) as exc:
                _retire(head, f"unreadable guard: {exc}", run)
                continue
            answers = [a for i in hits if guard.check(run.slots[i]).ok for a in run.groups[i].answers]
            if len(answers) < run.params.min_evidence:
                continue
            agree = sum(answers_agree(a, head.canonical_answer) for a in answers) / len(answers)
            if agree < run.params.min_agreement:
                _retire(head, f"answers disagree: {agree:.0%} of {len(answers)} recent answers agree", run)


# --------------------------------------------------------------------------- entry point


def run_mining(params: MiningParams | None = None, *, now: datetime | None = None) -> MiningRun:
    """Run the mining job once, in this process; returns the MiningRun row that records it."""
    params = params or MiningParams.from_settings()
    run_row = MiningRun.objects.create(window_days=params.window_days, params=_jsonable(asdict(params)))
    redis = get_redis()
    try:
        lock = redis.lock(state.LOCK_KEY, timeout=LOCK_TTL_S, blocking=False)
        acquired = lock.acquire(blocking=False)
    except REDIS_ERRORS as exc:
        return _finish(run_row, MiningRun.Status.SKIPPED, f"Redis unavailable, not mining: {exc}")
    if not acquired:
        return _finish(run_row, MiningRun.Status.SKIPPED, "another mining run holds the lock")
    status = MiningRun.Status.FAILED
    try:
        _mine(run_row, params, now)
        status = MiningRun.Status.OK
    finally:
        _finish(run_row, status, "" if status == MiningRun.Status.OK else "the run raised; see the worker log")
        try:
            lock.release()
        except REDIS_ERRORS as exc:
            log.warning("mining lock not released (expires in %ss): %s", LOCK_TTL_S, exc)
    return run_row


def _finish(run_row: MiningRun, status: str, note: str) -> MiningRun:
    run_row.status = status
    run_row.finished_at = timezone.now()
    if note:
        run_row.notes += note + "\n"
    run_row.save()
    return run_row


def _jsonable(value: Any) -> Any:
    if isinstance(value, tuple | list):
        return [_jsonable(v) for v in value]
    return value


def summary(run_row: MiningRun) -> dict[str, Any]:
    """The run as plain JSON (the Celery task's result, the command's output)."""
    return {
        "run": run_row.pk,
        "status": run_row.status,
        "interactions_seen": run_row.interactions_seen,
        "distinct_prompts": run_row.distinct_prompts,
        "clusters": run_row.clusters,
        "clusters_agreeing": run_row.clusters_agreeing,
        "heads_created": run_row.heads_created,
        "heads_updated": run_row.heads_updated,
        "heads_retired": run_row.heads_retired,
        "hits_flushed": run_row.hits_flushed,
        "patterns_version": run_row.patterns_version,
        "timings": run_row.timings,
        "notes": run_row.notes.strip().splitlines()[:20],
    }
