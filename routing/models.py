"""The interaction log: every answered request, the raw material of mining and training."""

from __future__ import annotations

from django.db import models


class Interaction(models.Model):
    class Status(models.TextChoices):
        OK = "ok"
        UNSURE = "unsure"
        TIMEOUT = "timeout"
        ERROR = "error"

    request_id = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(db_index=True)
    endpoint = models.CharField(max_length=32, default="orchestrate")
    prompt = models.TextField()
    answer = models.TextField(blank=True)
    route = models.CharField(max_length=32, db_index=True)
    skill_type = models.CharField(max_length=32, blank=True)
    confidence = models.FloatField(default=0.0)
    latency_ms = models.FloatField(default=0.0)
    cost_usd = models.DecimalField(max_digits=12, decimal_places=8, default=0)
    model = models.CharField(max_length=128, blank=True)
    provider = models.CharField(max_length=64, blank=True, help_text="cloud provider that answered, if any")
    detail = models.CharField(max_length=500, blank=True, help_text="why the answer is UNSURE, when it is")
    adapter_version = models.CharField(max_length=64, blank=True)
    cached = models.BooleanField(default=False)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.OK)
    prompt_tokens = models.PositiveIntegerField(default=0)
    completion_tokens = models.PositiveIntegerField(default=0)
    ballots = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["route", "created_at"])]

    def __str__(self) -> str:
        return f"{self.request_id} {self.route} {self.prompt[:40]!r}"
