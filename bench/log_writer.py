"""What one interaction row costs the log writer, by batch size (routing/interaction_log.py).

Usage: python -m bench.log_writer [--rows 3000] [--batches 1,4,50,500] [--redis redis://127.0.0.1:6379/5]
                                  [--out PATH]

For each batch size: a throwaway SQLite database (migrated), the given Redis DB emptied, `--rows` cache-hit
payloads appended with `interaction_append` (as the API does), then one `InteractionWriter(batch=N)` drains
them with `drain_once` until all are written. Figures: CPU and wall milliseconds per row in this process
(Redis's own time is not counted). Under load the writer's batches are as large as SWARM_INTERACTION_LINGER_MS
lets entries gather; without the linger they were one or two rows. Writes reports/log_writer_<date>.json.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def _setup(redis_url: str, var_dir: str) -> None:
    os.environ.update({"REDIS_URL": redis_url, "SWARM_VAR_DIR": var_dir,
                       "DATABASE_URL": f"sqlite:///{var_dir}/log_writer.sqlite3"})  # fmt: skip
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "swarm_site.settings")
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()


def payload() -> dict[str, Any]:
    """A cached answer's interaction, as routing/services.py `_log_payload` writes it."""
    return {"request_id": uuid.uuid4().hex, "created_at": datetime.now(UTC).isoformat(), "endpoint": "orchestrate",
            "prompt": "hi", "answer": "Hello! How can I help you today?", "route": "cache", "skill_type": "agent0",
            "confidence": 0.97, "latency_ms": 1.2, "cost_usd": 0.0, "model": "smollm2-135m", "provider": "",
            "detail": "", "adapter_version": "base", "cached": True, "status": "ok", "prompt_tokens": 0,
            "completion_tokens": 0, "ballots": []}  # fmt: skip


def measure(batch: int, rows: int, redis_url: str) -> dict[str, Any]:
    import redis
    from django.core.management import call_command

    from routing.interaction_log import InteractionWriter, interaction_append
    from routing.models import Interaction

    call_command("migrate", verbosity=0)
    Interaction.objects.all().delete()
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    client.flushdb()
    writer = InteractionWriter(client=client, batch=batch)
    writer.ensure_group()
    for _ in range(rows):
        interaction_append(payload=payload(), client=client)
    wall, cpu, written = time.perf_counter(), time.process_time(), 0
    while written < rows:
        written += writer.drain_once(block_ms=None)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    stored = Interaction.objects.count()
    client.flushdb()
    return {"batch": batch, "rows": rows, "stored": stored, "cpu_ms_per_row": round(cpu * 1000 / rows, 3),
            "wall_ms_per_row": round(wall * 1000 / rows, 3)}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=3000)
    parser.add_argument("--batches", default="1,4,50,500")
    parser.add_argument("--redis", default=os.environ.get("SWARM_BENCH_REDIS_URL", "redis://127.0.0.1:6379/5"))
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="swarm-log-writer-") as var_dir:
        _setup(args.redis, var_dir)
        from bench.reporting import write_report

        results = [measure(int(b), args.rows, args.redis) for b in args.batches.split(",")]
    for r in results:
        print(f"batch {r['batch']:>4}: {r['cpu_ms_per_row']:.3f} ms CPU, {r['wall_ms_per_row']:.3f} ms wall per row "
              f"({r['stored']} of {r['rows']} stored)")  # fmt: skip
    path = write_report("log_writer", {"method": __doc__.split("\n\n")[1].replace("\n", " "), "database": "SQLite",
                                       "results": results}, args.out, echo=False)  # fmt: skip
    print(f"report: {path}")


if __name__ == "__main__":
    main()
