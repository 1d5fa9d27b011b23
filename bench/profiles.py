"""Both model profiles' latency through the gateway, side by side: a short factual answer and the first
streamed token, and the same model in-process so the gateway's own share shows.

Usage: python -m bench.profiles [--models a,b] [--n 20] [--max-tokens 20] [--out PATH]

For each model profile (a registry alias; default: every alias in config/models.yaml whose file is
prefetched, i.e. present in the model directory):

1. gateway: a stack of its own (private redis-server, gunicorn, a serving worker with SWARM_MODEL=<alias>,
   the bookkeeping worker; bench/titanic/live.py `LiveStack`), cloud off, and an API key without limits
   made on it. The official `openai` client asks POST /v1/chat/completions with `model=<alias>` (the
   local-model route: the model alone on the conversation, never the cascade), `max_tokens` 20 and
   temperature 0, one request at a time, for each of N short factual questions (QUESTIONS, cycled):
   (a) non-streamed: the whole answer's latency and its completion_tokens;
   (b) stream=True: the first content chunk's latency (the first token through SSE).
   Every request is a cache miss: the exact cache keys only the cascade (`swarm-auto`), never a model's
   alias, and each request's system message also carries a nonce of its own, so no two requests are
   the same (the report counts answers marked `cached`: 0 expected).
2. raw: the same model in this process (the project's backend class, inference/runtime.py `build_backend`,
   the registry's params), the same kind of messages (nonces of their own): `generate` for the whole
   answer, `stream_generate` for the first piece.
The two take turns, request by request (gateway answer, raw answer, gateway stream, raw stream), one at
a time: on a shared machine whatever else runs weighs on both sides alike, so their ratio holds.

One warm-up request per mode and side before the measured ones is not counted.
Figures per profile: answer_ms and first_token_ms (n, p50 = median, p95 = nearest rank, p99, max), the
completion tokens of each answer, the same for raw, and ratios.gateway_over_raw_p50 (gateway answer p50
over raw answer p50). Targets, for every profile: answer p50 <= 700 ms and first token p95 <= 300 ms.
The machine is shared: its load is recorded before and after each profile, and with each sample.

The report is reports/profiles_<UTC date>.json (bench/reporting.py `write_report`); profiles an earlier
run wrote to today's file are kept unless this run measures them again. The last line is
`PASS profiles: ...` or `FAIL profiles: ...`, naming each figure against its target; exit status 0,
1 on FAIL, 2 when the benchmark refused to run (an unknown alias, a model file missing).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import requests

from bench.humaneval import Refused, check_models, prefetched_models, setup_django
from bench.reporting import shown_path, with_earlier_profiles, write_report
from bench.titanic.live import LiveStack, machine_load, summary

NAME = "profiles"
N = 20
MAX_TOKENS = 20
REQUEST_TIMEOUT_S = 120.0
TARGETS = {"answer_p50_ms_max": 700.0, "first_token_p95_ms_max": 300.0}
OK, FAIL_EXIT, REFUSED = 0, 1, 2
ERROR_CHARS = 200
ANSWER_CHARS = 120

# A latency probe, not scored: common questions with short answers.
QUESTIONS = (
    "What is the capital of France?",
    "What is the capital of Japan?",
    "What is the capital of Canada?",
    "What is the capital of Australia?",
    "Who wrote Romeo and Juliet?",
    "Who wrote Pride and Prejudice?",
    "Who painted the Mona Lisa?",
    "What is the largest planet in the solar system?",
    "Which planet is closest to the Sun?",
    "Which planet is known as the Red Planet?",
    "What is the chemical symbol for gold?",
    "What is the chemical symbol for sodium?",
    "Which element has the atomic number 1?",
    "What is the boiling point of water in degrees Celsius?",
    "How many continents are there?",
    "What is the longest river in Africa?",
    "What is the largest ocean on Earth?",
    "Who developed the theory of relativity?",
    "In which year did World War II end?",
    "What is the tallest mountain in the world?",
)
WARMUP_QUESTION = "What is the capital of Italy?"
SYSTEM_PROMPT = "You are a helpful assistant. Give the answer, then one sentence of background about it."

DEFINITIONS = {
    "answer_ms": "client-side wall time of one non-streamed POST /v1/chat/completions (openai client, loopback)",
    "first_token_ms": "client-side time from sending a stream=True request to its first non-empty content chunk",
    "stream_total_ms": "the same streamed request until its last chunk",
    "server_ms": "the gateway's own latency_ms for a non-streamed answer (the response's `swarm` object)",
    "completion_tokens": "usage.completion_tokens of each non-streamed answer (raw: the backend's count)",
    "raw": "the same model in this process (inference/runtime.py build_backend), generate / stream_generate, "
    "taking turns with the gateway request by request",
    "gateway_over_raw_p50": "answer_ms p50 through the gateway over raw answer_ms p50",
    "first_token_gateway_over_raw_p50": "first_token_ms p50 through the gateway over raw first_token_ms p50",
    "percentiles": "p50 is the median; p95 and p99 the nearest rank (bench/reporting.py percentile)",
    "cache_misses": "the exact cache keys only swarm-auto; each request's system message carries its own nonce",
}


def question(index: int) -> str:
    """The index-th probe question (the list cycles past its end)."""
    return QUESTIONS[index % len(QUESTIONS)]


def messages_for(text: str, nonce: str | None = None) -> list[dict[str, str]]:
    """The system message (with a nonce of its own: no two requests are alike) and the question."""
    nonce = nonce or uuid.uuid4().hex[:12]
    return [{"role": "system", "content": f"{SYSTEM_PROMPT} (probe {nonce})"}, {"role": "user", "content": text}]


# --- one request's measurements ------------------------------------------------------------------


@dataclass
class Sample:
    question: str
    answer_ms: float | None = None
    completion_tokens: int | None = None
    finish_reason: str | None = None
    route: str | None = None
    cached: bool | None = None
    server_ms: float | None = None
    answer: str | None = None  # its first ANSWER_CHARS characters
    first_token_ms: float | None = None
    stream_total_ms: float | None = None
    stream_tokens: int | None = None
    error: str | None = None
    raw_answer_ms: float | None = None
    raw_completion_tokens: int | None = None
    raw_first_token_ms: float | None = None
    raw_error: str | None = None
    load1: float | None = None  # the machine's 1-minute load average when the sample began


# --- figures, targets and the verdict ------------------------------------------------------------


def _values(samples: list[Sample], name: str) -> list[float]:
    return [value for s in samples if (value := getattr(s, name)) is not None]


def token_stats(counts: list[int]) -> dict[str, Any]:
    """Completion tokens per answer: each of them, and their min / median / max."""
    if not counts:
        return {"n": 0, "per_answer": []}
    return {"n": len(counts), "min": min(counts), "median": statistics.median(counts), "max": max(counts),
            "per_answer": counts}  # fmt: skip


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    return round(numerator / denominator, 2) if numerator is not None and denominator else None


def figures(samples: list[Sample]) -> dict[str, Any]:
    """A profile's latency figures (gateway and raw), tokens, ratios, errors and cache hits."""
    answer, first = summary(_values(samples, "answer_ms")), summary(_values(samples, "first_token_ms"))
    raw_answer, raw_first = summary(_values(samples, "raw_answer_ms")), summary(_values(samples, "raw_first_token_ms"))
    return {
        "answer_ms": answer,
        "first_token_ms": first,
        "stream_total_ms": summary(_values(samples, "stream_total_ms")),
        "server_ms": summary(_values(samples, "server_ms")),
        "completion_tokens": token_stats([int(v) for v in _values(samples, "completion_tokens")]),
        "raw": {
            "answer_ms": raw_answer,
            "first_token_ms": raw_first,
            "completion_tokens": token_stats([int(v) for v in _values(samples, "raw_completion_tokens")]),
        },
        "ratios": {
            "gateway_over_raw_p50": ratio(answer.get("p50_ms"), raw_answer.get("p50_ms")),
            "first_token_gateway_over_raw_p50": ratio(first.get("p50_ms"), raw_first.get("p50_ms")),
        },
        "errors": sum(s.error is not None for s in samples),
        "raw_errors": sum(s.raw_error is not None for s in samples),
        "cache_hits": sum(bool(s.cached) for s in samples),
        "finish_reasons": dict(Counter(s.finish_reason for s in samples if s.finish_reason)),
        "routes": sorted({s.route for s in samples if s.route}),
    }


