"""Read-only views of the distillation loop (for /api/training and the tests that drive it)."""

from __future__ import annotations

from typing import Any

from training import rollout
from training.models import AdapterVersion, TrainingJob

RECENT = 20


def training_status() -> dict[str, Any]:
    jobs = [
        {"id": j.pk, "name": j.name, "source": j.source, "status": j.status, "detail": j.detail,
         "train_examples": j.train_examples, "heldout_examples": j.heldout_examples, "steps": j.steps,
         "seconds_per_step": j.seconds_per_step, "loss_first": j.loss_first, "loss_last": j.loss_last,
         "device": j.device, "created_at": j.created_at, "started_at": j.started_at, "finished_at": j.finished_at}
        for j in TrainingJob.objects.all()[:RECENT]
    ]  # fmt: skip
    adapters = [
        {"version": a.version, "status": a.status, "sha256": a.sha256, "rank": a.rank, "alpha": a.alpha,
         "detail": a.detail, "created_at": a.created_at}
        for a in AdapterVersion.objects.all()[:RECENT]
    ]  # fmt: skip
    return {"serving": rollout.describe(rollout.snapshot_of(rollout.serving_state())), "jobs": jobs,
            "adapters": adapters}  # fmt: skip
