"""The distillation pipeline: intake of jobs, one training run, the evaluation gate, the canary.

`run_job(job_id)` (the `train` queue):

1. blocked (no run) while the daily budget is spent: the teacher may need the paid chain, and a
   day whose budget is gone is a day to spend nothing more;
2. takes the GPU swap lock for the whole run (no model swap while the trainer uses the device);
   when someone else holds it the task retries later;
3. builds the dataset (the job's prompts, answered from the log or by the cascade; or, for a job
   without prompts, the trusted log) and splits off the held-out set;
4. trains a PEFT LoRA (training/trainer.py), exports it to GGUF LoRA (training/gguf_lora.py) under
   SWARM_ADAPTER_DIR/lora-v<N>/ and records an AdapterVersion with the file's SHA-256, and the file's
   bytes in the adapter store (the database, training/adapter_store.py) in the same transaction;
5. the gate: llama.cpp with the new adapter must score at least what the serving (stable) adapter
   scores on the held-out set (on the training set when no example is held out yet, recorded as
   such), and be sure of a wrong answer (agent0 would answer it without escalating) no more often;
   pass -> candidate, and its canary starts (SWARM_LORA_AUTO_CANARY); fail -> rejected.
"""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from observability import metrics
from training import adapter_store, datasets, rollout
from training.models import AdapterVersion, TrainingJob
from training.serving import adapter_dir, adapter_ref

log = logging.getLogger(__name__)

LOCK_PURPOSE = "lora-training"


class JobBlocked(Exception):
    """The job cannot run now (budget spent, no data); it is marked blocked with the reason."""


# --- intake ----------------------------------------------------------------------------------


def enqueue(job: TrainingJob) -> None:
    """Send the job to the train queue once the row is committed."""
    from training.tasks import train

    transaction.on_commit(lambda: train.apply_async(args=[job.pk], task_id=f"lora-job-{job.pk}"))


def create_job(name: str, prompts: list[Any] | None = None, *, source: str, params: dict[str, Any] | None = None
               ) -> TrainingJob:  # fmt: skip
    from training.trainer import TrainParams

    TrainParams.from_settings(**(params or {}))  # unknown or malformed overrides fail here, not at 02:00
    with transaction.atomic():
        job = TrainingJob.objects.create(name=name[:100], prompts=list(prompts or []), params=params or {},
                                         source=source)  # fmt: skip
        enqueue(job)
    log.info("queued training job %s (%s, %d prompts)", job.name, source, len(job.prompts))
    return job


def parse_queue(raw: str) -> list[dict[str, Any]]:
    """The queue file's jobs: `[{"name": "dev_test", "dataset": ["What is 7*8?"], "params"?: {...}}]`."""
    body = json.loads(raw) if raw.strip() else []
    if not isinstance(body, list):
        raise ValueError("the LoRA queue file must hold a JSON list of jobs")
    jobs = []
    for index, item in enumerate(body):
        if not isinstance(item, dict) or not str(item.get("name", "")).strip():
            raise ValueError(f"job {index} needs a name")
        dataset = item.get("dataset", [])
        if not isinstance(dataset, list):
            raise ValueError(f"job {item['name']!r}: dataset must be a list of prompts")
        jobs.append({"name": str(item["name"]).strip(), "dataset": dataset, "params": item.get("params") or {}})
    return jobs


def take_queue_file(path: Path | None = None) -> list[TrainingJob]:
    """Turn the jobs written to the queue file into queued jobs and empty the file.

    The file is renamed away first (atomic), so a job written while this runs lands in a new file
    and is read next time; a file that does not parse is kept beside it as `<name>.rejected-<ts>`.
    """
    path = Path(path or settings.SWARM_LORA_QUEUE_FILE)
    if not path.exists() or path.stat().st_size == 0:
        return []
    claimed = path.with_name(f".{path.name}.{os.getpid()}.{time.time_ns()}")
    try:
        os.replace(path, claimed)
    except FileNotFoundError:
        return []
    raw = claimed.read_text()
    if not path.exists():
        path.write_text("[]\n")
    try:
        entries = parse_queue(raw)
    except (ValueError, json.JSONDecodeError) as exc:
        rejected = path.with_name(f"{path.name}.rejected-{int(time.time())}")
        os.replace(claimed, rejected)
        log.error("the LoRA queue file did not parse (%s); kept as %s", exc, rejected)
        return []
    jobs = []
    try:
        for entry in entries:
            jobs.append(create_job(entry["name"], entry["dataset"], source=TrainingJob.Source.QUEUE_FILE,
                                   params=entry["params"]))  # fmt: skip
    finally:
        claimed.unlink(missing_ok=True)
    return jobs


def nightly_job() -> TrainingJob:
    """The nightly run: everything trusted in the log."""
    return create_job(f"nightly-{timezone.now():%Y-%m-%d}", [], source=TrainingJob.Source.NIGHTLY)