def targets_met(figs: dict[str, Any]) -> dict[str, bool]:
    """Each target against the profile's figures; a figure with no sample is not met."""
    answer_p50, first_p95 = figs["answer_ms"].get("p50_ms"), figs["first_token_ms"].get("p95_ms")
    return {
        "answer_p50": answer_p50 is not None and answer_p50 <= TARGETS["answer_p50_ms_max"],
        "first_token_p95": first_p95 is not None and first_p95 <= TARGETS["first_token_p95_ms_max"],
    }


def _ms(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.0f} ms"


def profile_line(alias: str, profile: dict[str, Any]) -> str:
    """One profile's figures, each target figure with its target and met / NOT met."""
    if profile.get("error_message"):
        return f"{alias}: {profile['error_message']}"
    met = profile["targets_met"]

    def verdict(ok: bool) -> str:
        return "met" if ok else "NOT met"

    answer, first, raw = profile["answer_ms"], profile["first_token_ms"], profile["raw"]["answer_ms"]
    median_tokens = profile["completion_tokens"].get("median")
    gateway_over_raw = profile["ratios"]["gateway_over_raw_p50"]
    errors = f", {profile['errors']} errors" if profile.get("errors") else ""
    return (
        f"{alias}: answer p50 {_ms(answer.get('p50_ms'))} (<= {TARGETS['answer_p50_ms_max']:.0f} ms "
        f"{verdict(met['answer_p50'])}), first token p95 {_ms(first.get('p95_ms'))} "
        f"(<= {TARGETS['first_token_p95_ms_max']:.0f} ms {verdict(met['first_token_p95'])}); "
        f"answer p95 {_ms(answer.get('p95_ms'))}, first token p50 {_ms(first.get('p50_ms'))}, "
        f"raw p50 {_ms(raw.get('p50_ms'))} (gateway/raw {'n/a' if gateway_over_raw is None else gateway_over_raw}x), "
        f"tokens median {'n/a' if median_tokens is None else f'{median_tokens:g}'}, n={answer.get('n', 0)}{errors}"
    )


