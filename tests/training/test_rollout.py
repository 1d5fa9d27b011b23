"""Reload, canary, promotion and rollback on the real database and the real Redis (DB 8)."""

from __future__ import annotations

import itertools
from datetime import timedelta

import pytest
from django.utils import timezone

from routing.models import Interaction
from tests.training.adapter_factory import adapter, evaluation, passed, rejected
from training import rollout
from training.models import AdapterVersion, ServingState
from training.serving import SERVING_KEY, read_snapshot

pytestmark = pytest.mark.django_db(transaction=True)
_ids = itertools.count()


@pytest.fixture(autouse=True)
def _env(training_redis, settings):
    settings.SWARM_CANARY_MIN_REQUESTS = 20


PASSED_GATE = {"passed": True, "score": None, "threshold": None, "against": None, "eval_set": None,
               "trusted_wrong_rate": None, "trusted_wrong_rate_max": None}  # fmt: skip


def serving(lora_version: int, stable: str, *, gate: dict | None = None, forced: bool = False) -> dict:
    return {"lora_version": lora_version, "stable": stable, "canary": None, "canary_weight": 0, "gate": gate,
            "forced": forced}  # fmt: skip


def test_reload_latest_serves_the_newest_adapter_and_bumps_the_version():
    adapter(1)
    adapter(2)
    state = rollout.reload_adapter("latest")
    assert state == serving(1, "lora-v2", gate=PASSED_GATE)
    snap = read_snapshot()
    assert snap.generation == 1 and snap.stable.version == "lora-v2" and snap.stable.sha256 == f"{2:064x}"
    assert rollout.reload_adapter("latest")["lora_version"] == 1  # already served: nothing changes
    assert rollout.reload_adapter("base") == serving(2, "base")
    assert AdapterVersion.objects.get(number=2).status == AdapterVersion.Status.RETIRED
    assert rollout.reload_adapter("lora-v1")["stable"] == "lora-v1"
    assert rollout.reload_adapter(None)["lora_version"] == 3  # republish only


def test_latest_is_the_newest_adapter_that_passed_its_gate():
    passed(1)
    rejected(2)  # newer, but 0.000 vs 0.025 on the held-out set
    adapter(3, AdapterVersion.Status.REJECTED)  # rejected with no evaluation recorded
    state = rollout.reload_adapter("latest")
    assert state["stable"] == "lora-v1" and state["forced"] is False
    assert state["gate"]["passed"] is True and state["gate"]["score"] == 0.05 and state["gate"]["threshold"] == 0.025
    assert AdapterVersion.objects.get(number=2).status == AdapterVersion.Status.REJECTED


def test_latest_counts_a_passed_adapter_whatever_it_became_and_never_a_failed_one():
    passed(1)
    rollout.reload_adapter("lora-v1")
    rollout.start_canary(passed(2))  # a running canary passed its gate
    assert rollout.resolve("latest").number == 2
    rollout.rollback_canary()  # rolled back by the judge or an operator: it still passed its gate
    assert rollout.resolve("latest").number == 2
    # Failed its gate but served by a forced reload, then retired: its status no longer says rejected.
    rejected(3)
    rollout.reload_adapter("lora-v3", force=True)
    rollout.reload_adapter("lora-v1")
    assert AdapterVersion.objects.get(number=3).status == AdapterVersion.Status.RETIRED
    assert rollout.resolve("latest").number == 2
    # The same with no evaluation recorded: the forced reload keeps the verdict.
    adapter(4, AdapterVersion.Status.REJECTED)
    rollout.reload_adapter("lora-v4", force=True)
    rollout.reload_adapter("base")
    assert rollout.resolve("latest").number == 2


