"""RabbitMQ as the broker (swarm_site/broker.py): quorum queues, the settings that differ from Redis's,
the queue depths read by passive declare. No broker is reached here (tests/cluster/test_rabbitmq.py does)."""

from __future__ import annotations

from types import SimpleNamespace

import amqp.exceptions
import pytest
from celery import Celery
from celery.utils.quorum_queues import detect_quorum_queues

from swarm_site import broker
from swarm_site.queues import CeleryQueue

NAMES = [q.value for q in CeleryQueue]
URL = "amqp://guest:secret@127.0.0.1:5672/swarm"


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("amqp://guest:guest@127.0.0.1:5672//", True),
        ("amqps://u:p@mq.example:5671/swarm", True),
        ("pyamqp://127.0.0.1", True),
        ("amqp://a:5672;amqp://b:5672", True),
        ("redis://127.0.0.1:6379/0", False),
        ("sentinel://h1:26379;sentinel://h2:26379/0", False),
        ("unix:///run/redis.sock", False),
    ],
)
def test_is_amqp(url, expected):
    assert broker.is_amqp(url) is expected


def test_on_redis_the_queues_are_direct_and_plain():
    for queue in broker.task_queues(NAMES, amqp=False):
        assert queue.exchange.type == "direct" and queue.exchange.name == queue.name == queue.routing_key
        assert not queue.queue_arguments


def test_on_rabbitmq_every_queue_is_quorum_behind_a_topic_exchange_of_its_name():
    queues = broker.task_queues(NAMES, amqp=True)
    assert [q.name for q in queues] == NAMES
    for queue in queues:
        assert queue.queue_arguments == {"x-queue-type": "quorum"}
        assert queue.exchange.type == "topic" and queue.exchange.name == queue.name == queue.routing_key
        assert queue.durable and not queue.auto_delete and not queue.exclusive  # what quorum queues require
    queues[0].queue_arguments["x-other"] = 1  # each queue has its own arguments
    assert queues[1].queue_arguments == {"x-queue-type": "quorum"}


def test_the_amqp_settings_turn_on_confirms_and_leave_out_the_redis_transport_options():
    conf = broker.amqp_celery_settings(NAMES)
    assert conf["CELERY_BROKER_TRANSPORT_OPTIONS"] == {"confirm_publish": True}  # no visibility_timeout
    assert conf["CELERY_TASK_CREATE_MISSING_QUEUE_TYPE"] == conf["CELERY_TASK_DEFAULT_QUEUE_TYPE"] == "quorum"
    assert conf["CELERY_WORKER_DETECT_QUORUM_QUEUES"] is True
    assert all(name.startswith("CELERY_") for name in conf)


def _app(conf: dict) -> Celery:
    """A Celery app configured as settings.py would be on RabbitMQ (nothing connects)."""
    app = Celery("swarm-test", set_as_current=False)
    app.conf.update(
        broker_url=URL,
        task_default_queue=CeleryQueue.DEFAULT.value,
        task_create_missing_queues=True,
        **{name.removeprefix("CELERY_").lower(): value for name, value in conf.items()},
    )
    return app


def test_gpu_queues_made_by_name_are_quorum_too():
    """A worker's `-Q gpu.0,gpu` and a swap published to `gpu.<host>.<n>` make the queue by its name:
    the same quorum arguments and exchange as the worker's, or RabbitMQ would refuse the second
    declaration (PRECONDITION_FAILED, inequivalent arg 'x-queue-type')."""
    app = _app(broker.amqp_celery_settings(NAMES))
    queues = app.amqp.queues
    for name in ("gpu.0", "gpu.node-b.3"):
        made = queues[name]  # what Celery declares, publishing to or consuming from a queue it does not know
        assert made.queue_arguments == {"x-queue-type": "quorum"}
        assert made.exchange.type == "topic" and made.exchange.name == name and made.routing_key == name
    queues.select(["gpu.7", CeleryQueue.GPU.value])  # the serving worker's -Q
    assert {q.name: q.queue_arguments for q in queues.consume_from.values()} == {
        "gpu.7": {"x-queue-type": "quorum"},
        "gpu": {"x-queue-type": "quorum"},
    }
    assert detect_quorum_queues(app, "amqp") == (True, "gpu")  # per-consumer QoS, native delayed delivery


