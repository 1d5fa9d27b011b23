#!/usr/bin/env python3
"""Exact-cache latency through real HTTP, measured the way a user sees it (curl's time_total).

Usage: python bench/cache_latency.py [--url http://127.0.0.1:8000] [--n 100]
Writes reports/cache_latency_<date>.json and prints the summary. Needs a running stack (make run).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def curl_seconds(url: str, body: str) -> tuple[float, dict]:
    out = subprocess.run(
        ["curl", "-s", "-X", "POST", url, "-H", "Content-Type: application/json", "-d", body,
         "-w", "\n%{time_total}"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    payload, seconds = out.rsplit("\n", 1)
    return float(seconds), json.loads(payload)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("--n", type=int, default=100)
    parser.add_argument("--prompt", default="hi")
    args = parser.parse_args()

    endpoint = f"{args.url}/orchestrate"
    body = json.dumps({"prompt": args.prompt})
    first_s, first = curl_seconds(endpoint, body)
    samples, cached = [], 0
    for _ in range(args.n):
        seconds, answer = curl_seconds(endpoint, body)
        samples.append(seconds * 1000)
        cached += bool(answer.get("cached"))
        time.sleep(0.01)
    report = {
        "benchmark": "cache_latency",
        "when": datetime.now(UTC).isoformat(),
        "url": endpoint,
        "prompt": args.prompt,
        "first_request_ms": round(first_s * 1000, 2),
        "first_route": first.get("route"),
        "n": args.n,
        "cached_ratio": cached / args.n,
        "median_ms": round(statistics.median(samples), 2),
        "p95_ms": round(percentile(samples, 0.95), 2),
        "max_ms": round(max(samples), 2),
        "method": "curl -w %{time_total}, sequential, loopback",
    }
    out = ROOT / "reports" / f"cache_latency_{datetime.now(UTC):%Y%m%d}.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
