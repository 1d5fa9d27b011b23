"""Celery's broker: Redis (the default, CELERY_BROKER_URL = REDIS_URL) or RabbitMQ (amqp://).

Whatever the broker, the reply path (the per-request Redis stream), the cache, the heartbeats and the
result backend stay on Redis (REDIS_URL). With RabbitMQ:

* every task queue is a quorum queue (`x-queue-type: quorum`, replicated, durable): the five of
  `CeleryQueue`, and the `gpu.<n>` / `gpu.<host>.<n>` ones that Celery makes as workers start or as a
  swap is published to them (`task_create_missing_queue_type`);
* each queue sits behind a topic exchange of its own name, bound by its exact name, so that Celery's
  native delayed delivery carries a countdown (`training.tasks.train` waiting for the GPU lock,
  `routing.tasks.log_interaction`'s back-off) inside the broker: a direct exchange would leave the
  message in the worker's memory until it is due, holding one of the prefetch places that quorum
  queues cannot raise (they have no global QoS: each consumer has its own prefetch count);
* publisher confirms: a publish returns once RabbitMQ has the message, and a refused one raises
  (`AMQP_ERRORS`: the API answers 503) instead of vanishing;
* none of the Redis transport's options (`visibility_timeout`): RabbitMQ requeues an unacknowledged
  message as soon as the connection of the worker holding it closes, and its `consumer_timeout`
  (30 min by default) closes a channel whose delivery stays unacknowledged longer than that.

A worker declares every queue it knows as it starts (`declare_worker_queues`, connected to
`worker_init` in swarm_site/celery.py). `AmqpQueueDepths` reads how many messages wait in each queue
(passive `queue.declare`), for the exporter's `swarm_queue_depth` and `/health`'s `broker` check.
`scripts/check_broker.py` says whether an amqp:// broker answers (`make up` runs it; nothing here
starts RabbitMQ).
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import threading
from collections.abc import Callable, Iterable
from functools import lru_cache
from typing import Any

import amqp.exceptions
import kombu
import kombu.exceptions
from kombu import Exchange, Queue

log = logging.getLogger(__name__)

AMQP_SCHEMES = ("amqp://", "amqps://", "pyamqp://")
QUORUM = {"x-queue-type": "quorum"}
# What a publish or a read of RabbitMQ raises when it is down, refuses the message (a nack: publisher
# confirms) or the channel (a queue declared with other arguments, say). The Redis errors are apart.
AMQP_ERRORS: tuple[type[BaseException], ...] = (
    kombu.exceptions.OperationalError, amqp.exceptions.AMQPError, amqp.exceptions.MessageNacked, OSError,
)  # fmt: skip


def is_amqp(url: str) -> bool:
    """Whether a broker URL (or the first of a `;` failover list) is RabbitMQ's."""
    return url.strip().startswith(AMQP_SCHEMES)


def task_queues(names: Iterable[str], *, amqp: bool) -> list[Queue]:
    """Celery's queues: on Redis, each behind a direct exchange of its name; on RabbitMQ, each a quorum
    queue behind a topic exchange of its name, bound by that exact name (see the module docstring)."""
    if not amqp:
        return [Queue(name, Exchange(name, type="direct"), routing_key=name) for name in names]
    return [Queue(name, Exchange(name, type="topic"), routing_key=name, queue_arguments=dict(QUORUM)) for name in names]


def amqp_celery_settings(queue_names: Iterable[str]) -> dict[str, Any]:
    """The CELERY_* settings that differ when the broker is RabbitMQ (swarm_site/settings.py applies
    them over the Redis ones). Needs Celery >= 5.5 for the queue types."""
    return {
        "CELERY_TASK_QUEUES": task_queues(queue_names, amqp=True),
        # Queues Celery makes by name: gpu.<n> at worker start (-Q), or when a swap is published to one.
        "CELERY_TASK_CREATE_MISSING_QUEUE_TYPE": "quorum",
        "CELERY_TASK_CREATE_MISSING_QUEUE_EXCHANGE_TYPE": "topic",
        "CELERY_TASK_DEFAULT_QUEUE_TYPE": "quorum",
        "CELERY_TASK_DEFAULT_EXCHANGE_TYPE": "topic",
        # Quorum queues have no global QoS: per-consumer prefetch (a worker consuming gpu.<n> and gpu may
        # hold one message of each), and countdowns by native delayed delivery (the topic exchanges).
        "CELERY_WORKER_DETECT_QUORUM_QUEUES": True,
        # Publisher confirms; and no visibility_timeout (a Redis transport option).
        "CELERY_BROKER_TRANSPORT_OPTIONS": {"confirm_publish": True},
        # A broker connection lost mid-task: RabbitMQ requeues the message at once. The running task is
        # left to finish (its answer reaches the client through Redis); the redelivered copy is answered
        # again, which is harmless (Celery's coming default would kill the model's process instead).
        "CELERY_WORKER_CANCEL_LONG_RUNNING_TASKS_ON_CONNECTION_LOSS": False,
    }


