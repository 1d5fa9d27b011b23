"""Pattern lookup on the hot path: answer a paraphrase of a mined question at once, or abstain.

`pattern_lookup(prompt)` -> `PatternHit | None`. Per call:

1. every `SWARM_PATTERN_RELOAD_S` (1 s) at most, one Redis GET of `swarm:patterns:version`; when it
   moved, this process rebuilds its index from the database (enabled heads only) - no restart;
2. slots of the prompt (regex, tens of µs) and a word prefilter: a head can only answer a prompt whose
   content words it has all seen, so most prompts (no head could take them) return None here,
   without embedding;
3. otherwise embed the prompt (all-MiniLM-L6-v2 on ONNX Runtime, one CPU thread, ~3 ms; torch ~10 ms
   as the fallback: mining/embeddings.py), search the in-process vector index
   (faiss inner product over unit vectors = cosine; exact over the prefiltered heads when few),
   and answer only when similarity >= the head's threshold, the head's confidence >= 0.50 and the
   false-hit guard passes; two passing heads with different answers -> abstain;
4. a hit is counted in memory; the counts go to Redis (`swarm:patterns:hits`) in the same pipelined
   round trip as the next version check (step 1), and at exit: no Redis call, no database write.

Threads share one index per process; a rebuild happens in the thread that noticed the new version
while the others keep using the old index.
"""

from __future__ import annotations

import atexit
import logging
import threading
import time
from collections import Counter
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from django.conf import settings
from django.db import DatabaseError

from mining import state
from mining.embeddings import DIMENSIONS, EmbeddingModelMissing, embed
from mining.guard import HeadGuard, Slots, extract_slots
from mining.models import MIN_HEAD_CONFIDENCE, PatternHead
from mining.synonyms import common_senses
from observability import metrics
from routing.vote import answers_agree
from swarm_site.redis_client import REDIS_ERRORS

log = logging.getLogger(__name__)

MAX_PROMPT_CHARS = 300  # the mining job skips longer prompts, so no head could match one
EXACT_SEARCH_MAX = 256  # prefiltered candidates scored exactly; more go through the vector index
INDEX_TOP_K = 64
HNSW_ABOVE = 50_000  # heads; below, a flat (exact) inner-product index is fast enough


@dataclass(frozen=True)
class PatternHit:
    head_id: int
    answer: str
    similarity: float
    confidence: float
    version: str | None  # the patterns version the answering index was built from
    head_version: int

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class _Entry:
    head_id: int
    answer: str
    threshold: float
    confidence: float
    version: int
    guard: HeadGuard
    wordless: bool  # some member had no content words ("What is 7*8?")


class _IndexState:
    """An immutable snapshot of the enabled heads: metadata, vectors, word postings, vector index."""

    def __init__(self, version: str | None, entries: list[_Entry], matrix: np.ndarray) -> None:
        self.version = version
        self.entries = entries
        self.matrix = matrix
        self.built_at = time.time()
        postings: dict[str, set[int]] = {}
        for pos, entry in enumerate(entries):
            for word in entry.guard.vocab:
                postings.setdefault(word, set()).add(pos)
        self.postings = {w: frozenset(p) for w, p in postings.items()}
        # The same by common WordNet sense (mining/synonyms.py): the guard lets a synonym stand for a word.
        by_sense: dict[str, set[int]] = {}
        for word, positions in self.postings.items():
            for sense in common_senses(word):
                by_sense.setdefault(sense, set()).update(positions)
        self.sense_postings = {s: frozenset(p) for s, p in by_sense.items()}
        self.wordless = frozenset(pos for pos, e in enumerate(entries) if e.wordless)
        self.index = _vector_index(matrix)

    def candidates(self, slots: Slots) -> frozenset[int]:
        """Heads whose vocabulary covers every content word of the prompt, itself or by a synonym (a guard
        condition, checked early)."""
        if not self.entries:
            return frozenset()
        if not slots.words:
            return self.wordless
        sets = sorted((self._postings(w) for w in slots.words), key=len)
        result = sets[0]
        for other in sets[1:]:
            if not result:
                break
            result = result & other
        return result

    def _postings(self, word: str) -> frozenset[int]:
        """The heads that have `word`, or a word sharing a common sense with it, in their vocabulary."""
        found = self.postings.get(word, frozenset())
        if self.sense_postings:
            for sense in common_senses(word):
                found = found | self.sense_postings.get(sense, frozenset())
        return found

    def search(self, query: np.ndarray, candidates: frozenset[int]) -> list[tuple[int, float]]:
        """(entry position, cosine similarity) for candidate heads, best first."""
        if len(candidates) <= EXACT_SEARCH_MAX or self.index is None:
            positions = np.fromiter(candidates, dtype=np.int64, count=len(candidates))
            sims = self.matrix[positions] @ query
            order = np.argsort(-sims)
            return [(int(positions[i]), float(sims[i])) for i in order]
        k = min(INDEX_TOP_K, len(self.entries))
        sims, ids = self.index.search(query.reshape(1, -1), k)
        return [(int(i), float(s)) for i, s in zip(ids[0], sims[0], strict=True) if i >= 0 and int(i) in candidates]


