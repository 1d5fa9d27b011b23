"""The interaction log's way from the API to the database: a Redis stream, drained in batches.

API (every process that answers a request), off the database and off Celery::

    interaction_append(payload=...)
      XADD swarm:interactions MAXLEN ~ SWARM_INTERACTION_STREAM_MAXLEN * data <json>
      one round trip on the API's Redis client (swarm_site/redis_client.py, SWARM_REDIS_TIMEOUT_S, no
      retries); when it fails the interaction is counted in swarm_interactions_dropped_total{reason="append"}
      and logged at ERROR, and the request is answered all the same (its answer is already computed)
    with SWARM_REDIS_MIN_REPLICAS_ACK = n > 0 (Redis Sentinel: replication is asynchronous, a primary that dies
    takes what its replicas have not received with it): XADD + WAIT n SWARM_REDIS_REPLICA_ACK_TIMEOUT_MS in one
    pipeline, still one round trip. Fewer than n replicas in time -> swarm_redis_replica_ack_misses_total, the
    request is answered all the same; the append failing -> the request fails with a 503 (an answer is
    acknowledged to the client only once the log holds it)

Writers (a thread in every Celery worker that consumes the ``default`` queue, i.e. worker-cpu:
routing/worker_steps.py), consumer group ``interaction-writers``, one consumer per process (<host>-<pid>-<random>)::

    XREADGROUP COUNT SWARM_INTERACTION_BATCH BLOCK 300 ms ">"
    -> one Interaction bulk_create(update_conflicts on request_id) in a transaction: a redelivered entry
       updates its row, it never adds one
    -> XACK + XDEL of the batch in one MULTI, after the commit
    -> a batch smaller than SWARM_INTERACTION_BATCH: wait SWARM_INTERACTION_LINGER_MS before the next read
       (the first entry after a quiet spell is written at once; under load the entries gather into batches
       of a few hundred rows instead of one transaction per request: 2.4 ms of CPU a row in batches of one,
       0.1 ms in batches of 500, on SQLite; `python -m bench.log_writer`)
    every few seconds: XAUTOCLAIM the entries pending longer than SWARM_INTERACTION_CLAIM_IDLE_S on any
       consumer (a writer killed mid-batch) and write them; forget consumers gone for an hour

Acknowledged entries are deleted (XDEL), not left to the MAXLEN trim: the stream then holds only what is
not written yet, so Redis's memory follows the backlog (not the last 100 000 prompts and answers), and
MAXLEN is only the safety valve for writers that stay down. Past it the oldest entries are trimmed
unwritten; the lag alert (swarm_interaction_log_lag, read by the exporter) fires long before.

An entry that cannot be read or stored (not JSON, a field the table refuses) is logged, counted in
swarm_interactions_dropped_total{reason="malformed"} and acknowledged: it never wedges the writer. Any
other database error (down, locked, a table missing) leaves the batch unacknowledged; the writer retries it
with a backoff. The Celery task routing.tasks.log_interaction stays registered for messages queued by older
versions; nothing publishes it any more.
"""

from __future__ import annotations

import json
import logging
import os
import re
import secrets
import socket
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import Any

import redis
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import (
    DatabaseError,
    DataError,
    IntegrityError,
    InterfaceError,
    OperationalError,
    connection,
    transaction,
)

from observability import metrics
from routing.models import Interaction
from swarm_site.redis_client import get_blocking_redis, get_redis

log = logging.getLogger(__name__)

STREAM_KEY = "swarm:interactions"
GROUP = "interaction-writers"
DATA_FIELD = "data"
BLOCK_MS = 300  # a writer's XREADGROUP waits this long for new entries
RECLAIM_EVERY_S = 5.0  # how often a writer looks for entries a dead writer left pending
FORGET_CONSUMER_IDLE_MS = 3600 * 1000  # a consumer with nothing pending, unseen this long, is removed
STOP_TIMEOUT_S = 15.0  # worker shutdown waits this long for the batch in hand
_BACKOFF_S = (0.5, 1.0, 2.0, 5.0, 10.0)  # after failures: database or Redis unavailable

