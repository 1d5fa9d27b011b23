"""The interaction log on real processes: the writer thread of a real worker-cpu, a private redis-server,
the stack's SQLite file. A writer SIGKILLed mid-batch loses nothing and duplicates nothing."""

from __future__ import annotations

import json
import signal
import socket
import sqlite3
import uuid
from datetime import UTC, datetime

import pytest
import redis
from celery import Celery

from routing import interaction_log as il
from tests.stack import Stack, wait_for

pytestmark = pytest.mark.integration

ENTRIES = 4000


@pytest.fixture(scope="module")
def log_stack(module_redis):
    """Migrated database and a worker-cpu reading 100 entries at a time; dead writers' entries are
    taken over after 2 s (instead of 30)."""
    stack = Stack.build(redis_url=module_redis.url, SWARM_INTERACTION_BATCH="100", SWARM_INTERACTION_CLAIM_IDLE_S="2")
    try:
        stack.migrate()
        stack.start_cpu_worker()
        yield stack, redis.Redis.from_url(module_redis.url, decode_responses=True)
    finally:
        stack.stop()


def payload(n: int, route: str = "cache") -> dict:
    return {"request_id": uuid.uuid4().hex, "created_at": datetime.now(UTC).isoformat(),
            "prompt": f"q{n} " + "x" * 2000, "answer": f"a{n}", "route": route, "skill_type": "math",
            "confidence": 1.0, "latency_ms": 1.0, "cached": True, "ballots": [{"head": "math", "n": n}]}  # fmt: skip


def query(stack: Stack, sql: str, *args) -> list[tuple]:
    with sqlite3.connect(stack.env["DATABASE_URL"].removeprefix("sqlite:///"), timeout=20) as conn:
        return conn.execute(sql, args).fetchall()


def rows(stack: Stack) -> int:
    return query(stack, "SELECT COUNT(*) FROM routing_interaction")[0][0]


def pending(client: redis.Redis) -> int:
    return client.xpending(il.STREAM_KEY, il.GROUP)["pending"]


def consumers(client: redis.Redis) -> set[str]:
    return {c["name"] for c in client.xinfo_consumers(il.STREAM_KEY, il.GROUP)}


def test_a_log_task_queued_before_the_upgrade_is_still_written(log_stack):
    stack, _ = log_stack
    legacy = Celery(broker=stack.env["REDIS_URL"])
    old = payload(-1, route="council")
    legacy.send_task("routing.tasks.log_interaction", args=[old], queue="default", serializer="json")
    wait_for(lambda: query(stack, "SELECT answer FROM routing_interaction WHERE request_id = ?", old["request_id"]),
             timeout=60, what="the legacy task's row")  # fmt: skip


def test_a_writer_killed_mid_batch_loses_nothing_and_duplicates_nothing(log_stack):
    stack, client = log_stack
    wait_for(lambda: client.exists(il.STREAM_KEY) and client.xinfo_groups(il.STREAM_KEY), timeout=60,
             what="the writer's consumer group")  # fmt: skip
    before = rows(stack)
    sent = [payload(n) for n in range(ENTRIES)]
    pipe = client.pipeline(transaction=False)
    for p in sent:
        il.interaction_append(payload=p, client=pipe)
    pipe.execute()

    # Kill it while it holds a batch: entries read and not acknowledged, some batches already written.
    wait_for(lambda: pending(client) > 0 and rows(stack) > before, timeout=60, interval=0.005,
             what="the writer in the middle of the backlog")  # fmt: skip
    stack.kill("worker-cpu")  # SIGKILL
    held, written = pending(client), rows(stack) - before
    assert held > 0 and written < ENTRIES, (held, written)

    stack.start_cpu_worker()  # a new consumer (another pid) takes the dead one's batch over
    wait_for(lambda: rows(stack) - before == ENTRIES and pending(client) == 0 and client.xlen(il.STREAM_KEY) == 0,
             timeout=180, interval=0.5, what=f"all {ENTRIES} interactions written")  # fmt: skip
    stored = query(stack, "SELECT request_id, answer FROM routing_interaction WHERE route = 'cache'")
    assert len(stored) == len({rid for rid, _ in stored}) == ENTRIES
    assert dict(stored) == {p["request_id"]: p["answer"] for p in sent}
    lines = [json.loads(line) for line in (stack.logdir / "worker-cpu.log").read_text().splitlines()
             if line.startswith("{")]  # fmt: skip
    assert any("took over" in e["message"] for e in lines)
    assert any(sent[-1]["request_id"] in e.get("request_ids", ()) for e in lines)  # the JSON line names it

    # A warm shutdown stops the writer after its batch and leaves the group.
    worker = stack.procs["worker-cpu"]
    [name] = [e["message"].split()[2] for e in lines if e["message"].startswith("interaction writer")
              and e["process"] == worker.pid]  # fmt: skip
    assert name.startswith(f"{socket.gethostname()}-{worker.pid}-") and name in consumers(client)
    stack.kill("worker-cpu", signal.SIGTERM)
    assert worker.returncode == 0
    assert f"interaction writer {name} stopped" in (stack.logdir / "worker-cpu.log").read_text()
    assert name not in consumers(client)
