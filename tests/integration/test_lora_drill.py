"""The LoRA drill on a running stack: a job written to the queue file is picked up by beat, trained
on the train queue, gated, and hot-loaded by POST /admin/reload?lora=latest while answers keep flowing."""

from __future__ import annotations

import json
import re
import threading
import time

import pytest
import requests

from tests.stack import Stack, wait_for

pytestmark = pytest.mark.integration

OPERATOR = {"Authorization": "Bearer lora-drill-operator-token"}
PROMPTS = ["What is 7*8?", "hi", "What is 12+30?", "capital of France?", "hello", "What is 9*9?"]


@pytest.fixture(scope="module")
def lora_stack(module_redis, tmp_path_factory):
    queue = tmp_path_factory.mktemp("queue") / "lora_queue.json"
    queue.write_text("[]\n")
    s = Stack.build(redis_url=module_redis.url, SWARM_LORA_QUEUE_FILE=str(queue), SWARM_LORA_MAX_STEPS="12",
                    SWARM_LORA_RANK="16", SWARM_LORA_ALPHA="32",
                    SWARM_ARBITER_TOKEN=OPERATOR["Authorization"].split()[1])  # fmt: skip
    s.queue_file = queue
    try:
        s.migrate()
        s.start_gpu_worker()
        s.start_cpu_worker()
        s.start_train_worker()
        s.start_beat()
        s.start_web()
        s.wait_healthy(timeout=120)
        yield s
    finally:
        s.stop()


def training(stack: Stack) -> dict:
    response = requests.get(f"{stack.url}/api/training", headers=OPERATOR, timeout=10)
    assert response.status_code == 200, response.text
    return response.json()


def lora_version_metric(stack: Stack) -> float:
    text = requests.get(f"{stack.url}/metrics", timeout=10).text
    match = re.search(r"^swarm_lora_version(?:\{[^}]*\})? ([0-9.e+]+)$", text, re.M)
    return float(match.group(1)) if match else 0.0


class Traffic(threading.Thread):
    """Clients asking all along; every answer must be a 200."""

    def __init__(self, stack: Stack) -> None:
        super().__init__(daemon=True)
        self.stack, self.stop, self.results = stack, threading.Event(), []

    def run(self) -> None:
        i = 0
        while not self.stop.is_set():
            prompt = PROMPTS[i % len(PROMPTS)]
            body = {"prompt": prompt, "max_tokens": 16 + i % 8, "user": f"client-{i}"}
            response = self.stack.post("/orchestrate", body, timeout=120)
            self.results.append((response.status_code, response.json()))
            i += 1


def test_the_queue_file_drill(lora_stack):
    traffic = Traffic(lora_stack)
    traffic.start()
    try:
        version_before = lora_version_metric(lora_stack)
        written = time.monotonic()
        # 7*8 is in the log by now (the traffic asks it); 13*17 is not: the cascade answers it for the trainer.
        dataset = ["What is 7*8?", "What is 13*17?"]
        lora_stack.queue_file.write_text(json.dumps([{"name": "dev_test", "dataset": dataset}]))

        def picked():
            return next((j for j in training(lora_stack)["jobs"] if j["name"] == "dev_test"), None)

        job = wait_for(picked, timeout=30, interval=0.5, what="the trainer picks the job up")
        assert time.monotonic() - written <= 30
        assert json.loads(lora_stack.queue_file.read_text()) == []

        def finished():
            j = picked()
            return j if j["status"] not in ("queued", "running") else None

        job = wait_for(finished, timeout=300, interval=1.0, what="the job finishes")
        assert job["status"] == "done", job
        assert job["steps"] > 0 and job["train_examples"] == 2, job
        assert "trained lora-v1" in lora_stack.logs(tail=None)

        # `latest` is the newest adapter that passed its gate. The drill's two-prompt adapter may fail
        # it: then `latest` refuses, naming it refuses too, and only the explicit override serves it.
        (adapter,) = [a for a in training(lora_stack)["adapters"] if a["version"] == "lora-v1"]
        reload_url = f"{lora_stack.url}/admin/reload"
        reloaded = requests.post(f"{reload_url}?lora=latest", headers=OPERATOR, timeout=30)
        if adapter["status"] == "rejected":
            assert reloaded.status_code == 404, reloaded.text
            assert reloaded.json()["error"]["code"] == "no_adapter_passed_gate"
            named = requests.post(f"{reload_url}?lora=lora-v1", headers=OPERATOR, timeout=30)
            assert named.status_code == 409 and named.json()["error"]["code"] == "adapter_failed_gate", named.text
            reloaded = requests.post(f"{reload_url}?lora=lora-v1&force=true", headers=OPERATOR, timeout=30)
            assert reloaded.json()["forced"] is True and reloaded.json()["gate"]["passed"] is False, reloaded.text
        assert reloaded.status_code == 200, reloaded.text
        assert reloaded.json()["stable"] == "lora-v1"
        assert reloaded.json()["lora_version"] > version_before
        wait_for(lambda: lora_version_metric(lora_stack) > version_before, timeout=10, what="swarm_lora_version up")

        after_reload = len(traffic.results)
        wait_for(lambda: len(traffic.results) >= after_reload + 6, timeout=120, what="answers after the reload")
    finally:
        traffic.stop.set()
        traffic.join(timeout=120)
    statuses = [status for status, _ in traffic.results]
    assert statuses and all(s == 200 for s in statuses), [r for r in traffic.results if r[0] != 200][:3]
    served = {body.get("adapter_version") for _, body in traffic.results[after_reload:] if body["route"] != "cache"}
    assert "lora-v1" in served, served