REDIS_FAILURES = (redis.RedisError, OSError)
# The database is down or locked: keep the batch and try again later.
TRANSIENT_DB_ERRORS = (OperationalError, InterfaceError)
# An entry that is not an interaction payload.
_MALFORMED = (KeyError, TypeError, ValueError, AttributeError, ValidationError)
# A value of one entry that a field or the table refuses when it is stored. Any other database error (down,
# locked, a table missing) is not the entry's fault: the batch stays pending and is tried again.
_REFUSED = (DataError, IntegrityError, ValueError, TypeError, ValidationError)
_UPDATE_FIELDS = [f.name for f in Interaction._meta.concrete_fields if not f.primary_key and f.name != "request_id"]

# --- the payload's fields (shared by the writers and the legacy Celery task) --------------------------------

_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def storable(value: Any) -> Any:
    """`value` with every string made storable: NUL characters and unpaired surrogates (which neither
    UTF-8 nor PostgreSQL text can hold; SQLite refuses the surrogates) replaced by U+FFFD, in nested
    lists and dicts too. The API refuses them in prompts; answers (a provider's) may still carry them."""
    if isinstance(value, str):
        return _UNSTORABLE.sub("\ufffd", value)
    if isinstance(value, list):
        return [storable(v) for v in value]
    if isinstance(value, dict):
        return {storable(k): storable(v) for k, v in value.items()}
    return value


def interaction_fields(*, payload: dict[str, Any]) -> dict[str, Any]:
    """The Interaction field values of a log payload (routing/services.py::_log_payload): every text made
    storable, `created_at` parsed. Raises KeyError, TypeError or ValueError for what is not a payload."""
    fields = {k: storable(v) for k, v in payload.items()}
    if not isinstance(fields["request_id"], str) or not fields["request_id"]:
        raise ValueError(f"request_id must be a non-empty string, got {fields['request_id']!r}")
    fields["created_at"] = datetime.fromisoformat(fields["created_at"])
    return fields


# --- the API's side ---------------------------------------------------------------------------------------


class InteractionLogUnavailable(Exception):
    """The log could not take an interaction that had to be appended (`interaction_append(required=True)`)."""


MISS_LOG_EVERY_S = 60.0  # a primary without replicas misses every append: one WARNING line a minute
_misses = {"logged_at": float("-inf"), "since": 0}
_misses_lock = threading.Lock()


def interaction_append(
    *,
    payload: dict[str, Any],
    client: redis.Redis | redis.client.Pipeline | None = None,
    required: bool = False,
    also: Callable[[redis.client.Pipeline], None] | None = None,
) -> bool:
    """Append one answered request to the log stream. True when it was appended.

    What cannot be appended is counted (swarm_interactions_dropped_total) and logged at ERROR, and False
    returned; with `required`, a Redis failure raises InteractionLogUnavailable instead (not counted: the
    request is refused, nothing answered is missing). With SWARM_REDIS_MIN_REPLICAS_ACK = n > 0 the XADD
    and a WAIT for n replicas go in one pipeline; fewer in time are counted (swarm_redis_replica_ack_misses_total).

    `client`: a redis.Redis with decoded responses; by default the API's (short timeouts, no retries). A
    pipeline gets the XADD alone (its caller executes it). `also` queues the caller's own writes (a fresh
    answer's cache entry) in front of the XADD, in the same round trip; a failure of one of those alone is
    logged, and the append stands."""
    request_id = payload.get("request_id")
    try:
        data = json.dumps(payload, default=str)
    except (TypeError, ValueError) as exc:
        log.error("interaction %s is not JSON, it is not logged: %s", request_id, exc)
        metrics.record_interactions_dropped("malformed")
        return False
    target = client or get_redis()
    replicas = settings.SWARM_REDIS_MIN_REPLICAS_ACK
    fields, maxlen = {DATA_FIELD: data}, settings.SWARM_INTERACTION_STREAM_MAXLEN
    try:
        if (replicas or also) and not isinstance(target, redis.client.Pipeline):
            pipe = target.pipeline(transaction=False)  # WAIT inside MULTI would not wait
            if also is not None:
                also(pipe)
            first = len(pipe.command_stack)
            pipe.xadd(STREAM_KEY, fields, maxlen=maxlen, approximate=True)
            if replicas:
                pipe.wait(replicas, settings.SWARM_REDIS_REPLICA_ACK_TIMEOUT_MS)
            results = pipe.execute(raise_on_error=False)
            for failed in (r for r in results[:first] if isinstance(r, Exception)):
                log.warning("a write sent with interaction %s failed: %s", request_id, failed)
            if isinstance(results[first], Exception):
                raise results[first]
            if replicas:
                if isinstance(results[first + 1], Exception):
                    raise results[first + 1]
                if int(results[first + 1]) < replicas:
                    _replica_ack_missed(request_id, int(results[first + 1]), replicas)
        else:
            target.xadd(STREAM_KEY, fields, maxlen=maxlen, approximate=True)
    except REDIS_FAILURES as exc:
        if required:
            log.error("could not append interaction %s to %s, the request fails: %s", request_id, STREAM_KEY, exc)
            raise InteractionLogUnavailable(str(exc)) from None
        log.error("could not append interaction %s to %s, it is not logged: %s", request_id, STREAM_KEY, exc)
        metrics.record_interactions_dropped("append")
        return False
    return True


