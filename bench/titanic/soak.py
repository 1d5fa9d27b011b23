"""The soak runner behind `python bench/soak/locustfile.py` / `make soak-live` (see that file's docstring).

Usage: python bench/soak/locustfile.py --qps 120 --duration 5m [--url URL] [--mix cache:85,...]
       [--p95-target-ms 200] [--max-fail-ratio 0.01] [--out PATH]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import re
import secrets
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import requests

from bench.soak.locustfile import CACHE_MAX_TOKENS, CACHE_PROMPTS, DEFAULT_MIX, parse_mix
from bench.titanic.live import (
    LiveStack,
    children_cpu_s,
    cpu_ms_per_request,
    gpu_snapshot,
    machine_load,
    summary,
    tree_rss,
)

INTERACTION_STREAM = "swarm:interactions"  # routing/interaction_log.py (not imported: the bench needs no Django)

ROOT = Path(__file__).resolve().parent.parent.parent
LOCUSTFILE = ROOT / "bench" / "soak" / "locustfile.py"
# Flower watches the soak's own stack as operators run it (manage.py run_flower, basic auth); its CPU time is
# counted with the stack's, and must stay within this share of the whole stack's under the soak.
FLOWER_MAX_CPU_SHARE = 0.05


def start_flower(live: LiveStack, timeout_s: float = 60.0) -> dict[str, Any]:
    """Flower on the stack's broker, started like the Procfile's (`manage.py run_flower`), as one of the stack's
    processes (so its CPU and memory are sampled with theirs). Its URL and credentials once it answers."""
    from tests.stack import free_port

    port, auth = free_port(), ("soak", secrets.token_urlsafe(12))
    live.stack._spawn("flower", [sys.executable, "manage.py", "run_flower", "--port", str(port)],
                      {"FLOWER_BASIC_AUTH": ":".join(auth)})  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout_s
    while True:
        with contextlib.suppress(requests.RequestException):
            if requests.get(f"{url}/api/workers", auth=auth, timeout=5).status_code == 200:
                return {"url": url, "auth": auth}
        if time.monotonic() > deadline:
            raise RuntimeError(f"Flower did not answer on {url} within {timeout_s:g} s (log: {live.stack.logdir})")
        time.sleep(0.5)


def flower_view(flower: dict[str, Any]) -> dict[str, Any]:
    """What Flower shows once the soak is over: the workers it knows (asked to refresh them)."""
    try:
        reply = requests.get(f"{flower['url']}/api/workers", params={"refresh": "1"}, auth=flower["auth"], timeout=30)
        reply.raise_for_status()
        return {"workers_seen": sorted(reply.json())}
    except (requests.RequestException, ValueError) as exc:
        return {"workers_seen": [], "error": f"{type(exc).__name__}: {exc}"}


def flower_share(cpu_ms: dict[str, float]) -> float | None:
    """Flower's CPU time as a share of the whole stack's (Flower included) during the soak."""
    total = sum(v for v in cpu_ms.values() if v is not None)
    return round(cpu_ms["flower"] / total, 4) if total and cpu_ms.get("flower") is not None else None


def parse_duration(text: str) -> int:
    """'90', '90s', '5m', '1h' -> seconds."""
    match = re.fullmatch(r"\s*(\d+)\s*([smh]?)\s*", text)
    if not match:
        raise argparse.ArgumentTypeError(f"bad duration {text!r} (use e.g. 90s, 5m, 1h)")
    return int(match.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600}[match.group(2)]


def stack_processes_by_cmdline(url: str) -> dict[str, Any]:
    """For --url: the stack behind `url`, found by command line and environment: the gunicorn master
    whose SWARM_PORT is the URL's port, and the workers sharing its REDIS_URL."""
    from urllib.parse import urlparse

    import psutil

    port = str(urlparse(url).port or 80)
    roles = {"web": "swarm_site.wsgi", "worker-gpu": "-Q gpu.", "worker-cpu": "-Q default,cpu"}
    candidates: list[tuple[str, Any, dict[str, str]]] = []
    for proc in psutil.process_iter(["pid", "ppid", "cmdline"]):
        cmd = " ".join(proc.info.get("cmdline") or [])
        for role, marker in roles.items():
            if marker not in cmd:
                continue
            with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
                parent = " ".join(psutil.Process(proc.info["ppid"]).cmdline())
                if marker not in parent:  # the top process of the role, not a gunicorn worker or pool child
                    candidates.append((role, proc, proc.environ()))
    redis_urls = {env.get("REDIS_URL") for role, _, env in candidates
                  if role == "web" and env.get("SWARM_PORT", "8000") == port}  # fmt: skip
    found: dict[str, Any] = {}
    for role, proc, env in candidates:
        mine = env.get("SWARM_PORT", "8000") == port if role == "web" else env.get("REDIS_URL") in redis_urls
        if mine:
            found[f"{role}:{proc.pid}"] = tree_rss(proc.pid)
    return found


