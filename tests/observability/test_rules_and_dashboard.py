"""Alert rules (promtool), Alertmanager config (amtool), and the dashboard against the exported metrics."""

from __future__ import annotations

import copy
import shutil
import subprocess

import pytest
import yaml

from observability import metrics as m
from tests.observability.promql import (
    PROM_DIR,
    ROOT,
    RULES,
    PromQLNameError,
    dashboard_exprs,
    exporter_collector_names,
    known_names,
    load_dashboard,
    load_rules,
    metric_names,
    substitute_grafana_variables,
    swarm_metric_names,
    unknown_names,
)

PROMTOOL = shutil.which("promtool")
AMTOOL = shutil.which("amtool")
INSTALL_HINT = "apt-get install -y --no-install-recommends prometheus (or: make install-prometheus)"
needs_promtool = pytest.mark.skipif(PROMTOOL is None, reason=f"promtool is not installed: {INSTALL_HINT}")
needs_amtool = pytest.mark.skipif(
    AMTOOL is None, reason="amtool is not installed: apt-get install -y prometheus-alertmanager"
)


def run(*argv: str, cwd=ROOT) -> subprocess.CompletedProcess:
    return subprocess.run(list(argv), cwd=cwd, capture_output=True, text=True, timeout=120)


# --- promtool / amtool --------------------------------------------------------------------------
@needs_promtool
def test_promtool_checks_the_rules():
    result = run(PROMTOOL, "check", "rules", str(RULES))
    assert result.returncode == 0, result.stdout + result.stderr


@needs_promtool
def test_promtool_unit_tests_pass():
    result = run(PROMTOOL, "test", "rules", "alerts_test.yml", cwd=PROM_DIR)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout + result.stderr


@needs_promtool
def test_promtool_checks_the_prometheus_config():
    result = run(PROMTOOL, "check", "config", "prometheus.yml", cwd=PROM_DIR)
    assert result.returncode == 0, result.stdout + result.stderr


@needs_promtool
def test_a_broken_rule_fails_the_unit_tests(tmp_path):
    """The unit tests can fail: raise the VRAM warning threshold and they must."""
    (tmp_path / "alerts.yml").write_text(RULES.read_text().replace("< 1610612736", "< 5610612736"))
    shutil.copy(PROM_DIR / "alerts_test.yml", tmp_path / "alerts_test.yml")
    result = run(PROMTOOL, "test", "rules", "alerts_test.yml", cwd=tmp_path)
    assert result.returncode != 0
    assert "SwarmVramLowWhileTraining" in result.stdout + result.stderr


@needs_amtool
def test_amtool_checks_the_alertmanager_config():
    result = run(AMTOOL, "check-config", str(ROOT / "docker" / "alertmanager" / "alertmanager.yml"))
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_has_a_unit_test_that_fires_it_and_one_that_does_not():
    tests = yaml.safe_load((PROM_DIR / "alerts_test.yml").read_text())["tests"]
    fired, silent = set(), set()
    for case in tests:
        for check in case.get("alert_rule_test", []):
            (fired if check.get("exp_alerts") else silent).add(check["alertname"])
    alerts = {rule["alert"] for rule in load_rules() if "alert" in rule}
    assert alerts - fired == set(), "alerts never tested firing"
    assert alerts - silent == set(), "alerts never tested silent"


def test_the_issue_s_alerts_exist_with_their_severity():
    rules = {rule["alert"]: rule for rule in load_rules() if "alert" in rule}
    assert rules["SwarmVramLowWhileTraining"]["labels"]["severity"] == "warning"
    assert rules["SwarmVramLowWhileTraining"]["for"] == "5m"
    assert rules["SwarmLatencyP95High"]["labels"]["severity"] == "warning"
    assert rules["SwarmLatencyP95Critical"]["labels"]["severity"] == "critical"
    for name in (
        "SwarmCloudSpendToday",
        "SwarmCloudRetryRatioHigh",
        "SwarmFragmentationEvents",
        "SwarmNightlyLoraMissed",
        "SwarmWorkerDown",
    ):
        assert name in rules


def test_alertmanager_routes_only_to_loopback_webhooks():
    config = yaml.safe_load((ROOT / "docker" / "alertmanager" / "alertmanager.yml").read_text())
    urls = [hook["url"] for r in config["receivers"] for hook in r.get("webhook_configs", [])]
    assert urls and all(url.startswith("http://127.0.0.1:") for url in urls)
    critical = [r for r in config["route"]["routes"] if 'severity="critical"' in r["matchers"]]
    assert critical and critical[0]["receiver"] != config["route"]["receiver"]