# --- one run ---------------------------------------------------------------------------------


def _finish(job: TrainingJob, status: str, detail: str) -> None:
    job.status = status
    job.detail = detail[:5000]
    job.finished_at = timezone.now()
    job.save()
    metrics.record_training_job(status)
    log.info("training job %s %s: %s", job.name, status, detail)


def run_job(job_id: int) -> dict[str, Any]:
    """Train one job (see the module doc). Raises arbiter.lock.LockHeld when the GPU is taken."""
    from arbiter import lock
    from budget.selectors import budget_allows_paid_work
    from training.trainer import TrainParams

    job = TrainingJob.objects.get(pk=job_id)
    if job.status not in (TrainingJob.Status.QUEUED, TrainingJob.Status.RUNNING):
        return {"job": job.pk, "status": job.status, "detail": "already finished"}
    if not budget_allows_paid_work():
        _finish(job, TrainingJob.Status.BLOCKED, "the daily budget is spent; the job waits for a new one")
        return {"job": job.pk, "status": job.status}
    params = TrainParams.from_settings(**job.params)
    with lock.held(LOCK_PURPOSE, ttl_s=params.time_budget_s + 900, holder=f"trainer:{job.name}"):
        job.status = TrainingJob.Status.RUNNING
        job.started_at = timezone.now()
        job.save(update_fields=["status", "started_at"])
        try:
            with metrics.trainer_running():
                outcome = _train_and_gate(job, params)
        except JobBlocked as exc:
            _finish(job, TrainingJob.Status.BLOCKED, str(exc))
            return {"job": job.pk, "status": job.status, "detail": str(exc)}
        except Exception as exc:
            _finish(job, TrainingJob.Status.FAILED, f"{type(exc).__name__}: {exc}")
            raise
    return outcome


def _examples(job: TrainingJob) -> tuple[list[datasets.Example], list[datasets.Example], str]:
    if job.prompts:
        train = datasets.job_examples(job.prompts)
        _, heldout = datasets.split(datasets.log_examples())
        known = {e.prompt for e in train}
        heldout = [e for e in heldout if e.prompt not in known]
    else:
        train, heldout = datasets.split(datasets.log_examples())
    if not train:
        raise JobBlocked("no trusted answers to learn from (the cascade answered none of the prompts confidently)")
    if heldout:
        return train, heldout, "heldout"
    return train, train, "train (nothing held out yet)"


def _next_number() -> int:
    return (AdapterVersion.objects.aggregate(n=Max("number"))["n"] or 0) + 1