def warm_cache(url: str) -> dict[str, Any]:
    """Ask every cache-pool prompt once, then again: how many come back from the cache."""
    session = requests.Session()
    for prompt in CACHE_PROMPTS:
        session.post(f"{url}/orchestrate", json={"prompt": prompt, "max_tokens": CACHE_MAX_TOKENS}, timeout=120)
    cached = 0
    for prompt in CACHE_PROMPTS:
        body = session.post(f"{url}/orchestrate", json={"prompt": prompt, "max_tokens": CACHE_MAX_TOKENS},
                            timeout=120).json()  # fmt: skip
        cached += bool(body.get("cached"))
    return {"prompts": len(CACHE_PROMPTS), "cached_after_warmup": cached}


class MemorySampler:
    """RSS of the stack's processes every `interval_s`; keeps the peak per process."""

    def __init__(self, snapshot, interval_s: float = 5.0) -> None:
        self.snapshot = snapshot
        self.interval_s = interval_s
        self.peak: dict[str, float] = {}
        self.vram_peak_mib: float | None = None
        self.cpu_busy_pct: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="rss-sampler")

    def _sample(self) -> None:
        import psutil

        self.cpu_busy_pct.append(psutil.cpu_percent(None))  # whole machine, since the previous sample
        for name, info in self.snapshot().items():
            total = info.get("rss_mib_total")
            if total is not None:
                self.peak[name] = max(self.peak.get(name, 0.0), total)
        gpus = gpu_snapshot()
        if gpus:
            used = sum(g["mem_used_mib"] for g in gpus)
            self.vram_peak_mib = max(self.vram_peak_mib or 0.0, used)

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            self._sample()

    def __enter__(self) -> MemorySampler:
        import psutil

        psutil.cpu_percent(None)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)


def _totals(snapshot: dict[str, Any]) -> dict[str, float | None]:
    return {name: info.get("rss_mib_total") for name, info in snapshot.items()}


def _vram() -> float | str:
    gpus = gpu_snapshot()
    return sum(g["mem_used_mib"] for g in gpus) if gpus else "no GPU"


def run_locust(url: str, *, qps: float, duration_s: int, mix: str, users: int, workdir: Path) -> tuple[int, Path]:
    record = workdir / "records.json"
    env = {**os.environ, "SOAK_QPS": str(qps), "SOAK_USERS": str(users), "SOAK_MIX": mix,
           "SOAK_MAX_REQUESTS": str(int(qps * duration_s * 1.5) + 100), "SOAK_RECORD": str(record),
           "PYTHONPATH": str(ROOT)}  # fmt: skip
    argv = [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--headless", "-u", str(users),
            "-r", str(max(1, math.ceil(users / 2))), "--run-time", f"{duration_s}s", "--host", url,
            "--csv", str(workdir / "locust"), "--stop-timeout", "10", "--exit-code-on-error", "0",
            "--loglevel", "WARNING", "--only-summary"]  # fmt: skip
    with (workdir / "locust.log").open("wb") as log:
        proc = subprocess.run(argv, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                              timeout=duration_s + 120, check=False)  # fmt: skip
    return proc.returncode, record