def profile_passed(profile: dict[str, Any]) -> bool:
    return not profile.get("error_message") and not profile.get("errors") and all(profile["targets_met"].values())


def verdict_line(profiles: dict[str, dict[str, Any]], load: dict[str, Any] | None = None) -> tuple[bool, str]:
    """(passed, the PASS/FAIL line) over the profiles this run measured; `load`: {start, end} machine_load."""
    passed = bool(profiles) and all(profile_passed(p) for p in profiles.values())
    detail = "; ".join(profile_line(alias, p) for alias, p in profiles.items()) or "no profile ran"
    if load and "start" in load and "end" in load:
        start, end = load["start"]["loadavg_1_5_15"][0], load["end"]["loadavg_1_5_15"][0]
        detail += f" (load avg {start:.2f} at start, {end:.2f} at end, {load['start']['cpus']} CPUs)"
    return passed, f"{'PASS' if passed else 'FAIL'} {NAME}: {detail}"


# --- the two runs --------------------------------------------------------------------------------


def _error_text(exc: Exception) -> str:
    return f"{type(exc).__name__}: {exc}"[:ERROR_CHARS]


def ask_answer(client: Any, alias: str, text: str, *, max_tokens: int) -> dict[str, Any]:
    """One non-streamed chat completion: its latency, tokens and what the gateway says about it."""
    started = time.perf_counter()
    response = client.chat.completions.create(model=alias, messages=messages_for(text), max_tokens=max_tokens,
                                              temperature=0.0)  # fmt: skip
    ms = (time.perf_counter() - started) * 1000
    swarm = (response.model_extra or {}).get("swarm") or {}
    content = response.choices[0].message.content or ""
    tokens = response.usage.completion_tokens if response.usage else None
    return {"answer_ms": round(ms, 1), "completion_tokens": tokens, "finish_reason": response.choices[0].finish_reason,
            "route": swarm.get("route"), "cached": swarm.get("cached"), "server_ms": swarm.get("latency_ms"),
            "answer": content.strip()[:ANSWER_CHARS]}  # fmt: skip


