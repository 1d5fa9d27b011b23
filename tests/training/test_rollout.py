"""Reload, canary, promotion and rollback on the real database and the real Redis (DB 8)."""

from __future__ import annotations

import itertools
from datetime import timedelta

import pytest
from django.utils import timezone

from routing.models import Interaction
from training import rollout
from training.models import AdapterVersion, ServingState
from training.serving import SERVING_KEY, read_snapshot

pytestmark = pytest.mark.django_db(transaction=True)
_ids = itertools.count()


@pytest.fixture(autouse=True)
def _env(training_redis, settings):
    settings.SWARM_CANARY_MIN_REQUESTS = 20


def adapter(number: int, status: str = AdapterVersion.Status.CANDIDATE) -> AdapterVersion:
    return AdapterVersion.objects.create(number=number, base_model="smollm2-135m", base_sha256="0" * 64,
                                         path=f"lora-v{number}/adapter.gguf", sha256=f"{number:064x}", rank=8,
                                         alpha=16, status=status)  # fmt: skip


def test_reload_latest_serves_the_newest_adapter_and_bumps_the_version():
    adapter(1)
    adapter(2, AdapterVersion.Status.REJECTED)  # an operator's reload overrides the gate
    state = rollout.reload_adapter("latest")
    assert state == {"lora_version": 1, "stable": "lora-v2", "canary": None, "canary_weight": 0}
    snap = read_snapshot()
    assert snap.generation == 1 and snap.stable.version == "lora-v2" and snap.stable.sha256 == f"{2:064x}"
    assert rollout.reload_adapter("latest")["lora_version"] == 1  # already served: nothing changes
    assert rollout.reload_adapter("base") == {"lora_version": 2, "stable": "base", "canary": None,
                                              "canary_weight": 0}  # fmt: skip
    assert AdapterVersion.objects.get(number=2).status == AdapterVersion.Status.RETIRED
    assert rollout.reload_adapter("lora-v1")["stable"] == "lora-v1"
    assert rollout.reload_adapter(None)["lora_version"] == 3  # republish only


def test_reload_refuses_unknown_targets():
    with pytest.raises(rollout.UnknownAdapter):
        rollout.reload_adapter("latest")  # nothing trained yet
    adapter(1)
    with pytest.raises(rollout.UnknownAdapter):
        rollout.reload_adapter("lora-v9")
    with pytest.raises(rollout.RolloutError):
        rollout.reload_adapter("newest please")


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