def test_on_redis_celery_makes_plain_queues():
    app = Celery("swarm-test", set_as_current=False)
    app.conf.update(broker_url="redis://127.0.0.1:6379/0", task_queues=broker.task_queues(NAMES, amqp=False))
    assert not app.amqp.queues["gpu.0"].queue_arguments
    assert detect_quorum_queues(app, "redis") == (False, "")


# --- queue depths ---------------------------------------------------------------------------------
class FakeChannel:
    def __init__(self, conn: FakeConnection) -> None:
        self.conn, self.closed = conn, False

    def queue_declare(self, queue: str, passive: bool):
        assert passive, "a depth read must never create a queue"
        assert not self.closed, "declare on a channel the broker closed"
        if self.conn.fail:
            raise self.conn.fail
        if queue not in self.conn.depths:
            self.closed = True  # RabbitMQ closes the channel with 404
            raise amqp.exceptions.NotFound(f"NOT_FOUND - no queue '{queue}'")
        return SimpleNamespace(queue=queue, message_count=self.conn.depths[queue], consumer_count=1)

    def close(self) -> None:
        self.closed = True


class FakeConnection:
    def __init__(self, depths: dict[str, int], fail: BaseException | None = None) -> None:
        self.depths, self.fail = depths, fail
        self.channels: list[FakeChannel] = []
        self.released = False

    def channel(self) -> FakeChannel:
        self.channels.append(FakeChannel(self))
        return self.channels[-1]

    def release(self) -> None:
        self.released = True


class Connector:
    def __init__(self, *connections: FakeConnection | BaseException) -> None:
        self.left = list(connections)
        self.made: list[FakeConnection] = []

    def __call__(self) -> FakeConnection:
        made = self.left.pop(0)
        if isinstance(made, BaseException):
            raise made
        self.made.append(made)
        return made


def test_depths_by_passive_declare_a_missing_queue_is_empty():
    connect = Connector(FakeConnection({"gpu": 3, "gpu.0": 0, "default": 1}))
    read = broker.AmqpQueueDepths(URL, timeout_s=1.0, connect=connect)
    assert read(["gpu", "gpu.9", "default", "gpu"]) == {"gpu": 3, "gpu.9": 0, "default": 1}
    conn = connect.made[0]
    assert len(conn.channels) == 2 and all(c.closed for c in conn.channels)  # a new channel after the 404
    assert read(["gpu.0"]) == {"gpu.0": 0}
    assert len(connect.made) == 1  # the connection is kept between reads


def test_a_kept_connection_that_died_is_made_again_once():
    dead = FakeConnection({"gpu": 1})
    connect = Connector(dead, FakeConnection({"gpu": 2}))
    read = broker.AmqpQueueDepths(URL, timeout_s=1.0, connect=connect)
    assert read(["gpu"]) == {"gpu": 1}
    dead.fail = ConnectionResetError("connection reset by peer")
    assert read(["gpu"]) == {"gpu": 2}
    assert dead.released and len(connect.made) == 2


@pytest.mark.parametrize(
    "error",
    [
        ConnectionRefusedError("refused"),
        amqp.exceptions.AccessRefused("ACCESS_REFUSED"),
        amqp.exceptions.NotAllowed("vhost not found"),
    ],
)
def test_a_broker_that_does_not_answer_raises_an_amqp_error(error):
    read = broker.AmqpQueueDepths(URL, timeout_s=1.0, connect=Connector(error, FakeConnection({"gpu": 5})))
    with pytest.raises(broker.AMQP_ERRORS):
        read(["gpu"])
    assert read(["gpu"]) == {"gpu": 5}  # the next read connects again


def test_a_channel_error_on_a_fresh_connection_is_raised_and_the_connection_dropped():
    conn = FakeConnection({"gpu": 1}, fail=amqp.exceptions.PreconditionFailed("PRECONDITION_FAILED"))
    read = broker.AmqpQueueDepths(URL, timeout_s=1.0, connect=Connector(conn))
    with pytest.raises(amqp.exceptions.PreconditionFailed):
        read(["gpu"])
    assert conn.released


def test_health_says_ok_with_the_gpu_depth_or_down_without_the_password(monkeypatch):
    monkeypatch.setattr(broker, "shared_queue_depths", lambda url, timeout_s: lambda names: {"gpu": 4})
    assert broker.broker_health(URL, 1.0) == {"status": "ok", "transport": "amqp", "gpu_queue_depth": 4}

    def down(names):
        raise ConnectionRefusedError("[Errno 111] Connection refused")

    monkeypatch.setattr(broker, "shared_queue_depths", lambda url, timeout_s: down)
    report = broker.broker_health(URL, 1.0)
    assert report["status"] == "down" and "Connection refused" in report["error"]
    assert "secret" not in report["error"] and "127.0.0.1:5672" in report["error"]


