"""The arbiter on the real stack: gunicorn, a serving worker with the real model, the Redis broker
(DB 10), real HTTP, and a loopback webhook receiver."""

from __future__ import annotations

import socket
import threading
import time

import pytest
import redis
import requests
import yaml

from arbiter import webhooks
from arbiter.lock import LOCK_KEY
from tests.arbiter.conftest import REDIS_URL, ROOT, TOKEN, Receiver, model_file
from tests.stack import Stack, wait_for

pytestmark = pytest.mark.integration

SECRET = "whsec-stack"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def redis10():
    """Override: the stack's broker lives in DB 10 too, so only the arbiter's keys are cleared."""
    client = redis.Redis.from_url(REDIS_URL, decode_responses=True)
    client.delete(*(list(client.scan_iter("swarm:arbiter:*")) or ["-"]))
    yield client
    client.close()


@pytest.fixture(scope="module")
def hook():
    raw = redis.Redis.from_url(REDIS_URL)
    server = Receiver(observe=lambda: bool(raw.exists(LOCK_KEY))).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def stack(hook, tmp_path_factory):
    client = redis.Redis.from_url(REDIS_URL)
    client.flushdb()  # before any worker binds its queues here
    base = yaml.safe_load((ROOT / "config" / "models.yaml").read_text())["models"][0]
    alt = {**base, "alias": "smollm2-alt", "source": {"path": str(model_file())}}
    registry = tmp_path_factory.mktemp("arbiter") / "models.yaml"
    registry.write_text(yaml.safe_dump({"default": base["alias"], "models": [base, alt]}))
    s = Stack.build(
        redis_url=REDIS_URL,
        SWARM_ARBITER_TOKEN=TOKEN,
        SWARM_SWAP_WEBHOOK_URL=hook.url,
        SWARM_SWAP_WEBHOOK_SECRET=SECRET,
        SWARM_SWAP_DEADLINE_S="120",
        SWARM_MODELS_FILE=str(registry),
    )
    try:
        yield s.start()
    finally:
        s.stop()
        client.flushdb()


def post(stack: Stack, path: str, body: dict, headers: dict | None = None) -> requests.Response:
    return requests.post(f"{stack.url}{path}", json=body, headers=AUTH if headers is None else headers, timeout=90)


def served_models(stack: Stack) -> set[str]:
    health = requests.get(f"{stack.url}/health", timeout=5).json()
    return {w.get("model") for w in health["checks"]["workers"].get("workers", [])}


def test_swap_through_the_real_worker_then_the_webhook(stack, hook):
    assert requests.get(f"{stack.url}/api/swap/lock", timeout=5).json()["held"] is False
    hook.deliveries.clear()
    response = post(stack, "/api/swap", {"model": "smollm2-alt", "worker": "0", "holder": "ops"})
    assert response.status_code == 200, (response.text, stack.logs())
    report = response.json()
    assert report["status"] == "swapped" and report["changed"]
    assert report["model"] == "smollm2-alt" and report["previous_model"] == "smollm2-135m"
    assert report["worker"] == f"gpu0@{socket.gethostname()}" and report["queue"] == "gpu.0"
    assert requests.get(f"{stack.url}/api/swap/lock", timeout=5).json()["held"] is False
    (delivery,) = hook.wait()
    assert delivery.observed is False  # the lock was free when the webhook arrived
    assert delivery.json()["event"] == "swap_complete" and delivery.json()["model"] == "smollm2-alt"
    assert webhooks.verify(delivery.body, delivery.headers["X-Swarm-Timestamp"],
                           delivery.headers["X-Swarm-Signature"], SECRET)  # fmt: skip
    assert "smollm2-alt" in served_models(stack)  # the heartbeat says so
    # a prompt for the model (an exact head's answer comes from the API, not the worker)
    answer = post(stack, "/orchestrate", {"prompt": f"Tell me about tea, {time.time_ns()}.", "max_tokens": 8},
                  headers={})  # fmt: skip
    assert answer.status_code == 200 and answer.json()["model"] == "smollm2-alt", answer.text  # it serves
    back = post(stack, "/api/swap", {"model": "smollm2-135m", "worker": report["worker"]})
    assert back.status_code == 200 and back.json()["model"] == "smollm2-135m", back.text
    wait_for(lambda: served_models(stack) == {"smollm2-135m"}, timeout=10, what="heartbeat with the default")


def test_swap_is_423_while_the_lock_is_held(stack):
    lease = post(stack, "/api/swap/lock", {"holder": "trainer", "ttl_s": 60, "purpose": "lora"}).json()
    refused = post(stack, "/api/swap", {"model": "smollm2-alt"})
    assert refused.status_code == 423 and refused.json()["holder"] == "trainer"
    assert refused.json()["error"]["type"] == "locked_error" and refused.headers["Retry-After"]
    gone = requests.delete(f"{stack.url}/api/swap/lock", json={"token": lease["token"]}, headers=AUTH, timeout=5)
    assert gone.status_code == 204


def test_a_stale_holder_is_refused_and_the_live_one_swaps(stack):
    stale = post(stack, "/api/swap/lock", {"holder": "stalled", "ttl_s": 0.5}).json()
    time.sleep(0.8)
    live = post(stack, "/api/swap/lock", {"holder": "trainer", "ttl_s": 300}).json()
    assert live["fencing"] == stale["fencing"] + 1
    refused = post(stack, "/api/swap", {"model": "smollm2-135m", "lease_token": stale["token"],
                                        "fencing": stale["fencing"]})  # fmt: skip
    assert refused.status_code == 423 and refused.json()["holder"] == "trainer"
    ok = post(stack, "/api/swap", {"model": "smollm2-135m", "lease_token": live["token"], "fencing": live["fencing"]})
    assert ok.status_code == 200 and ok.json()["fencing"] == live["fencing"], ok.text
    requests.delete(f"{stack.url}/api/swap/lock", json={"token": live["token"]}, headers=AUTH, timeout=5)


def test_twenty_concurrent_lock_requests_over_http(stack):
    barrier = threading.Barrier(20)
    codes: list[int] = []

    def contender(n: int) -> None:
        barrier.wait()
        codes.append(post(stack, "/api/swap/lock", {"holder": f"c{n}", "ttl_s": 30}).status_code)

    threads = [threading.Thread(target=contender, args=(n,)) for n in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(codes) == [201] + [423] * 19


def test_no_worker_on_the_queue_is_504_and_the_lock_is_released(stack, hook):
    hook.deliveries.clear()
    started = time.monotonic()
    response = post(stack, "/api/swap", {"model": "smollm2-alt", "worker": "97", "deadline_s": 1.5})
    assert response.status_code == 504 and response.json()["error"]["type"] == "timeout_error", response.text
    assert time.monotonic() - started < 10
    assert requests.get(f"{stack.url}/api/swap/lock", timeout=5).json()["held"] is False
    (delivery,) = hook.wait()
    assert delivery.json()["event"] == "swap_failed" and delivery.observed is False


def test_bad_token_over_http(stack):
    response = post(stack, "/api/swap", {"model": "smollm2-alt"}, headers={"Authorization": "Bearer nope"})
    assert response.status_code == 401 and response.json()["error"]["type"] == "authentication_error"
