"""Every Swarm Prometheus metric, defined once, correct across processes.

Multiprocess mode
-----------------
The stack is many processes (gunicorn workers, Celery pool processes, beat, the exporter), each
with its own memory. prometheus_client's multiprocess mode makes their numbers add up: every
process writes its values to mmap files in one shared directory and a scrape merges the files.

* Set ``PROMETHEUS_MULTIPROC_DIR`` to the SAME directory in the environment of every process of
  the stack (web, worker-gpu, worker-cpu, beat, exporter) before it starts: prometheus_client
  chooses its storage when it is first imported, so setting it later (in settings.py) is too late.
* Wipe it (``rm -rf DIR && mkdir -p DIR``) when the whole stack starts, and only then: files of
  a previous run would add their counts to the new one, and removing the directory under running
  processes loses what they write afterwards. Restarting one process keeps the directory: the
  counters of a dead process stay in the sum, so counters never go backwards within a run.
* Counters and histograms are summed over processes. Gauges say how to merge explicitly
  (``multiprocess_mode``): ``mostrecent`` for facts the last writer knows best (LoRA version,
  pattern heads, VRAM), ``livemax`` for "is any live process doing X" (trainer running). The
  ``live*`` files of a process are removed by :func:`mark_process_dead` (gunicorn ``child_exit``,
  Celery ``worker_process_shutdown``, see apps.py) or, for processes killed hard, by
  :func:`prune_dead_processes`, which the exporter and the /metrics view run on each scrape.
* Ratios (cache hit ratio, cloud retry ratio, cloud hit ratio) are never stored: a per-process
  ratio cannot be merged. They are computed at collection time from the merged counters
  (:class:`AggregateCollector`), so they always equal hits / lookups over all processes.
* ``service_startups_total{service}`` (how many times each service of the stack started) is not
  in the multiprocess files either, which are emptied when the stack starts: each service adds
  one to a Redis hash when it starts and /metrics and the exporter read that hash at scrape time
  (observability/startups.py).

Without ``PROMETHEUS_MULTIPROC_DIR`` (tests, ``runserver``) everything lives in the default
registry of the one process and :func:`metrics_view` serves that.

Metrics computed by the exporter at scrape time (worker heartbeats, queue depths, budget, GPU
memory, last LoRA success, the interaction log's backlog) are declared here as :class:`MetricSpec`
too, so this module is the one catalogue of names (:func:`exported_metric_names`).
"""

from __future__ import annotations

import contextlib
import glob
import json
import logging
import math
import os
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram, generate_latest, multiprocess
from prometheus_client import values as _prom_values
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from prometheus_client.metrics import MetricWrapperBase
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from django.http import HttpRequest, HttpResponse

log = logging.getLogger(__name__)

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
PRUNE_ENV = "SWARM_METRICS_PRUNE_DEAD_PIDS"
# Redis key the trainer writes on a successful nightly LoRA run (survives stack restarts, unlike
# the multiprocess directory); the exporter turns it into swarm_lora_last_success_timestamp_seconds.
LORA_SUCCESS_KEY = "swarm:lora:last_success"

# 5 ms .. 30 s; 0.2 and 0.5 are bucket bounds so the p95 alert thresholds are exact.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 2.0, 5.0, 10.0, 20.0, 30.0)


def multiprocess_dir() -> str | None:
    """The shared metrics directory, or None when this process runs single-process."""
    return os.environ.get(MULTIPROC_ENV) or None


def multiprocess_enabled() -> bool:
    """True when this process stores its values in the shared directory."""
    return bool(getattr(_prom_values.ValueClass, "_multiprocess", False))


def _prepare_multiprocess_dir() -> None:
    path = multiprocess_dir()
    if not path:
        return
    Path(path).mkdir(parents=True, exist_ok=True)
    if not multiprocess_enabled():
        log.warning(
            "%s=%s was set after prometheus_client was imported: this process's metrics stay "
            "private and will not appear in the aggregated /metrics",
            MULTIPROC_ENV,
            path,
        )


_prepare_multiprocess_dir()

