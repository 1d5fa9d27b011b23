"""The interaction log's stream: the API appends, a writer drains in batches (real Redis, real database)."""

from __future__ import annotations

import json
import logging
import socket
import time
import uuid
from datetime import UTC, datetime

import pytest
import redis
from django.db import DatabaseError, connection

from observability import metrics
from routing import interaction_log as il
from routing import services
from routing.models import Interaction
from swarm_site.redis_client import get_blocking_redis, get_redis
from tests.stack import free_port, wait_for

pytestmark = pytest.mark.django_db(transaction=True)  # the writer commits, as it does in worker-cpu


@pytest.fixture
def stream(module_redis, settings):
    """The API's Redis (and the writers' blocking client) on a redis-server of this module's own, emptied:
    no stack's writer (the session's worker-cpu) reads these entries."""
    settings.REDIS_URL = module_redis.url
    get_redis.cache_clear()
    get_blocking_redis.cache_clear()
    client = redis.Redis.from_url(module_redis.url, decode_responses=True)
    client.flushdb()
    yield client
    get_redis.cache_clear()
    get_blocking_redis.cache_clear()


def payload(n: int = 0, **extra) -> dict:
    return {"request_id": uuid.uuid4().hex, "created_at": datetime.now(UTC).isoformat(), "endpoint": "orchestrate",
            "prompt": f"What is {n}+{n}?", "answer": str(2 * n), "route": "council", "skill_type": "math",
            "confidence": 1.0, "latency_ms": 3.5, "cost_usd": 0.0, "model": "m", "provider": "", "detail": "",
            "adapter_version": "base", "cached": False, "status": "ok", "prompt_tokens": 5, "completion_tokens": 1,
            "ballots": [{"head": "math", "answer": str(2 * n)}], **extra}  # fmt: skip


def dropped(reason: str) -> float:
    return metrics.INTERACTIONS_DROPPED.labels(reason=reason)._value.get()


def pending(client) -> int:
    return client.xpending(il.STREAM_KEY, il.GROUP)["pending"]


def test_appended_interactions_are_written_in_one_batch_and_leave_the_stream(stream, caplog):
    sent = [payload(n) for n in range(120)]
    assert all(il.interaction_append(payload=p) for p in sent)
    assert stream.xlen(il.STREAM_KEY) == 120

    with caplog.at_level(logging.INFO, logger="routing.interaction_log"):
        assert il.InteractionWriter(consumer="w1").drain_once(block_ms=None) == 120
    [line] = [r for r in caplog.records if r.getMessage().startswith("wrote")]
    assert line.request_ids == [p["request_id"] for p in sent]  # the JSON log line names every request
    assert Interaction.objects.count() == 120
    row = Interaction.objects.get(request_id=sent[7]["request_id"])
    assert (row.prompt, row.answer, row.route, row.confidence, row.ballots) == (
        "What is 7+7?", "14", "council", 1.0, [{"head": "math", "answer": "14"}])  # fmt: skip
    assert row.created_at == datetime.fromisoformat(sent[7]["created_at"])
    assert stream.xlen(il.STREAM_KEY) == 0 and pending(stream) == 0  # acknowledged and deleted


def test_the_api_call_site_appends_to_the_stream(stream):
    services._publish_log(payload(3))
    assert stream.xlen(il.STREAM_KEY) == 1
    il.InteractionWriter(consumer="w1").drain_once(block_ms=None)
    assert Interaction.objects.get().answer == "6"


def test_a_batch_larger_than_the_read_count_drains_in_several_reads(stream):
    for n in range(25):
        il.interaction_append(payload=payload(n))
    writer = il.InteractionWriter(consumer="w1", batch=10)
    assert [writer.drain_once(block_ms=None) for _ in range(4)] == [10, 10, 5, 0]
    assert Interaction.objects.count() == 25


def test_the_same_request_delivered_twice_is_one_row_updated(stream):
    first = payload(1)
    il.interaction_append(payload=first)
    writer = il.InteractionWriter(consumer="w1")
    writer.drain_once(block_ms=None)
    il.interaction_append(payload={**first, "answer": "two"})  # the same request again
    writer.drain_once(block_ms=None)
    assert Interaction.objects.count() == 1 and Interaction.objects.get().answer == "two"


