"""The swap: the worker side in-process against the real default model, and POST /api/swap with
the task run eagerly in this process (the real broker and worker: test_stack.py)."""

from __future__ import annotations

import threading
import time

import pytest
from django.test import Client

from arbiter import lock, services, webhooks
from arbiter.worker import swap_model_in_worker
from tests.arbiter.conftest import auth

URL = "/api/swap"


def swap(client: Client, **body):
    return client.post(URL, body, content_type="application/json", **auth())


def hi(runtime) -> str:
    return runtime.get_backend().generate([{"role": "user", "content": "Say hi"}], max_tokens=4, temperature=0).text


# --- worker side -------------------------------------------------------------------------------


def test_swap_loads_the_model_under_a_live_lease(worker_process):
    runtime = worker_process
    lease = lock.acquire("swapper", 300)
    first = swap_model_in_worker("smollm2-135m", lease.fencing)
    assert first["status"] == "swapped"
    result = swap_model_in_worker("smollm2-alt", lease.fencing)
    assert result["status"] == "swapped" and result["changed"]
    assert result["previous_model"] == "smollm2-135m" and result["model"] == "smollm2-alt"
    assert runtime.get_backend().spec.alias == "smollm2-alt" and runtime.get_backend().loaded
    assert hi(runtime)  # the new model answers
    again = swap_model_in_worker("smollm2-alt", lease.fencing)
    assert again["status"] == "swapped" and not again["changed"] and again["reason"] == "already loaded"


def test_a_stale_holders_fencing_token_is_refused(worker_process):
    runtime = worker_process
    setup = lock.acquire("setup", 300)
    assert swap_model_in_worker("smollm2-135m", setup.fencing)["status"] == "swapped"
    lock.release(setup.token)
    stale = lock.acquire("stalled", 0.3)
    time.sleep(0.45)  # the lease expired while the holder was stalled ...
    lock.acquire("newcomer", 300)  # ... and someone else took the lock
    result = swap_model_in_worker("smollm2-alt", stale.fencing)
    assert result["status"] == "refused" and "superseded" in result["reason"]
    assert runtime.get_backend().spec.alias == "smollm2-135m"  # untouched


def test_an_expired_lease_is_refused_even_if_nobody_took_the_lock(worker_process):
    lease = lock.acquire("stalled", 300)
    lock.release(lease.token)
    result = swap_model_in_worker("smollm2-alt", lease.fencing)
    assert result["status"] == "refused" and "no longer held" in result["reason"]


def test_a_lease_lost_while_loading_is_refused_at_the_commit(worker_process, monkeypatch):
    """The fencing check at the commit point: the lock changed hands during the load."""
    runtime = worker_process
    lease = lock.acquire("swapper", 300)
    assert swap_model_in_worker("smollm2-135m", lease.fencing)["status"] == "swapped"
    real_build = runtime.build_backend

    def build_and_lose_the_lock(spec):
        lock.force_release(by="test")
        lock.acquire("thief", 300)
        return real_build(spec)

    monkeypatch.setattr(runtime, "build_backend", build_and_lose_the_lock)
    result = swap_model_in_worker("smollm2-alt", lease.fencing)
    assert result["status"] == "refused" and "kept smollm2-135m" in result["reason"]
    assert runtime._backend.spec.alias == "smollm2-135m" and runtime._backend.loaded  # rolled back
    assert hi(runtime)


def test_a_failed_load_keeps_the_previous_model(worker_process):
    runtime = worker_process
    lease = lock.acquire("swapper", 300)
    assert swap_model_in_worker("smollm2-135m", lease.fencing)["status"] == "swapped"
    result = swap_model_in_worker("smollm2-broken", lease.fencing)
    assert result["status"] == "failed" and "IntegrityError" in result["reason"]
    assert "now serving smollm2-135m" in result["reason"]
    assert runtime._backend.spec.alias == "smollm2-135m" and runtime._backend.loaded
    assert swap_model_in_worker("no-such-model", lease.fencing)["status"] == "failed"


# --- API side (task run eagerly, in this process) ---------------------------------------------


@pytest.fixture
def api(worker_process, eager_celery):
    return worker_process


