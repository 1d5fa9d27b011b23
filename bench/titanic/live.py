"""Shared by the live benchmarks (titanic, soak, peers, gate): a stack of their own on a private
redis-server (tests/stack.py, the same processes `make run` starts), the replay provider as the
only paid provider, process memory, GPU sampling and latency statistics."""

from __future__ import annotations

import contextlib
import os
import shutil
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from bench.reporting import percentile
from tests.stack import ROOT, PrivateRedis, Stack, free_port, wait_for

DATA_PATH = ROOT / "bench" / "data" / "titanic_v1.yaml"
REPLAY_KEY_ENV = "SWARM_REPLAY_KEY"
# What the replay provider bills, USD per 1M tokens: a mid-tier hosted model's list price, so that
# the cost figures mean something; override with --price-in / --price-out.
PRICE_IN = "2.50"
PRICE_OUT = "10.00"


# --- statistics ----------------------------------------------------------------------------------


def summary(samples: list[float]) -> dict[str, float | int]:
    """n, median (p50), p95, p99, max (ms in, ms out); percentiles as in bench/reporting.py."""
    if not samples:
        return {"n": 0}
    return {"n": len(samples), "p50_ms": round(statistics.median(samples), 2),
            "p95_ms": round(percentile(samples, 0.95), 2), "p99_ms": round(percentile(samples, 0.99), 2),
            "max_ms": round(max(samples), 2)}  # fmt: skip


def machine_load() -> dict[str, Any]:
    """CPU count and load averages: the machine is shared, so every report says how busy it was."""
    one, five, fifteen = os.getloadavg()
    return {"cpus": os.cpu_count(), "loadavg_1_5_15": [round(one, 2), round(five, 2), round(fifteen, 2)]}


# --- GPU -----------------------------------------------------------------------------------------


def gpu_snapshot() -> list[dict[str, float]] | None:
    """Per-GPU utilisation and memory from nvidia-smi; None without a working nvidia-smi."""
    if not shutil.which("nvidia-smi"):
        return None
    cmd = ["nvidia-smi", "--query-gpu=index,utilization.gpu,memory.used,memory.total",
           "--format=csv,noheader,nounits"]  # fmt: skip
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=10, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    rows = []
    for line in out.strip().splitlines():
        try:
            index, util, used, total = (float(v) for v in line.split(","))
        except ValueError:
            continue
        rows.append({"index": int(index), "util_pct": util, "mem_used_mib": used, "mem_total_mib": total})
    return rows or None


class GpuSampler:
    """Samples nvidia-smi every `interval_s` in a thread while running; `report()` says "no GPU" without one."""

    def __init__(self, interval_s: float = 0.5) -> None:
        self.interval_s = interval_s
        self.samples: list[list[dict[str, float]]] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.available = gpu_snapshot() is not None

    def __enter__(self) -> GpuSampler:
        if self.available:
            self._thread = threading.Thread(target=self._run, daemon=True, name="gpu-sampler")
            self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            snap = gpu_snapshot()
            if snap:
                self.samples.append(snap)

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=15)

    def report(self) -> dict[str, Any] | str:
        if not self.available:
            return "no GPU"
        if not self.samples:
            return {"samples": 0}
        util = [row["util_pct"] for snap in self.samples for row in snap]
        mem = [row["mem_used_mib"] for snap in self.samples for row in snap]
        return {"samples": len(self.samples), "interval_s": self.interval_s,
                "util_pct_mean": round(statistics.fmean(util), 1), "util_pct_max": max(util),
                "mem_used_mib_max": max(mem), "gpus": len(self.samples[0])}  # fmt: skip


# --- processes -----------------------------------------------------------------------------------


def tree_rss(pid: int) -> dict[str, Any]:
    """RSS (MiB) and CPU time (user + system, s) of a process and its live descendants."""
    import psutil  # requirements/bench.txt; imported here so the tests collect without it

    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return {"pid": pid, "alive": False}
    per: dict[int, float] = {}
    cpu = 0.0
    for proc in procs:
        with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
            per[proc.pid] = round(proc.memory_info().rss / 2**20, 1)
            times = proc.cpu_times()
            cpu += times.user + times.system
    return {"pid": pid, "alive": True, "rss_mib_total": round(sum(per.values()), 1), "cpu_s_total": round(cpu, 2),
            "rss_mib_by_pid": per}  # fmt: skip