# --- metrics written by the stack's processes ---------------------------------------------
REQUESTS = Counter("swarm_requests_total", "Requests answered, by route and skill.", ["route", "skill"])
REQUEST_LATENCY = Histogram(
    "swarm_request_latency_seconds", "End-to-end request latency, by route.", ["route"], buckets=LATENCY_BUCKETS
)
CACHE_HITS = Counter("swarm_cache_hits_total", "Exact-cache lookups that found an answer.")
CACHE_LOOKUPS = Counter("swarm_cache_lookups_total", "Exact-cache lookups (hits + misses).")
ADMISSION_REFUSED = Counter(
    "swarm_model_admission_refused_total", "Requests for the model refused at once (503): its queue was full."
)
CLOUD_SPEND = Counter("swarm_cloud_spend_usd_total", "Money spent on cloud LLM calls, USD.", ["provider"])
CLOUD_CALLS = Counter("swarm_cloud_calls_total", "Cloud LLM calls, by provider and outcome.", ["provider", "outcome"])
CLOUD_RETRIES = Counter("swarm_cloud_retries_total", "Cloud LLM calls that needed a retry.")
FRAGMENTATION_EVENTS = Counter(
    "swarm_fragmentation_events_total", "GPU memory fragmentation events (allocation failed with memory free)."
)
LORA_VERSION = Gauge("swarm_lora_version", "LoRA adapter version being served.", multiprocess_mode="mostrecent")
PATTERN_HEADS = Gauge(
    "swarm_pattern_heads",
    "Pattern heads the pattern stage answers with (enabled, confidence >= 0.50).",
    multiprocess_mode="mostrecent",
)
PATTERNS_VERSION = Gauge(
    "swarm_patterns_version",
    "Pattern-head version (Redis swarm:patterns:version) of the newest index.",
    multiprocess_mode="mostrecent",
)
GPU_VRAM_USED = Gauge("swarm_gpu_vram_used_bytes", "GPU memory in use, bytes.", ["gpu"], multiprocess_mode="mostrecent")
GPU_VRAM_TOTAL = Gauge("swarm_gpu_vram_total_bytes", "GPU memory size, bytes.", ["gpu"], multiprocess_mode="mostrecent")
CANARY_WEIGHT = Gauge(
    "swarm_lora_canary_weight",
    "Percent of clients the canary adapter serves (0: no canary).",
    multiprocess_mode="mostrecent",
)
ARM_REQUESTS = Counter(
    "swarm_lora_arm_requests_total",
    "Requests that reached the model, by adapter arm and outcome.",
    ["arm", "outcome"],
)
ARM_LATENCY = Histogram(
    "swarm_lora_arm_latency_seconds",
    "Latency of requests that reached the model, by adapter arm.",
    ["arm"],
    buckets=LATENCY_BUCKETS,
)
TRAINING_STEP = Gauge("swarm_training_step", "Steps done by the running LoRA training.", multiprocess_mode="livemax")
TRAINING_LOSS = Gauge("swarm_training_loss", "Loss of the last LoRA training step.", multiprocess_mode="mostrecent")
TRAINING_JOBS = Counter("swarm_training_jobs_total", "LoRA training jobs finished, by status.", ["status"])
TRAINER_RUNNING = Gauge(
    "swarm_trainer_running", "1 while a LoRA training run is in progress.", multiprocess_mode="livemax"
)
INTERACTIONS_DROPPED = Counter(
    "swarm_interactions_dropped",
    "Answered requests missing from the interaction log, by reason: append (the API could not append to "
    "the Redis stream), malformed (a writer could not read or store the entry), trimmed (the stream's "
    "length cap removed it before a writer stored it).",
    ["reason"],
)
REPLICA_ACK_MISSES = Counter(
    "swarm_redis_replica_ack_misses",
    "Interaction log appends that fewer Redis replicas than SWARM_REDIS_MIN_REPLICAS_ACK acknowledged in time "
    "(WAIT): answered all the same, held by the primary alone until a replica has them.",
)

