"""A 10-item Titanic slice through a real stack (gunicorn, workers, the model, the replay provider)."""

from __future__ import annotations

import json

import pytest

from bench.titanic.run import main as titanic

pytestmark = [pytest.mark.slow, pytest.mark.integration]


def test_micro_titanic_runs_end_to_end(tmp_path):
    out = tmp_path / "titanic.json"
    assert titanic(["--limit", "10", "--concurrency", "2", "--out", str(out)]) == 0
    report = json.loads(out.read_text())
    assert report["n"] == 10 and len(report["items"]) == 10
    assert report["effective_success"] == 1.0
    assert set(report["routes"]) <= {"cache", "council", "cloud", "unsure"}
    assert "replay" in report["escalations_answered_by"]
    assert report["stack"]["provider"]["only_provider"] is True
    if report["cloud_answers"]:
        assert report["cost_usd"] > 0
        assert report["replay_provider_stats"]["matched"] >= report["cloud_answers"]
    assert 0.0 <= report["composite_accuracy"] <= 1.0
