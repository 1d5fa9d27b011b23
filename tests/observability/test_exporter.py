"""The independent exporter: a real process on a free loopback port, real Redis (DB 12)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import redis
import requests
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from observability import exporter as ex
from observability import metrics as m
from tests.observability.promql import ROOT, django_prometheus_names
from tests.observability.test_multiprocess import write
from tests.stack import free_port, run_redis_url, wait_for

pytestmark = pytest.mark.integration

REDIS_URL = os.environ.get("SWARM_OBSERVABILITY_REDIS_URL") or run_redis_url(12)


@pytest.fixture
def db12() -> redis.Redis:
    client = redis.Redis.from_url(REDIS_URL, decode_responses=True)
    client.ping()
    client.flushdb()
    yield client
    client.flushdb()


def samples(text: str) -> dict[tuple[str, frozenset], float]:
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def heartbeat(client: redis.Redis, name: str, queues: str, ttl: int = 60, ts: float | None = None) -> None:
    payload = {
        "worker": name,
        "pid": 1,
        "queues": queues,
        "model": "m",
        "device": "cpu",
        "loaded": True,
        "ts": time.time() if ts is None else ts,
    }
    client.set(ex.HEARTBEAT_PREFIX + name, json.dumps(payload), ex=ttl)


class Exporter:
    def __init__(self, tmp_path, redis_url: str, multiproc_dir=None) -> None:
        self.port = free_port()
        env = {k: v for k, v in os.environ.items() if k not in {m.MULTIPROC_ENV, "SWARM_EXPORTER_MULTIPROC_DIR"}}
        env.update(
            {
                "PYTHONPATH": str(ROOT),
                "REDIS_URL": redis_url,
                "CELERY_BROKER_URL": redis_url,
                "CELERY_RESULT_BACKEND": redis_url,
                "SWARM_VAR_DIR": str(tmp_path / "var"),
                "DATABASE_URL": f"sqlite:///{tmp_path / 'var' / 'empty.sqlite3'}",
                "SWARM_ENV": "test",
                "SWARM_EXPORTER_PORT": str(self.port),
            }
        )
        if multiproc_dir is not None:
            env["SWARM_EXPORTER_MULTIPROC_DIR"] = str(multiproc_dir)
        self.log = (tmp_path / "exporter.log").open("w+")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "observability.exporter"],
            cwd=ROOT,
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        self.url = f"http://127.0.0.1:{self.port}/metrics"
        wait_for(
            lambda: self.proc.poll() is None and requests.get(self.url, timeout=5).ok,
            timeout=60,
            what=f"the exporter on {self.url}",
        )

    def scrape(self) -> tuple[str, dict]:
        response = requests.get(self.url, timeout=10)
        assert response.status_code == 200
        return response.text, samples(response.text)

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=15)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
            self.log.close()


def L(**labels: str) -> frozenset:
    return frozenset(labels.items())


def test_exporter_process_reports_workers_queues_and_worker_metrics(tmp_path, db12):
    heartbeat(db12, "gpu3@test", "gpu.3,gpu")
    db12.hset(ex.SEEN_WORKERS_KEY, "gone@test", json.dumps({"ts": time.time() - 30, "queues": "gpu.7,gpu"}))
    db12.lpush("gpu.3", "a", "b")
    db12.lpush("default", "c")
    db12.lpush("gpu\x06\x163", "d")  # priority 3 of queue gpu, as kombu stores it
    db12.set(m.LORA_SUCCESS_KEY, json.dumps({"version": 4, "ts": 1700000000.0}))
    multiproc = tmp_path / "multiproc"
    write(multiproc, 2, 3, 4, 1)  # a "worker" process recorded requests; no API runs at all

    exporter = Exporter(tmp_path, REDIS_URL, multiproc)
    try:
        text, got = exporter.scrape()
        assert 'swarm_worker_up{worker="gpu3@test"} 1.0' in text
        assert 'swarm_worker_up{worker="gone@test"} 0.0' in text
        assert got[("swarm_queue_depth", L(queue="gpu.3"))] == 2
        assert got[("swarm_queue_depth", L(queue="gpu.7"))] == 0  # the gone worker's queue is still watched
        assert got[("swarm_queue_depth", L(queue="default"))] == 1
        assert got[("swarm_queue_depth", L(queue="gpu"))] == 1
        assert got[("swarm_queue_depth", L(queue="train"))] == 0
        assert got[("swarm_lora_last_success_timestamp_seconds", L())] == 1700000000.0
        assert got[("swarm_requests_total", L(route="council", skill="math"))] == 3
        assert got[("swarm_cache_hit_ratio", L())] == pytest.approx(0.4)
        for source in ("redis", "broker", "multiproc"):
            assert got[("swarm_exporter_source_up", L(source=source))] == 1
        assert got[("swarm_worker_heartbeat_age_seconds", L(worker="gpu3@test"))] < 60

        families = {s[0] for s in got}
        known = m.exported_metric_names() | django_prometheus_names()
        assert families - known == set()

        db12.delete(ex.HEARTBEAT_PREFIX + "gpu3@test")  # the worker dies: its heartbeat expires
        text, got = exporter.scrape()
        assert 'swarm_worker_up{worker="gpu3@test"} 0.0' in text
        assert got[("swarm_queue_depth", L(queue="gpu.3"))] == 2
    finally:
        assert exporter.stop() == 0


def test_exporter_keeps_serving_when_redis_is_down(tmp_path):
    exporter = Exporter(tmp_path, f"redis://127.0.0.1:{free_port()}/0")
    try:
        text, got = exporter.scrape()
        assert got[("swarm_exporter_source_up", L(source="redis"))] == 0
        assert got[("swarm_exporter_source_up", L(source="broker"))] == 0
        assert "swarm_worker_up{" not in text
    finally:
        assert exporter.stop() == 0


# --- the collector in this process -----------------------------------------------------------------
def collect(collector: ex.SwarmExporterCollector) -> dict[tuple[str, frozenset], float]:
    registry = CollectorRegistry()
    registry.register(collector)
    return samples(generate_latest(registry).decode())


def make(db: redis.Redis, **kwargs) -> ex.SwarmExporterCollector:
    defaults = {
        "redis_client": db,
        "queue_names": ["gpu", "default"],
        "gpu_reader": list,
        "budget_reader": lambda: ex._BUDGET_UNAVAILABLE,
    }
    return ex.SwarmExporterCollector(**{**defaults, **kwargs})


def test_gone_workers_are_forgotten_after_the_window(db12):
    now = [1000.0]
    collector = make(db12, forget_after_s=100, clock=lambda: now[0])
    heartbeat(db12, "w1", "gpu.0,gpu", ts=990.0)
    got = collect(collector)
    assert got[("swarm_worker_up", L(worker="w1"))] == 1
    assert got[("swarm_worker_heartbeat_age_seconds", L(worker="w1"))] == 10
    db12.delete(ex.HEARTBEAT_PREFIX + "w1")
    now[0] += 50
    got = collect(collector)
    assert got[("swarm_worker_up", L(worker="w1"))] == 0
    assert got[("swarm_worker_heartbeat_age_seconds", L(worker="w1"))] == 60
    now[0] += 100
    got = collect(collector)
    assert ("swarm_worker_up", L(worker="w1")) not in got
    assert ("swarm_queue_depth", L(queue="gpu.0")) not in got
    assert db12.hgetall(ex.SEEN_WORKERS_KEY) == {}


def test_budget_is_exported_when_the_budget_app_answers(db12):
    from decimal import Decimal

    status = {"spent_usd": Decimal("0.0312"), "pool_usd": Decimal("0.10"), "remaining_usd": 0.0688, "day": "x"}
    got = collect(make(db12, budget_reader=lambda: status))
    assert got[("swarm_budget_spent_usd", L())] == pytest.approx(0.0312)
    assert got[("swarm_budget_pool_usd", L())] == pytest.approx(0.10)
    assert got[("swarm_budget_remaining_usd", L())] == pytest.approx(0.0688)
    assert got[("swarm_exporter_source_up", L(source="budget"))] == 1


def test_no_budget_module_exports_nothing_for_budget(db12):
    got = collect(make(db12))
    assert not [k for k in got if "budget" in k[0] or k[1] == L(source="budget")]


def test_budget_failure_is_a_source_down(db12):
    got = collect(make(db12, budget_reader=lambda: None))
    assert got[("swarm_exporter_source_up", L(source="budget"))] == 0
    assert not [k for k in got if k[0].startswith("swarm_budget")]


def test_live_gpu_reading_replaces_what_a_worker_stored(db12, tmp_path):
    script = "from observability import metrics as m; m.set_gpu_vram(0, 1, 2); m.set_lora_version(9)"
    env = {**os.environ, m.MULTIPROC_ENV: str(tmp_path), "PYTHONPATH": str(ROOT)}
    subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, check=True, timeout=60)
    collector = make(db12, multiproc_dir=str(tmp_path), gpu_reader=lambda: [("0", 5 * 1024**3, 24 * 1024**3)])
    registry = CollectorRegistry()
    registry.register(collector)
    text = generate_latest(registry).decode()
    assert text.count("# TYPE swarm_gpu_vram_used_bytes gauge") == 1
    got = samples(text)
    assert got[("swarm_gpu_vram_used_bytes", L(gpu="0"))] == 5 * 1024**3
    assert got[("swarm_gpu_vram_total_bytes", L(gpu="0"))] == 24 * 1024**3
    assert got[("swarm_lora_version", L())] == 9
    # without a GPU reading the worker's stored value shows
    got = collect(make(db12, multiproc_dir=str(tmp_path)))
    assert got[("swarm_gpu_vram_used_bytes", L(gpu="0"))] == 1


def test_the_interaction_log_backlog_is_exported(db12):
    def backlog() -> tuple[float, float]:
        got = collect(make(db12))
        return got[("swarm_interaction_log_lag", L())], got[("swarm_interaction_log_pending", L())]

    assert backlog() == (0, 0)  # nothing was ever appended
    for n in range(5):
        db12.xadd(ex.INTERACTION_STREAM, {"data": json.dumps({"request_id": str(n)})})
    assert backlog() == (5, 0)  # no writer has made the group yet: the whole stream waits
    db12.xgroup_create(ex.INTERACTION_STREAM, ex.INTERACTION_GROUP, id="0")
    read = db12.xreadgroup(ex.INTERACTION_GROUP, "w1", {ex.INTERACTION_STREAM: ">"}, count=3)[0][1]
    assert backlog() == (2, 3)  # three read, not acknowledged; two not read
    ids = [entry_id for entry_id, _ in read]
    db12.xack(ex.INTERACTION_STREAM, ex.INTERACTION_GROUP, *ids[1:])
    db12.xdel(ex.INTERACTION_STREAM, *ids[1:])  # as the writers do
    assert backlog() == (2, 1)


def test_the_interaction_log_names_match_the_writers():
    from routing import interaction_log

    assert (ex.INTERACTION_STREAM, ex.INTERACTION_GROUP) == (interaction_log.STREAM_KEY, interaction_log.GROUP)


def test_collected_names_are_declared(db12):
    heartbeat(db12, "w1", "gpu.0")
    db12.set(m.LORA_SUCCESS_KEY, json.dumps({"version": 1, "ts": 5.0}))
    collector = make(db12, gpu_reader=lambda: [("0", 1, 2)], budget_reader=lambda: {"spent_usd": 1})
    declared = {f.name for f in collector.describe()}
    collected = {f.name for f in collector.collect()}
    assert collected <= declared
    assert {
        "swarm_worker_up",
        "swarm_queue_depth",
        "swarm_gpu_vram_used_bytes",
        "swarm_budget_spent_usd",
        "swarm_lora_last_success_timestamp_seconds",
    } <= collected


def test_heartbeat_prefix_matches_the_runtime():
    from inference.runtime import HEARTBEAT_PREFIX

    assert ex.HEARTBEAT_PREFIX == HEARTBEAT_PREFIX