SWARM_METRICS: tuple[MetricWrapperBase, ...] = (
    REQUESTS,
    REQUEST_LATENCY,
    CACHE_HITS,
    CACHE_LOOKUPS,
    ADMISSION_REFUSED,
    CLOUD_SPEND,
    CLOUD_CALLS,
    CLOUD_RETRIES,
    FRAGMENTATION_EVENTS,
    LORA_VERSION,
    CANARY_WEIGHT,
    ARM_REQUESTS,
    ARM_LATENCY,
    TRAINING_STEP,
    TRAINING_LOSS,
    TRAINING_JOBS,
    PATTERN_HEADS,
    PATTERNS_VERSION,
    GPU_VRAM_USED,
    GPU_VRAM_TOTAL,
    TRAINER_RUNNING,
    INTERACTIONS_DROPPED,
    REPLICA_ACK_MISSES,
)


# --- metrics computed at collection time ---------------------------------------------------
@dataclass(frozen=True)
class MetricSpec:
    """A gauge (or, with ``kind="counter"``, a counter) produced at scrape time by a collector,
    never stored in the multiprocess files."""

    name: str
    help: str
    labels: tuple[str, ...] = ()
    kind: str = "gauge"

    def family(self) -> GaugeMetricFamily | CounterMetricFamily:
        if self.kind == "counter":
            return CounterMetricFamily(self.name, self.help, labels=list(self.labels))
        return GaugeMetricFamily(self.name, self.help, labels=list(self.labels))


CACHE_HIT_RATIO = MetricSpec(
    "swarm_cache_hit_ratio",
    "swarm_cache_hits_total / swarm_cache_lookups_total over all processes since the stack started "
    "(NaN before the first lookup).",
)
CLOUD_RETRY_RATIO = MetricSpec(
    "swarm_cloud_retry_ratio",
    "swarm_cloud_retries_total / sum(swarm_cloud_calls_total) over all processes since the stack started "
    "(NaN before the first call).",
)
CLOUD_HIT_RATIO = MetricSpec(
    "swarm_cloud_hit_ratio",
    'swarm_requests_total{route="cloud"} / swarm_requests_total: the share of requests a cloud provider '
    "answered, over all processes since the stack started (0 before the first request).",
)
DERIVED_METRICS: tuple[MetricSpec, ...] = (CACHE_HIT_RATIO, CLOUD_RETRY_RATIO, CLOUD_HIT_RATIO)

WORKER_UP = MetricSpec(
    "swarm_worker_up", "1 while the worker's heartbeat is live, 0 for a recently seen worker.", ("worker",)
)
WORKER_HEARTBEAT_AGE = MetricSpec(
    "swarm_worker_heartbeat_age_seconds", "Seconds since the worker's last heartbeat.", ("worker",)
)
QUEUE_DEPTH = MetricSpec(
    "swarm_queue_depth", "Messages waiting in a Celery queue (Redis LLEN; RabbitMQ: messages ready).", ("queue",)
)
BUDGET_SPENT = MetricSpec("swarm_budget_spent_usd", "Cloud budget spent in the current UTC day, USD.")
BUDGET_POOL = MetricSpec("swarm_budget_pool_usd", "Cloud budget pool for the current UTC day, USD.")
BUDGET_REMAINING = MetricSpec("swarm_budget_remaining_usd", "Cloud budget left in the current UTC day, USD.")
LORA_LAST_SUCCESS = MetricSpec(
    "swarm_lora_last_success_timestamp_seconds", "Unix time of the last successful LoRA training run."
)
LIVE_GPU_VRAM_USED = MetricSpec(GPU_VRAM_USED._name, "GPU memory in use, bytes (read by the exporter).", ("gpu",))
LIVE_GPU_VRAM_TOTAL = MetricSpec(GPU_VRAM_TOTAL._name, "GPU memory size, bytes (read by the exporter).", ("gpu",))
INTERACTION_LOG_LAG = MetricSpec(
    "swarm_interaction_log_lag",
    "Interactions in the Redis stream swarm:interactions that no writer has read yet (XINFO GROUPS lag; "
    "the stream's length less the pending entries when Redis cannot say; the whole stream without a group).",
)
INTERACTION_LOG_PENDING = MetricSpec(
    "swarm_interaction_log_pending",
    "Interactions a writer has read and not yet stored and acknowledged (the group's pending entries).",
)
EXPORTER_SOURCE_UP = MetricSpec(
    "swarm_exporter_source_up", "1 when the exporter could read the source on this scrape.", ("source",)
)
# Read from Redis by both /metrics and the exporter (observability/startups.py).
SERVICE_STARTUPS = MetricSpec(
    "service_startups",
    "Times each service of the stack has started (Redis hash swarm:startups; survives restarts).",
    ("service",),
    kind="counter",
)
EXPORTER_METRICS: tuple[MetricSpec, ...] = (
    WORKER_UP,
    WORKER_HEARTBEAT_AGE,
    QUEUE_DEPTH,
    BUDGET_SPENT,
    BUDGET_POOL,
    BUDGET_REMAINING,
    LORA_LAST_SUCCESS,
    LIVE_GPU_VRAM_USED,
    LIVE_GPU_VRAM_TOTAL,
    INTERACTION_LOG_LAG,
    INTERACTION_LOG_PENDING,
    EXPORTER_SOURCE_UP,
    SERVICE_STARTUPS,
)


