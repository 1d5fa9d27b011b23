#!/usr/bin/env python3
"""Time to first token through SSE with the official openai client, against a running stack.

Usage: python -m bench.ttft [--url http://127.0.0.1:8000] [--n 30] [--key sk-swarm-...]
Each request differs in max_tokens so the exact cache never answers. Writes reports/ttft_<date>.json.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

import openai

from bench.reporting import ROOT, percentile, write_report

CASES = {
    "swarm-auto (chat, agent0 streams)": ("swarm-auto", ["hello there", "good morning", "how are you?", "hey"]),
    "smollm2-135m (the model alone)": ("smollm2-135m", ["Tell me about the sea.", "Describe a forest."]),
}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("--n", type=int, default=30)
    parser.add_argument("--key", help="an API key (default: a new one from manage.py create_api_key)")
    args = parser.parse_args()
    create = [sys.executable, "manage.py", "create_api_key", "bench-ttft", "--rate", "0"]
    key = args.key or subprocess.run(create, cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()[-1]
    client = openai.OpenAI(base_url=f"{args.url}/v1", api_key=key, max_retries=0)
    results = {}
    for label, (model, prompts) in CASES.items():
        ttft, total, chunks = [], [], []
        for i in range(args.n):
            started = time.perf_counter()
            first, count = None, 0
            messages = [{"role": "user", "content": prompts[i % len(prompts)]}]
            stream = client.chat.completions.create(model=model, stream=True, max_tokens=48 + i, messages=messages)
            for chunk in stream:
                if chunk.choices and chunk.choices[0].delta.content:
                    count += 1
                    first = first or time.perf_counter() - started
            total.append((time.perf_counter() - started) * 1000)
            ttft.append((first or 0) * 1000)
            chunks.append(count)
        results[label] = {
            "n": args.n,
            "ttft_median_ms": round(statistics.median(ttft), 2), "ttft_p95_ms": round(percentile(ttft, 0.95), 2),
            "total_median_ms": round(statistics.median(total), 2), "total_p95_ms": round(percentile(total, 0.95), 2),
            "content_chunks_median": statistics.median(chunks),
        }  # fmt: skip
    write_report(
        "ttft",
        {
            "url": args.url,
            "results": results,
            "method": "openai client, stream=True, sequential, loopback; TTFT = first content chunk",
        },
    )


if __name__ == "__main__":
    main()
