"""Admission by estimated wait: the serving processes say how long their tasks take, and the API
admits as many requests for the model as they answer within SWARM_ADMIT_WAIT_S (real Redis; the
serving side is inference.runtime's own announce, run in this process)."""

from __future__ import annotations

import json
import os
import time

import pytest

from inference import runtime
from routing import admission
from routing.admission import PRIOR_SERVICE_S, Capacity
from swarm_site.errors import ModelSaturated

pytestmark = pytest.mark.django_db


def _place(service_s: float | None, age_s: float = 0.0) -> str:
    return json.dumps({"service_s": service_s, "ts": time.time() - age_s})


def test_capacity_counts_the_live_places_and_their_answers_per_second():
    fields = {"gpu0@a/1": _place(0.5), "gpu0@a/2": _place(2.0), "gpu1@b/7": _place(None),
              "gpu0@a/3": _place(0.5, age_s=60), "junk": "not json"}  # fmt: skip
    found, stale = Capacity.from_places(fields, now=time.time(), stale_after_s=15)
    assert found.places == 3 and found.answers_per_s == pytest.approx(2.0 + 0.5 + 1 / PRIOR_SERVICE_S)
    assert sorted(stale) == ["gpu0@a/3", "junk"]


@pytest.mark.parametrize(
    ("capacity", "wait_s", "depth"),
    [
        (Capacity(places=1, answers_per_s=1.0), 30.0, 30),  # one place, 1 s a task: 30 answered in 30 s
        (Capacity(places=2, answers_per_s=4.0), 2.5, 10),
        (Capacity(places=3, answers_per_s=0.1), 30.0, 3),  # slow: still one request per place
        (Capacity(places=0, answers_per_s=0.0), 30.0, int(30 / PRIOR_SERVICE_S)),  # none announced yet
    ],
)
def test_the_depth_admitted_is_what_the_places_answer_within_the_wait(capacity, wait_s, depth):
    assert capacity.depth_limit(wait_s) == depth


def test_a_serving_process_publishes_its_average_task_time_with_its_heartbeat(api_redis, monkeypatch):
    monkeypatch.setattr(runtime, "_service_s", None)
    monkeypatch.setenv("SWARM_WORKER_NAME", "gpu0@test")
    assert runtime.place_payload()["service_s"] is None  # no task finished yet
    runtime.record_service(1.0)
    runtime.record_service(2.0)  # the newest weighs SERVICE_EWMA_ALPHA
    expected = 1.0 + runtime.SERVICE_EWMA_ALPHA * (2.0 - 1.0)
    runtime.announce()
    place = json.loads(api_redis.hget(runtime.PLACES_KEY, f"gpu0@test/{os.getpid()}"))
    assert place["service_s"] == pytest.approx(expected, abs=1e-4) and time.time() - place["ts"] < 5
    assert admission.capacity() == Capacity(places=1, answers_per_s=pytest.approx(1 / expected, rel=1e-3))


def test_admission_refuses_past_what_the_places_answer_in_time_and_says_when_to_come_back(api_redis, settings):
    settings.SWARM_ADMIT_WAIT_S, settings.SWARM_MODEL_ADMIT, settings.SWARM_WEB_THREADS = 3.0, 0, 64
    api_redis.hset(runtime.PLACES_KEY, "gpu0@test/1", _place(1.0))  # one place, 1 s a task
    api_redis.hset(runtime.PLACES_KEY, "gpu0@gone/2", _place(1.0, age_s=3600))  # a dead process
    held = [admission.admit(60.0) for _ in range(3)]  # answered within 3 s: 1 running, 2 queued
    with pytest.raises(ModelSaturated, match=r"3 requests are already running or queued.*1 serving places") as refused:
        admission.admit(60.0)
    assert refused.value.wait == pytest.approx(1.0, abs=0.05)  # one answer's time
    assert not api_redis.hexists(runtime.PLACES_KEY, "gpu0@gone/2")  # the dead one is cleared away
    admission.release(held.pop())
    held.append(admission.admit(60.0))  # the place freed by an answer goes to the next request
    with pytest.raises(ModelSaturated):
        admission.admit(1.5)  # with 1.5 s left, even an empty queue of 1 s tasks holds only one more...
    for admitted in held:
        admission.release(admitted)
    assert len([admission.admit(1.5)]) == 1  # ... which an idle stack still admits


def test_a_fixed_cap_applies_on_top_of_the_estimate(api_redis, settings):
    settings.SWARM_ADMIT_WAIT_S, settings.SWARM_MODEL_ADMIT, settings.SWARM_WEB_THREADS = 30.0, 2, 64
    api_redis.hset(runtime.PLACES_KEY, "gpu0@test/1", _place(0.1))  # the estimate alone: 300
    held = [admission.admit(60.0) for _ in range(2)]
    fixed = r"^The local model is saturated: 2 requests are already running or queued for it\."
    with pytest.raises(ModelSaturated, match=fixed):
        admission.admit(60.0)
    for admitted in held:
        admission.release(admitted)
