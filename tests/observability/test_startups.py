"""service_startups_total{service}: starts counted in Redis by each service's start hook, read at
scrape time by /metrics and the exporter, kept across restarts."""

from __future__ import annotations

import logging
import os
import runpy
import signal
import subprocess
import sys
import textwrap
import time
from types import SimpleNamespace

import pytest
import redis
from django.test import RequestFactory
from prometheus_client import CollectorRegistry, generate_latest
from redis.backoff import NoBackoff
from redis.retry import Retry

from observability import metrics as m
from observability import startups as st
from tests.observability.promql import ROOT
from tests.observability.test_exporter import Exporter, L, collect, make, samples
from tests.observability.test_multiprocess import child_env
from tests.stack import free_port, wait_for

COUNT_A_START = "import sys; from observability.startups import record_startup; print(record_startup(sys.argv[1]))"
WRITE_REQUESTS = textwrap.dedent(
    """
    from observability import metrics as m

    for route, n in (("cloud", 3), ("council", 4), ("cache", 1)):
        for _ in range(n):
            m.record_request(route, route, 0.1, cached=route == "cache")
    """
)


def startups_of(registry_or_collector) -> dict[str, float]:
    if isinstance(registry_or_collector, CollectorRegistry):
        registry = registry_or_collector
    else:
        registry = CollectorRegistry()
        registry.register(registry_or_collector)
    got = samples(generate_latest(registry).decode())
    return {dict(labels)["service"]: v for (name, labels), v in got.items() if name == "service_startups_total"}