def test_check_command_passes_on_redis_and_fails_clearly_on_a_silent_rabbitmq(monkeypatch, capsys):
    monkeypatch.setenv("CELERY_BROKER_URL", "redis://127.0.0.1:6379/0")
    assert broker.main() == 0
    assert "Redis" in capsys.readouterr().out

    def refused(url, timeout_s=5.0):
        raise ConnectionRefusedError("[Errno 111] Connection refused")

    monkeypatch.setenv("CELERY_BROKER_URL", URL)
    monkeypatch.setattr(broker, "check", refused)
    assert broker.main() == 1
    err = capsys.readouterr().err
    assert "does not answer" in err and "secret" not in err


def _settings(**env: str) -> dict:
    """What swarm_site/settings.py makes of the broker, in a fresh process."""
    import json
    import os
    import subprocess
    import sys
    from pathlib import Path

    script = (
        "import json, django; django.setup(); from django.conf import settings as s; print(json.dumps({"
        "'transport': s.CELERY_BROKER_TRANSPORT_OPTIONS, 'queues': {q.name: [q.exchange.type, q.queue_arguments] "
        "for q in s.CELERY_TASK_QUEUES}, 'missing': getattr(s, 'CELERY_TASK_CREATE_MISSING_QUEUE_TYPE', None), "
        "'result': s.CELERY_RESULT_BACKEND, 'redis': s.REDIS_URL}))"
    )
    base = {k: v for k, v in os.environ.items() if not k.startswith(("SWARM_", "DJANGO_", "CELERY_", "REDIS_URL"))}
    proc = subprocess.run(
        [sys.executable, "-c", script], cwd=Path(__file__).resolve().parents[2], capture_output=True, text=True,
        env={**base, "DJANGO_SETTINGS_MODULE": "swarm_site.settings", "SWARM_ENV": "test", **env}, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.heavy  # a Django process of its own
def test_settings_with_an_amqp_broker_and_with_the_default_redis_one():
    rabbit = _settings(CELERY_BROKER_URL=URL, REDIS_URL="redis://127.0.0.1:6379/3")
    assert rabbit["transport"] == {"confirm_publish": True}
    assert rabbit["queues"] == {name: ["topic", {"x-queue-type": "quorum"}] for name in NAMES}
    assert rabbit["missing"] == "quorum"
    assert rabbit["result"] == rabbit["redis"] == "redis://127.0.0.1:6379/3"  # results and replies stay on Redis

    redis_broker = _settings()
    assert "visibility_timeout" in redis_broker["transport"] and "confirm_publish" not in redis_broker["transport"]
    assert redis_broker["queues"] == {name: ["direct", None] for name in NAMES}
    assert redis_broker["missing"] is None


class _Declared:
    def __init__(self, name: str, log: list[str]) -> None:
        self.name, self.log = name, log

    def bind(self, channel):
        assert channel == "channel"
        return self

    def declare(self) -> None:
        self.log.append(self.name)


def _worker(url: str, declared: list[str], fail: BaseException | None = None) -> SimpleNamespace:
    class Conn:
        default_channel = "channel"

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def ensure_connection(self, max_retries):
            if fail:
                raise fail

    queues = {name: _Declared(name, declared) for name in [*NAMES, "gpu.0"]}
    app = SimpleNamespace(conf=SimpleNamespace(broker_url=url), connection_for_write=Conn,
                          amqp=SimpleNamespace(queues=queues))  # fmt: skip
    return SimpleNamespace(app=app)


def test_a_starting_worker_declares_every_queue_it_knows_on_rabbitmq_only(caplog):
    declared: list[str] = []
    broker.declare_worker_queues(sender=_worker(URL, declared))
    assert declared == [*NAMES, "gpu.0"]  # `train` too: delayed delivery binds it in every worker

    declared.clear()
    broker.declare_worker_queues(sender=_worker("redis://127.0.0.1:6379/0", declared))
    assert declared == []

    broker.declare_worker_queues(sender=_worker(URL, declared, fail=ConnectionRefusedError("refused")))
    assert declared == [] and "could not declare the task queues" in caplog.text and "secret" not in caplog.text
