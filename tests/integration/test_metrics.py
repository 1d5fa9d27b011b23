"""Metrics that add up across processes: two API processes, one worker, and an exporter that
outlives the API."""

from __future__ import annotations

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from tests.stack import Stack, children, wait_for

pytestmark = pytest.mark.integration


def scrape(url: str) -> dict[tuple[str, tuple], float]:
    samples = {}
    for family in text_string_to_metric_families(requests.get(url, timeout=5).text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def total(samples, name: str, **labels) -> float:
    return sum(v for (n, ls), v in samples.items() if n == name and all((k, v2) in ls for k, v2 in labels.items()))


def startups(url: str) -> dict[str, float]:
    """service_startups_total by service, as a page serves it."""
    return {dict(ls)["service"]: v for (n, ls), v in scrape(url).items() if n == "service_startups_total"}


def wait_startups(url: str, *services: str) -> dict[str, float]:
    """The page's start counts once every one of `services` has counted its start."""

    def counted() -> dict[str, float] | None:
        counts = startups(url)
        return counts if set(services) <= set(counts) else None

    return wait_for(counted, timeout=60, interval=0.3, what=f"starts of {services} on {url}")


@pytest.fixture
def metrics_stack(private_redis):
    stack = Stack.build(redis_url=private_redis.url, WEB_CONCURRENCY="2")
    try:
        stack.start()
        yield stack
    finally:
        stack.stop()


def test_counts_per_route_and_cache_hit_ratio_add_up_across_two_api_processes(metrics_stack):
    prompts = [f"What is {n}*7?" for n in range(2, 9)] + ["hi", "convert 3 km to miles", "What is 2*7?"]
    assert len(children(metrics_stack.procs["web"].pid)) == 2  # two API processes
    for prompt in prompts:  # 10 calls, the last one a repeat
        response = metrics_stack.post("/orchestrate", {"prompt": prompt})
        assert response.status_code == 200
    samples = scrape(f"{metrics_stack.url}/metrics")
    assert total(samples, "swarm_requests_total") == 10
    assert total(samples, "swarm_requests_total", route="council", skill="math") == 7
    assert total(samples, "swarm_requests_total", route="council", skill="agent0") == 1
    assert total(samples, "swarm_requests_total", route="council", skill="micro") == 1
    assert total(samples, "swarm_requests_total", route="cache") == 1
    assert total(samples, "swarm_cache_lookups_total") == 10 and total(samples, "swarm_cache_hits_total") == 1
    assert total(samples, "swarm_cache_hit_ratio") == pytest.approx(0.1)
    assert total(samples, "swarm_request_latency_seconds_count") == 10
    assert total(samples, "swarm_cloud_hit_ratio") == 0  # no cloud provider answered

    counts = wait_startups(f"{metrics_stack.url}/metrics", "web", "worker-gpu", "worker-cpu")
    assert counts["web"] == 1  # one gunicorn master start, not one per API process
    assert counts["worker-gpu"] == 1 and counts["worker-cpu"] == 1


def test_the_exporter_keeps_serving_when_the_api_is_dead(metrics_stack):
    port = metrics_stack.start_exporter()
    url = f"http://127.0.0.1:{port}/metrics"
    wait_for(lambda: requests.get(url, timeout=2).ok, timeout=30, what="the exporter")
    metrics_stack.post("/orchestrate", {"prompt": "What is 3*3?"})
    metrics_stack.kill("web")
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{metrics_stack.url}/health", timeout=2)
    samples = scrape(url)
    up = {dict(labels)["worker"]: value for (name, labels), value in samples.items() if name == "swarm_worker_up"}
    assert up and set(up.values()) == {1.0}
    assert total(samples, "swarm_requests_total") >= 1  # the API's counts survive it, from the shared directory
    assert "swarm_cloud_hit_ratio" in {name for name, _ in samples}

    # The run-book: starts counted per service, kept across an API restart.
    counts = wait_startups(url, "web", "worker-gpu", "worker-cpu", "exporter")
    assert counts["web"] >= 1 and counts["exporter"] == 1
    assert counts["worker-gpu"] >= 1 and counts["worker-cpu"] >= 1
    metrics_stack.start_web()
    metrics_stack.wait_healthy()
    assert startups(url)["web"] == counts["web"] + 1
    assert startups(f"{metrics_stack.url}/metrics")["web"] == counts["web"] + 1