def declare_worker_queues(sender: Any = None, **kwargs: Any) -> None:
    """`worker_init` handler: on RabbitMQ, declare every queue the starting worker knows (the five of
    CeleryQueue and the gpu.<n> of its -Q), with its exchange and binding. Celery's native delayed
    delivery binds all of them at start, and an exchange no one has declared yet (`train`, before a
    training worker ever ran) would fail its whole set-up. A broker down here is only a warning: the
    worker's own connection waits for it."""
    app = getattr(sender, "app", None)
    if app is None or not is_amqp(str(app.conf.broker_url or "")):
        return
    try:
        with app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1)
            channel = conn.default_channel
            for queue in app.amqp.queues.values():
                queue.bind(channel).declare()
    except AMQP_ERRORS as exc:
        log.warning("could not declare the task queues on %s: %s", redacted(str(app.conf.broker_url)), exc)


class AmqpQueueDepths:
    """Messages ready in each of some RabbitMQ queues (passive `queue.declare`: nothing is created), over
    one connection kept between calls and made again after a failure. A queue that does not exist yet
    holds 0. Unacknowledged messages (running tasks) are not counted, as with Redis's LLEN.

    Calls are serialised; each waits at most `timeout_s` for the broker (connect, and every read)."""

    def __init__(self, url: str, *, timeout_s: float, connect: Callable[[], Any] | None = None) -> None:
        self._url = url
        self._timeout_s = timeout_s
        self._connect = connect or self._new_connection
        self._conn: Any = None
        self._lock = threading.Lock()

    def _new_connection(self) -> kombu.Connection:
        conn = kombu.Connection(
            self._url,
            connect_timeout=self._timeout_s,
            # SO_RCVTIMEO / SO_SNDTIMEO: a broker that stops answering ends a read, not the caller.
            transport_options={"read_timeout": self._timeout_s, "write_timeout": self._timeout_s},
        )
        conn.connect()
        return conn

    def __call__(self, names: Iterable[str]) -> dict[str, int]:
        names = list(dict.fromkeys(names))
        if not self._lock.acquire(timeout=self._timeout_s):
            raise TimeoutError("another read of the broker's queues is still waiting for it")
        try:
            reused = self._conn is not None
            try:
                return self._read(names)
            except AMQP_ERRORS:
                self.close()
                if not reused:
                    raise
            return self._read(names)  # a kept connection may have died quietly: once more, on a new one
        except BaseException:
            self.close()
            raise
        finally:
            self._lock.release()

    def _read(self, names: list[str]) -> dict[str, int]:
        if self._conn is None:
            self._conn = self._connect()
        channel = self._conn.channel()
        depths: dict[str, int] = {}
        try:
            for name in names:
                try:
                    depths[name] = int(channel.queue_declare(queue=name, passive=True).message_count)
                except amqp.exceptions.NotFound:
                    depths[name] = 0  # never declared: nothing was ever sent to it
                    channel = self._conn.channel()  # the broker closed the channel with the 404
        finally:
            with contextlib.suppress(*AMQP_ERRORS):
                channel.close()
        return depths

    def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(*AMQP_ERRORS):
                conn.release()


@lru_cache(maxsize=4)
def shared_queue_depths(url: str, timeout_s: float) -> AmqpQueueDepths:
    """One reader (one connection) per process for `url`: what /health uses."""
    return AmqpQueueDepths(url, timeout_s=timeout_s)


def broker_health(url: str, timeout_s: float) -> dict[str, Any]:
    """/health's `broker` check on RabbitMQ: ok with the depth of the shared `gpu` queue, or down."""
    try:
        depth = shared_queue_depths(url, timeout_s)(["gpu"])["gpu"]
    except AMQP_ERRORS as exc:
        return {"status": "down", "error": f"RabbitMQ at {redacted(url)}: {type(exc).__name__}: {exc}"}
    return {"status": "ok", "transport": "amqp", "gpu_queue_depth": depth}


def redacted(url: str) -> str:
    """The URL with its password replaced by `**` (kombu's own form), for messages."""
    from kombu.utils.url import maybe_sanitize_url

    return maybe_sanitize_url(url)


def check(url: str, timeout_s: float = 5.0) -> str:
    """One line saying the amqp:// broker answers, with the depth of the shared `gpu` queue; raises
    one of AMQP_ERRORS when it does not."""
    reader = AmqpQueueDepths(url, timeout_s=timeout_s)
    try:
        depth = reader(["gpu"])["gpu"]
    finally:
        reader.close()
    return f"broker: {redacted(url)} answers (RabbitMQ; {depth} message(s) waiting in gpu)"


def main() -> int:
    """scripts/check_broker.py: exit 0 when the broker of CELERY_BROKER_URL (.env included)
    answers or is Redis (checked with REDIS_URL by scripts/ensure_redis.py), 1 with the reason otherwise."""
    from pathlib import Path

    from swarm_site.env import load_dotenv

    load_dotenv(Path(__file__).resolve().parent.parent)
    url = os.environ.get("CELERY_BROKER_URL", "")
    if not is_amqp(url):
        print("broker: Redis (the broker is not amqp://; nothing to check here)")
        return 0
    try:
        print(check(url))
    except AMQP_ERRORS as exc:
        print(
            f"broker: RabbitMQ at {redacted(url)} does not answer ({type(exc).__name__}: {exc}); start it, "
            "create the vhost and grant the user on it, or set CELERY_BROKER_URL (docs/OPERATIONS.md)",
            file=sys.stderr,
        )
        return 1
    return 0