def process_env(tmp_path, redis_url: str, **extra: str) -> dict[str, str]:
    """The environment of a stack process on `redis_url` (no multiprocess directory)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SWARM_", "DJANGO_", "CELERY_"))}
    env.pop(m.MULTIPROC_ENV, None)
    (tmp_path / "var").mkdir(exist_ok=True)
    env.update(
        PYTHONPATH=str(ROOT),
        REDIS_URL=redis_url,
        CELERY_BROKER_URL=redis_url,
        CELERY_RESULT_BACKEND=redis_url,
        SWARM_ENV="test",
        SWARM_VAR_DIR=str(tmp_path / "var"),
        SWARM_MODEL_DIR=str(ROOT / "var" / "models"),
        DATABASE_URL=f"sqlite:///{tmp_path / 'var' / 'empty.sqlite3'}",
        **extra,
    )
    return env


def dead_redis() -> redis.Redis:
    return redis.Redis(host="127.0.0.1", port=free_port(), socket_connect_timeout=0.5, retry=Retry(NoBackoff(), 0))


# --- no server --------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("queues", "role", "service"),
    [
        (["gpu.0", "gpu"], None, "worker-gpu"),  # manage.py gpu_worker
        (["gpu.1", "gpu", "default"], "gpu", "worker-gpu"),  # an --extra-queue does not change it
        (["celery"], "gpu", "worker-gpu"),  # SWARM_WORKER_ROLE=gpu, set by gpu_worker, decides
        (["default", "cpu"], None, "worker-cpu"),  # Procfile worker-cpu
        (["train"], None, "worker-train"),
        (["default"], None, "worker-default"),  # a bookkeeping-only worker
        (["celery"], None, "worker"),
        ([], None, "worker"),
    ],
)
def test_a_worker_is_named_by_the_queues_it_consumes(queues, role, service):
    assert st.worker_service(queues, role) == service


def test_every_service_of_the_stack_has_a_name():
    assert st.SERVICES == (
        "web",
        "worker-gpu",
        "worker-cpu",
        "worker-default",
        "worker-train",
        "beat",
        "flower",
        "exporter",
    )


def test_a_start_with_redis_down_is_not_counted_and_does_not_fail(caplog):
    dead = dead_redis()
    with caplog.at_level(logging.WARNING, logger="observability.startups"):
        assert st.record_startup("web", client=dead) is None
    assert "could not count the start of web" in caplog.text


def test_a_start_with_the_stack_s_redis_down_is_not_delayed(settings):
    settings.REDIS_URL = f"redis://127.0.0.1:{free_port()}/0"
    started = time.monotonic()
    assert st.record_startup("exporter") is None
    assert time.monotonic() - started < 2  # one try, no retries with backoff


def test_a_start_with_redis_misconfigured_is_not_counted_and_does_not_fail(settings, caplog):
    settings.REDIS_URL = "redis://127.0.0.1:notaport/0"
    with caplog.at_level(logging.WARNING, logger="observability.startups"):
        assert st.record_startup("beat") is None
    assert "could not count the start of beat" in caplog.text


def test_the_startups_family_is_a_counter_per_service():
    family = st.startups_family({"web": 2, "beat": 1})
    assert family.type == "counter"
    assert [(s.name, s.labels, s.value) for s in family.samples] == [
        ("service_startups_total", {"service": "beat"}, 1.0),
        ("service_startups_total", {"service": "web"}, 2.0),
    ]
    assert "service_startups_total" in m.exported_metric_names()


def test_the_collector_leaves_the_family_out_while_redis_is_down():
    dead = dead_redis()
    assert startups_of(st.StartupsCollector(dead)) == {}


# --- real Redis (the tests' database) -------------------------------------------------------------------
@pytest.mark.integration
def test_starts_are_counted_per_service_and_survive_a_new_process(api_redis, tmp_path):
    assert st.record_startup("web", client=api_redis) == 1
    assert st.record_startup("web", client=api_redis) == 2
    assert st.record_startup("worker-gpu", client=api_redis) == 1
    assert startups_of(st.StartupsCollector(api_redis)) == {"web": 2, "worker-gpu": 1}

    # A restarted API: another process counts its start in the same Redis, a new collector reads it.
    url = api_redis.connection_pool.connection_kwargs
    redis_url = f"redis://{url['host']}:{url['port']}/{url['db']}"
    result = subprocess.run(
        [sys.executable, "-c", COUNT_A_START, "web"],
        cwd=ROOT,
        env=process_env(tmp_path, redis_url),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert result.stdout.split()[-1] == "3"
    fresh = redis.Redis.from_url(redis_url, decode_responses=True)
    assert startups_of(st.StartupsCollector(fresh)) == {"web": 3, "worker-gpu": 1}


@pytest.mark.integration
def test_the_celery_signals_count_workers_by_queue_and_beat(api_redis):
    from celery.signals import beat_init, worker_ready

    class Consumer:  # what worker_ready sends: the worker's consumer (hashable, as a sender must be)
        def __init__(self, *queues: str) -> None:
            self.app = SimpleNamespace(amqp=SimpleNamespace(queues=SimpleNamespace(consume_from=queues)))

    consumer = Consumer

    worker_ready.send(sender=consumer("default", "cpu"))
    worker_ready.send(sender=consumer("train"))
    worker_ready.send(sender=consumer("gpu.0", "gpu"))
    worker_ready.send(sender=consumer("gpu.1", "gpu"))
    worker_ready.send(sender=consumer("default"))
    beat_init.send(sender=None)
    assert st.read_startups(api_redis) == {
        "worker-cpu": 1,
        "worker-train": 1,
        "worker-gpu": 2,
        "worker-default": 1,
        "beat": 1,
    }


@pytest.mark.integration
def test_the_gunicorn_master_counts_web_when_ready(api_redis):
    hooks = runpy.run_path(str(ROOT / "swarm_site" / "gunicorn.conf.py"))
    hooks["when_ready"](SimpleNamespace(pid=os.getpid()))
    hooks["when_ready"](SimpleNamespace(pid=os.getpid()))
    assert st.read_startups(api_redis) == {"web": 2}


@pytest.mark.integration
def test_metrics_view_shows_the_starts_and_the_cloud_hit_ratio(api_redis, monkeypatch):
    monkeypatch.delenv(m.MULTIPROC_ENV, raising=False)
    st.record_startup("web", client=api_redis)
    st.record_startup("worker-cpu", client=api_redis)
    m.record_request("cloud", "cloud", 0.5, cached=False)
    response = m.metrics_view(RequestFactory().get("/metrics"))
    assert response.status_code == 200
    got = samples(response.content.decode())
    assert got[("service_startups_total", L(service="web"))] == 1
    assert got[("service_startups_total", L(service="worker-cpu"))] == 1
    every = sum(v for (name, _), v in got.items() if name == "swarm_requests_total")
    cloud = sum(v for (name, ls), v in got.items() if name == "swarm_requests_total" and ("route", "cloud") in ls)
    assert got[("swarm_cloud_hit_ratio", L())] == pytest.approx(cloud / every)


@pytest.mark.integration
def test_metrics_view_serves_without_the_starts_while_redis_is_down(settings, monkeypatch):
    from swarm_site.redis_client import get_redis

    monkeypatch.delenv(m.MULTIPROC_ENV, raising=False)
    settings.REDIS_URL = f"redis://127.0.0.1:{free_port()}/0"
    get_redis.cache_clear()
    try:
        response = m.metrics_view(RequestFactory().get("/metrics"))
    finally:
        get_redis.cache_clear()
    assert response.status_code == 200
    text = response.content.decode()
    assert "service_startups_total" not in text and "swarm_cloud_hit_ratio " in text


@pytest.mark.integration
def test_merged_multiprocess_counters_give_the_cloud_hit_ratio_on_both_pages(api_redis, tmp_path):
    """A process answered 3 of 8 requests by the cloud: /metrics and the exporter both say 0.375."""
    path = tmp_path / "multiproc"
    path.mkdir()
    subprocess.run([sys.executable, "-c", WRITE_REQUESTS], cwd=ROOT, env=child_env(path), check=True, timeout=60)
    st.record_startup("web", client=api_redis)

    api = samples(m.render(m.aggregated_registry(str(path), startups_client=api_redis)).decode())
    exporter = collect(make(api_redis, multiproc_dir=str(path)))
    for got in (api, exporter):
        assert got[("swarm_cloud_hit_ratio", L())] == pytest.approx(3 / 8)
        assert got[("service_startups_total", L(service="web"))] == 1

    empty = tmp_path / "empty"
    empty.mkdir()
    got = samples(m.render(m.aggregated_registry(str(empty))).decode())
    assert got[("swarm_cloud_hit_ratio", L())] == 0


@pytest.mark.integration
def test_the_exporter_counts_its_own_starts_across_restarts(api_redis, shared_redis_url, tmp_path):
    st.record_startup("web", client=api_redis)
    for n in (1, 2):
        exporter = Exporter(tmp_path, shared_redis_url)
        try:
            _, got = exporter.scrape()
            assert got[("service_startups_total", L(service="exporter"))] == n
            assert got[("service_startups_total", L(service="web"))] == 1
            assert got[("swarm_exporter_source_up", L(source="redis"))] == 1
        finally:
            assert exporter.stop() == 0


# --- real Celery processes -------------------------------------------------------------------------------
def _run_until_counted(argv: list[str], env: dict[str, str], client: redis.Redis, service: str, log_path) -> None:
    with open(log_path, "w+b") as log:
        proc = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            wait_for(
                lambda: st.read_startups(client).get(service) == 1,
                timeout=60,
                interval=0.3,
                what=f"{service} counted",
            )
        except TimeoutError:
            log.seek(0)
            raise TimeoutError(f"{service} never counted its start; log:\n{log.read().decode()[-4000:]}") from None
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)


@pytest.mark.integration
def test_real_celery_beat_and_a_bookkeeping_worker_count_their_starts(api_redis, shared_redis_url, tmp_path):
    env = process_env(tmp_path, shared_redis_url)
    celery = [sys.executable, "-m", "celery", "-A", "swarm_site"]
    # The worker first: it must not run what beat sends.
    worker = [*celery, "worker", "-Q", "default", "-n", f"obs-startups-{free_port()}@%h", "--pool", "solo",
              "--without-mingle", "--without-gossip", "--loglevel", "INFO"]  # fmt: skip
    _run_until_counted(worker, env, api_redis, "worker-default", tmp_path / "worker.log")
    # beat's scheduler is django-celery-beat's: its tables must exist, as in the stack.
    subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v0"], cwd=ROOT, env=env, check=True)
    beat = [*celery, "beat", "--loglevel", "INFO", "--pidfile", "", "-s", str(tmp_path / "beat-schedule")]
    _run_until_counted(beat, env, api_redis, "beat", tmp_path / "beat.log")
    assert st.read_startups(api_redis) == {"beat": 1, "worker-default": 1}