def ask_stream(client: Any, alias: str, text: str, *, max_tokens: int) -> dict[str, Any]:
    """One streamed chat completion: the first content chunk's latency, the whole stream's, its tokens."""
    started = time.perf_counter()
    first: float | None = None
    tokens: int | None = None
    stream = client.chat.completions.create(model=alias, messages=messages_for(text), max_tokens=max_tokens,
                                            temperature=0.0, stream=True,
                                            stream_options={"include_usage": True})  # fmt: skip
    for chunk in stream:
        if first is None and chunk.choices and chunk.choices[0].delta.content:
            first = time.perf_counter() - started
        if chunk.usage:
            tokens = chunk.usage.completion_tokens
    total = (time.perf_counter() - started) * 1000
    return {"first_token_ms": None if first is None else round(first * 1000, 1),
            "stream_total_ms": round(total, 1), "stream_tokens": tokens}  # fmt: skip


def _first_piece_timer() -> tuple[Callable[[str], bool], Callable[[], float | None]]:
    """(on_piece for stream_generate, the seconds from its creation to the first non-empty piece)."""
    started, first = time.perf_counter(), []

    def on_piece(piece: str) -> bool:
        if piece and not first:
            first.append(time.perf_counter() - started)
        return True

    return on_piece, lambda: first[0] if first else None


class RawModel:
    """The same model in this process (the project's backend class, the registry's params)."""

    def __init__(self, alias: str, *, max_tokens: int) -> None:
        from inference.registry import load_registry
        from inference.runtime import build_backend

        self.backend = build_backend(load_registry().get(alias))
        self.max_tokens = max_tokens

    def load(self) -> dict[str, Any]:
        started = time.perf_counter()
        self.backend.load()
        return {"load_s": round(time.perf_counter() - started, 1), "backend": self.backend.describe()}

    def answer(self, text: str) -> dict[str, Any]:
        """`generate`: the whole answer's latency and its tokens."""
        began = time.perf_counter()
        gen = self.backend.generate(messages_for(text), max_tokens=self.max_tokens, temperature=0.0)
        return {"raw_answer_ms": round((time.perf_counter() - began) * 1000, 1),
                "raw_completion_tokens": gen.completion_tokens}  # fmt: skip

    def first_token(self, text: str) -> dict[str, Any]:
        """`stream_generate`: the first non-empty piece's latency."""
        on_piece, first = _first_piece_timer()
        self.backend.stream_generate(messages_for(text), max_tokens=self.max_tokens, temperature=0.0,
                                     on_piece=on_piece)  # fmt: skip
        seconds = first()
        return {"raw_first_token_ms": None if seconds is None else round(seconds * 1000, 1)}

    def unload(self) -> None:
        self.backend.unload()


def measure(
    sample: Sample, steps: list[tuple[str, Callable[[str], dict[str, Any]]]], errors: tuple[type[Exception], ...]
) -> None:
    """Run each (kind, step) on the sample's question, in order; a failed step's error lands on the sample."""
    for kind, step in steps:
        try:
            for name, value in step(sample.question).items():
                setattr(sample, name, value)
        except errors as exc:
            setattr(sample, "raw_error" if kind == "raw" else "error", _error_text(exc))


