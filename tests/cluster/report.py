"""The drills' shared report: each drill merges its section into reports/cluster_<date>.json."""

from __future__ import annotations

import fcntl
import json
from typing import Any

from bench.reporting import report_path, write_report


def record(section: str, figures: dict[str, Any]) -> None:
    """Put `figures` under `drills.<section>` of today's cluster report, keeping the other drills' sections."""
    path = report_path("cluster")
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(f"/tmp/swarm-{path.stem}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        earlier = json.loads(path.read_text()) if path.is_file() else {}
        drills = {**earlier.get("drills", {}), section: figures}
        write_report("cluster", {"summary": summary(drills), "drills": drills}, path, echo=False)


COUNTED = ("sent", "answered", "redelivered", "gateway_timeouts", "lost")


def summary(drills: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The figures over every drill: request counts added up, and the broker failover's seconds."""
    totals = {name: sum(int(d.get(name) or 0) for d in drills.values()) for name in COUNTED}
    failover = drills.get("sentinel_failover", {}).get("failover_s")
    return {**totals, "failover_s": failover, "drills": sorted(drills)}
