"""The exporter with RabbitMQ as the broker: queue depths come from the depth reader (passive declare),
not from Redis lists; a broker that does not answer is `swarm_exporter_source_up{source="broker"} 0`."""

from __future__ import annotations

import amqp.exceptions
import redis
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from observability import exporter as ex


def _scrape(collector: ex.SwarmExporterCollector) -> dict[tuple[str, frozenset], float]:
    registry = CollectorRegistry()
    registry.register(collector)
    text = generate_latest(registry).decode()
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def L(**labels: str) -> frozenset:
    return frozenset(labels.items())


class SilentRedis:
    """Redis does not answer here: the broker's part of the scrape stands on its own."""

    def __getattr__(self, name: str):
        def call(*args, **kwargs):
            raise redis.ConnectionError("Connection refused")

        return call


def _collector(read) -> ex.SwarmExporterCollector:
    silent = SilentRedis()
    return ex.SwarmExporterCollector(redis_client=silent, queue_depths=read, queue_names=["gpu", "default"],
                                     budget_reader=lambda: None, gpu_reader=list)  # fmt: skip


def test_depths_come_from_the_reader_for_every_queue():
    asked = []

    def read(names):
        asked.append(names)
        return {"gpu": 4}  # "default" not reported: 0

    got = _scrape(_collector(read))
    assert asked == [["gpu", "default"]]
    assert got[("swarm_queue_depth", L(queue="gpu"))] == 4
    assert got[("swarm_queue_depth", L(queue="default"))] == 0
    assert got[("swarm_exporter_source_up", L(source="broker"))] == 1
    assert got[("swarm_exporter_source_up", L(source="redis"))] == 0


def test_a_silent_rabbitmq_is_a_broker_source_down_not_a_failed_scrape():
    for error in (ConnectionRefusedError("refused"), amqp.exceptions.AccessRefused("ACCESS_REFUSED"), TimeoutError()):

        def read(names, error=error):
            raise error

        got = _scrape(_collector(read))
        assert got[("swarm_exporter_source_up", L(source="broker"))] == 0
        assert not [key for key in got if key[0] == "swarm_queue_depth"]