def _replica_ack_missed(request_id: str | None, acked: int, wanted: int) -> None:
    metrics.record_replica_ack_miss()
    now = time.monotonic()
    with _misses_lock:
        _misses["since"] += 1
        if now - _misses["logged_at"] < MISS_LOG_EVERY_S:
            return
        count, _misses["since"], _misses["logged_at"] = _misses["since"], 0, now
    log.warning("interaction %s is held by the Redis primary alone: %d of %d replicas acknowledged it within %d ms "
                "(%d such appends since the last line; swarm_redis_replica_ack_misses_total)",
                request_id, acked, wanted, settings.SWARM_REDIS_REPLICA_ACK_TIMEOUT_MS, count)  # fmt: skip


# --- the writers' side ------------------------------------------------------------------------------------


def consumer_name() -> str:
    """A consumer of the group for this process: <host>-<pid>-<random>. The random part keeps two processes
    apart where host and pid repeat (containers: pid 1, the same hostname for every replica)."""
    return f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"


def _decode(fields: dict[str, Any]) -> dict[str, Any]:
    payload = json.loads(fields[DATA_FIELD])
    if not isinstance(payload, dict):
        raise TypeError(f"the entry holds a {type(payload).__name__}, not an object")
    return payload


class InteractionWriter:
    """One consumer of the group: reads batches, stores them, acknowledges them (see the module docstring)."""

    def __init__(
        self,
        *,
        client: redis.Redis | None = None,
        consumer: str | None = None,
        batch: int | None = None,
        claim_idle_s: float | None = None,
        block_ms: int = BLOCK_MS,
        linger_ms: int | None = None,
    ) -> None:
        self.client = client or get_blocking_redis()  # XREADGROUP BLOCK needs the longer socket timeout
        self.consumer = consumer or consumer_name()
        self.batch = batch or settings.SWARM_INTERACTION_BATCH
        idle_s = settings.SWARM_INTERACTION_CLAIM_IDLE_S if claim_idle_s is None else claim_idle_s
        self.claim_idle_ms = max(1, int(idle_s * 1000))
        self.block_ms = block_ms
        linger = settings.SWARM_INTERACTION_LINGER_MS if linger_ms is None else linger_ms
        self.linger_s = max(0, linger) / 1000
        self._group_ready = False
        self._retry_own = False  # entries of this consumer are pending after a failed write: read them first

    # -- Redis ---------------------------------------------------------------------------------------------
    def ensure_group(self) -> None:
        """Create the stream and the group (from the stream's start) unless they exist."""
        try:
            self.client.xgroup_create(STREAM_KEY, GROUP, id="0", mkstream=True)
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise
        self._group_ready = True

    def _read(self, start: str, block_ms: int | None) -> list[tuple[str, dict[str, Any]]]:
        if not self._group_ready:
            self.ensure_group()
        try:
            reply = self.client.xreadgroup(GROUP, self.consumer, {STREAM_KEY: start}, count=self.batch, block=block_ms)
        except redis.ResponseError as exc:
            if "NOGROUP" not in str(exc):
                raise
            self.ensure_group()  # the stream was deleted (FLUSHDB): start again
            return []
        return [entry for _, entries in reply or [] for entry in entries]

    def _ack(self, ids: Sequence[str]) -> None:
        pipe = self.client.pipeline(transaction=True)
        pipe.xack(STREAM_KEY, GROUP, *ids)
        pipe.xdel(STREAM_KEY, *ids)
        pipe.execute()

    # -- one batch -----------------------------------------------------------------------------------------
    def drain_once(self, *, block_ms: int | None = BLOCK_MS) -> int:
        """Read one batch (this consumer's unwritten entries first, else new ones, waiting up to `block_ms`;
        None: not at all), store it, acknowledge it. How many entries it handled."""
        if self._retry_own:
            entries = self._read("0", None)
            if entries:
                return self.write(entries)
            self._retry_own = False
        return self.write(self._read(">", block_ms))

    def write(self, entries: Iterable[tuple[str, dict[str, Any] | None]]) -> int:
        """Store `entries` (stream id, fields) in one transaction and acknowledge them. A failure to store or to
        acknowledge raises, leaving them pending on this consumer (read again by the next drain_once)."""
        rows: dict[str, Interaction] = {}
        ids: list[str] = []
        malformed = trimmed = 0
        for entry_id, fields in entries:
            if entry_id is None:
                continue
            ids.append(entry_id)
            if not fields:  # pending, but trimmed from the stream (MAXLEN) before it was written
                log.error("interaction log entry %s was trimmed from %s before it was written", entry_id, STREAM_KEY)
                trimmed += 1
                continue
            try:
                row = Interaction(**interaction_fields(payload=_decode(fields)))
            except _MALFORMED as exc:
                log.error("interaction log entry %s is malformed, dropped: %s: %.300r", entry_id, exc, fields)
                malformed += 1
                continue
            rows[row.request_id] = row  # one row per request in a statement: the last copy wins
        if not ids:
            return 0
        self._retry_own = True  # until acknowledged: a failure below leaves them pending on this consumer
        refused = {row.request_id for row in self._store(list(rows.values()))}
        self._ack(ids)
        self._retry_own = False
        metrics.record_interactions_dropped("malformed", malformed + len(refused))
        metrics.record_interactions_dropped("trimmed", trimmed)
        # The JSON log line names the requests: grep a request id to find when it was stored.
        extra = {"request_ids": [request_id for request_id in rows if request_id not in refused]}
        log.info("wrote %d interactions to the log (%d entries)", len(extra["request_ids"]), len(ids), extra=extra)
        return len(ids)

    def _store(self, rows: list[Interaction]) -> list[Interaction]:
        """Upsert `rows` by request id in one statement; when the database or a field refuses the batch, one
        by one. The rows that could not be stored (logged). Transient database errors raise. The thread's
        connection is closed afterwards: none is held between batches (a prefork pool may fork meanwhile),
        and a broken one never outlives its batch."""
        if not rows:
            return []
        try:
            return self._store_rows(rows)
        finally:
            if not connection.in_atomic_block:
                connection.close()

    def _store_rows(self, rows: list[Interaction]) -> list[Interaction]:
        try:
            with transaction.atomic():
                self._upsert(rows)
            return []
        except _REFUSED as exc:  # some row is refused: find it below, store the others
            log.warning("the database refused a batch of %d interactions (%s); storing them one by one", len(rows), exc)
        failed = []
        for row in rows:
            try:
                with transaction.atomic():
                    self._upsert([row])
            except _REFUSED as exc:  # this entry can never be stored: count it, never wedge the log
                log.error("interaction %s cannot be stored, dropped: %s", row.request_id, exc)
                failed.append(row)
        return failed

    @staticmethod
    def _upsert(rows: list[Interaction]) -> None:
        Interaction.objects.bulk_create(
            rows, update_conflicts=True, unique_fields=["request_id"], update_fields=_UPDATE_FIELDS
        )

    # -- dead writers ----------------------------------------------------------------------------------------
    def reclaim(self) -> int:
        """Take over the entries pending longer than the claim idle time (a writer killed mid-batch, or one
        stuck on a database) and write them. How many entries it handled."""
        if not self._group_ready:
            self.ensure_group()
        start, handled = "0-0", 0
        while True:
            try:
                reply = self.client.xautoclaim(
                    STREAM_KEY, GROUP, self.consumer, self.claim_idle_ms, start_id=start, count=self.batch
                )
            except redis.ResponseError as exc:
                if "NOGROUP" not in str(exc):
                    raise
                self.ensure_group()
                return handled
            start, entries = reply[0], reply[1]
            deleted = reply[2] if len(reply) > 2 else []
            if deleted:  # Redis dropped them from the pending list: trimmed before anyone wrote them
                log.error("%d pending interaction log entries were trimmed before they were written", len(deleted))
                metrics.record_interactions_dropped("trimmed", len(deleted))
            if entries:
                log.info("took over %d interaction log entries left pending by another writer", len(entries))
                handled += self.write(entries)
            if start in ("0-0", b"0-0"):
                return handled

    def forget_gone_consumers(self) -> list[str]:
        """Remove the consumers that have nothing pending and were not seen for an hour (writers that
        stopped; each process is a new consumer). Their names."""
        gone = []
        for consumer in self.client.xinfo_consumers(STREAM_KEY, GROUP):
            name = consumer["name"]
            if name != self.consumer and not consumer["pending"] and consumer["idle"] > FORGET_CONSUMER_IDLE_MS:
                self.client.xgroup_delconsumer(STREAM_KEY, GROUP, name)
                gone.append(name)
        return gone

    def leave(self) -> None:
        """On a clean stop: remove this consumer from the group when it holds nothing pending."""
        if not self.client.xpending_range(STREAM_KEY, GROUP, min="-", max="+", count=1, consumername=self.consumer):
            self.client.xgroup_delconsumer(STREAM_KEY, GROUP, self.consumer)

    # -- the loop ----------------------------------------------------------------------------------------------
    def run(self, stop: threading.Event) -> None:
        """Drain until `stop` is set (then finish the batch in hand and leave the group)."""
        log.info("interaction writer %s drains %s (group %s)", self.consumer, STREAM_KEY, GROUP)
        failures = 0
        next_reclaim = 0.0
        while not stop.is_set():
            try:
                if time.monotonic() >= next_reclaim:
                    self.reclaim()
                    self.forget_gone_consumers()
                    next_reclaim = time.monotonic() + RECLAIM_EVERY_S
                handled = self.drain_once()
                failures = 0
                if 0 < handled < self.batch and self.linger_s:
                    stop.wait(self.linger_s)  # let the next entries gather into one batch
                continue
            except TRANSIENT_DB_ERRORS as exc:
                log.warning("could not write interactions to the database, retrying: %s", exc)
            except DatabaseError as exc:  # not migrated, permissions: the batch waits until it is fixed
                log.error("could not write interactions to the database, retrying: %s", exc)
            except REDIS_FAILURES as exc:
                log.warning("could not read %s from Redis, retrying: %s", STREAM_KEY, exc)
            except Exception:  # logged with its traceback: the writer must outlive a bug
                log.exception("the interaction writer failed; retrying")
            stop.wait(_BACKOFF_S[min(failures, len(_BACKOFF_S) - 1)])
            failures += 1
        try:
            self.leave()
        except REDIS_FAILURES as exc:
            log.warning("could not leave the group %s: %s", GROUP, exc)
        log.info("interaction writer %s stopped", self.consumer)


class WriterThread:
    """An InteractionWriter in a daemon thread: start(), stop() (waits for the batch in hand)."""

    def __init__(self, **writer: Any) -> None:
        self._writer = writer
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="interaction-writer", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            InteractionWriter(**self._writer).run(self._stop)
        finally:
            connection.close()  # this thread's

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(STOP_TIMEOUT_S)
            if self._thread.is_alive():
                log.warning("the interaction writer did not stop within %s s; its batch stays pending", STOP_TIMEOUT_S)

    def is_alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()