def test_the_gate_is_read_from_the_recorded_evaluation():
    ok = rollout.gate_of(adapter(1, report=evaluation(0.025, 0.025)))  # as good as the serving one: passes
    assert ok["passed"] is True and ok["against"] == "base" and ok["eval_set"] == "heldout"
    surer = rollout.gate_of(adapter(2, report=evaluation(0.5, 0.025, wrong=0.05, wrong_max=0.025)))
    assert surer["passed"] is False  # more accurate, but more often sure of a wrong answer
    assert "sure and wrong 0.050 vs at most 0.025" in rollout.gate_text(surer)
    # 10000 of 100000 vs 10001: the rounded accuracies tie, the counts do not.
    close = evaluation(0.1, 0.1, total=100000)
    close["current"]["correct"] += 1
    assert rollout.gate_of(adapter(3, report=close))["passed"] is False
    assert rollout.gate_of(adapter(4))["passed"] is True  # no evaluation recorded: its status says
    assert rollout.gate_text(rollout.gate_of(rejected(5))) == "accuracy 0.000 vs 0.025 (base) on the held-out set"


def test_latest_with_no_adapter_that_passed_is_a_clear_error():
    with pytest.raises(rollout.NoPassingAdapter, match="no trained adapter"):
        rollout.reload_adapter("latest")
    rejected(1)
    with pytest.raises(rollout.NoPassingAdapter) as refused:
        rollout.reload_adapter("latest")
    message = str(refused.value)
    assert "no adapter has passed its gate yet" in message and "lora=base serves the base model" in message
    assert "lora-v1" in message and "0.000 vs 0.025" in message
    assert isinstance(refused.value, rollout.UnknownAdapter)  # a 404 at the API
    assert not ServingState.objects.filter(stable__isnull=False).exists()


def test_a_rejected_adapter_is_served_only_when_forced(caplog):
    passed(1)
    rollout.reload_adapter("lora-v1")
    rejected(2)
    with pytest.raises(rollout.GateFailed) as refused:
        rollout.reload_adapter("lora-v2", operator="staff user 'ops'")
    assert "lora-v2 failed its gate (accuracy 0.000 vs 0.025 (base) on the held-out set)" in str(refused.value)
    assert "force=true" in str(refused.value)
    assert read_snapshot().stable.version == "lora-v1" and ServingState.objects.get().generation == 1

    with caplog.at_level("WARNING", logger="training.rollout"):
        state = rollout.reload_adapter("lora-v2", force=True, operator="staff user 'ops'")
    assert state["stable"] == "lora-v2" and state["lora_version"] == 2 and state["forced"] is True
    assert state["gate"]["passed"] is False and state["gate"]["score"] == 0.0 and state["gate"]["threshold"] == 0.025
    warning = [r for r in caplog.records if r.levelname == "WARNING"]
    assert len(warning) == 1 and "lora-v2" in warning[0].getMessage() and "staff user 'ops'" in warning[0].getMessage()
    assert read_snapshot().stable.version == "lora-v2"
    v2 = AdapterVersion.objects.get(number=2)
    assert v2.status == AdapterVersion.Status.STABLE and "failed its gate" in v2.detail
    assert v2.evaluation["gate"]["passed"] is False and "new" in v2.evaluation  # the record is kept
    # force on an adapter that passed changes nothing about it: not "forced"
    assert rollout.reload_adapter("lora-v1", force=True)["forced"] is False


def test_reload_refuses_unknown_targets():
    with pytest.raises(rollout.UnknownAdapter):
        rollout.reload_adapter("latest")  # nothing trained yet
    adapter(1)
    with pytest.raises(rollout.UnknownAdapter):
        rollout.reload_adapter("lora-v9")
    with pytest.raises(rollout.RolloutError):
        rollout.reload_adapter("newest please")


