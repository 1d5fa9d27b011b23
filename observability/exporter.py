"""The independent metrics exporter: ``python -m observability.exporter`` (or ``manage.py run_exporter``).

It serves 127.0.0.1:$SWARM_EXPORTER_PORT (default 9091) from its own process, so it keeps
answering when the API is dead. Each scrape reads, at that moment:

* worker heartbeats in Redis (``swarm:worker:<name>``): ``swarm_worker_up{worker}`` is 1 for a
  live heartbeat and 0 for a worker seen in the last SWARM_EXPORTER_FORGET_S seconds (default one
  hour) whose heartbeat expired; the "seen" list lives in a Redis hash so it survives restarts;
* Celery queue depths of every queue in ``swarm_site.queues.CeleryQueue`` and the ``gpu.<n>`` queues
  of live and recently seen workers: Redis LLEN on a Redis broker, the ready count of a passive
  ``queue.declare`` on RabbitMQ (``swarm_site.broker.AmqpQueueDepths``);
* the day's cloud budget (``budget.selectors.budget_status``), when that module exists;
* GPU memory with nvidia-smi (``inference.gpu.visible_gpus``; nothing on a CPU-only machine);
* the last successful LoRA run (Redis key ``swarm:lora:last_success``);
* the interaction log's backlog (Redis stream ``swarm:interactions``, group ``interaction-writers``:
  routing/interaction_log.py): ``swarm_interaction_log_lag`` (entries no writer has read: XINFO GROUPS
  ``lag``) and ``swarm_interaction_log_pending`` (read, not yet written and acknowledged);
* how many times each service of the stack has started, ``service_startups_total{service}``
  (Redis hash ``swarm:startups``, see observability/startups.py; the exporter counts its own
  starts there too);
* the multiprocess directory (PROMETHEUS_MULTIPROC_DIR, or SWARM_EXPORTER_MULTIPROC_DIR), so the
  workers' counters stay visible without the API.

``swarm_exporter_source_up{source}`` says which of these could be read on this scrape.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from decimal import Decimal, InvalidOperation
from typing import Any

import redis
from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from observability import metrics as m
from observability import startups
from swarm_site.broker import AMQP_ERRORS, AmqpQueueDepths, is_amqp
from swarm_site.queues import gpu_queue_parts

log = logging.getLogger("swarm.exporter")

HEARTBEAT_PREFIX = "swarm:worker:"  # inference.runtime.HEARTBEAT_PREFIX
INTERACTION_STREAM = "swarm:interactions"  # routing.interaction_log.STREAM_KEY
INTERACTION_GROUP = "interaction-writers"  # routing.interaction_log.GROUP
SEEN_WORKERS_KEY = "swarm:observability:workers_seen"
DEFAULT_PORT = 9091
DEFAULT_FORGET_S = 3600.0
# kombu's Redis transport keeps priority levels 3, 6 and 9 of a queue in sibling lists.
_PRIORITY_SEP = "\x06\x16"
_PRIORITY_STEPS = (3, 6, 9)
REDIS_ERRORS: tuple[type[BaseException], ...] = (redis.RedisError, ConnectionError, OSError)


def _redis_client(url: str, timeout_s: float) -> redis.Redis:
    """A client on `url` (redis:// or Sentinel's sentinel://: the primary SWARM_REDIS_SENTINEL_MASTER)."""
    from swarm_site.redis_client import redis_from_url

    return redis_from_url(url, socket_connect_timeout=timeout_s, socket_timeout=timeout_s, decode_responses=True)


def _default_queue_names() -> list[str]:
    from swarm_site.queues import CeleryQueue

    return [queue.value for queue in CeleryQueue]


def _worker_gpu_queues(queues: Any) -> list[str]:
    if isinstance(queues, str):
        names = [q.strip() for q in queues.split(",")]
    elif isinstance(queues, list | tuple):
        names = [str(q).strip() for q in queues]
    else:
        return []
    return [q for q in names if gpu_queue_parts(q)]


def _default_gpu_reader() -> list[tuple[str, int, int]]:
    from inference.gpu import visible_gpus

    return [(str(g.index), g.used_bytes, g.total_bytes) for g in visible_gpus()]


def _beat_ts(beat: dict[str, Any], default: float) -> float:
    ts = beat.get("ts")
    return float(ts) if isinstance(ts, int | float) else default


_BUDGET_UNAVAILABLE = object()


def _default_budget_reader() -> Any:
    """budget_status(), or _BUDGET_UNAVAILABLE when the budget app is not there (export nothing)."""
    try:
        from budget.selectors import budget_status
    except ImportError:
        return _BUDGET_UNAVAILABLE
    from django.db import DatabaseError, connections

    try:
        return budget_status()
    except (DatabaseError, LookupError, ValueError, TypeError, ArithmeticError) as exc:
        log.warning("budget_status failed: %s", exc)
        return None
    finally:
        # Each scrape runs in a fresh server thread: do not leave its connection open.
        connections.close_all()


class SwarmExporterCollector(Collector):
    """Reads the sources listed in the module docstring on every collect()."""

    def __init__(
        self,
        *,
        redis_client: redis.Redis,
        broker_client: redis.Redis | None = None,
        queue_depths: Callable[[list[str]], dict[str, int]] | None = None,
        queue_names: Iterable[str] | None = None,
        multiproc_dir: str | None = None,
        forget_after_s: float = DEFAULT_FORGET_S,
        gpu_reader: Callable[[], list[tuple[str, int, int]]] = _default_gpu_reader,
        budget_reader: Callable[[], Any] = _default_budget_reader,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._redis = redis_client
        self._broker = broker_client or redis_client
        self._depth_reader = queue_depths  # a broker that is not Redis (RabbitMQ): depth per queue name
        self._queue_names = list(queue_names) if queue_names is not None else _default_queue_names()
        self._multiproc_dir = multiproc_dir
        self._forget_after_s = forget_after_s
        self._gpu_reader = gpu_reader
        self._budget_reader = budget_reader
        self._clock = clock
        self._lock = threading.Lock()

    def describe(self) -> list[Metric]:
        return [spec.family() for spec in (*m.EXPORTER_METRICS, *m.DERIVED_METRICS)]

    # -- sources ---------------------------------------------------------------------------
    def _workers(self, now: float) -> tuple[list[Metric], list[str]]:
        """worker_up and heartbeat age, plus the gpu.<n> queues of live and recent workers."""
        keys = list(self._redis.scan_iter(match=HEARTBEAT_PREFIX + "*", count=200))
        raw = self._redis.mget(keys) if keys else []
        live: dict[str, dict[str, Any]] = {}
        for key, value in zip(keys, raw, strict=True):
            if not value:
                continue  # expired between SCAN and MGET
            try:
                beat = json.loads(value)
            except json.JSONDecodeError:
                beat = {}
            if not isinstance(beat, dict):
                beat = {}
            name = str(beat.get("worker") or key[len(HEARTBEAT_PREFIX) :])
            live[name] = beat
        with self._lock:  # one scrape at a time updates the "seen" hash
            if live:
                self._redis.hset(
                    SEEN_WORKERS_KEY,
                    mapping={
                        name: json.dumps({"ts": _beat_ts(beat, now), "queues": beat.get("queues", "")})
                        for name, beat in live.items()
                    },
                )
            seen_raw = self._redis.hgetall(SEEN_WORKERS_KEY)
            seen: dict[str, dict[str, Any]] = {}
            forget = []
            for name, value in seen_raw.items():
                try:
                    entry = json.loads(value)
                    last = float(entry["ts"])
                except (json.JSONDecodeError, KeyError, TypeError, ValueError):
                    forget.append(name)
                    continue
                if name not in live and now - last > self._forget_after_s:
                    forget.append(name)
                else:
                    seen[name] = entry
            if forget:
                self._redis.hdel(SEEN_WORKERS_KEY, *forget)

        up = m.WORKER_UP.family()
        age = m.WORKER_HEARTBEAT_AGE.family()
        queues: set[str] = set()
        for name in sorted(set(live) | set(seen)):
            beat = live.get(name)
            entry = beat if beat is not None else seen[name]
            up.add_metric([name], 1.0 if beat is not None else 0.0)
            last_ts = _beat_ts(beat, now) if beat is not None else float(seen[name]["ts"])
            age.add_metric([name], max(0.0, now - last_ts))
            queues.update(_worker_gpu_queues(entry.get("queues", "")))
        return [up, age], sorted(queues)

    def _queue_depths(self, extra: Iterable[str]) -> Metric:
        names = list(dict.fromkeys([*self._queue_names, *extra]))
        if self._depth_reader is not None:
            depths = self._depth_reader(names)
            family = m.QUEUE_DEPTH.family()
            for name in names:
                family.add_metric([name], float(depths.get(name, 0)))
            return family
        pipe = self._broker.pipeline(transaction=False)
        for name in names:
            pipe.llen(name)
            for step in _PRIORITY_STEPS:
                pipe.llen(f"{name}{_PRIORITY_SEP}{step}")
        lengths = pipe.execute()
        per_queue = 1 + len(_PRIORITY_STEPS)
        family = m.QUEUE_DEPTH.family()
        for i, name in enumerate(names):
            family.add_metric([name], float(sum(lengths[i * per_queue : (i + 1) * per_queue])))
        return family

    def _lora(self) -> list[Metric]:
        value = self._redis.get(m.LORA_SUCCESS_KEY)
        if not value:
            return []
        try:
            ts = float(json.loads(value)["ts"])
        except (json.JSONDecodeError, KeyError, TypeError, ValueError):
            log.warning("ignoring malformed %s: %r", m.LORA_SUCCESS_KEY, value)
            return []
        family = m.LORA_LAST_SUCCESS.family()
        family.add_metric([], ts)
        return [family]

    def _interaction_log(self) -> list[Metric]:
        """The writers' backlog. Redis reports no lag while a deleted entry lies past the group's last read
        one; then the stream's length less the pending entries stands in (acknowledged entries are deleted,
        so the stream holds only the unwritten ones). No group yet: the whole stream waits."""
        pipe = self._redis.pipeline(transaction=False)
        pipe.xlen(INTERACTION_STREAM)
        pipe.xinfo_groups(INTERACTION_STREAM)
        length, groups = pipe.execute(raise_on_error=False)
        if isinstance(length, Exception):
            raise length
        if isinstance(groups, redis.ResponseError):  # no such key: nothing was ever appended
            groups = []
        elif isinstance(groups, Exception):
            raise groups
        group = next((g for g in groups if g.get("name") == INTERACTION_GROUP), None)
        pending = int(group.get("pending") or 0) if group else 0
        lag = group.get("lag") if group else length
        if lag is None:
            lag = max(0, int(length) - pending)
        lag_family = m.INTERACTION_LOG_LAG.family()
        lag_family.add_metric([], float(lag))
        pending_family = m.INTERACTION_LOG_PENDING.family()
        pending_family.add_metric([], float(pending))
        return [lag_family, pending_family]

    def _budget(self) -> tuple[list[Metric], bool | None]:
        status = self._budget_reader()
        if status is _BUDGET_UNAVAILABLE:
            return [], None
        if not isinstance(status, dict):
            return [], False
        out = []
        for spec, key in (
            (m.BUDGET_SPENT, "spent_usd"),
            (m.BUDGET_POOL, "pool_usd"),
            (m.BUDGET_REMAINING, "remaining_usd"),
        ):
            if status.get(key) is None:
                continue
            try:
                value = float(Decimal(str(status[key])))
            except (InvalidOperation, ValueError, TypeError):
                log.warning("budget_status()[%r] is not a number: %r", key, status[key])
                continue
            family = spec.family()
            family.add_metric([], value)
            out.append(family)
        return out, True

    def _gpus(self) -> list[Metric]:
        used = m.LIVE_GPU_VRAM_USED.family()
        total = m.LIVE_GPU_VRAM_TOTAL.family()
        try:
            gpus = self._gpu_reader()
        except ValueError as exc:  # unexpected nvidia-smi output
            log.warning("could not read GPU memory: %s", exc)
            gpus = []
        if not gpus:
            return []
        for index, used_bytes, total_bytes in gpus:
            used.add_metric([index], float(used_bytes))
            total.add_metric([index], float(total_bytes))
        return [used, total]

    def _multiproc(self) -> list[Metric]:
        path = self._multiproc_dir
        if not path or not os.path.isdir(path):
            return []
        m.prune_dead_processes(path)
        return list(m.AggregateCollector(m.multiprocess_source(path)).collect())

    # -- collect ---------------------------------------------------------------------------
    def collect(self) -> Iterator[Metric]:
        now = self._clock()
        live: list[Metric] = []
        sources = m.EXPORTER_SOURCE_UP.family()

        gpu_queues: list[str] = []
        try:
            families, gpu_queues = self._workers(now)
            live.extend(families)
            live.extend(self._lora())
            live.extend(self._interaction_log())
            live.append(startups.startups_family(startups.read_startups(self._redis)))
            sources.add_metric(["redis"], 1.0)
        except REDIS_ERRORS as exc:
            log.warning("redis unavailable: %s", exc)
            sources.add_metric(["redis"], 0.0)
        try:
            live.append(self._queue_depths(gpu_queues))
            sources.add_metric(["broker"], 1.0)
        except (*REDIS_ERRORS, *AMQP_ERRORS) as exc:
            log.warning("broker unavailable: %s", exc)
            sources.add_metric(["broker"], 0.0)

        budget, budget_ok = self._budget()
        live.extend(budget)
        if budget_ok is not None:
            sources.add_metric(["budget"], 1.0 if budget_ok else 0.0)

        live.extend(self._gpus())

        if self._multiproc_dir:
            try:
                stored = self._multiproc()
                sources.add_metric(["multiproc"], 1.0 if os.path.isdir(self._multiproc_dir) else 0.0)
            except OSError as exc:
                log.warning("multiprocess dir %s unreadable: %s", self._multiproc_dir, exc)
                stored = []
                sources.add_metric(["multiproc"], 0.0)
            # A family read live now (GPU memory) replaces what a process stored earlier.
            live_names = {family.name for family in live}
            live.extend(family for family in stored if family.name not in live_names)

        yield from live
        yield sources


def build_collector(multiproc_dir: str | None = None) -> SwarmExporterCollector:
    """The collector for this deployment's settings (call after django.setup())."""
    from django.conf import settings

    timeout = max(float(settings.SWARM_REDIS_TIMEOUT_S), 1.0)
    client = _redis_client(settings.REDIS_URL, timeout)
    broker_url = settings.CELERY_BROKER_URL
    forget = float(os.environ.get("SWARM_EXPORTER_FORGET_S", DEFAULT_FORGET_S))
    if is_amqp(broker_url):  # RabbitMQ: depths by passive queue.declare, over a connection of its own
        return SwarmExporterCollector(redis_client=client, queue_depths=AmqpQueueDepths(broker_url, timeout_s=timeout),
                                      multiproc_dir=multiproc_dir, forget_after_s=forget)  # fmt: skip
    broker = client if broker_url == settings.REDIS_URL else _redis_client(broker_url, timeout)
    return SwarmExporterCollector(
        redis_client=client, broker_client=broker, multiproc_dir=multiproc_dir, forget_after_s=forget
    )


def exporter_multiproc_dir() -> str | None:
    return os.environ.get("SWARM_EXPORTER_MULTIPROC_DIR") or m.multiprocess_dir()


def serve(host: str = "127.0.0.1", port: int = DEFAULT_PORT, stop: threading.Event | None = None) -> None:
    """Serve until SIGTERM/SIGINT (or `stop` is set)."""
    registry = CollectorRegistry()
    registry.register(build_collector(exporter_multiproc_dir()))
    server, thread = start_http_server(port, addr=host, registry=registry)
    startups.record_startup(startups.EXPORTER)
    stop = stop or threading.Event()
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stop.set())
    print(f"swarm exporter listening on http://{host}:{server.server_address[1]}/metrics", flush=True)
    try:
        stop.wait()
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def _port_from_env() -> int:
    raw = os.environ.get("SWARM_EXPORTER_PORT", str(DEFAULT_PORT))
    try:
        port = int(raw)
    except ValueError:
        raise SystemExit(f"SWARM_EXPORTER_PORT={raw!r} is not an integer") from None
    if not 0 <= port <= 65535:
        raise SystemExit(f"SWARM_EXPORTER_PORT={port} is not a port")
    return port


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default=os.environ.get("SWARM_EXPORTER_HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=None, help="default: $SWARM_EXPORTER_PORT or 9091")
    args = parser.parse_args(argv)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "swarm_site.settings")
    import django

    django.setup()
    logging.basicConfig(level=os.environ.get("SWARM_LOG_LEVEL", "INFO"))
    serve(args.host, args.port if args.port is not None else _port_from_env())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