def test_a_writer_killed_after_reading_loses_nothing_and_duplicates_nothing(stream):
    """Writer A reads a batch and dies before acknowledging it (some of it already written by then, here
    by a third writer); writer B takes the batch over after the idle time: every request once."""
    sent = [payload(n) for n in range(30)]
    for p in sent:
        il.interaction_append(payload=p)
    dead = il.InteractionWriter(consumer="dead")
    assert len(dead._read(">", None)) == 30 and pending(stream) == 30  # read, never acknowledged
    for p in sent[:10]:  # the first ten were committed before it died: they arrive again
        il.interaction_append(payload=p)
    il.InteractionWriter(consumer="other").drain_once(block_ms=None)
    assert Interaction.objects.count() == 10

    survivor = il.InteractionWriter(consumer="survivor", claim_idle_s=0.05)
    time.sleep(0.1)
    assert survivor.reclaim() == 30
    assert Interaction.objects.count() == 30
    assert set(Interaction.objects.values_list("request_id", flat=True)) == {p["request_id"] for p in sent}
    assert pending(stream) == 0 and stream.xlen(il.STREAM_KEY) == 0


def test_entries_pending_less_than_the_idle_time_are_left_to_their_writer(stream):
    il.interaction_append(payload=payload())
    il.InteractionWriter(consumer="busy")._read(">", None)
    assert il.InteractionWriter(consumer="other", claim_idle_s=30).reclaim() == 0
    assert pending(stream) == 1 and Interaction.objects.count() == 0


def test_malformed_entries_are_counted_acknowledged_and_never_wedge_the_writer(stream, caplog):
    good = [payload(1), payload(2)]
    bad = [
        {"data": "not json"},
        {"data": "[1, 2]"},
        {"other": "field"},
        {"data": json.dumps({k: v for k, v in payload().items() if k != "created_at"})},
        {"data": json.dumps(payload(created_at="yesterday"))},
        {"data": json.dumps(payload(colour="blue"))},  # not a field of the table
        {"data": json.dumps(payload(confidence="very"))},  # refused when the batch is stored
    ]
    il.interaction_append(payload=good[0])
    for fields in bad:
        stream.xadd(il.STREAM_KEY, fields)
    il.interaction_append(payload=good[1])
    before = dropped("malformed")
    with caplog.at_level(logging.ERROR, logger="routing.interaction_log"):
        assert il.InteractionWriter(consumer="w1").drain_once(block_ms=None) == 9
    assert dropped("malformed") - before == 7
    assert sorted(Interaction.objects.values_list("answer", flat=True)) == ["2", "4"]
    assert pending(stream) == 0 and stream.xlen(il.STREAM_KEY) == 0
    assert sum("malformed" in r.getMessage() or "cannot be stored" in r.getMessage() for r in caplog.records) == 7


def test_a_database_error_leaves_the_batch_pending_until_it_can_be_written(stream):
    """Not the entries' fault (here the table is missing): nothing is dropped, the same batch is written
    once the database is back."""
    for n in range(5):
        il.interaction_append(payload=payload(n))
    writer = il.InteractionWriter(consumer="w1")
    before = dropped("malformed")
    with connection.cursor() as cursor:
        cursor.execute("ALTER TABLE routing_interaction RENAME TO routing_interaction_away")
    try:
        with pytest.raises(DatabaseError):
            writer.drain_once(block_ms=None)
    finally:
        with connection.cursor() as cursor:
            cursor.execute("ALTER TABLE routing_interaction_away RENAME TO routing_interaction")
    assert pending(stream) == 5 and dropped("malformed") == before
    assert writer.drain_once(block_ms=None) == 5  # its own pending entries, before new ones
    assert Interaction.objects.count() == 5 and pending(stream) == 0


def test_pending_entries_trimmed_before_they_were_written_are_counted(stream):
    for n in range(3):
        il.interaction_append(payload=payload(n))
    il.InteractionWriter(consumer="dead")._read(">", None)
    stream.xtrim(il.STREAM_KEY, maxlen=0)  # the length cap removed them
    before = dropped("trimmed")
    survivor = il.InteractionWriter(consumer="survivor", claim_idle_s=0.01)
    time.sleep(0.05)
    assert survivor.reclaim() == 0
    assert dropped("trimmed") - before == 3 and pending(stream) == 0


def test_the_stream_is_capped(stream, settings):
    settings.SWARM_INTERACTION_STREAM_MAXLEN = 1000
    for n in range(3000):
        il.interaction_append(payload={"request_id": str(n)})
    assert 1000 <= stream.xlen(il.STREAM_KEY) < 3000


def test_a_deleted_stream_is_recreated_by_the_writer(stream):
    writer = il.InteractionWriter(consumer="w1")
    writer.ensure_group()
    stream.flushdb()  # the stream and its group are gone
    il.interaction_append(payload=payload(4))
    assert writer.drain_once(block_ms=None) == 0  # NOGROUP: the group is made again, from the start
    assert writer.drain_once(block_ms=None) == 1
    assert Interaction.objects.get().answer == "8"