def cpu_ms_per_request(start: dict[str, Any], end: dict[str, Any], requests_made: int) -> dict[str, float]:
    """CPU milliseconds per request of each process tree, from two `tree_rss` snapshots by name."""
    out = {}
    for name, info in end.items():
        before, after = start.get(name, {}).get("cpu_s_total"), info.get("cpu_s_total")
        if before is not None and after is not None and requests_made:
            out[name] = round((after - before) * 1000 / requests_made, 3)
    return out


def children_cpu_s() -> float:
    """CPU seconds (user + system) of this process's waited-for children: a load generator's."""
    import resource

    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def machine_busy_s() -> float:
    """CPU seconds the whole machine has spent busy (every process, every core) since boot."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")  # guest time is already in user


# --- the stack -----------------------------------------------------------------------------------


def start_replay(data: Path = DATA_PATH) -> tuple[subprocess.Popen, str, Path]:
    """The replay provider as a process of its own: (process, base URL, log file)."""
    port = free_port()
    log = Path(f"/tmp/swarm-replay-{port}.log")
    proc = subprocess.Popen([sys.executable, str(ROOT / "bench" / "replay_provider.py"), "--port", str(port),
                             "--data", str(data)], cwd=ROOT, stdout=subprocess.DEVNULL,
                            stderr=log.open("wb"))  # fmt: skip
    url = f"http://127.0.0.1:{port}/v1"
    wait_for(lambda: requests.get(f"{url}/models", timeout=2).ok, timeout=30, what="replay provider")
    return proc, url, log


@dataclass
class LiveStack:
    """Private redis + web + serving worker + bookkeeping worker (+ the replay provider when `cloud`)."""

    redis: PrivateRedis
    stack: Stack
    replay: subprocess.Popen | None = None
    replay_url: str | None = None
    started_s: float = 0.0
    notes: list[str] = field(default_factory=list)

    @classmethod
    def start(cls, *, cloud: bool = False, budget: str = "0.10", cap: str = "0.02", price_in: str = PRICE_IN,
              price_out: str = PRICE_OUT, data: Path = DATA_PATH, web_concurrency: int = 2,
              redis_server: PrivateRedis | None = None, **env: str) -> LiveStack:  # fmt: skip
        """`redis_server`: the Redis to use (started and stopped with the stack); default a private redis-server."""
        began = time.perf_counter()
        redis_server = redis_server or PrivateRedis()
        redis_server.start()
        extra = {"SWARM_ENV": "local", "WEB_CONCURRENCY": str(web_concurrency),
                 "SWARM_CLOUD_ENABLED": "true" if cloud else "false", REPLAY_KEY_ENV: "replay-local-no-secret",
                 **env}  # fmt: skip
        stack = Stack.build(redis_url=redis_server.url, **extra)
        live = cls(redis=redis_server, stack=stack)
        try:
            stack.migrate()
            if cloud:
                live.replay, live.replay_url, _ = start_replay(data)
                stack.manage("budget_provider", "titanic-replay", "--base-url", live.replay_url, "--model",
                             "titanic-replay", "--key-env", REPLAY_KEY_ENV, "--price-in", price_in, "--price-out",
                             price_out, "--order", "1", "--enable", "--only")  # fmt: skip
                stack.manage("budget_policy", "--cap", cap, "--pool", budget)
                stack.manage("budget_reset")
            stack.start_gpu_worker()
            stack.start_cpu_worker()
            stack.start_web()
            stack.wait_healthy(timeout=180)
        except (OSError, subprocess.SubprocessError, TimeoutError, requests.RequestException):
            live.stop()
            raise
        live.started_s = time.perf_counter() - began
        return live

    @property
    def url(self) -> str:
        return self.stack.url

    def replay_stats(self) -> dict[str, Any] | None:
        if not self.replay_url:
            return None
        return requests.get(self.replay_url.removesuffix("/v1") + "/stats", timeout=5).json()

    def memory(self) -> dict[str, Any]:
        """RSS per stack process (with its children: gunicorn workers, the worker's pool process)."""
        procs = {name: tree_rss(proc.pid) for name, proc in self.stack.procs.items()}
        if self.redis.proc:
            procs["redis"] = tree_rss(self.redis.proc.pid)
        if self.replay:
            procs["replay-provider"] = tree_rss(self.replay.pid)
        return procs

    def stop(self) -> None:
        self.stack.stop()
        if self.replay and self.replay.poll() is None:
            self.replay.terminate()
            try:
                self.replay.wait(10)
            except subprocess.TimeoutExpired:
                self.replay.kill()
        self.redis.stop()

    def __enter__(self) -> LiveStack:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