def test_swap_over_http_then_the_webhook_after_the_lock_is_free(api, client, receiver, settings):
    settings.SWARM_SWAP_WEBHOOK_URL = receiver.url
    settings.SWARM_SWAP_WEBHOOK_SECRET = "whsec"
    receiver.observe = lambda: lock.status().held  # the lock as the receiver sees it on arrival
    response = swap(client, model="smollm2-alt", holder="ops")
    assert response.status_code == 200, response.content
    report = response.json()
    assert report["status"] == "swapped" and report["model"] == "smollm2-alt" and report["queue"] == "gpu"
    assert report["holder"] == "ops" and report["fencing"] >= 1
    assert not lock.status().held  # released
    assert api.get_backend().spec.alias == "smollm2-alt"
    (delivery,) = receiver.wait()
    assert delivery.observed is False  # the lock was already free when the webhook arrived
    assert delivery.json()["event"] == "swap_complete" and delivery.json()["model"] == "smollm2-alt"
    assert webhooks.verify(delivery.body, delivery.headers["X-Swarm-Timestamp"],
                           delivery.headers["X-Swarm-Signature"], "whsec")  # fmt: skip


def test_swap_is_423_while_someone_else_holds_the_lock(api, client, monkeypatch):
    sent = []
    monkeypatch.setattr(services, "dispatch_swap", lambda **kw: sent.append(kw))
    trainer = lock.acquire("trainer", 300, "lora-nightly")
    response = swap(client, model="smollm2-alt")
    assert response.status_code == 423
    body = response.json()
    assert body["error"]["type"] == "locked_error" and body["holder"] == "trainer"
    assert not sent  # nothing reached a worker
    assert lock.status().fencing == trainer.fencing


