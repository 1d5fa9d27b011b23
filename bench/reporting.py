"""Shared by the benchmarks: percentiles, latency summaries, the JSON report under reports/, the API key."""

from __future__ import annotations

import json
import os
import statistics
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def auth_headers() -> dict[str, str]:
    """`Authorization` for the gateway from SWARM_API_KEY (make one with `manage.py create_api_key bench
    --rate 0 --concurrency 0`); none: the anonymous loopback caller, under its limits."""
    key = os.environ.get("SWARM_API_KEY", "").strip()
    return {"Authorization": f"Bearer {key}"} if key else {}


# Refusals a well-behaved client waits out: the gateway's 429 (rate) and 503 (model saturated) carry
# Retry-After, as the OpenAI client honours them.
RETRIED_STATUSES = frozenset({429, 503})


class FairTurns:
    """One client's threads take the gateway's places in the order they were refused.

    Without it a client running several threads against a gateway with one serving place starves its
    own refused request: the thread whose answer just came back sends its next request at once and takes
    the freed place, while the refused one is still waiting out its Retry-After, every time (long code
    answers on a 2-core CPU: three items gave up after 115 s of retries). With it, a new request is not
    sent while a refused one waits to be sent again (nor for `GRACE_S` after it was), and a refused
    request is sent again as soon as any of the client's requests ends (a place may have freed) or its
    Retry-After passes, whichever is first. The gateway's admission is unchanged: this is the client
    being fair to itself."""

    GRACE_S = 0.2  # the resent request reaches the gateway before a new one

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._waiting: set[int] = set()  # requests refused and not yet sent again
        self._resent_at = 0.0
        self._ended = 0  # requests of this client that ended (answered, refused for good, failed)

    def before_new(self, deadline: float) -> None:
        """Wait (up to `deadline`, a monotonic time) while a refused request is yet to be sent again."""
        with self._cond:
            while (now := time.monotonic()) < deadline:
                if self._waiting:
                    self._cond.wait(deadline - now)
                elif now < self._resent_at + self.GRACE_S:
                    self._cond.wait(self._resent_at + self.GRACE_S - now)
                else:
                    return

    def wait_refused(self, token: int, wait_s: float) -> None:
        """A refused request waits out `wait_s`, or less when another request of the client ends first."""
        with self._cond:
            self._waiting.add(token)
            ended = self._ended
            self._cond.wait_for(lambda: self._ended != ended, timeout=wait_s)
            self._waiting.discard(token)
            self._resent_at = time.monotonic()
            self._cond.notify_all()

    def ended(self) -> None:
        with self._cond:
            self._ended += 1
            self._cond.notify_all()


def post_admitted(
    session: Any, url: str, body: dict[str, Any], *, timeout_s: float, turns: FairTurns | None = None
) -> tuple[Any, int]:
    """POST `body` as a well-behaved client does: a 429/503 refusal with Retry-After is waited out and sent
    again while `timeout_s` (the whole exchange's budget) allows. (the last response, refusals waited out);
    raises what `session.post` raises. `turns`, shared by a client's threads: refused requests go first
    (FairTurns)."""
    deadline = time.monotonic() + timeout_s
    retries = 0
    token = threading.get_ident()  # a thread has one request at a time
    if turns is not None:
        turns.before_new(deadline)
    try:
        while True:
            left = deadline - time.monotonic()
            response = session.post(url, json=body, timeout=max(1.0, left))
            if response.status_code not in RETRIED_STATUSES:
                return response, retries
            try:
                wait = max(0.1, float(response.headers.get("Retry-After", "")))
            except ValueError:
                return response, retries  # a refusal that does not say when: final
            if time.monotonic() + wait >= deadline:
                return response, retries
            if turns is None:
                time.sleep(wait)
            else:
                turns.wait_refused(token, wait)
            retries += 1
    finally:
        if turns is not None:
            turns.ended()


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile, q in [0, 1]."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def latency_summary(samples_ms: list[float]) -> dict[str, float]:
    return {
        "n": len(samples_ms),
        "median_ms": round(statistics.median(samples_ms), 2),
        "p95_ms": round(percentile(samples_ms, 0.95), 2),
        "p99_ms": round(percentile(samples_ms, 0.99), 2),
        "max_ms": round(max(samples_ms), 2),
    }


def write_report(name: str, report: dict[str, Any], out: Path | None = None, *, echo: bool = True) -> Path:
    """reports/<name>_<UTC date>.json (or `out`), with `benchmark` and `when` filled in; prints it too
    unless `echo` is off."""
    now = datetime.now(UTC)
    body = {"benchmark": name, "when": now.isoformat(), **report}
    path = out or report_path(name, now)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(body, indent=2, default=str) + "\n")
    if echo:
        print(json.dumps(body, indent=2, default=str))
    return path


def report_path(name: str, when: datetime | None = None) -> Path:
    """reports/<name>_<UTC date>.json: where `write_report` puts the day's report."""
    return ROOT / "reports" / f"{name}_{(when or datetime.now(UTC)):%Y%m%d}.json"


def with_earlier_profiles(name: str, profiles: dict[str, Any], out: Path | None) -> dict[str, Any]:
    """`profiles`, plus those of an earlier run today that this run did not measure (default path only)."""
    path = out or report_path(name)
    earlier = json.loads(path.read_text()).get("profiles", {}) if out is None and path.is_file() else {}
    return {**{k: v for k, v in earlier.items() if k not in profiles}, **profiles}


def shown_path(path: Path) -> str:
    """`path` relative to the project root when it is inside it."""
    return str(path.relative_to(ROOT) if path.is_relative_to(ROOT) else path)