def analyse(records: list[list[Any]], *, ramp_s: float) -> dict[str, Any]:
    """Latency, errors and the rate held, over the records after the ramp-up."""
    if not records:
        return {"requests": 0}
    start = min(r[0] for r in records) + ramp_s
    window = [r for r in records if r[0] >= start] or records
    span = max(r[0] for r in window) - min(r[0] for r in window)
    by_kind: dict[str, list[float]] = defaultdict(list)
    for _, kind, _, latency, *_ in window:
        by_kind[kind].append(latency)
    failures = sum(not r[4] for r in window)
    return {
        "requests": len(window),
        "requests_including_ramp": len(records),
        "window_s": round(span, 1),
        "rps_held": round(len(window) / span, 1) if span > 0 else None,
        "fail_ratio": round(failures / len(window), 5),
        "failures": failures,
        "latency_ms": summary([r[3] for r in window]),
        "server_latency_ms": summary([r[5] for r in window if len(r) > 5 and r[5] is not None]),
        "by_kind": {kind: summary(values) for kind, values in sorted(by_kind.items())},
        "routes": dict(Counter(r[2] for r in window).most_common()),
        "cache_hit_ratio": round(sum(r[2] == "cache" for r in window) / len(window), 4),
    }


def interaction_rows(live: LiveStack, drain_timeout_s: float = 60.0) -> int:
    """The stack's Interaction rows once its log stream is drained (every appended entry written)."""
    import redis

    client = redis.Redis.from_url(live.redis.url)
    ends = time.monotonic() + drain_timeout_s
    while client.xlen(INTERACTION_STREAM) and time.monotonic() < ends:
        time.sleep(0.2)
    out = live.stack.manage("shell", "-c", "from routing.models import Interaction; print(Interaction.objects.count())")
    return int(out.strip().splitlines()[-1])


