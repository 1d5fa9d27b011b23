#!/usr/bin/env python3
"""Where a cached and a head-answered request spend their CPU in the web process (cProfile).

Usage: python -m bench.profile_hotpath [--n 400] [--redis redis://127.0.0.1:6379/5] [--top 25]

Runs the real view stack in this process (Django's test client: middleware, access policy, DRF,
serializer, the cascade's cache / exact-head stages, metrics, the interaction log) against a real
Redis and a throwaway SQLite database; no server, no worker (nothing here needs the model). Writes
reports/profile_hotpath_<date>.json: CPU milliseconds per request and the functions that take it.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
V1_HI = {"model": "swarm-auto", "messages": [{"role": "user", "content": "What is 2+2?"}]}


def _setup(redis_url: str, var_dir: str) -> None:
    os.environ.update({"REDIS_URL": redis_url, "CELERY_BROKER_URL": redis_url, "CELERY_RESULT_BACKEND": redis_url,
                       "SWARM_VAR_DIR": var_dir, "DATABASE_URL": f"sqlite:///{var_dir}/profile.sqlite3",
                       "PROMETHEUS_MULTIPROC_DIR": os.path.join(var_dir, "metrics"),
                       # the limits stay on (their Redis calls are part of every request), high enough not to bite
                       "SWARM_ANON_RATE_PER_MINUTE": "100000000", "SWARM_ANON_CONCURRENCY": "64"})  # fmt: skip
    os.makedirs(os.environ["PROMETHEUS_MULTIPROC_DIR"], exist_ok=True)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "swarm_site.settings")
    sys.path.insert(0, str(ROOT))
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)
    from swarm_site.warmup import warm_web

    warm_web()


def _route(response: Any) -> str | None:
    body = response.json()
    return body.get("route") or (body.get("swarm") or {}).get("route")


def _profile(
    label: str,
    bodies: list[dict[str, Any]],
    *,
    prime: dict[str, Any],
    top: int,
    expect_route: str,
    path: str = "/orchestrate",
    key: str | None = None,
) -> dict[str, Any]:
    from rest_framework.test import APIClient

    client = APIClient(REMOTE_ADDR="127.0.0.1")
    if key:
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    first = client.post(path, prime, format="json").json()  # warms this path (and the cache for a hit)
    profiler = cProfile.Profile()
    cpu, wall = time.process_time(), time.perf_counter()
    profiler.enable()
    routes = [_route(client.post(path, body, format="json")) for body in bodies]
    profiler.disable()
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    wrong = [r for r in routes if r != expect_route]
    if wrong:
        raise SystemExit(f"{label}: expected route {expect_route!r}, got {wrong[:3]} (first answer: {first})")
    stats = pstats.Stats(profiler)
    total = stats.total_tt or 1e-9
    rows = []
    for (file, line, name), (_cc, calls, tottime, cumtime, _callers) in stats.stats.items():  # type: ignore[attr-defined]
        rows.append({"function": f"{os.path.relpath(file, ROOT) if file.startswith(str(ROOT)) else file}:{line}"
                                 f"({name})", "calls_per_request": round(calls / len(bodies), 2),
                     "own_ms_per_request": round(tottime * 1000 / len(bodies), 4),
                     "cumulative_ms_per_request": round(cumtime * 1000 / len(bodies), 4),
                     "cumulative_share": round(cumtime / total, 4)})  # fmt: skip
    rows.sort(key=lambda r: r["cumulative_ms_per_request"], reverse=True)
    text = io.StringIO()
    pstats.Stats(profiler, stream=text).sort_stats("cumulative").print_stats(top)
    print(f"\n=== {label}: {len(bodies)} requests, {cpu * 1000 / len(bodies):.2f} ms CPU each "
          f"({wall * 1000 / len(bodies):.2f} ms wall, profiled) ===")  # fmt: skip
    print("\n".join(text.getvalue().splitlines()[: top + 12]))
    return {"requests": len(bodies), "route": expect_route, "cpu_ms_per_request": round(cpu * 1000 / len(bodies), 3),
            "wall_ms_per_request_profiled": round(wall * 1000 / len(bodies), 3), "top": rows[:top]}  # fmt: skip


def _keyed(args: argparse.Namespace) -> dict[str, Any]:
    """A cache hit with an API key: the key read from the database on every request, then held by the
    process (access/key_cache.py), side by side."""
    from django.conf import settings

    from access.key_cache import key_cache
    from access.services import api_key_create

    raw = api_key_create(name="profile", rate_limit_per_minute=0, max_concurrent=0).raw
    body = {"prompt": "What is 2+2?"}
    cases = {}
    for label, seconds in (("cache_hit_key_read_each_time", 0.0), ("cache_hit_key_held", 60.0)):
        settings.SWARM_KEY_CACHE_S = seconds
        if seconds:
            key_cache.wait_ready(5)
        cases[label] = _profile(label.replace("_", " "), [body] * args.n, prime=body, top=args.top,
                                expect_route="cache", key=raw)  # fmt: skip
    return cases


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=400)
    parser.add_argument("--redis", default=os.environ.get("SWARM_BENCH_REDIS_URL", "redis://127.0.0.1:6379/5"))
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="swarm-profile-") as var_dir:
        _setup(args.redis, var_dir)
        from bench.reporting import write_report
        from swarm_site.redis_client import get_redis

        get_redis().flushdb()
        cases = {
            "cache_hit": _profile("cache hit", [{"prompt": "What is 2+2?"}] * args.n, prime={"prompt": "What is 2+2?"},
                                  top=args.top, expect_route="cache"),
            **_keyed(args),
            "v1_cache_hit": _profile("v1 cache hit", [V1_HI] * args.n, prime=V1_HI, top=args.top,
                                     expect_route="cache", path="/v1/chat/completions"),
            "exact_head": _profile("exact head (cache missed)",
                                   [{"prompt": f"What is {n}*{n + 7}?"} for n in range(1000, 1000 + args.n)],
                                   prime={"prompt": "What is 3*5?"}, top=args.top, expect_route="council"),
        }  # fmt: skip
        get_redis().flushdb()
    write_report("profile_hotpath", {"method": "cProfile over Django's test client in one process (no server); "
                                                "real Redis, SQLite; CPU = process_time", "cases": cases})  # fmt: skip


if __name__ == "__main__":
    main()
