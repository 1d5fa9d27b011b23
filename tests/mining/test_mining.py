"""The mining job: the trust rule, retirement, admin-disabled heads, the task, the command, the beat schedule."""

from __future__ import annotations

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.utils import timezone
from django_celery_beat.models import PeriodicTask
from prometheus_client import REGISTRY

from mining.models import MiningRun, PatternHead
from mining.runtime import pattern_lookup
from mining.services import MiningParams, is_trusted, majority_answer, run_mining, trusted_interactions
from mining.tasks import mine_patterns
from observability import metrics
from routing.models import Interaction
from tests.mining.conftest import log_interaction, requires_ml

AUSTRALIA = ["What is the capital of Australia?", "Which city is Australia's capital?",
             "What is the capital city of Australia?"]  # fmt: skip
CANBERRA = "Canberra"


def test_majority_answer_uses_answers_agree():
    answer, agreement = majority_answer(["56", "7*8 is 56.", "56", "63"])
    assert answer == "56" and agreement == 0.75
    assert majority_answer([]) == ("", 0.0)


def test_a_unit_written_two_ways_is_one_answer():
    # the knowledge head says "m/s", a paid model "metres per second": one cluster, all agreeing
    answer, agreement = majority_answer(["299,792,458 m/s", "299,792,458 metres per second", "299,792,458 m/s"])
    assert (answer, agreement) == ("299,792,458 m/s", 1.0)


@pytest.mark.django_db
def test_only_trusted_interactions_are_mined():
    params = MiningParams()
    log_interaction("q cloud", "a")  # trusted: the cloud answered
    log_interaction("q math", "4", route="council", skill_type="math", confidence=0.95)  # trusted: verified skill
    log_interaction("q code ok", "def f(): ...", route="council", skill_type="code", confidence=0.9,
                    ballots=[{"head": "code", "evidence": {"passed": True, "tests": ["assert f() == 1"]}}])  # fmt: skip
    # the model's own answer under its calibrated trust rule
    log_interaction("q calibrated", "Ottawa", route="council", skill_type="agent0", confidence=0.8,
                    ballots=[{"head": "agent0", "evidence": {"calibrated": True, "chat": False}}])  # fmt: skip
    # the model's answer read from WordNet's notes, under its grounded rule
    grounded = {"calibrated": False, "grounded": {"trusted": True}}
    log_interaction("q grounded", "Fleming", route="council", skill_type="agent0", confidence=0.8,
                    ballots=[{"head": "agent0", "evidence": grounded}])  # fmt: skip
    untrusted = [
        log_interaction("q ungrounded", "x", route="council", skill_type="agent0", confidence=0.45,
                        ballots=[{"head": "agent0", "evidence": {**grounded, "grounded": {"trusted": False}}}]),
        log_interaction("q code untested", "def f(): ...", route="council", skill_type="code", confidence=0.9,
                        ballots=[{"head": "code", "evidence": {"tests": []}}]),
        log_interaction("q low", "x", route="council", skill_type="math", confidence=0.8),
        log_interaction("q llm", "x", route="council", skill_type="agent0", confidence=0.95),
        log_interaction("q chat", "Hi!", route="council", skill_type="agent0", confidence=0.97,
                        ballots=[{"head": "agent0", "evidence": {"calibrated": False, "chat": True}}]),
        log_interaction("q adapter", "x", route="council", skill_type="agent0", confidence=0.8,
                        ballots=[{"head": "agent0", "evidence": {"calibrated": True, "adapter": "lora-v1"}}]),
        log_interaction("q cache", "a", route="cache"),
        log_interaction("q pattern", "a", route="pattern", skill_type="pattern"),
        log_interaction("q unsure", "UNSURE", route="unsure", status=Interaction.Status.UNSURE),
        log_interaction("q stale", "a", when=timezone.now() - timedelta(days=8)),
        log_interaction("What is the weather today?", "sunny"),
        log_interaction("q empty", ""),
    ]  # fmt: skip
    prompts = {row["prompt"] for row in trusted_interactions(params)}
    assert prompts == {"q cloud", "q math", "q code ok", "q calibrated", "q grounded"}
    assert not any(p.prompt in prompts for p in untrusted)
    assert not is_trusted({"prompt": "q", "answer": "UNSURE", "route": "cloud"}, params)
    without = {row["prompt"] for row in trusted_interactions(MiningParams(calibrated_answers=False))}
    assert without == {"q cloud", "q math", "q code ok"}