def test_reload_answers_clear_errors(lora_stack):
    bad = requests.post(f"{lora_stack.url}/admin/reload?lora=lora-v999", headers=OPERATOR, timeout=10)
    assert bad.status_code == 404 and "lora-v999" in bad.json()["error"]["message"]
    bad = requests.post(f"{lora_stack.url}/admin/reload?lora=newest", headers=OPERATOR, timeout=10)
    assert bad.status_code == 400
    wrong = requests.get(f"{lora_stack.url}/admin/reload", headers={"Authorization": "Bearer nope"}, timeout=10)
    assert wrong.status_code == 401


CANARY = """
from training import rollout
from training.models import AdapterVersion
rollout.reload_adapter("base")
rollout.start_canary(AdapterVersion.objects.get(number=1), weight=5)
"""


def test_a_five_percent_canary_serves_about_five_percent_of_clients(lora_stack):
    lora_stack.manage("shell", "-c", CANARY)
    n = 400
    arms = []
    for i in range(n):  # math answers come back fast; each client is a different `user`
        body = lora_stack.post("/orchestrate", {"prompt": f"What is {i}+{i + 1}?", "user": f"canary-client-{i}"}).json()
        assert body["route"] != "cache", body
        arms.append(body["adapter_version"])
    share = arms.count("lora-v1") / n
    assert set(arms) <= {"base", "lora-v1"}
    assert 0.017 <= share <= 0.083, share  # 5 % +- 3 standard deviations of a binomial over 400 clients
    again = lora_stack.post(
        "/orchestrate", {"prompt": "What is 3+4?", "user": f"canary-client-{arms.index('lora-v1')}"}
    )
    assert again.json()["adapter_version"] == "lora-v1"  # sticky: the same client stays on its arm
    # the arm metrics count what the model (on that arm's adapter) answered; the exact heads answer in the API
    client = f"canary-client-{arms.index('lora-v1')}"
    model_bound = lora_stack.post("/orchestrate", {"prompt": "Tell me about tea.", "max_tokens": 8, "user": client})
    model_bound = model_bound.json()
    assert model_bound["adapter_version"] == "lora-v1", model_bound
    metrics = requests.get(f"{lora_stack.url}/metrics", timeout=10).text
    assert re.search(r'swarm_lora_arm_requests_total\{arm="canary",outcome="(local|unsure)"\} [1-9]', metrics)
    assert re.search(r"^swarm_lora_canary_weight(?:\{[^}]*\})? 5\.0$", metrics, re.M)

    promoted = json.loads(lora_stack.manage("canary", "promote"))
    assert promoted["stable"] == "lora-v1" and promoted["canary"] is None
    body = lora_stack.post("/orchestrate", {"prompt": "What is 5+6?", "user": "anyone"}).json()
    assert body["adapter_version"] == "lora-v1"