# --- what the rest of the code calls --------------------------------------------------------
def record_request(route: str, skill: str | None, latency_s: float, cached: bool, *, cache_lookup: bool = True) -> None:
    """One answered request. `cached` is the exact-cache outcome; pass `cache_lookup=False` for a
    request that never reached the cache (then `cached` is ignored). Do not also call
    :func:`record_cache_lookup` for the same request."""
    REQUESTS.labels(route=route, skill=skill or "none").inc()
    REQUEST_LATENCY.labels(route=route).observe(max(0.0, float(latency_s)))
    if cache_lookup:
        record_cache_lookup(cached)


def record_cache_lookup(hit: bool) -> None:
    """An exact-cache lookup outside :func:`record_request`."""
    CACHE_LOOKUPS.inc()
    if hit:
        CACHE_HITS.inc()


def record_admission_refused() -> None:
    """A request for the model turned away at admission (its queue was as deep as answers come in time)."""
    ADMISSION_REFUSED.inc()


def record_cloud_call(provider: str, outcome: str, cost_usd: float | Decimal, retried: bool) -> None:
    """One cloud LLM call: its outcome ("ok", "error", "timeout", ...), what it cost, whether it was retried."""
    cost = float(cost_usd)
    if cost < 0 or math.isnan(cost):
        raise ValueError(f"cost_usd must be >= 0, got {cost_usd!r}")
    CLOUD_CALLS.labels(provider=provider, outcome=outcome).inc()
    CLOUD_SPEND.labels(provider=provider).inc(cost)
    if retried:
        CLOUD_RETRIES.inc()


def record_fragmentation_event(count: int = 1) -> None:
    if count < 0:
        raise ValueError("count must be >= 0")
    FRAGMENTATION_EVENTS.inc(count)


def record_interactions_dropped(reason: str, count: int = 1) -> None:
    """`count` answered requests that will not reach the interaction log (reason: append, malformed, trimmed)."""
    if count > 0:
        INTERACTIONS_DROPPED.labels(reason=reason).inc(count)


def record_replica_ack_miss() -> None:
    """An interaction append that fewer replicas than SWARM_REDIS_MIN_REPLICAS_ACK acknowledged in time."""
    REPLICA_ACK_MISSES.inc()


def set_lora_version(version: int) -> None:
    """The adapter version this process serves (the most recent writer wins across processes)."""
    LORA_VERSION.set(int(version))


def set_canary_weight(percent: int) -> None:
    CANARY_WEIGHT.set(int(percent))


def record_arm_request(arm: str, outcome: str, latency_s: float) -> None:
    """One request the model answered on the `stable` or `canary` adapter; outcome: local, cloud, unsure."""
    ARM_REQUESTS.labels(arm=arm, outcome=outcome).inc()
    ARM_LATENCY.labels(arm=arm).observe(latency_s)


def set_training_progress(step: int, loss: float | None) -> None:
    TRAINING_STEP.set(step)
    if loss is not None:
        TRAINING_LOSS.set(loss)


def record_training_job(status: str) -> None:
    TRAINING_JOBS.labels(status=status).inc()


def set_patterns(heads: int, version: int | str | None) -> None:
    """The pattern heads an index was built with and its version (after a rebuild or a mining run)."""
    PATTERN_HEADS.set(int(heads))
    if version is not None:
        PATTERNS_VERSION.set(int(version))


