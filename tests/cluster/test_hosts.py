"""Three hosts in network namespaces (tests/cluster/cluster.py) and the fault drills across them.

Each drill classifies every request it sent: answered (200), gateway timeout (504 at the deadline) or
anything else (a failure). `lost` counts requests with no HTTP answer at all, and answered requests
whose interaction row is missing once the log has drained; it must be 0. Figures go to
reports/cluster_<date>.json (tests/cluster/report.py).
"""

from __future__ import annotations

import collections
import re
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import requests

from tests.cluster.cluster import Cluster, until
from tests.cluster.netns import Network, require_netns
from tests.cluster.report import record
from tests.fake_provider import FakeProvider

pytestmark = [pytest.mark.cluster, pytest.mark.integration, pytest.mark.timeout(900)]

DEADLINE_S = 25
KEY_ENV = "SWARM_TEST_PROVIDER_KEY"


@pytest.fixture(scope="module")
def cluster():
    require_netns()
    net = Network()
    stack = Cluster(
        net,
        SWARM_DEADLINE_S=str(DEADLINE_S),
        SWARM_VISIBILITY_TIMEOUT_S=str(DEADLINE_S + 1),  # an unacked task comes back just after its deadline
        SWARM_INTERACTION_CLAIM_IDLE_S="3",  # a dead host's unwritten log entries are taken over within seconds
        SWARM_CLOUD_ENABLED="true",
        **{KEY_ENV: "test-key"},
    )
    try:
        yield stack.start()
    except BaseException:
        print(stack.logs())
        raise
    finally:
        stack.stop()


def model_prompt(tag: str) -> dict[str, Any]:
    """A prompt only the model answers (no exact head, no cache), long enough to be caught mid-way."""
    return {"prompt": f"Tell me about tea, in a few sentences. ({tag} {uuid.uuid4().hex[:8]})", "max_tokens": 96}


