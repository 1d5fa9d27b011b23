"""``service_startups_total{service}``: how many times each service of the stack has started.

The count lives in Redis, in the hash ``swarm:startups`` (one field per service, ``HINCRBY`` by one
at each start), so it survives the restart of any process, of the API and of the whole stack (the
multiprocess metrics directory is emptied when the stack starts). Nothing is kept per process:
the API's /metrics and the exporter read the hash at scrape time (:class:`StartupsCollector`).

What counts as a start of each service:

* ``web``: the gunicorn master is up and listening (gunicorn ``when_ready`` in
  swarm_site/gunicorn.conf.py), once per API start or restart, not once per worker process:
  WEB_CONCURRENCY would multiply it, and gunicorn replacing a worker is not a service start;
* ``worker-gpu``, ``worker-cpu``, ``worker-default``, ``worker-train``: a Celery worker is ready to
  consume (``worker_ready``, once per worker, not per pool process). The service is named by the
  queues the worker consumes (or ``SWARM_WORKER_ROLE=gpu``, set by ``manage.py gpu_worker``):
  a ``gpu``/``gpu.<n>`` queue makes it ``worker-gpu``, then ``train``, then ``cpu`` (the Procfile's
  worker-cpu consumes ``default,cpu``), then ``default`` (a bookkeeping-only worker);
  any other set of queues counts as ``worker``;
* ``beat``: Celery beat's scheduler starts (``beat_init``);
* ``flower``: ``manage.py run_flower`` is about to exec Flower;
* ``exporter``: the exporter is listening (observability.exporter.serve).

A Redis that is down (or a misconfiguration) when a service starts never stops it from starting:
the start goes uncounted and a warning is logged.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Iterator
from typing import Any

import redis
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector
from redis.backoff import NoBackoff
from redis.retry import Retry

from observability import metrics as m
from swarm_site.queues import gpu_queue_parts

log = logging.getLogger(__name__)

STARTUPS_KEY = "swarm:startups"

WEB = "web"
WORKER_GPU = "worker-gpu"
WORKER_CPU = "worker-cpu"
WORKER_DEFAULT = "worker-default"
WORKER_TRAIN = "worker-train"
WORKER_OTHER = "worker"
BEAT = "beat"
FLOWER = "flower"
EXPORTER = "exporter"
SERVICES = (WEB, WORKER_GPU, WORKER_CPU, WORKER_DEFAULT, WORKER_TRAIN, BEAT, FLOWER, EXPORTER)

REDIS_ERRORS: tuple[type[BaseException], ...] = (redis.RedisError, ConnectionError, OSError)


def _settings_client() -> redis.Redis:
    """A short-lived client on the stack's Redis (Django settings; they need not be set up). One
    try within SWARM_REDIS_TIMEOUT_S: a Redis that is down delays no start."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "swarm_site.settings")
    from django.conf import settings

    from swarm_site.redis_client import redis_from_url

    timeout = float(settings.SWARM_REDIS_TIMEOUT_S)
    return redis_from_url(
        settings.REDIS_URL,
        socket_connect_timeout=timeout,
        socket_timeout=timeout,
        retry=Retry(NoBackoff(), 0),
        decode_responses=True,
    )


def record_startup(service: str, client: redis.Redis | None = None) -> int | None:
    """Count one start of `service`; the new count, or None when it could not be counted (logged).

    `client`: a redis.Redis; by default a client on settings.REDIS_URL, closed afterwards."""
    own = client is None
    try:
        if client is None:
            client = _settings_client()
        count = int(client.hincrby(STARTUPS_KEY, service, 1))
    except Exception as exc:  # noqa: BLE001 - counting a start must never stop the service starting
        log.warning("could not count the start of %s in Redis (%s): %s", service, STARTUPS_KEY, exc)
        return None
    finally:
        if own and client is not None:
            client.close()
    log.info("%s started (start number %d)", service, count)
    return count


def read_startups(client: redis.Redis) -> dict[str, int]:
    """{service: starts} from Redis; fields that are not integers are skipped."""
    counts: dict[str, int] = {}
    for field, value in client.hgetall(STARTUPS_KEY).items():
        name = field.decode() if isinstance(field, bytes) else str(field)
        try:
            counts[name] = int(value)
        except (TypeError, ValueError):
            log.warning("ignoring malformed %s[%r]: %r", STARTUPS_KEY, name, value)
    return counts


def startups_family(counts: dict[str, int]) -> Metric:
    family = m.SERVICE_STARTUPS.family()
    for service in sorted(counts):
        family.add_metric([service], float(counts[service]))
    return family


class StartupsCollector(Collector):
    """service_startups_total read from Redis on every collect(); nothing while Redis is down."""

    def __init__(self, client: redis.Redis) -> None:
        self._client = client

    def describe(self) -> list[Metric]:
        return [m.SERVICE_STARTUPS.family()]

    def collect(self) -> Iterator[Metric]:
        try:
            counts = read_startups(self._client)
        except REDIS_ERRORS as exc:
            log.warning("could not read %s: %s", STARTUPS_KEY, exc)
            return
        yield startups_family(counts)


# --- the hooks that count the starts --------------------------------------------------------
def worker_service(queues: Iterable[str], role: str | None = None) -> str:
    """The service a Celery worker belongs to, by the queues it consumes (see the module docstring)."""
    names = {str(q).strip() for q in queues}
    if role == "gpu" or any(q == "gpu" or gpu_queue_parts(q) for q in names):
        return WORKER_GPU
    for queue, service in (("train", WORKER_TRAIN), ("cpu", WORKER_CPU), ("default", WORKER_DEFAULT)):
        if queue in names:
            return service
    return WORKER_OTHER


def _consumer_queues(consumer: Any) -> list[str]:
    """Names of the queues a Celery worker consumer consumes (from `-Q`, or all of the app's)."""
    try:
        return list(consumer.app.amqp.queues.consume_from)
    except AttributeError:
        return []


def on_worker_ready(sender: Any = None, **_: Any) -> None:
    """Celery ``worker_ready``: sent once by the worker's main process when it starts consuming."""
    record_startup(worker_service(_consumer_queues(sender), os.environ.get("SWARM_WORKER_ROLE")))


def on_beat_init(**_: Any) -> None:
    """Celery ``beat_init``: beat's scheduler service starts."""
    record_startup(BEAT)


def connect_celery_signals() -> None:
    """Called from ObservabilityConfig.ready(): every Celery process of the stack sets Django up."""
    from celery.signals import beat_init, worker_ready

    worker_ready.connect(on_worker_ready, weak=False, dispatch_uid="swarm-startups-worker")
    beat_init.connect(on_beat_init, weak=False, dispatch_uid="swarm-startups-beat")


def gunicorn_when_ready(_server: Any = None) -> None:
    """gunicorn ``when_ready`` (master, once per API start)."""
    record_startup(WEB)
