#!/usr/bin/env python3
"""Soak test: Locust, headless, a constant request rate against the live HTTP API on loopback.

Two roles in one file:
- `python bench/soak/locustfile.py --qps 120 --duration 5m [--url URL]` (what `make soak-live` runs):
  starts a stack of its own (unless --url), warms the exact cache, runs Locust headless in a child
  process against it, samples the RSS of every stack process (and VRAM on a GPU), writes
  reports/soak_<date>.json and exits non-zero when any request failed (--max-fail-ratio, 0), the
  client p95 passes --p95-target-ms (150 ms), the gateway's own p95 passes --server-p95-target-ms
  (50 ms), or (its own stack) the Interaction rows written once the log stream is drained differ
  from the requests sent.
- `locust -f bench/soak/locustfile.py ...`: the users below (SOAK_* variables set by the runner).

The mix (SOAK_MIX / --mix, weights in percent) is what a gateway in front of a small local model
sees when it is healthy: most traffic is repeated questions answered from the exact cache, a
sizeable minority are new questions the fast exact heads answer (math, unit/date conversions,
facts), and a small share is open chat that needs the local LLM. Default
`cache:85,math:5,micro:4,knowledge:5,chat:1`. The cache, the mined patterns and the exact heads
answer in the API; only chat reaches the serving worker (one slot by default, decoding on every core:
inference.backends.llama.model_threads), where one generation takes ~0.3-1 s on this 2-core CPU box
(p50 0.5 s), so chat much beyond ~1 % of 120 QPS queues past what the model answers within
SWARM_ADMIT_WAIT_S (routing/admission.py) and the excess is refused at once with a 503. That is a
property of the product on this hardware, measured per request kind in the report (`by_kind`).
`--slots` / `--threads` run the stack with other SWARM_MODEL_SLOTS / SWARM_MODEL_THREADS.

Each request kind keeps the exact cache from answering where it should not: new operands for
math and micro, a random max_tokens for knowledge and a random max_tokens + temperature for chat.
Every Locust user starts requests at a constant throughput (qps / users), each request in a greenlet
of its own (open loop), so the offered load is held at --qps whatever the latency; the run is
bounded by --duration and by SOAK_MAX_REQUESTS.

The report gives the client latency (what the checks use) and the gateway's own `latency_ms`
from each answer (`server_latency_ms`): on this shared 2-core machine Locust's gevent client was
seen adding tens to ~180 ms per request at 10-40 users even on an idle stack, where a plain
threaded client at the same rate measured ~10 ms, so read the two side by side.
"""

from __future__ import annotations

import random
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
DEFAULT_MIX = "cache:85,math:5,micro:4,knowledge:5,chat:1"
CACHE_PROMPTS = [
    "What is the capital of France?", "What is 7*8?", "hello", "thanks!", "convert 10 km to miles",
    "What is the chemical symbol for gold?", "How many planets are there?", "What is 15% of 80?",
    "factor x^2-5x+6", "What is the capital of Japan?", "what day of the week was 2024-01-01?",
    "How many legs does a spider have?", "What is the square root of 144?", "good morning", "thank you",
    "What is the capital of Canada?", "solve 2x + 3 = 11", "convert 100 f to c", "What is 12*12?",
    "What is the largest planet in the solar system?",
]  # fmt: skip
CACHE_MAX_TOKENS = 64
COUNTRIES = [
    "France",
    "Japan",
    "Canada",
    "Germany",
    "Italy",
    "Spain",
    "Egypt",
    "Norway",
    "Peru",
    "Poland",
    "Portugal",
    "Thailand",
    "Argentina",
    "Australia",
    "Greece",
    "Chile",
    "Cuba",
    "Kenya",
    "Austria",
]
CHAT_PROMPTS = ["hi", "hello", "hey there", "good morning", "how are you?", "good evening", "what's up?",
                "nice to meet you", "who are you?", "hello everyone"]  # fmt: skip


def parse_mix(text: str) -> dict[str, float]:
    mix = {}
    for part in text.split(","):
        kind, _, weight = part.partition(":")
        if kind.strip() not in {"cache", "math", "micro", "knowledge", "chat"}:
            raise ValueError(f"unknown request kind {kind!r} in the mix {text!r}")
        mix[kind.strip()] = float(weight)
    return mix