@pytest.mark.concurrency  # runs again on PostgreSQL (make test): the state row is locked FOR UPDATE there
def test_canary_weight_promote_and_rollback():
    adapter(1)
    rollout.reload_adapter("lora-v1")
    v2 = adapter(2)
    state = rollout.start_canary(v2)
    assert state["canary"] == "lora-v2" and state["canary_weight"] == 5
    assert rollout.set_canary_weight(12)["canary_weight"] == 12
    assert read_snapshot().weight == 12 and read_snapshot().canary.version == "lora-v2"
    with pytest.raises(rollout.RolloutError):
        rollout.set_canary_weight(101)
    promoted = rollout.promote_canary()
    assert promoted == {"lora_version": 2, "stable": "lora-v2", "canary": None, "canary_weight": 0}
    assert AdapterVersion.objects.get(number=1).status == AdapterVersion.Status.RETIRED
    assert AdapterVersion.objects.get(number=2).status == AdapterVersion.Status.STABLE

    v3 = adapter(3)
    rollout.start_canary(v3, weight=5)
    back = rollout.rollback_canary()
    assert back == {"lora_version": 2, "stable": "lora-v2", "canary": None, "canary_weight": 0}
    assert AdapterVersion.objects.get(number=3).status == AdapterVersion.Status.ROLLED_BACK
    with pytest.raises(rollout.RolloutError):
        rollout.promote_canary()


def _requests(version: str, n: int, *, ok: int, latency_ms: float) -> None:
    now = timezone.now()
    for i in range(n):
        Interaction.objects.create(
            request_id=f"r{next(_ids)}", created_at=now + timedelta(milliseconds=i), prompt="q", answer="a",
            route="council" if i < ok else "unsure", status="ok" if i < ok else "unsure", latency_ms=latency_ms,
            adapter_version=version,
        )  # fmt: skip


def _canary_running() -> None:
    adapter(1)
    rollout.reload_adapter("lora-v1")
    rollout.start_canary(adapter(2))
    state = ServingState.objects.get(pk=1)
    state.canary_started_at = timezone.now() - timedelta(seconds=1)
    state.save()


def test_judge_waits_then_promotes_a_canary_as_good_as_stable():
    _canary_running()
    _requests("lora-v1", 200, ok=180, latency_ms=100)
    _requests("lora-v2", 10, ok=10, latency_ms=95)
    assert rollout.judge_canary()["verdict"] == "waiting"
    _requests("lora-v2", 10, ok=8, latency_ms=105)  # 18/20 = 0.9 success, p50 ~100 ms
    verdict = rollout.judge_canary()
    assert verdict["verdict"] == "promoted", verdict
    assert read_snapshot().stable.version == "lora-v2" and read_snapshot().canary is None


def test_judge_rolls_back_a_canary_that_escalates_more():
    _canary_running()
    _requests("lora-v1", 200, ok=190, latency_ms=100)
    _requests("lora-v2", 20, ok=15, latency_ms=90)
    verdict = rollout.judge_canary()
    assert verdict["verdict"] == "rolled_back" and "success 0.750 vs 0.950" in verdict["why"]
    assert read_snapshot().stable.version == "lora-v1" and read_snapshot().canary is None
    assert AdapterVersion.objects.get(number=2).status == AdapterVersion.Status.ROLLED_BACK


def test_judge_rolls_back_a_slower_canary_and_ignores_cache_hits():
    _canary_running()
    _requests("lora-v1", 50, ok=50, latency_ms=100)
    _requests("lora-v2", 20, ok=20, latency_ms=150)
    Interaction.objects.create(request_id="cached", created_at=timezone.now(), prompt="q", answer="a", route="cache",
                               cached=True, latency_ms=1, adapter_version="lora-v2")  # fmt: skip
    verdict = rollout.judge_canary()
    assert verdict["verdict"] == "rolled_back" and verdict["canary_arm"]["requests"] == 20


def test_the_snapshot_lives_in_redis(training_redis):
    adapter(1)
    rollout.reload_adapter("latest")
    assert b'"lora-v1"' in training_redis.get(SERVING_KEY)


def test_a_process_that_reads_a_new_generation_exports_it(training_redis, monkeypatch):
    from observability import metrics
    from training import serving

    training_redis.set(serving.SERVING_KEY, serving.Snapshot(generation=7).as_json())
    monkeypatch.setattr(serving, "_seen_generation", None)  # a fresh process, metrics at zero
    metrics.set_lora_version(0)
    serving.read_snapshot()
    assert metrics.LORA_VERSION._value.get() == 7
