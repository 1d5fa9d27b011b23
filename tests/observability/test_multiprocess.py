"""Metrics written by separate processes into one PROMETHEUS_MULTIPROC_DIR add up."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

import pytest
from django.test import RequestFactory
from prometheus_client.parser import text_string_to_metric_families

from observability import metrics as m
from tests.observability.promql import ROOT

pytestmark = pytest.mark.integration

WRITER = textwrap.dedent(
    """
    import os, sys
    from observability import metrics as m
    from django_prometheus.middleware import Metrics

    hits, misses, lora, retried = (int(a) for a in sys.argv[1:5])
    for _ in range(hits):
        m.record_request("cache", "math", 0.004, cached=True)
    for _ in range(misses):
        m.record_request("council", "math", 0.3, cached=False)
    m.record_cloud_call("openai", "ok", 0.01, retried=bool(retried))
    m.set_lora_version(lora)
    Metrics.get_instance().requests_by_method.labels("GET").inc(hits + misses)
    print(os.getpid(), m.multiprocess_enabled())
    """
)
TRAINER = textwrap.dedent(
    """
    import os, sys
    from observability import metrics as m

    with m.trainer_running():
        print(os.getpid(), flush=True)
        sys.stdin.read()
    """
)


def child_env(path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != m.MULTIPROC_ENV}
    env.update({m.MULTIPROC_ENV: str(path), "PYTHONPATH": str(ROOT)})
    return env


def write(path, *args: int) -> str:
    result = subprocess.run(
        [sys.executable, "-c", WRITER, *map(str, args)],
        cwd=ROOT,
        env=child_env(path),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return result.stdout


def samples(text: str) -> dict[tuple[str, frozenset], float]:
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def scrape_dir(path) -> dict[tuple[str, frozenset], float]:
    return samples(m.render(m.aggregated_registry(str(path))).decode())


def L(**labels: str) -> frozenset:
    return frozenset(labels.items())


def test_two_processes_sum_and_the_ratio_is_over_both(tmp_path):
    metrics_dir = tmp_path / "multiproc"  # created by the first process that imports metrics
    out_a = write(metrics_dir, 3, 1, 3, 0)  # 3 hits, 1 miss, LoRA v3
    out_b = write(metrics_dir, 1, 5, 5, 1)  # 1 hit, 5 misses, LoRA v5 (written later), 1 retry
    pid_a, pid_b = out_a.split()[0], out_b.split()[0]
    assert pid_a != pid_b and out_a.split()[1] == out_b.split()[1] == "True"
    assert {p.name for p in metrics_dir.iterdir()} >= {f"counter_{pid_a}.db", f"counter_{pid_b}.db"}

    got = scrape_dir(metrics_dir)
    assert got[("swarm_requests_total", L(route="cache", skill="math"))] == 4
    assert got[("swarm_requests_total", L(route="council", skill="math"))] == 6
    assert got[("swarm_cache_hits_total", L())] == 4
    assert got[("swarm_cache_lookups_total", L())] == 10
    assert got[("swarm_cache_hit_ratio", L())] == pytest.approx(0.4)  # not the mean of 0.75 and 1/6
    assert got[("swarm_cloud_calls_total", L(provider="openai", outcome="ok"))] == 2
    assert got[("swarm_cloud_retry_ratio", L())] == pytest.approx(0.5)
    assert got[("swarm_cloud_spend_usd_total", L(provider="openai"))] == pytest.approx(0.02)
    assert got[("swarm_request_latency_seconds_count", L(route="council"))] == 6
    assert got[("swarm_request_latency_seconds_bucket", L(route="cache", le="0.005"))] == 4
    assert got[("swarm_request_latency_seconds_bucket", L(route="council", le="0.2"))] == 0
    assert got[("swarm_request_latency_seconds_bucket", L(route="council", le="0.3"))] == 6
    assert got[("swarm_lora_version", L())] == 5  # the most recent writer, not a per-process series
    assert got[("django_http_requests_total_by_method_total", L(method="GET"))] == 10

    write(metrics_dir, 0, 0, 2, 0)  # a later process serves an older adapter: mostrecent, not max
    assert scrape_dir(metrics_dir)[("swarm_lora_version", L())] == 2


def test_the_django_view_serves_the_aggregate(tmp_path, monkeypatch):
    write(tmp_path, 2, 2, 1, 0)
    write(tmp_path, 2, 0, 1, 0)
    monkeypatch.setenv(m.MULTIPROC_ENV, str(tmp_path))
    response = m.metrics_view(RequestFactory().get("/metrics"))
    got = samples(response.content.decode())
    assert got[("swarm_cache_lookups_total", L())] == 6
    assert got[("swarm_cache_hit_ratio", L())] == pytest.approx(4 / 6)
    assert got[("django_http_requests_total_by_method_total", L(method="GET"))] == 6


def test_trainer_running_follows_live_processes(tmp_path):
    proc = subprocess.Popen(
        [sys.executable, "-c", TRAINER],
        cwd=ROOT,
        env=child_env(tmp_path),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        pid = int(proc.stdout.readline())
        assert scrape_dir(tmp_path)[("swarm_trainer_running", L())] == 1
    finally:
        os.kill(proc.pid, signal.SIGKILL)  # no clean exit: its live gauge file stays behind
        proc.wait(timeout=10)
    assert (tmp_path / f"gauge_livemax_{pid}.db").exists()
    assert m.prune_dead_processes(str(tmp_path)) == [pid]
    assert scrape_dir(tmp_path).get(("swarm_trainer_running", L()), 0.0) == 0


def test_pruning_can_be_switched_off(tmp_path, monkeypatch):
    proc = subprocess.Popen(
        [sys.executable, "-c", TRAINER],
        cwd=ROOT,
        env=child_env(tmp_path),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    pid = int(proc.stdout.readline())
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)
    monkeypatch.setenv(m.PRUNE_ENV, "0")
    assert m.prune_dead_processes(str(tmp_path)) == []
    assert (tmp_path / f"gauge_livemax_{pid}.db").exists()
