"""Training jobs, the adapter versions they produce, and which adapter serves (stable and canary)."""

from __future__ import annotations

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models


class TrainingJob(models.Model):
    """One LoRA distillation run: queued (file, admin, nightly, command), then trained on the train queue."""

    class Source(models.TextChoices):
        QUEUE_FILE = "queue_file"
        ADMIN = "admin"
        NIGHTLY = "nightly"
        COMMAND = "command"

    class Status(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        DONE = "done"  # trained; its adapter is a candidate, canary, rejected... (see the adapter)
        BLOCKED = "blocked"  # not run: the daily budget is spent, or no training data
        FAILED = "failed"

    name = models.CharField(max_length=100)
    source = models.CharField(max_length=16, choices=Source.choices, default=Source.ADMIN)
    prompts = models.JSONField(
        default=list, blank=True, help_text='prompts (or {"prompt", "answer"} pairs) to learn; empty: the log'
    )
    params = models.JSONField(default=dict, blank=True, help_text="overrides: rank, alpha, lr, max_steps, ...")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED, db_index=True)
    detail = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    train_examples = models.PositiveIntegerField(default=0)
    heldout_examples = models.PositiveIntegerField(default=0)
    steps = models.PositiveIntegerField(default=0)
    seconds_per_step = models.FloatField(default=0.0)
    loss_first = models.FloatField(null=True, blank=True)
    loss_last = models.FloatField(null=True, blank=True)
    device = models.CharField(max_length=16, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.name} ({self.status})"


class AdapterVersion(models.Model):
    """A trained LoRA adapter, exported to GGUF for llama.cpp, with its evaluation and its fate."""

    class Status(models.TextChoices):
        CANDIDATE = "candidate"  # trained, passed the gate, not yet serving
        REJECTED = "rejected"  # lost to the serving adapter on the held-out set
        CANARY = "canary"  # serving a small share of traffic
        STABLE = "stable"  # serving everyone else
        RETIRED = "retired"  # was stable, replaced by a newer one
        ROLLED_BACK = "rolled_back"  # was a canary (or stable) and lost

    number = models.PositiveIntegerField(unique=True)
    job = models.ForeignKey(TrainingJob, null=True, blank=True, on_delete=models.SET_NULL, related_name="adapters")
    base_model = models.CharField(max_length=128)
    base_sha256 = models.CharField(max_length=64)
    path = models.CharField(max_length=500, help_text="the GGUF LoRA, relative to SWARM_ADAPTER_DIR")
    sha256 = models.CharField(max_length=64)
    size = models.PositiveBigIntegerField(default=0)
    rank = models.PositiveIntegerField()
    alpha = models.FloatField()
    target_modules = models.JSONField(default=list)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.CANDIDATE, db_index=True)
    evaluation = models.JSONField(default=dict, blank=True)
    record = models.JSONField(
        default=dict, blank=True,
        help_text="what it was trained on (prompts grouped by answer, with their guards) and whether the gate "
                  "let its sure answers be trusted near those (training/record.py)",
    )  # fmt: skip
    detail = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-number"]

    VERSION_PREFIX = "lora-v"

    @staticmethod
    def version_name(number: int) -> str:
        return f"{AdapterVersion.VERSION_PREFIX}{number}"

    @property
    def version(self) -> str:
        return self.version_name(self.number)

    def __str__(self) -> str:
        return f"{self.version} ({self.status})"


class AdapterBlob(models.Model):
    """An adapter's GGUF bytes, kept in the database: the store every host reaches. A serving worker
    whose SWARM_ADAPTER_DIR lacks the file (or holds another) fetches it from here (training/adapter_store.py).
    A table of its own, so that listing adapters never reads megabytes."""

    adapter = models.OneToOneField(AdapterVersion, primary_key=True, on_delete=models.CASCADE, related_name="blob")
    data = models.BinaryField()
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.adapter.version} bytes"


class ServingState(models.Model):
    """The single row that says which adapter serves: `stable` (None = the base model) and an
    optional `canary` at `canary_weight` percent of clients. `generation` counts every change of
    the stable adapter; it is the `swarm_lora_version` metric."""

    stable = models.ForeignKey(AdapterVersion, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    canary = models.ForeignKey(AdapterVersion, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    canary_weight = models.PositiveSmallIntegerField(
        default=5, validators=[MinValueValidator(0), MaxValueValidator(100)], help_text="percent of clients"
    )
    canary_started_at = models.DateTimeField(null=True, blank=True)
    generation = models.PositiveIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "serving state"
        verbose_name_plural = "serving state"

    def __str__(self) -> str:
        stable = self.stable.version if self.stable else "base"
        canary = f", canary {self.canary.version} at {self.canary_weight}%" if self.canary else ""
        return f"stable {stable}{canary} (generation {self.generation})"
