"""Pattern heads mined from the interaction log, and the record of each mining run."""

from __future__ import annotations

import numpy as np
from django.db import models

from mining.embeddings import DIMENSIONS, MODEL_NAME

MIN_HEAD_CONFIDENCE = 0.50  # a head below this never answers


class PatternHeadQuerySet(models.QuerySet):
    def servable(self) -> PatternHeadQuerySet:
        """The heads the pattern stage answers with: enabled, of this embedding model, confident enough."""
        return self.filter(enabled=True, embedding_model=MODEL_NAME, confidence__gte=MIN_HEAD_CONFIDENCE)


class PatternHead(models.Model):
    """A cluster of paraphrased prompts whose trusted answers agreed: answers its paraphrases at once.

    `centroid` is the unit-length mean of the members' embeddings (float32, little-endian bytes);
    a prompt is a candidate when its cosine similarity to it reaches `threshold`, and is answered
    only when the false-hit guard (`slots`, see mining/guard.py) accepts it too.
    """

    name = models.CharField(max_length=200, help_text="a member prompt, for people")
    embedding_model = models.CharField(max_length=64, default=MODEL_NAME)
    centroid = models.BinaryField(help_text=f"{DIMENSIONS} float32 values, unit length")
    threshold = models.FloatField(help_text="cosine similarity a prompt needs to reach this head")
    canonical_answer = models.TextField()
    answer_template = models.TextField(blank=True, help_text="reserved: an answer with {slot} fields")
    slots = models.JSONField(default=dict, blank=True, help_text="the false-hit guard: what the members said")
    support = models.PositiveIntegerField(default=0, help_text="member interactions")
    confidence = models.FloatField(default=0.0, help_text="share of member answers that agree")
    source_interaction_ids = models.JSONField(default=list, blank=True)
    sample_prompts = models.JSONField(default=list, blank=True)
    hits = models.PositiveBigIntegerField(default=0, help_text="answers served (flushed from Redis by each run)")
    enabled = models.BooleanField(default=True, db_index=True)
    disabled_by_admin = models.BooleanField(default=False, help_text="mining never re-enables these")
    retired_reason = models.CharField(max_length=300, blank=True)
    version = models.PositiveIntegerField(default=1, help_text="bumped whenever the answer or the match changes")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = PatternHeadQuerySet.as_manager()

    class Meta:
        ordering = ["-updated_at"]

    def __str__(self) -> str:
        return f"#{self.pk} {self.name[:60]!r} -> {self.canonical_answer[:40]!r}"

    def centroid_vector(self) -> np.ndarray:
        return np.frombuffer(bytes(self.centroid), dtype="<f4").astype(np.float32)

    def set_centroid(self, vector: np.ndarray) -> None:
        vector = np.asarray(vector, dtype=np.float32).reshape(-1)
        if vector.shape[0] != DIMENSIONS:
            raise ValueError(f"a centroid has {DIMENSIONS} values, not {vector.shape[0]}")
        norm = float(np.linalg.norm(vector))
        if norm == 0.0:
            raise ValueError("a centroid cannot be the zero vector")
        self.centroid = (vector / norm).astype("<f4").tobytes()


class MiningRun(models.Model):
    class Status(models.TextChoices):
        RUNNING = "running"
        OK = "ok"
        SKIPPED = "skipped"
        FAILED = "failed"

    started_at = models.DateTimeField(auto_now_add=True, db_index=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.RUNNING)
    window_days = models.FloatField(default=7.0)
    interactions_seen = models.PositiveIntegerField(default=0, help_text="trusted interactions in the window")
    distinct_prompts = models.PositiveIntegerField(default=0)
    clusters = models.PositiveIntegerField(default=0)
    clusters_agreeing = models.PositiveIntegerField(default=0)
    heads_created = models.PositiveIntegerField(default=0)
    heads_updated = models.PositiveIntegerField(default=0)
    heads_retired = models.PositiveIntegerField(default=0)
    hits_flushed = models.PositiveBigIntegerField(default=0)
    patterns_version = models.BigIntegerField(null=True, blank=True, help_text="Redis version after the run")
    params = models.JSONField(default=dict, blank=True)
    timings = models.JSONField(default=dict, blank=True)
    notes = models.TextField(blank=True)

    class Meta:
        ordering = ["-started_at"]

    def __str__(self) -> str:
        return f"mining run {self.pk} {self.status} at {self.started_at:%Y-%m-%d %H:%M}"

    @property
    def changed(self) -> bool:
        return bool(self.heads_created or self.heads_updated or self.heads_retired)


class PromptEmbedding(models.Model):
    """Embedding cache of the mining job: a prompt in the window is embedded once, not every 6 hours."""

    key = models.CharField(max_length=64, unique=True, help_text="sha256 of the model name and the normalized prompt")
    vector = models.BinaryField()
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    def __str__(self) -> str:
        return self.key[:12]