def locust_aggregate(csv_prefix: Path) -> dict[str, Any] | None:
    """Locust's own aggregated row (its percentiles are bucketed; ours above are exact)."""
    import csv

    path = Path(f"{csv_prefix}_stats.csv")
    if not path.exists():
        return None
    with path.open() as fh:
        for row in csv.DictReader(fh):
            if row.get("Name") == "Aggregated":
                keys = ("Request Count", "Failure Count", "Median Response Time", "95%", "99%", "Requests/s")
                return {k: row.get(k) for k in keys}
    return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Soak: Locust at a constant rate against the live API")
    parser.add_argument("--qps", type=float, default=120.0)
    parser.add_argument("--duration", type=parse_duration, default=parse_duration("5m"))
    parser.add_argument("--url", help="a running stack (default: start one of our own)")
    parser.add_argument("--mix", default=os.environ.get("SOAK_MIX", DEFAULT_MIX))
    # Locust users per request/s. Each gevent user costs the client latency on this machine: against one
    # stack at 120 QPS (a threads client: p50 4.5 ms, p95 6.2 ms), 12 users measured p95 44 ms, 30 users
    # 109 ms and 120 users 385 ms. 0.1 (10 requests/s per user) keeps the load generator out of the figures.
    parser.add_argument("--users-per-qps", type=float, default=float(os.environ.get("SOAK_USERS_PER_QPS", "0.1")),
                        help="Locust users per request/s")  # fmt: skip
    parser.add_argument("--p95-target-ms", type=float, default=float(os.environ.get("SOAK_P95_MS", "150")))
    parser.add_argument("--server-p95-target-ms", type=float, default=float(os.environ.get("SOAK_SERVER_P95_MS", "50")),
                        help="the gateway's own latency_ms p95 target")  # fmt: skip
    parser.add_argument("--max-fail-ratio", type=float, default=0.0)
    parser.add_argument("--no-flower", action="store_true", help="own stack: run it without Flower watching")
    parser.add_argument("--slots", type=int, default=int(os.environ.get("SWARM_MODEL_SLOTS", "1")),
                        help="own stack: serving processes (SWARM_MODEL_SLOTS, as the Procfile)")  # fmt: skip
    parser.add_argument(
        "--threads",
        type=int,
        default=int(os.environ.get("SWARM_MODEL_THREADS", "0")),
        help="own stack: llama.cpp threads per serving process (SWARM_MODEL_THREADS; 0: as shipped)",
    )
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    parse_mix(args.mix)
    users = max(4, math.ceil(args.qps * args.users_per_qps))
    workdir = Path(tempfile.mkdtemp(prefix="swarm-soak-"))
    load_before = machine_load()

    live = None
    flower: dict[str, Any] | None = None
    try:
        if args.url:
            url = args.url.rstrip("/")

            def snapshot() -> dict[str, Any]:
                return stack_processes_by_cmdline(url)

            stack_info: dict[str, Any] = {"mode": "running stack", "url": url}
        else:
            # The web server as shipped (swarm_site/gunicorn.conf.py: 32 threads a process, half of them places
            # for requests waiting on the model), not the test stacks' 8.
            threads = os.environ.get("SOAK_WEB_THREADS", "32")
            live = LiveStack.start(
                cloud=False,
                SWARM_WEB_THREADS=threads,
                SWARM_MODEL_SLOTS=str(args.slots),
                SWARM_MODEL_THREADS=str(args.threads),
            )
            url = live.url
            snapshot = live.memory
            stack_info = {"mode": f"own stack (private redis, gunicorn x{live.stack.env['WEB_CONCURRENCY']} with "
                                  f"{threads} threads, serving worker, bookkeeping worker)",
                          "model": live.stack.env.get("SWARM_MODEL") or "the registry's default",
                          "model_slots": args.slots,
                          "model_threads": args.threads or "auto (inference.backends.llama.model_threads)",
                          "start_s": round(live.started_s, 1), "logs": str(live.stack.logdir)}  # fmt: skip
            if not args.no_flower:
                flower = start_flower(live)
                stack_info["flower"] = flower["url"]
        print(f"soak: {args.qps} QPS for {args.duration}s, {users} users, mix {args.mix}, at {url}", flush=True)
        if live and not os.environ.get("SWARM_API_KEY"):  # a key of its own: the anonymous caps would refuse
            os.environ["SWARM_API_KEY"] = live.stack.create_key("soak")  # part of the mix (max_tokens > 256)
        warm = warm_cache(url)
        rows_before = interaction_rows(live) if live else None
        memory_start, vram_start = snapshot(), _vram()
        with MemorySampler(snapshot) as sampler:
            began = time.perf_counter()
            children_cpu = children_cpu_s()
            code, record = run_locust(url, qps=args.qps, duration_s=args.duration, mix=args.mix, users=users,
                                      workdir=workdir)  # fmt: skip
            ran_s = time.perf_counter() - began
            locust_cpu_s = children_cpu_s() - children_cpu
        memory_end, vram_end = snapshot(), _vram()
        rows_after = interaction_rows(live) if live else None
        flower_seen = flower_view(flower) if flower else None
    finally:
        if live:
            live.stop()

    records = json.loads(record.read_text()) if record.exists() else []
    result = analyse(records, ramp_s=2.0)
    p95 = result.get("latency_ms", {}).get("p95_ms")
    server_p95 = result.get("server_latency_ms", {}).get("p95_ms")
    logged = None if rows_before is None or rows_after is None else rows_after - rows_before
    checks = {
        f"fail ratio <= {args.max_fail_ratio:.2%}": result.get("fail_ratio", 1.0) <= args.max_fail_ratio,
        f"p95 <= {args.p95_target_ms:g} ms": p95 is not None and p95 <= args.p95_target_ms,
        f"gateway p95 <= {args.server_p95_target_ms:g} ms": server_p95 is not None
        and server_p95 <= args.server_p95_target_ms,
        "requests were made": result.get("requests", 0) > 0 and code == 0,
    }
    answered = sum(bool(r[4]) for r in records)
    if logged is not None:  # a stack of our own: its interaction log after the drain, one row per answer
        checks["interaction rows == requests answered"] = logged == answered
    cpu_ms = cpu_ms_per_request(memory_start, memory_end, len(records))
    flower_report = None
    if flower_seen is not None:
        share = flower_share(cpu_ms)
        flower_report = {**flower_seen, "cpu_ms_per_request": cpu_ms.get("flower"), "cpu_share_of_stack": share}
        checks[f"Flower's CPU <= {FLOWER_MAX_CPU_SHARE:.0%} of the stack's"] = share is not None and (
            share <= FLOWER_MAX_CPU_SHARE
        )
        checks["Flower shows the stack's workers"] = len(flower_seen["workers_seen"]) >= 2
    start_totals, end_totals = _totals(memory_start), _totals(memory_end)
    report = {
        "benchmark": "soak",
        "when": datetime.now(UTC).isoformat(),
        "target_qps": args.qps,
        "duration_s": args.duration,
        "users": users,
        "mix_percent": parse_mix(args.mix),
        "method": (f"locust --headless -u {users}, FastHttpUser with constant_throughput({args.qps / users:g}) "
                   "each, POST /orchestrate on loopback; latencies are exact per-request client times recorded by "
                   "the locustfile; the first 2 s (ramp-up) are left out. server_latency_ms is the gateway's own "
                   "latency_ms (from the view to the answer): what it leaves out is HTTP, gunicorn's queue and the "
                   "load generator; the checks use the client latency"),
        "load_generator_note": ("on this machine Locust's gevent client was seen adding ~30-180 ms per request at "
                                "10-40 users even on an idle stack (a plain-threads client at the same rate measured "
                                "9-14 ms median), so compare latency_ms with server_latency_ms"),
        "stack": stack_info,
        "flower": flower_report or "not run (--no-flower, or a running stack: --url)",
        "cache_warmup": warm,
        **result,
        "interaction_rows": {"before": rows_before, "after": rows_after, "logged": logged, "sent": len(records),
                             "answered": answered,
                             "note": "rows in the stack's Interaction table once the log stream is drained: one "
                                     "per answered request (a refused one, 4xx/503, is not an interaction)"}
        if logged is not None else "not checked (a running stack: --url)",
        "locust_aggregate": locust_aggregate(workdir / "locust"),
        "locust_exit_code": code,
        "wall_s": round(ran_s, 1),
        "rss_mib": {
            "start": start_totals, "end": end_totals, "peak": sampler.peak,
            "growth": {k: round((end_totals.get(k) or 0) - (v or 0), 1) for k, v in start_totals.items()},
            "detail_end": memory_end,
        },
        "cpu": {
            "ms_per_request_by_process": cpu_ms,
            "locust_load_generator_cpu_s": round(locust_cpu_s, 1),
            "machine_busy_pct_samples": sampler.cpu_busy_pct,
            "note": "CPU time of each stack process (with its children) during the run, per request sent",
        },
        "vram_mib": {"start": vram_start, "end": vram_end, "peak": sampler.vram_peak_mib}
        if vram_start != "no GPU" else "no GPU",
        "machine": {"before": load_before, "after": machine_load(),
                    "note": "shared 2-core machine: the load generator, the stack and other work share the CPUs"},
        "checks": {name: "pass" if ok else "FAIL" for name, ok in checks.items()},
        "workdir": str(workdir),
    }  # fmt: skip
    out = args.out or ROOT / "reports" / f"soak_{datetime.now(UTC):%Y%m%d}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    lat = result.get("latency_ms", {})
    srv = result.get("server_latency_ms", {})
    print(
        f"soak: {result.get('requests', 0)} requests in {result.get('window_s')}s, held {result.get('rps_held')} "
        f"RPS of {args.qps}; p50 {lat.get('p50_ms')} p95 {lat.get('p95_ms')} p99 {lat.get('p99_ms')} ms; "
        f"fail ratio {result.get('fail_ratio')}; cache hits {result.get('cache_hit_ratio')}",
        flush=True,
    )
    print(f"  server-side latency_ms p50 {srv.get('p50_ms')} p95 {srv.get('p95_ms')}", flush=True)
    for kind, stats in result.get("by_kind", {}).items():
        print(f"  {kind:<10} n={stats['n']:<6} p50 {stats.get('p50_ms')} p95 {stats.get('p95_ms')} ms", flush=True)
    print(
        f"  cpu ms/request {report['cpu']['ms_per_request_by_process']}; locust {locust_cpu_s:.1f} s; "
        f"machine busy % {sampler.cpu_busy_pct}",
        flush=True,
    )
    print(f"  rss MiB start {start_totals}\n  rss MiB end   {end_totals}\n  vram {report['vram_mib']}", flush=True)
    if flower_report:
        print(f"  flower: {flower_report['cpu_ms_per_request']} ms CPU per request, "
              f"{flower_report['cpu_share_of_stack']:.1%} of the stack's; workers {flower_report['workers_seen']}",
              flush=True)  # fmt: skip
    for name, status in report["checks"].items():
        print(f"  check {name}: {status}", flush=True)
    print(f"  report: {out}", flush=True)
    return 0 if all(checks.values()) else 1
