"""SWARM_REDIS_MIN_REPLICAS_ACK: the interaction append waits for replicas (XADD + WAIT, one round trip); a miss
is counted and answered, a failed append is a 503 (real redis-servers: a primary and, for some tests, a replica)."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
import uuid
from datetime import UTC, datetime

import pytest
import redis
from rest_framework.exceptions import APIException

from observability import metrics
from routing import interaction_log as il
from routing import services
from swarm_site.redis_client import get_redis
from tests.stack import free_port, wait_for


@pytest.fixture
def primary(module_redis, settings):
    """The API's Redis on this module's redis-server, emptied, appends waiting for one replica."""
    settings.REDIS_URL = module_redis.url
    settings.SWARM_REDIS_MIN_REPLICAS_ACK = 1
    settings.SWARM_REDIS_REPLICA_ACK_TIMEOUT_MS = 100
    get_redis.cache_clear()
    client = redis.Redis.from_url(module_redis.url, decode_responses=True)
    client.flushdb()
    yield client
    get_redis.cache_clear()


@pytest.fixture
def replica(primary, module_redis):
    """A redis-server replicating the module's, in sync."""
    port, data = free_port(), tempfile.mkdtemp(prefix="swarm-replica-")
    proc = subprocess.Popen(
        [shutil.which("redis-server"), "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--dir", data, "--replicaof", "127.0.0.1", str(module_redis.port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    client = redis.Redis(port=port, decode_responses=True)
    try:
        wait_for(lambda: client.info("replication")["master_link_status"] == "up", timeout=20, what="replica in sync")
        wait_for(lambda: primary.info("replication")["connected_slaves"] == 1, timeout=20, what="primary sees it")
        yield client
    finally:
        proc.kill()
        proc.wait(10)
        shutil.rmtree(data, ignore_errors=True)


def payload() -> dict:
    return {"request_id": uuid.uuid4().hex, "created_at": datetime.now(UTC).isoformat(), "prompt": "What is 2+2?",
            "answer": "4", "route": "council", "skill_type": "math", "confidence": 1.0}  # fmt: skip


def misses() -> float:
    return metrics.REPLICA_ACK_MISSES._value.get()


def test_an_append_acknowledged_by_a_replica_is_on_the_replica_when_it_returns(primary, replica):
    before = misses()
    assert il.interaction_append(payload=payload())
    assert replica.xlen(il.STREAM_KEY) == 1  # WAIT returned: the replica holds it already
    assert misses() == before


def test_without_a_replica_the_append_is_counted_as_a_miss_and_answered(primary):
    before = misses()
    started = time.monotonic()
    services._publish_log(payload())  # no exception: the answer goes out
    took = time.monotonic() - started
    assert primary.xlen(il.STREAM_KEY) == 1
    assert misses() - before == 1
    assert 0.09 <= took < 0.5  # WAIT 1 100: the timeout, within the socket timeout


def test_with_replica_acks_on_a_failed_append_is_a_503_not_a_dropped_answer(primary, settings):
    settings.REDIS_URL = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens
    get_redis.cache_clear()
    dropped = metrics.INTERACTIONS_DROPPED.labels(reason="append")._value.get()
    with pytest.raises(APIException) as failed:
        services._publish_log(payload())
    assert failed.value.status_code == 503 and "interaction log" in str(failed.value.detail)
    assert metrics.INTERACTIONS_DROPPED.labels(reason="append")._value.get() == dropped  # nothing answered


def test_a_pipeline_gets_the_xadd_alone(primary):
    pipe = get_redis().pipeline(transaction=False)
    assert il.interaction_append(payload=payload(), client=pipe)
    assert len(pipe.command_stack) == 1
    pipe.execute()
    assert primary.xlen(il.STREAM_KEY) == 1