def _silent_server() -> socket.socket:
    """A listening socket that never answers: a stalled Redis."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    return server


@pytest.mark.parametrize("outage", ["down", "stalled"])
def test_redis_unavailable_on_append_is_counted_and_logged_never_raised(stream, settings, caplog, outage):
    server = _silent_server() if outage == "stalled" else None
    port = server.getsockname()[1] if server else free_port()
    settings.REDIS_URL = f"redis://127.0.0.1:{port}/0"
    get_redis.cache_clear()
    before = dropped("append")
    try:
        with caplog.at_level(logging.ERROR, logger="routing.interaction_log"):
            started = time.monotonic()
            services._publish_log(payload(5))  # no exception: the answer is already computed
            took = time.monotonic() - started
    finally:
        get_redis.cache_clear()
        if server:
            server.close()
    assert dropped("append") - before == 1
    assert took < settings.SWARM_REDIS_TIMEOUT_S + 1.0
    assert any(r.levelno == logging.ERROR and "is not logged" in r.getMessage() for r in caplog.records)


def test_the_writer_thread_drains_until_stopped_then_leaves_the_group(stream):
    thread = il.WriterThread(consumer="thread-1")
    thread.start()
    try:
        for n in range(10):
            il.interaction_append(payload=payload(n))
        wait_for(lambda: Interaction.objects.count() == 10, timeout=10, what="the writer thread's rows")
    finally:
        thread.stop()
    assert not thread.is_alive()
    assert "thread-1" not in {c["name"] for c in stream.xinfo_consumers(il.STREAM_KEY, il.GROUP)}


def test_under_a_steady_trickle_the_writer_gathers_entries_into_batches(stream, monkeypatch):
    """One entry every ~4 ms for ~0.6 s: without the linger every read finds one or two entries and each
    becomes its own transaction; with it they go a linger's worth at a time. The first entry after a quiet
    spell is written at once."""
    batches: list[int] = []
    upsert = il.InteractionWriter._upsert
    monkeypatch.setattr(il.InteractionWriter, "_upsert", staticmethod(lambda rows: (batches.append(len(rows)),
                                                                                   upsert(rows))))  # fmt: skip
    thread = il.WriterThread(consumer="linger", linger_ms=200)
    thread.start()
    try:
        il.interaction_append(payload=payload(0))
        began = time.monotonic()
        wait_for(lambda: Interaction.objects.count() == 1, timeout=10, what="the first row")
        first_s = time.monotonic() - began
        for n in range(1, 151):
            il.interaction_append(payload=payload(n))
            time.sleep(0.004)
        wait_for(lambda: Interaction.objects.count() == 151, timeout=10, what="the trickle's rows")
    finally:
        thread.stop()
    assert first_s < 1.0, f"the first entry waited {first_s:.2f} s"
    assert sum(batches) == 151
    # ~0.6 s of entries in 0.2 s lingers: a handful of transactions, not one per entry (or per two)
    assert len(batches) <= 12, f"{len(batches)} transactions for 151 entries: {batches}"


def test_consumers_gone_for_an_hour_with_nothing_pending_are_forgotten(stream, monkeypatch):
    il.interaction_append(payload=payload())
    il.InteractionWriter(consumer="holds-one")._read(">", None)
    stream.xgroup_createconsumer(il.STREAM_KEY, il.GROUP, "idle-one")
    monkeypatch.setattr(il, "FORGET_CONSUMER_IDLE_MS", 0)
    time.sleep(0.01)
    assert il.InteractionWriter(consumer="w1").forget_gone_consumers() == ["idle-one"]
    assert {c["name"] for c in stream.xinfo_consumers(il.STREAM_KEY, il.GROUP)} == {"holds-one"}


def test_a_fresh_answers_cache_entry_rides_with_the_append(stream, caplog):
    from routing.cache import cache_put

    sent = payload(7)
    before = dropped("append")
    calls = stream.info("commandstats").get("cmdstat_xadd", {}).get("calls", 0)
    assert il.interaction_append(payload=sent, also=lambda pipe: cache_put("cache:k", {"answer": "14"}, client=pipe))
    assert json.loads(stream.get("cache:k")) == {"answer": "14"}
    assert stream.xlen(il.STREAM_KEY) == 1
    assert stream.info("commandstats")["cmdstat_xadd"]["calls"] == calls + 1
    # A write of its own that fails (a wrong type here) is logged; the interaction is appended all the same.
    with caplog.at_level(logging.WARNING, logger="routing.interaction_log"):
        assert il.interaction_append(payload=payload(8), also=lambda pipe: pipe.lpop("cache:k"))
    assert stream.xlen(il.STREAM_KEY) == 2 and dropped("append") == before
    assert "failed" in caplog.text