def set_gpu_vram(gpu: int | str, used_bytes: int, total_bytes: int | None = None) -> None:
    """A worker's own view of its GPU; the exporter also reads all GPUs with nvidia-smi."""
    GPU_VRAM_USED.labels(gpu=str(gpu)).set(used_bytes)
    if total_bytes is not None:
        GPU_VRAM_TOTAL.labels(gpu=str(gpu)).set(total_bytes)


def set_trainer_running(running: bool) -> None:
    TRAINER_RUNNING.set(1 if running else 0)


@contextlib.contextmanager
def trainer_running() -> Iterator[None]:
    """``with trainer_running(): train()`` marks the run in swarm_trainer_running, even when it fails."""
    set_trainer_running(True)
    try:
        yield
    finally:
        set_trainer_running(False)


def record_lora_success(version: int, ts: float | None = None, client: Any = None) -> bool:
    """Remember a successful LoRA run in Redis (the nightly-LoRA alert reads it through the exporter).

    `client` is a redis.Redis; by default the API's client (needs Django settings). Returns False
    when Redis could not be written (logged; training itself succeeded)."""
    if client is None:
        from swarm_site.redis_client import get_redis

        client = get_redis()
    from swarm_site.redis_client import REDIS_ERRORS

    payload = json.dumps({"version": int(version), "ts": float(time.time() if ts is None else ts)})
    try:
        client.set(LORA_SUCCESS_KEY, payload)
    except REDIS_ERRORS as exc:
        log.warning("could not record the LoRA success in Redis: %s", exc)
        return False
    return True


def mark_process_dead(pid: int, path: str | None = None) -> None:
    """Drop a finished process's live-gauge files (gunicorn child_exit, Celery worker_process_shutdown).

    Like prometheus_client.multiprocess.mark_process_dead, but safe when two scrapers prune the
    same process at once."""
    path = path or multiprocess_dir()
    if not path or not os.path.isdir(path):
        return
    for name in glob.glob(os.path.join(path, f"gauge_live*_{int(pid)}.db")):
        Path(name).unlink(missing_ok=True)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by another user
        return True
    return True


def prune_dead_processes(path: str | None = None) -> list[int]:
    """Mark dead the processes whose live-gauge files remain but which no longer exist.

    Only valid when every writer runs on this host in this PID namespace (the systemd and
    Procfile layouts); set SWARM_METRICS_PRUNE_DEAD_PIDS=0 where they do not (containers)."""
    path = path or multiprocess_dir()
    if not path or os.environ.get(PRUNE_ENV, "1").strip().lower() in {"0", "false", "no", "off"}:
        return []
    dead: set[int] = set()
    for name in glob.glob(os.path.join(path, "gauge_live*_*.db")):
        pid_text = os.path.basename(name)[: -len(".db")].rsplit("_", 1)[-1]
        if pid_text.isdigit() and not _pid_alive(int(pid_text)):
            dead.add(int(pid_text))
    for pid in dead:
        mark_process_dead(pid, path)
    return sorted(dead)


# --- collection -----------------------------------------------------------------------------
def _sample_totals(families: Iterable[Metric], names: set[str]) -> dict[str, float]:
    totals: dict[str, float] = {}
    for family in families:
        for sample in family.samples:
            if sample.name in names:
                totals[sample.name] = totals.get(sample.name, 0.0) + sample.value
    return totals


def _ratio(numerator: float, denominator: float) -> float:
    return numerator / denominator if denominator > 0 else math.nan


def _cloud_hit_ratio(families: Iterable[Metric]) -> float:
    """swarm_requests_total{route="cloud"} / swarm_requests_total, 0 when nothing was answered yet."""
    cloud = every = 0.0
    for family in families:
        for sample in family.samples:
            if sample.name == "swarm_requests_total":
                every += sample.value
                if sample.labels.get("route") == "cloud":
                    cloud += sample.value
    return cloud / every if every > 0 else 0.0


