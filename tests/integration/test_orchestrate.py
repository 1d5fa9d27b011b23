"""The walking skeleton end to end: HTTP -> Django -> Celery worker (real model) -> answer, cache, log."""

from __future__ import annotations

import json
import sqlite3
import time

import pytest

from tests.stack import wait_for

pytestmark = pytest.mark.integration


def test_health_reports_every_dependency(stack):
    body = stack.wait_healthy()
    assert body["status"] == "ok"
    assert set(body["checks"]) == {"db", "redis", "workers"}
    workers = body["checks"]["workers"]["workers"]
    assert workers and workers[0]["model"] == "smollm2-135m" and workers[0]["loaded"] is True


def test_orchestrate_answers_with_the_local_model(stack):
    response = stack.post("/orchestrate", {"prompt": "hi"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["answer"] and body["answer"] != "UNSURE"
    assert body["route"] == "council" and body["skill_type"] == "agent0"
    assert body["model"] == "smollm2-135m" and body["cached"] is False
    assert body["latency_ms"] > 0 and len(body["request_id"]) == 32


def test_same_prompt_again_is_served_from_the_cache(stack):
    first = stack.post("/orchestrate", {"prompt": "Hello there!"}).json()
    again = stack.post("/orchestrate", {"prompt": "  hello   THERE! "}).json()
    assert first["cached"] is False
    assert again["cached"] is True and again["route"] == "cache"
    assert again["answer"] == first["answer"]


def test_different_generation_params_do_not_share_a_cache_entry(stack):
    stack.post("/orchestrate", {"prompt": "good morning"})
    other = stack.post("/orchestrate", {"prompt": "good morning", "max_tokens": 17}).json()
    assert other["cached"] is False


def test_every_request_is_logged_for_mining(stack):
    body = stack.post("/orchestrate", {"prompt": "What is 6*7?"}).json()
    db_path = stack.env["DATABASE_URL"].removeprefix("sqlite:///")

    def logged():
        with sqlite3.connect(db_path) as conn:
            return conn.execute(
                "SELECT prompt, answer, route, skill_type, model FROM routing_interaction WHERE request_id = ?",
                (body["request_id"],),
            ).fetchone()

    row = wait_for(logged, timeout=15, what="the interaction row")
    assert row == ("What is 6*7?", body["answer"], body["route"], body["skill_type"], "smollm2-135m")


def test_unsure_answers_are_not_cached(stack):
    prompt = "Summarize the plot of a novel nobody has written yet, in exactly eleven words."
    first = stack.post("/orchestrate", {"prompt": prompt}).json()
    assert first["route"] == "unsure" and first["answer"] == "UNSURE" and first["confidence"] == 0
    time.sleep(0.2)
    assert stack.post("/orchestrate", {"prompt": prompt}).json()["cached"] is False


def test_logs_are_json_lines_carrying_the_request_id_from_api_into_the_worker(stack):
    body = stack.post("/orchestrate", {"prompt": "Tell me about the history of tea.", "max_tokens": 16}).json()

    def lines_with_id(name):
        entries = [json.loads(line) for line in (stack.logdir / f"{name}.log").read_text().splitlines()
                   if line.startswith("{")]  # fmt: skip
        return [e for e in entries if body["request_id"] in (e.get("request_id"), *e.get("request_ids", ()))]

    worker = wait_for(lambda: lines_with_id("worker-gpu"), timeout=10, what="worker log lines of the request")
    assert any("answered by" in e["message"] for e in worker)  # the model's request reached the worker
    # worker-cpu's interaction writer names the requests of each batch it stores
    assert wait_for(lambda: lines_with_id("worker-cpu"), timeout=10, what="the interaction writer's line")
