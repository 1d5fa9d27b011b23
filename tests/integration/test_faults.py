"""Faults: Redis down and back, a worker SIGKILLed mid-task, no worker before the deadline."""

from __future__ import annotations

import os
import signal
import threading
import time

import pytest
import requests

from tests.stack import Stack, wait_for

pytestmark = pytest.mark.integration

LONG_PROMPT = "Write a long, detailed story about a lighthouse keeper and a storm, with many chapters."
DEADLINE_S = 20


@pytest.fixture
def fault_stack(private_redis):
    """A stack on its own redis-server, with a short deadline, so it can be broken on purpose."""
    stack = Stack.build(
        redis_url=private_redis.url,
        SWARM_DEADLINE_S=str(DEADLINE_S),
        SWARM_VISIBILITY_TIMEOUT_S=str(DEADLINE_S + 1),
    )
    try:
        yield stack.start(), private_redis
    finally:
        stack.stop()


def _post_in_background(stack: Stack, body: dict) -> tuple[threading.Thread, dict]:
    box: dict = {}

    def run():
        started = time.monotonic()
        box["response"] = stack.post("/orchestrate", body, timeout=DEADLINE_S + 30)
        box["elapsed"] = time.monotonic() - started

    thread = threading.Thread(target=run)
    thread.start()
    return thread, box


def _busy_child(stack: Stack) -> int:
    """The pool process that is generating right now (it uses CPU)."""
    _, kids = stack.worker_pids()
    assert kids, "the serving worker has no pool process"

    def cpu_ticks(pid):
        with open(f"/proc/{pid}/stat") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])

    before = {pid: cpu_ticks(pid) for pid in kids}
    time.sleep(0.5)
    return max(kids, key=lambda pid: cpu_ticks(pid) - before[pid])


def test_redis_down_is_a_fast_503_and_the_service_recovers(fault_stack):
    stack, server = fault_stack
    assert stack.post("/orchestrate", {"prompt": "hi"}).status_code == 200
    server.stop()

    started = time.monotonic()
    response = stack.post("/orchestrate", {"prompt": "hello again"}, timeout=10)
    elapsed = time.monotonic() - started
    assert response.status_code == 503 and elapsed < 1.0, (response.status_code, elapsed)
    assert "Redis" in response.json()["error"]["message"]

    down = requests.get(f"{stack.url}/health", timeout=5)
    assert down.status_code == 503 and "redis" in down.json()["down"]

    server.start()
    stack.wait_healthy(timeout=60)
    again = wait_for(
        lambda: (r := stack.post("/orchestrate", {"prompt": "hello again"}, timeout=30)).status_code == 200 and r,
        timeout=60, what="an answer after Redis came back",
    )  # fmt: skip
    assert again.json()["answer"]


def test_a_worker_killed_mid_task_is_redelivered_and_answered(fault_stack):
    stack, _ = fault_stack
    # Long enough to be mid-generation when killed, short enough for the second try to finish before
    # the deadline on a 2-core CPU (about 40 tokens/s here, with the rest of the stack beside it).
    thread, box = _post_in_background(stack, {"prompt": LONG_PROMPT, "max_tokens": 300})
    # The task is picked up (on a loaded machine that may take seconds), then generating.
    wait_for(lambda: "] received" in stack.logs(tail=None), timeout=15, what="the serving worker receiving the task")
    time.sleep(1.0)
    victim = _busy_child(stack)
    os.kill(victim, signal.SIGKILL)

    thread.join(DEADLINE_S + 40)
    response = box["response"]
    assert response.status_code == 200, response.text
    assert response.json()["answer"]
    _, kids = stack.worker_pids()
    assert kids and victim not in kids, "the pool replaced the killed process"
    assert "WorkerLostError" in stack.logs(tail=None)


def test_no_worker_before_the_deadline_is_a_clear_504(fault_stack):
    stack, _ = fault_stack
    # Long enough to be mid-generation when killed, short enough for the second try to finish before
    # the deadline on a 2-core CPU (about 40 tokens/s here, with the rest of the stack beside it).
    thread, box = _post_in_background(stack, {"prompt": LONG_PROMPT, "max_tokens": 300})
    time.sleep(1.0)
    stack.kill("worker-gpu")  # the whole worker, main process and pool, SIGKILL

    thread.join(DEADLINE_S + 40)
    response = box["response"]
    assert response.status_code == 504
    assert box["elapsed"] < DEADLINE_S + 3
    error = response.json()["error"]
    assert error["code"] == "deadline_exceeded" and "no worker answered" in error["message"]
