"""The alert drill's configuration and receiver (the drill itself: make test-alerts-e2e)."""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import sys
import urllib.request

import pytest
import yaml

from observability.alert_receiver import AlertReceiver
from tests.observability.promql import ROOT, load_rules


def load_drill():
    spec = importlib.util.spec_from_file_location("alert_drill", ROOT / "scripts" / "alert_drill.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


drill = load_drill()


def test_drill_rules_are_the_real_rules_with_short_for():
    real = {r.get("alert") or r["record"]: r for r in load_rules()}
    short = drill.drill_rules()
    assert all(group["interval"] == "1s" for group in short["groups"])
    rules = {r.get("alert") or r["record"]: r for g in short["groups"] for r in g["rules"]}
    assert rules.keys() == real.keys()
    for name, rule in rules.items():
        assert rule["expr"] == real[name]["expr"]
        assert rule.get("labels") == real[name].get("labels")
        if "for" in real[name]:
            assert rule["for"] == drill.DRILL_FOR


def test_drill_alertmanager_keeps_routes_and_paths_but_targets_the_receiver():
    real = yaml.safe_load((ROOT / "docker" / "alertmanager" / "alertmanager.yml").read_text())
    config = drill.drill_alertmanager_config("http://127.0.0.1:4321")
    urls = {r["name"]: [h["url"] for h in r["webhook_configs"]] for r in config["receivers"]}
    assert urls == {
        "swarm-warning": ["http://127.0.0.1:4321/alerts/warning"],
        "swarm-page": ["http://127.0.0.1:4321/alerts/critical"],
    }
    assert config["route"]["routes"][0]["matchers"] == real["route"]["routes"][0]["matchers"]
    assert config["route"]["group_wait"] == config["route"]["routes"][0]["group_interval"] == "1s"


def test_drill_prometheus_config_is_loopback_only(tmp_path):
    config = drill.prometheus_config(tmp_path / "r.yml", "127.0.0.1:1", "127.0.0.1:2")
    assert config["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"] == ["127.0.0.1:1"]
    assert config["scrape_configs"][0]["static_configs"][0]["targets"] == ["127.0.0.1:2"]
    assert config["scrape_configs"][0]["honor_labels"] is True


def test_chaos_levels_sit_between_the_thresholds():
    warning = 1610612736
    critical = 536870912
    assert critical < drill.WARNING_FREE_BYTES < warning
    assert critical > drill.CRITICAL_FREE_BYTES


def test_the_drill_refuses_non_loopback_urls():
    with pytest.raises(drill.DrillError):
        drill.http_get("http://example.invalid/")


def test_receiver_records_posts():
    receiver = AlertReceiver().start()
    try:
        body = json.dumps({"status": "firing", "alerts": [{"status": "firing", "labels": {"alertname": "X"}}]})
        request = urllib.request.Request(
            f"{receiver.url}/alerts/warning",
            data=body.encode(),
            method="POST",
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=5) as response:
            assert response.status == 200
        note = receiver.wait_for(lambda n: n.path == "/alerts/warning", timeout_s=5)
        assert note is not None and note.alerts()[0]["labels"]["alertname"] == "X"
        assert receiver.wait_for(lambda n: n.path == "/alerts/critical", timeout_s=0.2) is None
    finally:
        receiver.stop()


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_make_fragment_has_the_drill_targets():
    for target, expect in (
        ("test-alerts-e2e", "scripts/alert_drill.py run"),
        ("clear-chaos", "scripts/alert_drill.py clear-chaos --pushgateway http://127.0.0.1:9191"),
    ):
        out = subprocess.run(
            ["make", "-n", "-f", "docker/alerts.mk", target], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout
        assert expect in out


def test_clear_chaos_with_no_pushgateway_listening_says_there_is_nothing_to_clear():
    from tests.stack import free_port

    url = f"http://127.0.0.1:{free_port()}"
    argv = [sys.executable, str(ROOT / "scripts" / "alert_drill.py"), "clear-chaos", "--pushgateway", url]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0 and proc.stdout.startswith(f"PASS clear-chaos: no Pushgateway listens at {url}")