def _train_and_gate(job: TrainingJob, params) -> dict[str, Any]:
    from inference.backends.base import AdapterRef
    from inference.registry import active_model
    from inference.runtime import build_backend
    from training import evaluation
    from training.gguf_lora import export_gguf_lora
    from training.record import TrainedRecord, build_record, near_misses
    from training.trainer import train_lora

    train, evalset, eval_kind = _examples(job)
    job.train_examples, job.heldout_examples = len(train), len(evalset) if eval_kind == "heldout" else 0
    job.save(update_fields=["train_examples", "heldout_examples"])
    log.info("training job %s: %d examples, evaluating on %d (%s)", job.name, len(train), len(evalset), eval_kind)

    result = train_lora(train, params, progress=lambda step, loss: metrics.set_training_progress(step, loss))
    spec = active_model()
    number = _next_number()
    folder = adapter_dir() / AdapterVersion.version_name(number)
    folder.mkdir(parents=True, exist_ok=True)
    result.model.save_pretrained(str(folder / "peft"))  # the PEFT form, for reference and re-export
    gguf_path = folder / "adapter.gguf"
    sha256 = export_gguf_lora(result.model, gguf_path, base_path=spec.local_path())
    job.steps, job.seconds_per_step, job.device = result.steps, round(result.seconds_per_step, 4), result.device
    job.loss_first, job.loss_last = result.losses[0], result.losses[-1]
    job.save(update_fields=["steps", "seconds_per_step", "device", "loss_first", "loss_last"])
    # Trained and exported: said now, before the gate's evaluation (two answers per example of the
    # evaluation set on the serving model, which takes longer as the log grows).
    log.info("trained %s for job %s: %d steps, %.2f s/step on %s, loss %.3f -> %.3f; gating on %d examples (%s)",
             AdapterVersion.version_name(number), job.name, result.steps, result.seconds_per_step, result.device,
             result.losses[0], result.losses[-1], len(evalset), eval_kind)  # fmt: skip

    new_ref = AdapterRef(version=AdapterVersion.version_name(number), path=gguf_path, sha256=sha256)
    current_ref = adapter_ref(rollout.snapshot_of(rollout.serving_state()).stable.as_task())
    record_data = build_record(train)
    record = TrainedRecord(record_data)
    misses = [datasets.Example(prompt, answer, "near-miss") for prompt, answer in near_misses(train)]
    backend = build_backend(spec)
    backend.load()
    rule = spec.trust  # the base model's calibrated rule, read on the new adapter's answers too
    try:  # both measured as if guarded distilled trust were on, each with its own training record
        current = evaluation.score(backend, evalset, current_ref, trust=True)
        new = evaluation.score(backend, evalset, new_ref, trust=True, record=record, calibrated=rule)
        near = evaluation.score(backend, misses, new_ref, trust=True, record=record, calibrated=rule)
    finally:
        backend.unload()
    # The trained answer to a near miss, trusted, is a false hit (its reference is the trained answer).
    false_hits = evaluation.sure_false_hits(near.answers)
    calibrated_false_hits = evaluation.sure_false_hits(near.answers, trusted="calibrated")
    # Better or as good, and never more often sure of a wrong answer (what would skip the paid chain).
    passed = new.accuracy >= current.accuracy and new.trusted_wrong <= current.trusted_wrong
    # Its sure answers are trusted near what it learned only when none was wrong on unseen prompts and
    # no near miss got the trained answer (confidently wrong: 0).
    record_data["trust"] = passed and new.trusted_wrong == 0 and false_hits == 0
    # The base model's calibrated rule keeps holding under this adapter only when, read on the adapter's
    # answers, it trusted no wrong one on unseen prompts and gave no near miss the trained answer.
    record_data["calibrated"] = (passed and rule is not None and rule.has_own_rule and new.calibrated_wrong == 0
                                 and calibrated_false_hits == 0)  # fmt: skip
    record_data["gate"] = {"eval_set": eval_kind, "escalation_rate": new.as_dict()["escalation_rate"],
                           "trusted_wrong": new.trusted_wrong, "near_misses": near.total,
                           "near_miss_false_hits": false_hits, "calibrated": new.calibrated,
                           "calibrated_wrong": new.calibrated_wrong,
                           "calibrated_near_miss_false_hits": calibrated_false_hits}  # fmt: skip
    report = {
        "eval_set": eval_kind, "current": current.as_dict(), "new": new.as_dict(with_answers=True),
        "train_examples": len(train), "steps": result.steps, "seconds_per_step": round(result.seconds_per_step, 4),
        "near_miss": {"total": near.total, "sure_false_hits": false_hits, "answers": near.answers},
        "guarded_trust": record_data["trust"], "calibrated_trust": record_data["calibrated"],
        "device": result.device, "stopped_by": result.stopped_by, "loss_first": result.losses[0],
        "loss_last": result.losses[-1], "params": params.as_dict(),
    }  # fmt: skip
    with transaction.atomic():  # the version and its bytes in the adapter store, or neither
        adapter = AdapterVersion.objects.create(
            number=number, job=job, base_model=spec.alias, base_sha256=spec.sha256 or "",
            path=str(gguf_path.relative_to(adapter_dir())), sha256=sha256, size=gguf_path.stat().st_size,
            rank=params.rank, alpha=params.alpha, target_modules=list(params.target_modules),
            status=AdapterVersion.Status.CANDIDATE if passed else AdapterVersion.Status.REJECTED, evaluation=report,
            record=record_data,
            detail=f"gate: accuracy {new.accuracy:.3f} vs {current.accuracy:.3f}, sure and wrong "
                   f"{new.trusted_wrong} vs {current.trusted_wrong} on {eval_kind}; near misses trusted with the "
                   f"trained answer {false_hits} of {near.total}; guarded trust "
                   f"{'on' if record_data['trust'] else 'off'}; the calibrated rule trusted "
                   f"{new.calibrated} ({new.calibrated_wrong} wrong, {calibrated_false_hits} near misses): "
                   f"{'kept' if record_data['calibrated'] else 'off'} under this adapter",
        )  # fmt: skip
        adapter_store.save_blob(adapter, gguf_path)
    detail = (f"trained {adapter.version} on {len(train)} examples: {result.steps} steps, "
              f"{result.seconds_per_step:.2f} s/step on {result.device}, loss {result.losses[0]:.3f} -> "
              f"{result.losses[-1]:.3f}; gate {new.accuracy:.3f} vs {current.accuracy:.3f} ({eval_kind}): "
              f"{'passed' if passed else 'rejected'}")  # fmt: skip
    if passed:
        metrics.record_lora_success(number)
        if settings.SWARM_LORA_AUTO_CANARY:
            rollout.start_canary(adapter)
    _finish(job, TrainingJob.Status.DONE, detail)
    return {"job": job.pk, "status": job.status, "adapter": adapter.version, "adapter_status": adapter.status,
            "detail": detail, "evaluation": {k: v for k, v in report.items() if k != "new"}}  # fmt: skip