def ratio_families(families: Iterable[Metric]) -> list[GaugeMetricFamily]:
    """swarm_cache_hit_ratio, swarm_cloud_retry_ratio and swarm_cloud_hit_ratio from already merged
    counter families."""
    families = list(families)
    totals = _sample_totals(
        families,
        {"swarm_cache_hits_total", "swarm_cache_lookups_total", "swarm_cloud_retries_total", "swarm_cloud_calls_total"},
    )
    cache = CACHE_HIT_RATIO.family()
    cache.add_metric(
        [], _ratio(totals.get("swarm_cache_hits_total", 0.0), totals.get("swarm_cache_lookups_total", 0.0))
    )
    retry = CLOUD_RETRY_RATIO.family()
    retry.add_metric(
        [], _ratio(totals.get("swarm_cloud_retries_total", 0.0), totals.get("swarm_cloud_calls_total", 0.0))
    )
    cloud = CLOUD_HIT_RATIO.family()
    cloud.add_metric([], _cloud_hit_ratio(families))
    return [cache, retry, cloud]


class AggregateCollector(Collector):
    """The families of a source (the merged multiprocess files, or a registry) plus the ratios
    computed from exactly those families, so a scrape is self-consistent."""

    def __init__(self, source: Callable[[], Iterable[Metric]]) -> None:
        self._source = source

    def collect(self) -> Iterator[Metric]:
        families = list(self._source())
        yield from families
        yield from ratio_families(families)

    def describe(self) -> list[Metric]:
        return [spec.family() for spec in DERIVED_METRICS]


def multiprocess_source(path: str | None = None) -> Callable[[], Iterable[Metric]]:
    """Merged families of every process that wrote to `path` (default: PROMETHEUS_MULTIPROC_DIR)."""
    path = path or multiprocess_dir()
    if not path:
        raise ValueError(f"{MULTIPROC_ENV} is not set")
    Path(path).mkdir(parents=True, exist_ok=True)
    return multiprocess.MultiProcessCollector(None, path=path).collect


def aggregated_registry(path: str | None = None, *, startups_client: Any = None) -> CollectorRegistry:
    """What /metrics serves: every process's metrics (or this process's, without a multiprocess
    dir), the django-prometheus ones included, plus the derived ratios, and with a Redis client
    `startups_client`, service_startups_total read from it."""
    path = path or multiprocess_dir()
    if path:
        prune_dead_processes(path)
        source = multiprocess_source(path)
    else:
        source = REGISTRY.collect
    registry = CollectorRegistry()
    registry.register(AggregateCollector(source))
    if startups_client is not None:
        from observability.startups import StartupsCollector

        registry.register(StartupsCollector(startups_client))
    return registry


def render(registry: CollectorRegistry) -> bytes:
    """The Prometheus text format (0.0.4) of a registry."""
    return generate_latest(registry)


CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4


def metrics_view(request: HttpRequest) -> HttpResponse:
    """Django view for /metrics: the multiprocess-aggregated registry in the text format, with the
    service start counts from the API's Redis (left out of the page while Redis is down)."""
    from django.http import HttpResponse, HttpResponseNotAllowed

    from swarm_site.redis_client import get_redis

    if request.method not in {"GET", "HEAD"}:
        return HttpResponseNotAllowed(["GET", "HEAD"])
    return HttpResponse(render(aggregated_registry(startups_client=get_redis())), content_type=CONTENT_TYPE)


# --- the catalogue ----------------------------------------------------------------------------
_SUFFIXES = {
    "counter": ("_total", "_created"),
    "histogram": ("_bucket", "_count", "_sum", "_created"),
    "summary": ("", "_count", "_sum", "_created"),
    "gauge": ("",),
    "info": ("_info",),
    "stateset": ("",),
    "enum": ("",),
    "unknown": ("",),
}


def sample_names(family: Metric) -> set[str]:
    """The series names a family exposes (a counter `x` exposes `x_total`, a histogram `x_bucket`, ...)."""
    return {family.name + suffix for suffix in _SUFFIXES.get(family.type, ("",))}


def exported_metric_names() -> frozenset[str]:
    """Every series name Swarm exposes: the stored metrics, the derived ratios, the exporter's
    gauges and the service start counts."""
    names: set[str] = set()
    for metric in SWARM_METRICS:
        for family in metric.describe():
            names |= sample_names(family)
    for spec in (*DERIVED_METRICS, *EXPORTER_METRICS):
        names |= sample_names(spec.family())
    return frozenset(names)
