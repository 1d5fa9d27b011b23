"""/metrics through Django as the project's settings wire it (django-prometheus middleware + swarm metrics)."""

from __future__ import annotations

import pytest
from django.core.management import get_commands

from observability import metrics as m

BEFORE = "observability.middleware.PrometheusBeforeMiddleware"
AFTER = "observability.middleware.PrometheusAfterMiddleware"


@pytest.fixture
def wired(settings, monkeypatch):
    monkeypatch.delenv(m.MULTIPROC_ENV, raising=False)
    assert settings.MIDDLEWARE[0] == BEFORE and settings.MIDDLEWARE[-1] == AFTER
    assert {"django_prometheus", "observability"} <= set(settings.INSTALLED_APPS)
    return settings


def test_metrics_url_serves_swarm_and_django_prometheus_metrics(wired, client):
    m.record_request("cache", "micro", 0.003, cached=True)
    assert client.get("/metrics").status_code == 200  # counted by django-prometheus
    response = client.get("/metrics")
    assert response.status_code == 200
    text = response.content.decode()
    assert 'swarm_requests_total{route="cache",skill="micro"}' in text
    assert "swarm_cache_hit_ratio " in text
    assert 'django_http_responses_total_by_status_total{status="200"}' in text
    assert 'django_http_requests_latency_seconds_by_view_method_count{method="GET",view="metrics"}' in text


def test_the_app_provides_the_exporter_command(wired):
    get_commands.cache_clear()
    try:
        assert get_commands()["run_exporter"] == "observability"
    finally:
        get_commands.cache_clear()