@requires_ml
@pytest.mark.django_db
def test_a_head_retires_when_its_answers_stop_agreeing(mining_redis):
    for prompt in AUSTRALIA:
        log_interaction(prompt, CANBERRA, when=timezone.now() - timedelta(hours=2))
    first = run_mining(MiningParams())
    assert first.heads_created == 1
    assert exported() == (1, first.patterns_version)  # the mining run says what it published
    head = PatternHead.objects.get()
    metrics.set_patterns(0, 0)  # as if another process had written last
    hit = pattern_lookup("What's the capital of Australia?")
    assert hit is not None and hit.answer == CANBERRA and hit.head_id == head.pk
    assert exported() == (1, first.patterns_version)  # ... and so does each index it rebuilds

    # Later the trusted answers to the same questions disagree with the head.
    for prompt in AUSTRALIA + AUSTRALIA[:1]:
        log_interaction(prompt, "Sydney")
    second = run_mining(MiningParams())
    head.refresh_from_db()
    assert second.heads_retired == 1 and second.heads_created == 0
    assert not head.enabled and "disagree" in head.retired_reason
    assert int(mining_redis.get("swarm:patterns:version")) == 2
    assert exported() == (0, 2)
    assert pattern_lookup("What's the capital of Australia?") is None


def exported() -> tuple[float | None, float | None]:
    """(swarm_pattern_heads, swarm_patterns_version) as this process exports them."""
    return REGISTRY.get_sample_value("swarm_pattern_heads"), REGISTRY.get_sample_value("swarm_patterns_version")


@requires_ml
@pytest.mark.django_db
def test_admin_disabled_heads_stay_disabled_and_are_not_recreated(mining_redis):
    for prompt in AUSTRALIA:
        log_interaction(prompt, CANBERRA)
    run_mining(MiningParams())
    head = PatternHead.objects.get()
    PatternHead.objects.filter(pk=head.pk).update(enabled=False, disabled_by_admin=True, retired_reason="admin")
    log_interaction("Name the capital of Australia.", CANBERRA)
    again = run_mining(MiningParams())
    assert again.heads_created == 0 and PatternHead.objects.count() == 1
    assert not PatternHead.objects.get().enabled
    assert pattern_lookup("What is the capital of Australia?") is None


@requires_ml
@pytest.mark.django_db
def test_a_disagreeing_cluster_makes_no_head(mining_redis):
    for prompt, answer in zip(AUSTRALIA, [CANBERRA, "Sydney", "Melbourne"], strict=True):
        log_interaction(prompt, answer)
    run = run_mining(MiningParams())
    assert run.clusters == 1 and run.clusters_agreeing == 0 and run.heads_created == 0
    assert "disagree" in run.notes


@requires_ml
@pytest.mark.django_db
def test_the_task_and_the_command_run_the_job(mining_redis):
    for prompt in AUSTRALIA:
        log_interaction(prompt, CANBERRA)
    result = mine_patterns.apply(kwargs={"window_days": 3}).get()
    assert result["status"] == "ok" and result["heads_created"] == 1
    assert MiningRun.objects.get(pk=result["run"]).window_days == 3

    out = StringIO()
    call_command("mine_once", "--days", "7", stdout=out)
    assert "mining run" in out.getvalue() and "heads created 0" in out.getvalue()


@pytest.mark.django_db
def test_a_second_run_is_skipped_while_one_holds_the_lock(mining_redis):
    mining_redis.set("swarm:patterns:mining-lock", "someone-else", ex=60)
    run = run_mining(MiningParams())
    assert run.status == MiningRun.Status.SKIPPED and "lock" in run.notes


@pytest.mark.django_db
def test_the_beat_schedule_exists_after_migrate():
    task = PeriodicTask.objects.get(name="mine patterns every 6h")
    assert task.task == "mining.tasks.mine_patterns" and task.enabled
    assert (task.interval.every, task.interval.period) == (6, "hours")


@requires_ml
@pytest.mark.django_db
def test_a_question_asked_again_after_its_window_continues_its_head(mining_redis):
    old = timezone.now() - timedelta(days=10)
    for prompt in AUSTRALIA:
        log_interaction(prompt, CANBERRA, when=old)
    run_mining(MiningParams(window_days=30))
    head = PatternHead.objects.get()
    for prompt in ["Name the capital of Australia.", "What's the capital of Australia?", "Australia's capital is?"]:
        log_interaction(prompt, CANBERRA)
    run = run_mining(MiningParams(window_days=7))  # none of the head's sources is in this window
    assert run.heads_created == 0 and run.heads_updated == 1
    head.refresh_from_db()
    assert head.enabled and head.version == 2 and len(head.source_interaction_ids) == 6


@requires_ml
@pytest.mark.django_db
def test_a_changed_answer_retires_the_head_and_starts_a_new_one(mining_redis):
    for prompt in AUSTRALIA:
        log_interaction(prompt, CANBERRA, when=timezone.now() - timedelta(days=10))
    run_mining(MiningParams(window_days=30))
    first = PatternHead.objects.get()
    for prompt in AUSTRALIA:
        log_interaction(prompt, "Sydney")  # pretend the world changed
    run = run_mining(MiningParams(window_days=7))
    first.refresh_from_db()
    assert run.heads_created == 1 and run.heads_retired == 1
    assert not first.enabled and "disagree" in first.retired_reason
    assert pattern_lookup("What's the capital of Australia?").answer == "Sydney"
