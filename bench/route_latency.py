#!/usr/bin/env python3
"""Per-route latency through real HTTP against a running stack (make run).

Each prompt family is sent N times with a distinct max_tokens so the exact cache does not
answer (short answers are unaffected); then the same prompts again to measure cache hits.
Usage: python -m bench.route_latency [--url http://127.0.0.1:8000] [--n 20]
Writes reports/route_latency_<date>.json.
"""

from __future__ import annotations

import argparse
import time
from collections import defaultdict

import requests

from bench.reporting import auth_headers, latency_summary, write_report

FAMILIES = {
    "math": ["What is {a}*{b}?", "factor x^2-{s}x+{p}", "What is {a}% of {b}?"],
    "knowledge": [
        "What is the capital of France?",
        "What is the chemical symbol for gold?",
        "How many planets are there?",
    ],
    "micro": ["convert {a} km to miles", "thanks!", "what day of the week was 2024-01-0{d}?"],
    "agent0": ["hi", "hello", "good morning", "how are you?"],
    "code": ["Write a python function add(a, b) that returns the sum of a and b. add(2, 3) -> 5"],
    "unsure": ["Explain why the sky looks blue in one sentence."],
}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("--n", type=int, default=20)
    args = parser.parse_args()
    session = requests.Session()
    session.headers.update(auth_headers())
    by_route: dict[str, list[float]] = defaultdict(list)
    by_family: dict[str, list[float]] = defaultdict(list)
    sent = []
    for i in range(args.n):
        for family, templates in FAMILIES.items():
            template = templates[i % len(templates)]
            prompt = template.format(a=3 + i, b=7 + 2 * i, s=5, p=6, d=1 + i % 9)
            body = {"prompt": prompt, "max_tokens": 100 + i}
            started = time.perf_counter()
            answer = session.post(f"{args.url}/orchestrate", json=body, timeout=120).json()
            elapsed = (time.perf_counter() - started) * 1000
            by_family[family].append(elapsed)
            by_route[f"{answer['route']}:{answer['skill_type']}"].append(elapsed)
            sent.append(body)
    for body in sent:
        started = time.perf_counter()
        answer = session.post(f"{args.url}/orchestrate", json=body, timeout=120).json()
        if answer.get("cached"):
            by_route["cache"].append((time.perf_counter() - started) * 1000)
    write_report(
        "route_latency",
        {
            "url": args.url,
            "method": "sequential HTTP POST /orchestrate from one client on loopback, wall time per request",
            "by_route": {k: latency_summary(v) for k, v in sorted(by_route.items())},
            "by_prompt_family": {k: latency_summary(v) for k, v in sorted(by_family.items())},
        },
    )


if __name__ == "__main__":
    main()
