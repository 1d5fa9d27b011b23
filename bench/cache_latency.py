#!/usr/bin/env python3
"""Exact-cache latency through real HTTP, measured the way a user sees it (curl's time_total).

Usage: python -m bench.cache_latency [--url http://127.0.0.1:8000] [--n 100]
Writes reports/cache_latency_<date>.json and prints the summary. Needs a running stack (make run).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import time

from bench.reporting import auth_headers, latency_summary, write_report


def curl_seconds(url: str, body: str) -> tuple[float, dict]:
    out = subprocess.run(
        ["curl", "-s", "-X", "POST", url, "-H", "Content-Type: application/json", "-d", body,
         *[arg for name, value in auth_headers().items() for arg in ("-H", f"{name}: {value}")],
         "-w", "\n%{time_total}"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    payload, seconds = out.rsplit("\n", 1)
    return float(seconds), json.loads(payload)


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
    write_report(
        "cache_latency",
        {
            "url": endpoint,
            "prompt": args.prompt,
            "first_request_ms": round(first_s * 1000, 2),
            "first_route": first.get("route"),
            "n": args.n,
            "cached_ratio": cached / args.n,
            **latency_summary(samples),
            "method": "curl -w %{time_total}, sequential, loopback",
        },
    )


if __name__ == "__main__":
    main()