class Tally:
    """What happened to each request a drill sent."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.status: dict[str, int | str] = {}  # request tag -> HTTP status, or the client's error
        self.request_ids: dict[str, str] = {}  # tag -> the API's request id (answered requests)

    def send(self, cluster: Cluster, tag: str, body: dict[str, Any], timeout: float = DEADLINE_S + 30) -> None:
        try:
            response = cluster.post("/orchestrate", body, timeout=timeout)
        except requests.RequestException as exc:
            with self.lock:
                self.status[tag] = f"no answer: {type(exc).__name__}"
            return
        with self.lock:
            self.status[tag] = response.status_code
            if response.status_code == 200:
                self.request_ids[tag] = response.json()["request_id"]
            elif not response.headers.get("Content-Type", "").startswith("application/json"):
                self.status[tag] = f"{response.status_code} without JSON"

    def figures(self, logged: list[str]) -> dict[str, Any]:
        counts = collections.Counter(logged)
        answered = [rid for rid in self.request_ids.values()]
        unlogged = [rid for rid in answered if counts[rid] == 0]
        no_answer = [tag for tag, status in self.status.items() if isinstance(status, str)]
        return {
            "sent": len(self.status),
            "answered": sum(1 for s in self.status.values() if s == 200),
            "gateway_timeouts": sum(1 for s in self.status.values() if s == 504),
            "other": sorted(str(s) for s in self.status.values() if s not in (200, 504)),
            "lost": len(no_answer) + len(unlogged),
            "logged_twice": sum(1 for rid in answered if counts[rid] > 1),
        }


def task_runs(cluster: Cluster) -> collections.Counter:
    """How many times each task id started on any serving worker (a redelivered task starts twice)."""
    runs: collections.Counter = collections.Counter()
    for host in cluster.workers:
        text = host.log("worker-gpu", tail=10_000_000)
        runs.update(re.findall(r"Task routing\.tasks\.\w+\[([^\]]+)\] received", text))
    return runs


def test_three_hosts_serve_with_their_own_queues_and_names(cluster):
    health = cluster.health()
    workers = {w["worker"]: w for w in health["checks"]["workers"]["workers"]}
    for host in cluster.workers:
        beat = workers[f"gpu0@{host.name}"]
        assert beat["host"] == host.name
        assert f"gpu.{host.name}.0" in beat["queues"].split(",")
    done_before = {h.name: cluster.tasks_done_on(h) for h in cluster.workers}
    tally = Tally()
    with ThreadPoolExecutor(4) as pool:
        for i in range(8):
            pool.submit(tally.send, cluster, f"spread-{i}", model_prompt(f"spread-{i}"))
    assert all(s == 200 for s in tally.status.values()), tally.status
    served = {h.name: cluster.tasks_done_on(h) - done_before[h.name] for h in cluster.workers}
    assert all(n >= 1 for n in served.values()), f"both hosts serve: {served}"
    metrics = requests.get(f"http://{cluster.a.ip}:9091/metrics", timeout=10).text
    for host in cluster.workers:
        assert f'swarm_worker_up{{worker="gpu0@{host.name}"}} 1.0' in metrics
    cluster.wait_log_drained()
    figures = tally.figures(cluster.interaction_ids())
    assert figures["lost"] == 0 and figures["logged_twice"] == 0, figures
    record("three_hosts", {**figures, "served_by_host": served, "hosts": [h.name for h in cluster.net.hosts.values()]})


def test_an_adapter_reaches_every_host_from_the_store(cluster):
    from inference.integrity import sha256_file
    from tests.cluster.cluster import model_file
    from tests.training.adapter_factory import RECORD_ADAPTER, tiny_gguf_lora

    trained = cluster.a.dir / "var" / "adapters" / "lora-v1" / "adapter.gguf"
    sha256 = tiny_gguf_lora(model_file(), trained)
    cluster.manage("shell", "-c", RECORD_ADAPTER)
    copies = {h.name: h.dir / "var" / "adapters" / "lora-v1" / "adapter.gguf" for h in cluster.workers}
    versions = set()
    try:
        for round_ in range(4):
            with ThreadPoolExecutor(4) as pool:
                for i in range(4):
                    body = model_prompt(f"adapter-{round_}-{i}") | {"max_tokens": 8, "user": f"u{i}"}
                    pool.submit(lambda b=body: versions.add(cluster.post("/orchestrate", b).json()["adapter_version"]))
            if all(p.exists() for p in copies.values()):
                break
        assert versions == {"lora-v1"}, versions
        for name, copy in copies.items():
            assert copy.exists() and sha256_file(copy) == sha256, f"{name} fetched the adapter from the store"
        record("adapter_store", {"adapter": "lora-v1", "sha256": sha256, "size": trained.stat().st_size,
                                 "fetched_by": sorted(copies), "shared_directories": 0})  # fmt: skip
    finally:
        cluster.manage("shell", "-c", "from training import rollout; rollout.reload_adapter('base')")


def test_a_host_cut_off_mid_request_loses_nothing_and_rejoins(cluster):
    b, c = cluster.b, cluster.c
    received_before = b.log("worker-gpu", tail=10_000_000).count("] received")
    done_on_c = cluster.tasks_done_on(c)
    tally = Tally()
    pool = ThreadPoolExecutor(6)
    started = time.monotonic()
    for i in range(6):
        pool.submit(tally.send, cluster, f"cut-{i}", model_prompt(f"cut-{i}"))
    # Cut B's link once it has a request in hand.
    assert until(lambda: b.log("worker-gpu", tail=10_000_000).count("] received") > received_before, 30), b.log(
        "worker-gpu"
    )
    b.link(False)
    cut_at = time.monotonic()
    pool.shutdown(wait=True)
    took = time.monotonic() - started
    b.link(True)
    # B rejoins: its heartbeat is live again, and it takes work again.
    assert until(lambda: f"gpu0@{b.name}" in cluster.serving(), 60), cluster.logs()
    rejoined_s = time.monotonic() - cut_at
    done_on_b = cluster.tasks_done_on(b)
    after = Tally()
    for i in range(8):
        after.send(cluster, f"after-{i}", model_prompt(f"after-{i}"))
        if cluster.tasks_done_on(b) > done_on_b:
            break
    assert cluster.tasks_done_on(b) > done_on_b, "B serves again after its link returns"
    # Wait past the visibility timeout: a task B held comes back, finds its deadline gone, and is dropped.
    time.sleep(DEADLINE_S + 6)
    cluster.wait_log_drained()
    figures = tally.figures(cluster.interaction_ids())
    runs = task_runs(cluster)
    redelivered = sum(1 for rid in tally.request_ids.values() if runs[rid] > 1)
    assert figures["lost"] == 0 and figures["logged_twice"] == 0 and not figures["other"], figures
    assert figures["answered"] + figures["gateway_timeouts"] == figures["sent"]
    assert took <= DEADLINE_S + 10, f"every request had its answer by the deadline ({took:.1f}s)"
    assert all(s == 200 for s in after.status.values()), after.status
    record("link_cut", {**figures, "redelivered": redelivered, "seconds": round(took, 1),
                        "rejoined_s": round(rejoined_s, 1), "deadline_s": DEADLINE_S,
                        "tasks_done_on_c_meanwhile": cluster.tasks_done_on(c) - done_on_c})  # fmt: skip


def test_postgres_restart_fails_closed_and_pays_nothing(cluster):
    unsure = "Explain why the sky looks blue in one sentence."
    with FakeProvider(answer="Rayleigh scattering.", usage=(30, 4), host=cluster.net.gateway) as provider:
        cluster.manage("budget_provider", "test-cloud", "--base-url", provider.base_url, "--model", "fake",
                       "--key-env", KEY_ENV, "--price-in", "1", "--price-out", "2", "--order", "1", "--enable",
                       "--only")  # fmt: skip
        cluster.manage("budget_policy", "--cap", "0.02", "--pool", "0.10")
        cluster.manage("budget_reset")
        unseen = cluster.manage("create_api_key", "unseen", "--rate", "0", "--concurrency", "0").split()[-1]
        cluster.stop_postgres()
        down_at = time.monotonic()
        # A key the API has not seen cannot be checked: a clear 503. A key it holds (access/key_cache.py)
        # goes on to the council and the budget, which cannot reserve: UNSURE, and no paid call.
        cold = requests.post(f"{cluster.url}/orchestrate", json={"prompt": f"{unsure} ({uuid.uuid4().hex[:6]})"},
                             headers={"Authorization": f"Bearer {unseen}"}, timeout=60)  # fmt: skip
        assert cold.status_code == 503 and "key store" in cold.json()["error"]["message"], cold.text
        held = cluster.post("/orchestrate", {"prompt": f"{unsure} ({uuid.uuid4().hex[:6]})"}, timeout=60)
        assert held.status_code == 200, held.text
        assert held.json()["route"] == "unsure" and "budget store unavailable" in held.json()["detail"], held.text
        paid_while_down = provider.calls
        cluster.start_postgres()
        back_s = time.monotonic() - down_at

        def escalates() -> bool:
            response = cluster.post("/orchestrate", {"prompt": f"{unsure} ({uuid.uuid4().hex[:6]})"}, timeout=60)
            return response.status_code == 200 and response.json()["route"] == "cloud"

        assert until(escalates, 60, interval=1.0), cluster.logs()
        recovered_s = time.monotonic() - down_at
        assert paid_while_down == 0
        record("postgres_restart", {"unseen_key_status_while_down": cold.status_code,
                                    "held_key_route_while_down": held.json()["route"], "paid_calls_while_down":
                                    paid_while_down, "down_s": round(back_s, 1),
                                    "escalating_again_after_s": round(recovered_s, 1)})  # fmt: skip
    cluster.manage("budget_provider", "test-cloud", "--disable")


def test_a_worker_host_killed_mid_batch_loses_no_interaction(cluster):
    b = cluster.b
    cheap = {"prompt": "What is 12 * 12?"}  # answered by the API (cache or exact head), logged like any other
    tally = Tally()
    stop = threading.Event()

    def hammer(worker: int) -> None:
        i = 0
        while not stop.is_set():
            tally.send(cluster, f"h{worker}-{i}", cheap, timeout=30)
            i += 1

    threads = [threading.Thread(target=hammer, args=(w,)) for w in range(6)]
    for thread in threads:
        thread.start()
    model = Tally()
    model_pool = ThreadPoolExecutor(2)
    for i in range(2):
        model_pool.submit(model.send, cluster, f"m-{i}", model_prompt(f"m-{i}"))
    time.sleep(4)
    killed = b.kill_everything()
    killed_at = time.monotonic()
    from routing.interaction_log import GROUP, STREAM_KEY

    pending = cluster.redis().xpending(STREAM_KEY, GROUP)
    left_by_b = sum(c["pending"] for c in pending.get("consumers", []) if c["name"].startswith(f"{b.name}-"))
    time.sleep(4)
    stop.set()
    for thread in threads:
        thread.join()
    model_pool.shutdown(wait=True)
    cluster.wait_log_drained(timeout=90)
    taken_over_s = time.monotonic() - killed_at
    logged = cluster.interaction_ids()
    figures = tally.figures(logged)
    model_figures = model.figures(logged)
    assert figures["lost"] == 0 and figures["logged_twice"] == 0 and not figures["other"], figures
    assert model_figures["lost"] == 0 and not model_figures["other"], model_figures
    assert figures["answered"] > 200, figures
    # B comes back and joins again.
    cluster.start_workers(b)
    cluster.wait_serving({f"gpu0@{b.name}"})
    record("host_killed", {**figures, "model_requests": model_figures, "processes_killed": len(killed),
                           "log_entries_pending_on_the_killed_host": left_by_b,
                           "log_drained_after_s": round(taken_over_s, 1)})  # fmt: skip
