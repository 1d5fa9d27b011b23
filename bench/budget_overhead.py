#!/usr/bin/env python3
"""What the atomic reservation adds to each paid call: reserve + settle, timed, on SQLite and PostgreSQL.

Usage: python -m bench.budget_overhead [--n 300]
Each backend runs in a child process on a fresh database; writes reports/budget_overhead_<date>.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from decimal import Decimal

from bench.reporting import ROOT, percentile, write_report

PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"


def child(n: int) -> dict:
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "swarm_site.settings")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from budget.models import Provider
    from budget.services import budget_reserve, budget_settle, policy_get

    policy = policy_get()
    policy.daily_pool_usd = Decimal("1000")
    policy.save()
    provider = Provider.objects.create(name=f"bench-{uuid.uuid4().hex[:6]}", base_url="http://127.0.0.1:9/v1",
                                       model="m", api_key_env="X", price_input_per_mtok=Decimal("1"),
                                       price_output_per_mtok=Decimal("2"))  # fmt: skip
    reserve_ms, settle_ms = [], []
    for i in range(n):
        started = time.perf_counter()
        held = budget_reserve(request_id=f"b{i}", provider=provider, amount=Decimal("0.0002"))
        middle = time.perf_counter()
        budget_settle(reservation=held.reservation, prompt_tokens=30, completion_tokens=10, answer="a")
        done = time.perf_counter()
        reserve_ms.append((middle - started) * 1000)
        settle_ms.append((done - middle) * 1000)
    total = [r + s for r, s in zip(reserve_ms, settle_ms, strict=True)]
    series = {"reserve": reserve_ms, "settle": settle_ms, "reserve_plus_settle": total}
    return {
        name: {"median_ms": round(statistics.median(v), 3), "p95_ms": round(percentile(v, 0.95), 3)}
        for name, v in series.items()
    }


def run_backend(label: str, database_url: str, n: int) -> dict:
    env = {**os.environ, "DATABASE_URL": database_url, "SWARM_VAR_DIR": tempfile.mkdtemp(prefix="swarm-bench-")}
    child_argv = [sys.executable, "-m", "bench.budget_overhead", "--child", "--n", str(n)]
    out = subprocess.run(child_argv, cwd=ROOT, env=env, capture_output=True, text=True, check=True).stdout
    return {"backend": label, **json.loads(out.strip().splitlines()[-1])}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=300)
    parser.add_argument("--child", action="store_true")
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.n)))
        return
    import psycopg

    results = [run_backend("sqlite", f"sqlite:///{tempfile.mkdtemp()}/bench.sqlite3", args.n)]
    name = f"swarm_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        results.append(run_backend("postgresql", f"postgres://postgres@127.0.0.1:5432/{name}", args.n))
    finally:
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    write_report(
        "budget_overhead",
        {"n": args.n, "results": results, "method": "sequential budget_reserve + budget_settle on a fresh database"},
    )


if __name__ == "__main__":
    main()
