"""observability.metrics in one process: the helpers, the ratios, the /metrics view."""

from __future__ import annotations

import math
from decimal import Decimal

import pytest
from django.test import RequestFactory
from prometheus_client import REGISTRY, CollectorRegistry, Counter
from prometheus_client.parser import text_string_to_metric_families

from observability import metrics as m


def value(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def scrape(text: str) -> dict[tuple[str, frozenset], float]:
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_record_request_counts_route_skill_latency_and_cache():
    before = (
        value("swarm_requests_total", route="cache", skill="math"),
        value("swarm_cache_hits_total"),
        value("swarm_cache_lookups_total"),
        value("swarm_request_latency_seconds_count", route="cache"),
    )
    m.record_request("cache", "math", 0.004, cached=True)
    m.record_request("cache", "math", 0.004, cached=False)
    m.record_request("cache", "math", 0.004, cached=True, cache_lookup=False)
    assert value("swarm_requests_total", route="cache", skill="math") - before[0] == 3
    assert value("swarm_cache_hits_total") - before[1] == 1
    assert value("swarm_cache_lookups_total") - before[2] == 2
    assert value("swarm_request_latency_seconds_count", route="cache") - before[3] == 3


def test_latency_buckets_cover_5ms_to_30s_and_hold_the_alert_thresholds():
    assert m.LATENCY_BUCKETS[0] == 0.005 and m.LATENCY_BUCKETS[-1] == 30.0
    assert 0.2 in m.LATENCY_BUCKETS and 0.5 in m.LATENCY_BUCKETS
    assert list(m.LATENCY_BUCKETS) == sorted(m.LATENCY_BUCKETS)


def test_record_cloud_call_spend_calls_and_retries():
    spend = value("swarm_cloud_spend_usd_total", provider="p1")
    calls = value("swarm_cloud_calls_total", provider="p1", outcome="ok")
    retries = value("swarm_cloud_retries_total")
    m.record_cloud_call("p1", "ok", Decimal("0.0125"), retried=True)
    m.record_cloud_call("p1", "ok", 0.0, retried=False)
    assert value("swarm_cloud_spend_usd_total", provider="p1") - spend == pytest.approx(0.0125)
    assert value("swarm_cloud_calls_total", provider="p1", outcome="ok") - calls == 2
    assert value("swarm_cloud_retries_total") - retries == 1
    with pytest.raises(ValueError):
        m.record_cloud_call("p1", "ok", -1, retried=False)


def test_gauges_and_fragmentation():
    m.set_lora_version(7)
    m.set_patterns(12, "3")
    m.set_gpu_vram(0, 5 * 1024**3, 24 * 1024**3)
    frag = value("swarm_fragmentation_events_total")
    m.record_fragmentation_event()
    assert value("swarm_lora_version") == 7
    assert value("swarm_pattern_heads") == 12 and value("swarm_patterns_version") == 3
    assert value("swarm_gpu_vram_used_bytes", gpu="0") == 5 * 1024**3
    assert value("swarm_fragmentation_events_total") - frag == 1
    with m.trainer_running():
        assert value("swarm_trainer_running") == 1
    assert value("swarm_trainer_running") == 0


def test_trainer_gauge_drops_back_when_training_fails():
    with pytest.raises(RuntimeError), m.trainer_running():
        raise RuntimeError("boom")
    assert value("swarm_trainer_running") == 0


def test_ratios_are_computed_from_the_counters_of_the_same_scrape():
    registry = CollectorRegistry()
    hits = Counter("swarm_cache_hits_total", "h", registry=registry)
    lookups = Counter("swarm_cache_lookups_total", "l", registry=registry)
    calls = Counter("swarm_cloud_calls_total", "c", ["provider", "outcome"], registry=registry)
    retries = Counter("swarm_cloud_retries_total", "r", registry=registry)
    requests = Counter("swarm_requests_total", "q", ["route", "skill"], registry=registry)
    collector = m.AggregateCollector(registry.collect)
    empty = {f.name: f.samples[0].value for f in collector.collect() if f.name.endswith("_ratio")}
    assert math.isnan(empty["swarm_cache_hit_ratio"]) and math.isnan(empty["swarm_cloud_retry_ratio"])
    assert empty["swarm_cloud_hit_ratio"] == 0  # no request yet: none answered by the cloud
    hits.inc(3)
    lookups.inc(12)
    calls.labels("a", "ok").inc(3)
    calls.labels("b", "error").inc(1)
    retries.inc(1)
    requests.labels("cloud", "cloud").inc(3)
    requests.labels("council", "math").inc(4)
    requests.labels("council", "code").inc(2)
    requests.labels("cache", "math").inc(3)
    got = {f.name: f.samples[0].value for f in collector.collect() if f.name.endswith("_ratio")}
    assert got == {"swarm_cache_hit_ratio": 0.25, "swarm_cloud_retry_ratio": 0.25, "swarm_cloud_hit_ratio": 0.25}


def test_the_cloud_hit_ratio_counts_only_requests_the_cloud_answered():
    registry = CollectorRegistry()
    requests = Counter("swarm_requests_total", "q", ["route", "skill"], registry=registry)
    collector = m.AggregateCollector(registry.collect)

    def ratio() -> float:
        return next(f for f in collector.collect() if f.name == "swarm_cloud_hit_ratio").samples[0].value

    requests.labels("council", "math").inc(5)
    assert ratio() == 0  # all local
    requests.labels("cache", "cloud").inc(5)  # a cached cloud answer is answered by the cache
    assert ratio() == 0
    requests.labels("cloud", "cloud").inc(10)
    assert ratio() == 0.5
    requests.labels("unsure", "unsure").inc(5)
    requests.labels("pattern", "pattern").inc(5)
    assert ratio() == pytest.approx(10 / 30)


def test_metrics_view_single_process(monkeypatch):
    monkeypatch.delenv(m.MULTIPROC_ENV, raising=False)
    m.record_request("council", "code", 0.2, cached=False)
    response = m.metrics_view(RequestFactory().get("/metrics"))
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain; version=0.0.4")
    samples = scrape(response.content.decode())
    assert samples[("swarm_requests_total", frozenset({("route", "council"), ("skill", "code")}))] >= 1
    ratio = samples[("swarm_cache_hit_ratio", frozenset())]
    assert ratio == pytest.approx(value("swarm_cache_hits_total") / value("swarm_cache_lookups_total"))
    assert m.metrics_view(RequestFactory().post("/metrics")).status_code == 405


def test_known_names_include_the_exporter_and_derived_gauges():
    names = m.exported_metric_names()
    assert {
        "swarm_cache_hit_ratio",
        "swarm_cloud_retry_ratio",
        "swarm_cloud_hit_ratio",
        "service_startups_total",
        "swarm_worker_up",
        "swarm_queue_depth",
        "swarm_budget_spent_usd",
        "swarm_lora_last_success_timestamp_seconds",
    } <= names
    assert "swarm_requests" not in names  # counters are exposed with _total only


def test_lora_success_is_written_to_redis():
    class FakeRedis:
        def __init__(self):
            self.data = {}

        def set(self, key, value):
            self.data[key] = value

    client = FakeRedis()
    assert m.record_lora_success(4, ts=1234.5, client=client)
    assert client.data[m.LORA_SUCCESS_KEY] == '{"version": 4, "ts": 1234.5}'


def test_lora_success_survives_redis_being_down():
    import redis

    client = redis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.2)
    assert m.record_lora_success(4, client=client) is False