def _vector_index(matrix: np.ndarray) -> Any:
    """faiss inner-product index (flat = exact; HNSW for very many heads); None without faiss or heads."""
    if not len(matrix):
        return None
    try:
        import faiss
    except ImportError:
        log.warning("faiss is not installed: pattern lookup scores every candidate with numpy")
        return None
    faiss.omp_set_num_threads(1)  # one query at a time: threads cost more than they save
    if len(matrix) > HNSW_ABOVE:
        index = faiss.IndexHNSWFlat(DIMENSIONS, 32, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efSearch = 128
    else:
        index = faiss.IndexFlatIP(DIMENSIONS)
    index.add(np.ascontiguousarray(matrix, dtype=np.float32))
    return index


def build_index_state(version: str | None) -> _IndexState:
    """Load the enabled heads of this embedding model from the database."""
    entries: list[_Entry] = []
    vectors: list[np.ndarray] = []
    fields = ("id", "centroid", "threshold", "canonical_answer", "confidence", "version", "slots")
    rows = PatternHead.objects.servable().values_list(*fields)
    for head_id, centroid, threshold, answer, confidence, head_version, slots in rows.iterator(chunk_size=2000):
        vector = np.frombuffer(bytes(centroid), dtype="<f4")
        try:
            guard = HeadGuard(slots)
        except (KeyError, TypeError, ValueError) as exc:
            log.warning("pattern head %s skipped: unreadable guard (%s)", head_id, exc)
            continue
        if vector.shape != (DIMENSIONS,):
            log.warning("pattern head %s skipped: centroid has %s values", head_id, vector.shape)
            continue
        entries.append(_Entry(head_id, answer, threshold, confidence, head_version, guard, frozenset() in guard.forms))
        vectors.append(vector)
    matrix = np.vstack(vectors).astype(np.float32) if vectors else np.zeros((0, DIMENSIONS), dtype=np.float32)
    log.info("pattern index built: %d heads, version %s", len(entries), version)
    return _IndexState(version, entries, matrix)


class PatternIndex:
    """One per process: the current snapshot, refreshed when the Redis version moves."""

    def __init__(self, reload_interval_s: float | None = None) -> None:
        self._state: _IndexState | None = None
        self._lock = threading.Lock()
        self._checked = 0.0
        self._reload_interval_s = reload_interval_s
        self.counters = {"lookups": 0, "prefiltered": 0, "embedded": 0, "hits": 0, "rebuilds": 0}
        self._warned_missing = False
        self._hits: Counter[int] = Counter()  # answers per head not yet added to Redis
        self._hits_lock = threading.Lock()

    def _take_hits(self) -> dict[int, int]:
        with self._hits_lock:
            hits, self._hits = dict(self._hits), Counter()
        return hits

    def _restore_hits(self, hits: dict[int, int]) -> None:
        with self._hits_lock:
            self._hits.update(hits)

    def flush_hits(self) -> int:
        """Add this process's pending hit counts to Redis now (at exit; before a mining run); how many."""
        hits = self._take_hits()
        state.record_hits(hits)
        return sum(hits.values())

    @property
    def reload_interval_s(self) -> float:
        if self._reload_interval_s is not None:
            return self._reload_interval_s
        return float(getattr(settings, "SWARM_PATTERN_RELOAD_S", 1.0))

    def snapshot(self) -> _IndexState:
        """The current index; checks the version at most once per reload interval."""
        current = self._state
        if current is not None and time.monotonic() - self._checked < self.reload_interval_s:
            return current
        if current is None:
            self._lock.acquire()
        elif not self._lock.acquire(blocking=False):
            return current  # another thread is checking or rebuilding: answer from the snapshot we have
        try:
            current = self._state
            if current is not None and time.monotonic() - self._checked < self.reload_interval_s:
                return current
            hits = self._take_hits()
            try:
                version = state.version_after_hits(hits)
            except REDIS_ERRORS as exc:
                self._restore_hits(hits)
                self._checked = time.monotonic()
                if current is not None:
                    log.debug("patterns version unreadable, keeping index %s: %s", current.version, exc)
                    return current
                version = None
            self._checked = time.monotonic()
            if current is None or version != current.version:
                try:
                    current = build_index_state(version)
                except DatabaseError as exc:  # keep answering (or abstaining) rather than failing the request
                    log.warning("pattern index not rebuilt (database): %s", exc)
                    if current is None:
                        current = _IndexState(None, [], np.zeros((0, DIMENSIONS), dtype=np.float32))
                        self._checked = 0.0  # try again on the next lookup
                    return current
                self._state = current
                self.counters["rebuilds"] += 1
                metrics.set_patterns(len(current.entries), version)
            return current
        finally:
            self._lock.release()

    def lookup(self, prompt: str) -> PatternHit | None:
        self.counters["lookups"] += 1
        if not prompt or len(prompt) > MAX_PROMPT_CHARS:
            return None
        snap = self.snapshot()
        if not snap.entries:
            return None
        slots = extract_slots(prompt)
        candidates = snap.candidates(slots)
        if not candidates:
            self.counters["prefiltered"] += 1
            return None
        try:
            query = embed([prompt])[0]
        except EmbeddingModelMissing as exc:
            if not self._warned_missing:
                log.error("pattern lookup disabled: %s", exc)
                self._warned_missing = True
            return None
        self.counters["embedded"] += 1
        hit = self.best(snap, slots, query, candidates)
        if hit is not None:
            self.counters["hits"] += 1
            with self._hits_lock:
                self._hits[hit.head_id] += 1
        return hit

    @staticmethod
    def best(snap: _IndexState, slots: Slots, query: np.ndarray, candidates: frozenset[int]) -> PatternHit | None:
        """The answering head among the candidates, or None (also when passing heads disagree)."""
        passing: list[tuple[_Entry, float]] = []
        for pos, sim in snap.search(query, candidates):
            entry = snap.entries[pos]
            if sim < entry.threshold or entry.confidence < MIN_HEAD_CONFIDENCE:
                continue
            if entry.guard.check(slots).ok:
                passing.append((entry, sim))
        if not passing:
            return None
        entry, sim = passing[0]
        if any(not answers_agree(entry.answer, other.answer) for other, _ in passing[1:]):
            log.info("pattern lookup abstained: heads %s disagree", [e.head_id for e, _ in passing])
            return None
        return PatternHit(entry.head_id, entry.answer, round(sim, 4), entry.confidence, snap.version, entry.version)


_index = PatternIndex()


@atexit.register
def _flush_hits_at_exit() -> None:
    _index.flush_hits()


def pattern_lookup(prompt: str) -> PatternHit | None:
    """A mined pattern's answer to `prompt`, or None (no head, not similar enough, or the guard abstains)."""
    return _index.lookup(prompt)


def warm_up() -> dict[str, Any]:
    """Build this process's index (with heads, building it reads WordNet's senses for the guard's synonyms,
    ~0.3 s) and, when there are heads, load the embedding model (~1 s; torch ~5 s).

    Call it after fork in each serving process (gunicorn `post_worker_init`, Celery `worker_process_init`)
    so the first request does not pay for it; never in a parent that forks afterwards.
    """
    snap = _index.snapshot()
    if snap.entries:
        embed(["warm up"])
    return {"heads": len(snap.entries), "version": snap.version, "model_loaded": bool(snap.entries)}


def get_index() -> PatternIndex:
    return _index


def reset_index(reload_interval_s: float | None = None) -> PatternIndex:
    """Forget this process's index (tests; a fresh one is built on the next lookup); its hits are flushed."""
    global _index
    _index.flush_hits()
    _index = PatternIndex(reload_interval_s)
    return _index


def pattern_stats() -> dict[str, Any]:
    """Heads and versions for metrics (`swarm_pattern_heads`): two COUNTs and one Redis GET."""
    try:
        version = state.current_version()
    except REDIS_ERRORS:
        version = None
    snap = _index._state
    return {
        "heads_enabled": PatternHead.objects.filter(enabled=True).count(),
        "heads_total": PatternHead.objects.count(),
        "version": version,
        "index_heads": len(snap.entries) if snap else None,
        "index_version": snap.version if snap else None,
        "index_built_at": snap.built_at if snap else None,
        **_index.counters,
    }