def request_body(kind: str, rng: random.Random) -> dict[str, object]:
    """The /orchestrate body for one request of `kind`."""
    if kind == "cache":
        return {"prompt": rng.choice(CACHE_PROMPTS), "max_tokens": CACHE_MAX_TOKENS}
    if kind == "math":
        a, b = rng.randint(100, 99999), rng.randint(100, 99999)
        return {"prompt": rng.choice([f"What is {a} * {b}?", f"What is {a} + {b}?", f"What is {a % 97}% of {b}?"])}
    if kind == "micro":
        return {"prompt": f"convert {rng.randint(1, 999999)} km to miles"}
    if kind == "knowledge":
        return {"prompt": f"What is the capital of {rng.choice(COUNTRIES)}?", "max_tokens": rng.randint(32, 1024)}
    if kind == "chat":
        return {"prompt": rng.choice(CHAT_PROMPTS), "max_tokens": rng.randint(16, 32),
                "temperature": round(rng.uniform(0.0, 0.7), 3)}  # fmt: skip
    raise ValueError(kind)


def main(argv: list[str] | None = None) -> int:
    sys.path.insert(0, str(ROOT))
    from bench.titanic.soak import main as soak_main

    return soak_main(argv)


if __name__ == "__main__":
    raise SystemExit(main())
elif "locust" in sys.modules:  # loaded by Locust (which is imported by then): the users. Imported by the
    # runner for the constants above, nothing below runs, so gevent never patches the runner's process.
    import json
    import os
    import threading
    import time

    import gevent
    import gevent.pool
    from locust import FastHttpUser, constant_throughput, events, task

    _MIX = parse_mix(os.environ.get("SOAK_MIX", DEFAULT_MIX))
    _QPS = float(os.environ.get("SOAK_QPS", "10"))
    _USERS = max(1, int(os.environ.get("SOAK_USERS", "10")))
    _MAX_REQUESTS = int(os.environ.get("SOAK_MAX_REQUESTS", "1000000"))
    _RECORD = os.environ.get("SOAK_RECORD")
    _AUTH = {"Authorization": f"Bearer {os.environ['SWARM_API_KEY']}"} if os.environ.get("SWARM_API_KEY") else {}
    # (time, kind, route, client latency ms, ok, the gateway's own latency_ms from the answer or None)
    _records: list[tuple[float, str, str, float, bool, float | None]] = []
    _lock = threading.Lock()

    _inflight = gevent.pool.Group()  # the requests still running: the records wait for them

    @events.quitting.add_listener
    def _write_records(environment, **kwargs) -> None:
        _inflight.join(timeout=90)  # every request sent gets its record (a chat may wait on the model)
        if _RECORD:
            Path(_RECORD).write_text(json.dumps(_records))

    class SwarmUser(FastHttpUser):
        """One client at a constant rate; together the users hold SOAK_QPS."""

        wait_time = constant_throughput(_QPS / _USERS)
        # Requests in flight at once per user (its connection pool): enough that a few slow answers
        # never make the fast ones queue in the client (open loop: see `orchestrate`).
        concurrency = 200

        def on_start(self) -> None:
            self.rng = random.Random(f"{os.environ.get('SOAK_SEED', '1')}-{id(self)}")
            self.kinds, self.weights = list(_MIX), list(_MIX.values())

        @task
        def orchestrate(self) -> None:
            with _lock:
                if len(_records) >= _MAX_REQUESTS:
                    gevent.spawn(self.environment.runner.quit)
                    return
            kind = self.rng.choices(self.kinds, self.weights)[0]
            # Open loop: the request runs in a greenlet of its own, so a slow answer (a chat generation
            # waiting for the model) never holds this user back from its next request and the offered
            # rate stays at SOAK_QPS whatever the latency.
            _inflight.spawn(self._send, kind, request_body(kind, self.rng))

        def _send(self, kind: str, body: dict[str, object]) -> None:
            started = time.perf_counter()
            with self.client.post("/orchestrate", json=body, name=kind, catch_response=True, headers=_AUTH) as response:
                elapsed = (time.perf_counter() - started) * 1000
                route, ok, server_ms = "error", False, None
                try:
                    payload = response.json() if response.status_code == 200 else None
                except ValueError:
                    payload = None
                if isinstance(payload, dict) and isinstance(payload.get("answer"), str) and payload["answer"]:
                    route, ok, server_ms = str(payload.get("route")), True, payload.get("latency_ms")
                    response.success()
                else:
                    response.failure(f"HTTP {response.status_code}: {(response.text or '')[:120]}")
            with _lock:
                _records.append((time.time(), kind, route, round(elapsed, 2), ok, server_ms))
