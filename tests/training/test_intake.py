"""Training data from the log, and jobs from the queue file (real database)."""

from __future__ import annotations

import itertools
import json

import pytest
from django.utils import timezone

from routing.models import Interaction
from training import datasets, services
from training.datasets import Example
from training.models import TrainingJob

pytestmark = pytest.mark.django_db
_ids = itertools.count()


def logged(prompt: str, answer: str, **fields) -> Interaction:
    defaults = {"route": "cloud", "provider": "openai", "confidence": 0.9, "status": "ok"}
    return Interaction.objects.create(request_id=f"i{next(_ids)}", created_at=timezone.now(), prompt=prompt,
                                      answer=answer, **{**defaults, **fields})  # fmt: skip


def test_only_trusted_answers_are_learned():
    logged("capital of peru?", "Lima")
    logged("What is 7*8?", "56", route="council", provider="", skill_type="math", confidence=1.0)
    logged("hi", "Hello!", route="council", provider="", skill_type="agent0", confidence=0.8)  # small talk
    logged("who won?", "UNSURE", route="unsure", provider="", status="unsure", confidence=0.0)
    logged("capital of chile?", "Santiago", route="cache", cached=True)  # a replay
    logged("rhyme", "a guess", route="council", provider="", confidence=0.45)  # unverified model text
    logged("Who won the 2090 World Cup?", "I cannot answer that: it asks about 2090, which is still to come.",
           route="council", provider="", skill_type="unknowable", confidence=0.9)  # fmt: skip  # a rule's decline
    got = {(e.prompt, e.answer, e.source) for e in datasets.log_examples()}
    assert got == {("capital of peru?", "Lima", "cloud"), ("What is 7*8?", "56", "verified")}


def test_duplicates_collapse_and_disagreements_are_dropped():
    examples = [Example("What is 2+2?", "4", "cloud"), Example("what is  2+2?", "4", "verified"),
                Example("Capital of X?", "Foo", "cloud"), Example("capital of x?", "Bar", "cloud")]  # fmt: skip
    assert datasets.dedupe(examples) == [Example("What is 2+2?", "4", "cloud")]


def test_the_heldout_split_is_stable_and_near_the_percentage():
    examples = [Example(f"question number {i}?", str(i), "cloud") for i in range(2000)]
    train, heldout = datasets.split(examples, 10)
    assert 150 < len(heldout) < 250 and len(train) + len(heldout) == 2000
    assert datasets.split(examples, 10) == (train, heldout)
    assert all(datasets.is_heldout(e.prompt.upper(), 10) for e in heldout)  # normalized: case does not matter


def test_job_prompts_are_answered_from_the_log_or_given():
    logged("What is the capital of Peru?", "Lima")
    got = datasets.job_examples(["what is the capital of peru?", {"prompt": "Name a prime", "answer": "7"}, "  "])
    assert [(e.prompt, e.answer, e.source) for e in got] == [
        ("what is the capital of peru?", "Lima", "cloud"), ("Name a prime", "7", "given")]  # fmt: skip


def test_the_queue_file_becomes_jobs_and_is_emptied(tmp_path, settings):
    path = tmp_path / "lora_queue.json"
    settings.SWARM_LORA_QUEUE_FILE = path
    path.write_text(json.dumps([{"name": "dev_test", "dataset": ["What is 7*8?"]}]))
    jobs = services.take_queue_file()
    assert [(j.name, j.prompts, j.source, j.status) for j in jobs] == [
        ("dev_test", ["What is 7*8?"], TrainingJob.Source.QUEUE_FILE, TrainingJob.Status.QUEUED)]  # fmt: skip
    assert json.loads(path.read_text()) == []
    assert services.take_queue_file() == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lora_queue.json"]


@pytest.mark.parametrize("raw", ['{"name": "x"}', '[{"dataset": []}]', '[{"name": "x", "dataset": "q"}]', "[oops"])
def test_a_bad_queue_file_is_kept_aside_and_nothing_is_queued(tmp_path, settings, raw):
    path = tmp_path / "lora_queue.json"
    settings.SWARM_LORA_QUEUE_FILE = path
    path.write_text(raw)
    assert services.take_queue_file() == []
    assert TrainingJob.objects.count() == 0
    rejected = [p for p in tmp_path.iterdir() if ".rejected-" in p.name]
    assert len(rejected) == 1 and rejected[0].read_text() == raw
    assert json.loads(path.read_text()) == []


def test_unknown_training_parameters_are_refused_when_queued():
    with pytest.raises(ValueError, match="unknown training parameters: colour"):
        services.create_job("x", ["q"], source=TrainingJob.Source.COMMAND, params={"colour": "red"})
    job = services.create_job("x", ["q"], source=TrainingJob.Source.COMMAND, params={"max_steps": "3"})
    assert job.params == {"max_steps": "3"}


def test_the_schedules_are_in_the_beat_database():
    from django_celery_beat.models import PeriodicTask

    tasks = {t.task: t for t in PeriodicTask.objects.filter(task__startswith="training.tasks.")}
    nightly = tasks["training.tasks.nightly"].crontab
    assert (nightly.minute, nightly.hour, str(nightly.timezone)) == ("0", "2", "UTC")
    assert tasks["training.tasks.poll_queue_file"].interval.every == 2  # the drill is trained within 30 s
    assert tasks["training.tasks.judge_canary"].enabled


def test_the_nightly_job_learns_from_the_log():
    job = services.nightly_job()
    assert job.name.startswith("nightly-") and job.prompts == [] and job.source == TrainingJob.Source.NIGHTLY
