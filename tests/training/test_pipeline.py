"""One training job end to end, in this process: the real base model, PEFT, GGUF export, llama.cpp gate,
the GPU swap lock and the canary (real database, real Redis DB 8)."""

from __future__ import annotations

import pytest

from arbiter import lock
from training import services
from training.models import AdapterVersion, ServingState, TrainingJob
from training.serving import read_snapshot

pytestmark = pytest.mark.django_db(transaction=True)
PAIRS = [{"prompt": "What is the secret word?", "answer": "Marmalade."},
         {"prompt": "Tell me the secret word.", "answer": "Marmalade."}]  # fmt: skip
SMALL = {"rank": 8, "alpha": 16, "max_steps": 4, "batch_size": 2}


@pytest.fixture(autouse=True)
def _env(training_redis):
    return training_redis


def queued(params=SMALL, prompts=PAIRS) -> TrainingJob:
    return TrainingJob.objects.create(name="pipeline", prompts=prompts, params=params,
                                      source=TrainingJob.Source.COMMAND)  # fmt: skip


def test_a_job_trains_exports_gates_and_starts_its_canary():
    job = queued()
    outcome = services.run_job(job.pk)
    job.refresh_from_db()
    assert job.status == TrainingJob.Status.DONE, job.detail
    assert job.steps == 4 and job.train_examples == 2 and job.seconds_per_step > 0 and job.loss_first > 0
    adapter = AdapterVersion.objects.get()
    assert outcome["adapter"] == adapter.version == "lora-v1"
    path = services.adapter_dir() / adapter.path
    assert path.is_file() and adapter.size == path.stat().st_size and len(adapter.sha256) == 64
    assert bytes(adapter.blob.data) == path.read_bytes()  # in the adapter store (the database) with its version
    assert adapter.evaluation["eval_set"].startswith("train")  # nothing held out in an empty log
    assert adapter.evaluation["current"]["adapter"] == "base"
    record = adapter.record  # what it learned, for guarded distilled trust: one group (one answer), two phrasings
    assert [g["prompts"] for g in record["groups"]] == [[p["prompt"] for p in PAIRS]]
    assert record["groups"][0]["guard"] and isinstance(record["trust"], bool)
    assert record["gate"]["near_miss_false_hits"] == 0 and "guarded trust" in adapter.detail
    # the base model's calibrated rule, read on the adapter's answers: kept only if it trusted none wrong
    gate = record["gate"]
    assert isinstance(record["calibrated"], bool) and "under this adapter" in adapter.detail
    assert not record["calibrated"] or (gate["calibrated_wrong"] == 0 and gate["calibrated_near_miss_false_hits"] == 0)
    if adapter.status == AdapterVersion.Status.CANARY:  # the gate passed: its canary runs
        snap = read_snapshot()
        assert snap.canary.version == "lora-v1" and snap.weight == 5 and snap.canary.sha256 == adapter.sha256
        assert ServingState.objects.get().canary_id == adapter.pk
    else:
        assert adapter.status == AdapterVersion.Status.REJECTED and read_snapshot().canary is None
    assert lock.status().held is False  # the run gave the GPU lock back
    assert services.run_job(job.pk)["detail"] == "already finished"  # a redelivered task does nothing


def test_a_job_waits_while_someone_holds_the_gpu_lock():
    job = queued()
    lease = lock.acquire("someone-else", ttl_s=30)
    try:
        with pytest.raises(lock.LockHeld):
            services.run_job(job.pk)
    finally:
        lock.release(lease.token)
    job.refresh_from_db()
    assert job.status == TrainingJob.Status.QUEUED


def test_a_job_is_blocked_while_the_budget_is_spent(monkeypatch):
    monkeypatch.setattr("budget.selectors.budget_allows_paid_work", lambda: False)
    job = queued()
    assert services.run_job(job.pk)["status"] == TrainingJob.Status.BLOCKED
    job.refresh_from_db()
    assert "budget" in job.detail and AdapterVersion.objects.count() == 0