def test_twenty_concurrent_swaps_one_succeeds_nineteen_423(api, monkeypatch):
    """The winning swap is held open until every other request has its answer."""
    others_done = threading.Event()
    codes: list[int] = []
    guard = threading.Lock()

    def slow_swap(*, alias, fencing, queue, deadline_s):
        others_done.wait(20)
        return {"status": "swapped", "model": alias, "fencing": fencing}

    monkeypatch.setattr(services, "dispatch_swap", slow_swap)
    barrier = threading.Barrier(20)

    def contender(n: int) -> None:
        c = Client()
        barrier.wait()
        code = swap(c, model="smollm2-alt", holder=f"c{n}").status_code
        with guard:
            codes.append(code)
            if codes.count(423) == 19:
                others_done.set()

    threads = [threading.Thread(target=contender, args=(n,)) for n in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted(codes) == [200] + [423] * 19
    assert not lock.status().held


def test_unknown_model_is_400(api, client):
    response = swap(client, model="gpt-17")
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["param"] == "model" and "unknown model 'gpt-17'" in error["message"]
    assert not lock.status().held


def test_swap_needs_the_token(api, client):
    response = client.post(URL, {"model": "smollm2-alt"}, content_type="application/json")
    assert response.status_code == 401 and response.json()["error"]["type"] == "authentication_error"


def test_swap_under_the_callers_own_lease_keeps_it(api, client):
    lease = lock.acquire("trainer", 300, "lora")
    response = swap(client, model="smollm2-alt", lease_token=lease.token, fencing=lease.fencing)
    assert response.status_code == 200 and response.json()["holder"] == "trainer"
    assert lock.status().fencing == lease.fencing  # still the caller's
    assert swap(client, model="smollm2-alt", lease_token=lease.token).status_code == 400  # fencing missing


def test_a_stale_lease_over_http(api, client):
    stale = lock.acquire("stalled", 300)
    lock.release(stale.token)
    expired = swap(client, model="smollm2-alt", lease_token=stale.token, fencing=stale.fencing)
    assert expired.status_code == 409 and expired.json()["error"]["code"] == "lock_not_held"
    lock.acquire("newcomer", 300)
    taken = swap(client, model="smollm2-alt", lease_token=stale.token, fencing=stale.fencing)
    assert taken.status_code == 423 and taken.json()["holder"] == "newcomer"


def test_a_wrong_fencing_number_is_409(api, client):
    lease = lock.acquire("trainer", 300)
    response = swap(client, model="smollm2-alt", lease_token=lease.token, fencing=lease.fencing + 1)
    assert response.status_code == 409 and response.json()["error"]["code"] == "stale_fencing_token"


def test_worker_refusal_is_409_and_fires_swap_failed(api, client, receiver, settings, monkeypatch):
    settings.SWARM_SWAP_WEBHOOK_URL = receiver.url
    monkeypatch.setattr(services, "dispatch_swap", lambda **kw: {"status": "refused", "reason": "stale fencing token"})
    response = swap(client, model="smollm2-alt")
    assert response.status_code == 409 and response.json()["error"]["code"] == "stale_fencing_token"
    assert receiver.wait()[0].json()["event"] == "swap_failed"


def test_failed_load_is_502_and_fires_swap_failed(api, client, receiver, settings):
    settings.SWARM_SWAP_WEBHOOK_URL = receiver.url
    receiver.observe = lambda: lock.status().held
    response = swap(client, model="smollm2-broken")
    assert response.status_code == 502 and response.json()["error"]["code"] == "swap_failed"
    (delivery,) = receiver.wait()
    assert delivery.json()["event"] == "swap_failed" and "IntegrityError" in delivery.json()["reason"]
    assert delivery.observed is False
    assert not lock.status().held


def test_no_worker_before_the_deadline_is_504_and_releases(api, client, receiver, settings, monkeypatch):
    """(The real publish-and-time-out path runs on the stack: test_stack.py.)"""
    from swarm_site.errors import GatewayTimeout

    settings.SWARM_SWAP_WEBHOOK_URL = receiver.url
    receiver.observe = lambda: lock.status().held

    def nobody_answers(**kw):
        assert lock.status().held  # the lease is held while the API waits
        raise GatewayTimeout("no worker on 'gpu.97' finished the swap within 1s")

    monkeypatch.setattr(services, "dispatch_swap", nobody_answers)
    response = swap(client, model="smollm2-alt", worker="97")
    assert response.status_code == 504 and response.json()["error"]["type"] == "timeout_error"
    assert not lock.status().held
    (delivery,) = receiver.wait()
    assert delivery.json()["event"] == "swap_failed" and delivery.observed is False


def test_the_deadline_can_be_shortened_not_lengthened(api, client, monkeypatch):
    seen = []
    monkeypatch.setattr(services, "dispatch_swap", lambda **kw: seen.append(kw) or {"status": "swapped"})
    assert swap(client, model="smollm2-alt", deadline_s=2).status_code == 200
    assert seen[-1]["deadline_s"] == 2
    response = swap(client, model="smollm2-alt", deadline_s=121)  # SWARM_SWAP_DEADLINE_S is 120 here
    assert response.status_code == 400 and response.json()["error"]["param"] == "deadline_s"


def test_worker_by_name_or_index(api, client, redis10):
    assert services.resolve_queue(None) == ("gpu", None)
    assert services.resolve_queue("3") == ("gpu.3", None)
    redis10.set("swarm:worker:gpu1@box", '{"worker": "gpu1@box", "queues": "gpu.1,gpu"}', ex=30)
    assert services.resolve_queue("gpu1@box") == ("gpu.1", "gpu1@box")
    # Hosts that name themselves: device 0 on exactly one host is that host's queue; on two, name the worker.
    redis10.set("swarm:worker:gpu0@node-b", '{"worker": "gpu0@node-b", "queues": "gpu.node-b.0,gpu"}', ex=30)
    assert services.resolve_queue("0") == ("gpu.node-b.0", None)
    assert services.resolve_queue("gpu0@node-b") == ("gpu.node-b.0", "gpu0@node-b")
    redis10.set("swarm:worker:gpu0@node-c", '{"worker": "gpu0@node-c", "queues": "gpu.node-c.0,gpu"}', ex=30)
    with pytest.raises(services.UnknownWorker, match="several hosts"):
        services.resolve_queue("0")
    response = swap(client, model="smollm2-alt", worker="ghost@box")
    assert response.status_code == 400 and response.json()["error"]["param"] == "worker"