def test_prometheus_scrapes_the_api_and_the_exporter_on_loopback():
    config = yaml.safe_load((PROM_DIR / "prometheus.yml").read_text())
    targets = {job["job_name"]: job["static_configs"][0]["targets"] for job in config["scrape_configs"]}
    assert targets["swarm-api"] == ["127.0.0.1:8000"]
    assert targets["swarm-exporter"] == ["127.0.0.1:9091"]
    assert all(t.startswith("127.0.0.1:") for ts in targets.values() for t in ts)
    assert config["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"][0].startswith("127.0.0.1:")


# --- metric names ------------------------------------------------------------------------------------
def test_name_extraction():
    assert metric_names('sum by (route) (rate(swarm_requests_total{route="a b"}[5m]))') == {"swarm_requests_total"}
    assert metric_names("histogram_quantile(0.95, sum(rate(x_bucket[$__rate_interval])) by (le))") == {"x_bucket"}
    assert metric_names("a / on () group_left (z) b offset 1h > bool 1e9") == {"a", "b"}
    assert metric_names("time() - max(swarm:lora) > 26 * 3600") == {"swarm:lora"}
    assert metric_names('label_replace(q, "dst", "$1", "src", "(.*)")') == {"q"}
    with pytest.raises(PromQLNameError):
        metric_names('{__name__="swarm_requests_total"}')


def test_the_issue_s_metric_names_are_exported():
    names = m.exported_metric_names()
    for name in (
        "swarm_requests_total",
        "swarm_request_latency_seconds_bucket",
        "swarm_cache_hit_ratio",
        "swarm_cloud_spend_usd_total",
        "swarm_cloud_retry_ratio",
        "swarm_lora_version",
        "swarm_pattern_heads",
        "swarm_patterns_version",
        "swarm_gpu_vram_used_bytes",
        "swarm_fragmentation_events_total",
        "swarm_worker_up",
        "swarm_queue_depth",
    ):
        assert name in names


def test_the_catalogue_is_what_the_metrics_and_the_exporter_define():
    assert m.exported_metric_names() == frozenset(swarm_metric_names() | exporter_collector_names())


def test_rules_use_only_exported_metrics():
    exprs = [(rule.get("alert") or rule["record"], rule["expr"]) for rule in load_rules()]
    assert unknown_names(exprs, known_names()) == {}


def test_a_rule_with_an_unknown_metric_is_caught(tmp_path):
    rules = yaml.safe_load(RULES.read_text())
    rules["groups"][1]["rules"].append({"alert": "Fake", "expr": "swarm_made_up_total > 0"})
    path = tmp_path / "alerts.yml"
    path.write_text(yaml.safe_dump(rules))
    exprs = [(rule.get("alert") or rule["record"], rule["expr"]) for rule in load_rules(path)]
    assert unknown_names(exprs, known_names(path)) == {"Fake": {"swarm_made_up_total"}}


def test_dashboard_uses_only_exported_metrics():
    exprs = dashboard_exprs(load_dashboard())
    assert len(exprs) >= 7
    assert unknown_names(exprs, known_names()) == {}


def test_a_dashboard_panel_with_an_unknown_metric_is_caught():
    dashboard = copy.deepcopy(load_dashboard())
    dashboard["panels"].append(
        {
            "type": "timeseries",
            "title": "Fake panel",
            "targets": [{"refId": "A", "expr": "sum(rate(swarm_requests_totl[5m])) / max(swarm_lora_version)"}],
        }
    )
    assert unknown_names(dashboard_exprs(dashboard), known_names()) == {"Fake panel": {"swarm_requests_totl"}}


def test_dashboard_has_the_issue_s_panels():
    dashboard = load_dashboard()
    titles = " | ".join(p["title"].lower() for p in dashboard["panels"])
    for want in (
        "requests by route",
        "p95 latency",
        "cache hit ratio",
        "cloud spend",
        "vram",
        "lora version",
        "queue depth",
    ):
        assert want in titles
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    assert all({"x", "y", "w", "h"} <= set(p["gridPos"]) for p in dashboard["panels"])


@needs_promtool
def test_dashboard_expressions_parse_with_prometheus(tmp_path):
    """promtool checks every dashboard query as a recording rule: the real PromQL parser."""
    rules = {
        "groups": [
            {
                "name": "dashboard",
                "rules": [
                    {"record": f"dashboard:expr_{i}", "expr": substitute_grafana_variables(expr)}
                    for i, (_, expr) in enumerate(dashboard_exprs(load_dashboard()))
                ],
            }
        ]
    }
    path = tmp_path / "dashboard_rules.yml"
    path.write_text(yaml.safe_dump(rules))
    result = run(PROMTOOL, "check", "rules", str(path))
    assert result.returncode == 0, result.stdout + result.stderr
    path.write_text(yaml.safe_dump({"groups": [{"name": "x", "rules": [{"record": "x:y", "expr": "sum(("}]}]}))
    assert run(PROMTOOL, "check", "rules", str(path)).returncode != 0