def run_interleaved(alias: str, samples: list[Sample], *, max_tokens: int) -> dict[str, Any]:
    """Each sample through a stack of its own serving `alias` and through the model in this process, turn
    about (gateway answer, raw answer, gateway stream, raw stream), one request at a time: on a shared
    machine whatever else runs weighs on both sides alike. Facts about the stack and the raw model."""
    import openai
    from django.conf import settings

    raw = RawModel(alias, max_tokens=max_tokens)
    facts: dict[str, Any] = {"raw_model": raw.load()}
    env = {"SWARM_MODEL": alias, "SWARM_MODEL_DIR": str(settings.SWARM_MODEL_DIR)}
    try:
        with LiveStack.start(cloud=False, web_concurrency=1, **env) as live:
            key = live.stack.create_key("bench-profiles")
            client = openai.OpenAI(base_url=f"{live.url}/v1", api_key=key, max_retries=0, timeout=REQUEST_TIMEOUT_S)
            facts["stack"] = {"started_s": round(live.started_s, 1), "cloud": False, "env": env}
            steps: list[tuple[str, Callable[[str], dict[str, Any]]]] = [
                ("gateway", lambda text: ask_answer(client, alias, text, max_tokens=max_tokens)),
                ("raw", raw.answer),
                ("gateway", lambda text: ask_stream(client, alias, text, max_tokens=max_tokens)),
                ("raw", raw.first_token),
            ]
            warm = time.perf_counter()
            for _, step in steps:
                step(WARMUP_QUESTION)
            facts["warmup_ms"] = round((time.perf_counter() - warm) * 1000, 1)
            for index, sample in enumerate(samples, 1):
                sample.load1 = round(os.getloadavg()[0], 2)
                measure(sample, steps, (openai.OpenAIError, RuntimeError, ValueError))
                print(f"[{alias}] {index}/{len(samples)}: answer {_ms(sample.answer_ms)} ({sample.completion_tokens} "
                      f"tokens; raw {_ms(sample.raw_answer_ms)}), first token {_ms(sample.first_token_ms)} (raw "
                      f"{_ms(sample.raw_first_token_ms)}), load {sample.load1}"
                      f"{f' error {sample.error}' if sample.error else ''}", file=sys.stderr, flush=True)  # fmt: skip
            facts["stack"]["memory"] = live.memory()
    finally:
        raw.unload()
    return facts


def run_profile(alias: str, n: int, *, max_tokens: int) -> dict[str, Any]:
    import openai

    began = datetime.now(UTC)
    samples = [Sample(question=question(i)) for i in range(n)]
    load = {"start": machine_load()}
    profile: dict[str, Any] = {"model": alias, "when": began.isoformat()}
    try:
        profile.update(run_interleaved(alias, samples, max_tokens=max_tokens))
    except (OSError, RuntimeError, ValueError, requests.RequestException, subprocess.SubprocessError,
            openai.OpenAIError) as exc:  # fmt: skip
        profile["error_message"] = _error_text(exc)
    load["end"] = machine_load()
    figs = figures(samples)
    profile.update(figs)
    profile.update({"targets_met": targets_met(figs), "machine_load": load,
                    "duration_s": round((datetime.now(UTC) - began).total_seconds(), 1),
                    "samples": [asdict(s) for s in samples]})  # fmt: skip
    return profile


# --- report, main --------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.profiles", description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", default="", help="comma-separated registry aliases (default: every prefetched)")
    parser.add_argument("--n", type=int, default=N, help="measured questions per mode and model")
    parser.add_argument("--max-tokens", type=int, default=MAX_TOKENS)
    parser.add_argument("--out", type=Path, default=None, help="write here instead of reports/profiles_<date>.json")
    args = parser.parse_args(argv)
    if args.n < 1:
        parser.error("--n must be at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        setup_django()
        names = [m.strip() for m in args.models.split(",") if m.strip()] or prefetched_models()
        models = check_models(names)
    except Refused as exc:
        print(f"FAIL {NAME}: refused: {exc}", flush=True)
        return REFUSED
    load = {"start": machine_load()}
    profiles = {alias: run_profile(alias, args.n, max_tokens=args.max_tokens) for alias in models}
    load["end"] = machine_load()
    passed, line = verdict_line(profiles, load)
    report = {
        "verdict": line,
        "passed": passed,
        "targets": TARGETS,
        "n": args.n,
        "max_tokens": args.max_tokens,
        "temperature": 0.0,
        "endpoint": "POST /v1/chat/completions, model=<alias> (the local-model route), official openai client",
        "system_prompt": f"{SYSTEM_PROMPT} (probe <nonce>)",
        "questions": list(QUESTIONS),
        "warmup": {
            "question": WARMUP_QUESTION,
            "requests": "one per mode (answer, stream) and side (gateway, raw), not counted",
        },
        "definitions": DEFINITIONS,
        "models_run": models,
        "machine": load,
        "profiles": with_earlier_profiles(NAME, profiles, args.out),
    }
    where = write_report(NAME, report, args.out, echo=not args.out)
    print(f"{line} -> {shown_path(where)}", flush=True)
    return OK if passed else FAIL_EXIT


if __name__ == "__main__":
    raise SystemExit(main())
