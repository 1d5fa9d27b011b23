"""RabbitMQ as the broker: the real stack on a vhost of its own, its queues quorum queues, a model
answer, and the worker-loss drill.

With Redis as the broker, a whole serving worker killed mid-task leaves its message unacknowledged
until the visibility timeout, past the request's deadline (tests/integration/test_faults.py: a 504).
RabbitMQ requeues it as soon as the dead worker's connection closes: the restarted worker receives it
again and the client gets its answer within the same deadline. The drill sends a few requests for
the model, SIGKILLs the serving worker (main process and pool) while it generates the first, starts
it again, and counts what was answered, redelivered and lost; the figures go to
reports/cluster_<date>.json under `drills.rabbitmq_worker_loss` (tests/cluster/report.py).

Needs a local RabbitMQ (127.0.0.1:5672, guest/guest) and root for rabbitmqctl (the vhost is made for
the test and deleted after it); skipped, saying which is missing, otherwise.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import threading
import time
from typing import Any

import pytest
import redis
import requests

from swarm_site.broker import AmqpQueueDepths
from tests.cluster.report import record
from tests.stack import Stack, wait_for

pytestmark = [pytest.mark.cluster, pytest.mark.integration, pytest.mark.timeout(900)]

AMQP_HOST, AMQP_PORT = "127.0.0.1", 5672
DEADLINE_S = 100  # the restart (a new worker loads the model) and three answers on a shared 2-core CPU
OUR_QUEUES = {"gpu", "gpu.0", "default", "cpu"}  # what the serving and the bookkeeping workers consume
# Celery's own transient queues (remote control, events): auto-delete, so classic; no task goes there.
CELERY_TRANSIENT = re.compile(r".*\.celery\.pidbox|celeryev\..*")
LONG_PROMPT = "Write a long, detailed story about a lighthouse keeper and a storm, with many chapters."
# Prompts for the model (an exact head would answer a sum or a conversion in the API, without a worker).
QUEUED_PROMPTS = ["Tell me about coffee.", "Tell me about the history of bread."]


def rabbitmqctl(*args: str) -> str:
    done = subprocess.run(["rabbitmqctl", "-q", *args], capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        raise RuntimeError(f"rabbitmqctl {' '.join(args)} failed ({done.returncode}): {done.stderr.strip()}")
    return done.stdout


def _unavailable() -> str | None:
    """Why the drill cannot run here, or None."""
    if not shutil.which("rabbitmqctl"):
        return "rabbitmqctl is not installed (apt-get install rabbitmq-server)"
    if os.geteuid() != 0:
        return "rabbitmqctl needs root here (it reads the node's Erlang cookie); run as root"
    try:
        socket.create_connection((AMQP_HOST, AMQP_PORT), timeout=2).close()
    except OSError as exc:
        return f"RabbitMQ does not answer on {AMQP_HOST}:{AMQP_PORT} ({exc}); start rabbitmq-server"
    return None


@pytest.fixture(scope="module")
def vhost():
    reason = _unavailable()
    if reason:
        pytest.skip(reason)
    name = f"swarm-test-{secrets.token_hex(4)}"
    try:
        rabbitmqctl("add_vhost", name)
    except RuntimeError as exc:
        pytest.skip(f"cannot make a RabbitMQ vhost: {exc}")
    try:
        rabbitmqctl("set_permissions", "-p", name, "guest", ".*", ".*", ".*")
        yield name
    finally:
        rabbitmqctl("delete_vhost", name)


@pytest.fixture(scope="module")
def broker_url(vhost) -> str:
    return f"amqp://guest:guest@{AMQP_HOST}:{AMQP_PORT}/{vhost}"


@pytest.fixture(scope="module")
def rabbit_stack(broker_url, module_redis):
    """The real stack (gunicorn, serving worker, bookkeeping worker) with RabbitMQ as the broker and a
    redis-server of its own for everything else (replies, cache, results, heartbeats)."""
    stack = Stack.build(redis_url=module_redis.url, CELERY_BROKER_URL=broker_url, SWARM_DEADLINE_S=str(DEADLINE_S))
    try:
        yield stack.start()
    finally:
        stack.stop()


def queue_types(vhost: str) -> dict[str, dict[str, Any]]:
    rows = json.loads(rabbitmqctl("list_queues", "-p", vhost, "name", "type", "durable", "auto_delete",
                                  "--formatter", "json"))  # fmt: skip
    return {row["name"]: row for row in rows}


def receipts(stack: Stack, task_id: str) -> int:
    """How many times a serving worker (the killed one and its successor share the log) received the task."""
    return stack.logs(tail=None).count(f"routing.tasks.orchestrate[{task_id}] received")


def test_every_queue_is_a_quorum_queue_and_the_model_answers(rabbit_stack, vhost):
    response = rabbit_stack.post("/orchestrate", {"prompt": "Tell me about tea.", "max_tokens": 48})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["answer"] and body["route"] not in {"cache", "pattern"}
    assert receipts(rabbit_stack, body["request_id"]) == 1, "the serving worker answered it"

    queues = queue_types(vhost)
    assert set(queues) >= OUR_QUEUES, sorted(queues)
    classic = {name for name, row in queues.items() if row["type"] != "quorum"}
    assert not classic & OUR_QUEUES, {name: queues[name]["type"] for name in OUR_QUEUES}
    # Every durable queue is a quorum queue (native delayed delivery's celery_delayed_* included); what
    # is left classic is Celery's auto-delete control and event queues.
    for name in classic:
        assert queues[name]["auto_delete"] and CELERY_TRANSIENT.fullmatch(name), queues[name]

    health = requests.get(f"{rabbit_stack.url}/health", timeout=5).json()
    assert health["checks"]["broker"]["status"] == "ok" and health["checks"]["broker"]["transport"] == "amqp"


def test_a_countdown_waits_in_the_broker_not_in_a_worker(rabbit_stack, broker_url):
    """Native delayed delivery over the topic exchanges (a countdown retry, say `training.tasks.train`
    waiting for the GPU lock): the message sits in RabbitMQ's delay queues and reaches its quorum queue
    when due, instead of being held by a worker (quorum queues cannot raise its prefetch count)."""
    from celery import Celery

    from swarm_site.broker import amqp_celery_settings
    from swarm_site.queues import CeleryQueue

    app = Celery("swarm-countdown", set_as_current=False)
    settings = amqp_celery_settings(q.value for q in CeleryQueue)
    app.conf.update(broker_url=broker_url, task_default_queue=CeleryQueue.DEFAULT.value,
                    **{name.removeprefix("CELERY_").lower(): value for name, value in settings.items()})  # fmt: skip
    depth = AmqpQueueDepths(broker_url, timeout_s=5.0)
    try:
        before = depth(["train"])["train"]  # no training worker in this stack: nothing takes it
        sent = time.monotonic()
        app.send_task("training.tasks.train", args=[0], queue=CeleryQueue.TRAIN.value, countdown=3)
        assert depth(["train"])["train"] == before, "not in the queue before it is due"
        wait_for(lambda: depth(["train"])["train"] == before + 1, timeout=30, interval=0.1, what="the due message")
        arrived_s = time.monotonic() - sent
    finally:
        depth.close()
        app.close()
    assert 2.5 <= arrived_s < 15, arrived_s


def _post_in_background(stack: Stack, prompt: str, max_tokens: int, box: dict) -> threading.Thread:
    def run():
        started = time.monotonic()
        try:
            box["response"] = stack.post("/orchestrate", {"prompt": prompt, "max_tokens": max_tokens},
                                         timeout=DEADLINE_S + 30)  # fmt: skip
        except requests.RequestException as exc:
            box["error"] = repr(exc)
        box["elapsed"] = time.monotonic() - started

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def _started_task(results: redis.Redis) -> str | None:
    """The id of the serving task that is running now (its stored state is STARTED: track_started)."""
    for key in results.scan_iter(match="celery-task-meta-*", count=100):
        raw = results.get(key)
        if raw and json.loads(raw).get("status") == "STARTED":
            return key.decode().removeprefix("celery-task-meta-")
    return None


def test_a_serving_worker_killed_mid_task_is_redelivered_and_answered(rabbit_stack, broker_url, module_redis):
    stack = rabbit_stack
    results = redis.Redis.from_url(module_redis.url)
    depth = AmqpQueueDepths(broker_url, timeout_s=5.0)
    boxes: list[dict] = [{} for _ in range(1 + len(QUEUED_PROMPTS))]
    try:
        threads = [_post_in_background(stack, LONG_PROMPT, 300, boxes[0])]
        running = wait_for(lambda: _started_task(results), timeout=60, interval=0.05, what="the first task STARTED")
        queued = zip(QUEUED_PROMPTS, boxes[1:], strict=True)
        threads += [_post_in_background(stack, prompt, 64, box) for prompt, box in queued]
        # The others wait in `gpu` (prefetch 1: the worker holds only the one it runs).
        wait_for(lambda: depth(["gpu"])["gpu"] == len(QUEUED_PROMPTS), timeout=30, what="the other requests queued")
        time.sleep(1.0)  # mid-generation
        assert _started_task(results) == running, "the first task is still running when the worker dies"

        killed = time.monotonic()
        stack.kill("worker-gpu")  # SIGKILL to the whole serving worker: main process and pool
        sent = len(boxes)
        wait_for(lambda: depth(["gpu"])["gpu"] == sent, timeout=30, interval=0.05, what="RabbitMQ requeued it")
        requeued_s = time.monotonic() - killed

        stack.start_gpu_worker()  # its log is appended to the killed one's
        wait_for(lambda: receipts(stack, running) >= 2, timeout=DEADLINE_S, interval=0.1,
                 what="the restarted worker received the task again")  # fmt: skip
        redelivered_s = time.monotonic() - killed

        for thread in threads:
            thread.join(DEADLINE_S + 40)
        answered_s = time.monotonic() - killed
    finally:
        depth.close()

    responses = [box.get("response") for box in boxes]
    answered = [r for r in responses if r is not None and r.status_code == 200 and r.json().get("answer")]
    ids = [r.json()["request_id"] for r in answered]
    redelivered = sum(1 for task_id in {running, *ids} if receipts(stack, task_id) >= 2)
    figures = {
        "broker": "rabbitmq (quorum queues, publisher confirms)",
        "sent": sent,
        "answered": len(answered),
        "redelivered": redelivered,
        "lost": sent - len(answered),
        "statuses": [r.status_code if r is not None else boxes[i].get("error") for i, r in enumerate(responses)],
        "seconds_to_requeue": round(requeued_s, 3),  # kill -> the message ready again in RabbitMQ
        "seconds_to_redelivery": round(redelivered_s, 3),  # kill -> the restarted worker received it
        "seconds_to_all_answered": round(answered_s, 3),
        "killed_request_seconds": round(boxes[0].get("elapsed", float("nan")), 3),
        "deadline_s": DEADLINE_S,
    }
    record("rabbitmq_worker_loss", figures)
    print(f"rabbitmq_worker_loss: {figures}")

    assert figures["lost"] == 0, (figures, stack.logs())
    assert running in ids, "the killed task's own request was answered"
    assert redelivered == 1, figures
    assert requeued_s < 5, "RabbitMQ requeues at once when the worker's connection closes"
    assert stack.logs(tail=None).count(f"routing.tasks.orchestrate[{running}] succeeded") == 1
