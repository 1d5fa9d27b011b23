#!/usr/bin/env python3
"""Peers, side by side in one run: our gateway against raw llama-cpp-python, llama_cpp.server and the
LiteLLM proxy, on the same model file, the same prompts and the same max_tokens. Writes
reports/peers_<date>.json.

Usage: python bench/peers.py [--litellm var/venv-litellm/bin/litellm] [--rounds 3] [--overhead-rounds 60]
                             [--cache-rounds 50] [--rps-seconds 8] [--rps-clients 8] [--out PATH]

Systems (all on loopback, all serving var/models/SmolLM2-135M-Instruct.Q4_1.gguf with the same
n_ctx, n_threads and GPU offload; greedy decoding):
- raw: llama_cpp.Llama in this process (no HTTP at all), create_chat_completion;
- server: `python -m llama_cpp.server` over HTTP;
- litellm: the LiteLLM proxy (`litellm --config`, model `openai/smollm2-135m` -> a second llama_cpp.server);
  litellm-cache: a second proxy with LiteLLM's local in-memory cache (`cache_params: {type: local}`);
- gateway: our stack (gunicorn + Celery serving worker + Redis) on POST /v1/chat/completions with
  model "smollm2-135m" (the local model alone: the same generation as the others), and model
  "swarm-auto" for the cache-hit path (our exact cache in Redis).

Phases, requests interleaved (each round visits the systems in a rotated order) to spread noise:
A. the same generation (max_tokens --max-tokens): latency of each, ratio of medians and of p95s;
B. pass-through overhead (max_tokens 1, one repeated prompt so every prompt cache is warm): added
   latency of LiteLLM over a llama_cpp.server and of our gateway over the in-process model, as paired
   per-round differences (median, p95). LiteLLM fronts a second llama_cpp.server of its own, so the
   direct and proxied paths never share a prompt cache;
C. cache-hit path: a repeated request answered by our exact cache vs by LiteLLM's local cache;
D. max sustained RPS: a closed loop of --rps-clients concurrent clients for --rps-seconds per
   system and path, on loopback (the clients share the CPUs with the servers: it is a lower bound).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import requests  # noqa: E402

from bench.titanic.live import LiveStack, machine_load, percentile, summary, tree_rss  # noqa: E402
from tests.stack import free_port, wait_for  # noqa: E402

MODEL_ALIAS = "smollm2-135m"
MODEL_FILE = ROOT / "var" / "models" / "SmolLM2-135M-Instruct.Q4_1.gguf"
N_CTX = 2048
PROMPTS = ["Tell me about the sea.", "Describe a forest in the morning.", "What makes a good friend?",
           "Write two sentences about the moon.", "Why do people like music?", "Describe a busy city street.",
           "What is a rainbow?", "Give me a tip for better sleep.", "Describe your favourite season.",
           "What do cats like to do?"]  # fmt: skip
CACHE_PROMPT = "What is the capital of France?"
LITELLM_ENV = {"LITELLM_LOCAL_MODEL_COST_MAP": "True", "LITELLM_DANGEROUSLY_PERMIT_WEAK_OR_UNSET_MASTER_KEY": "true",
               "LITELLM_LOG": "ERROR", "LITELLM_TELEMETRY": "False"}  # fmt: skip

Call = Callable[[str, int], tuple[float, dict[str, Any]]]  # (prompt, max_tokens) -> (ms, info)


class Http:
    """One keep-alive connection per thread to a loopback server, JSON in and out."""

    def __init__(self, port: int, *, api_key: str | None = None) -> None:
        self.port = port
        self.headers = {"Content-Type": "application/json"}
        if api_key:
            self.headers["Authorization"] = f"Bearer {api_key}"
        self._local = threading.local()

    def post(self, path: str, body: dict[str, Any]) -> tuple[float, int, dict[str, Any], dict[str, str]]:
        data = json.dumps(body).encode()
        for attempt in (0, 1):
            conn = getattr(self._local, "conn", None)
            if conn is None:
                conn = self._local.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
            started = time.perf_counter()
            try:
                conn.request("POST", path, body=data, headers=self.headers)
                response = conn.getresponse()
                raw = response.read()
            except (http.client.HTTPException, ConnectionError):
                conn.close()
                self._local.conn = None
                if attempt:
                    raise
                continue
            elapsed = (time.perf_counter() - started) * 1000
            try:
                payload = json.loads(raw)
            except ValueError:
                payload = {"raw": raw[:200].decode(errors="replace")}
            return elapsed, response.status, payload, {k.lower(): v for k, v in response.getheaders()}
        raise ConnectionError("unreachable")


def _chat(http: Http, model: str, path: str = "/v1/chat/completions", **extra: Any) -> Call:
    def call(prompt: str, max_tokens: int) -> tuple[float, dict[str, Any]]:
        body = {"model": model, "messages": [{"role": "user", "content": prompt}], "max_tokens": max_tokens,
                "temperature": 0.0, **extra}  # fmt: skip
        ms, status, payload, headers = http.post(path, body)
        if status != 200:
            raise RuntimeError(f"HTTP {status}: {json.dumps(payload)[:200]}")
        choice = payload["choices"][0]
        return ms, {"text": (choice["message"].get("content") or "").strip(),
                    "completion_tokens": (payload.get("usage") or {}).get("completion_tokens"),
                    "route": (payload.get("swarm") or {}).get("route"), "headers": headers}  # fmt: skip

    return call


# --- the systems ---------------------------------------------------------------------------------


def llama_params(n_ctx: int = N_CTX) -> dict[str, Any]:
    import llama_cpp

    from bench.humaneval import setup_django

    setup_django()
    from inference.backends.llama import model_threads

    gpu = bool(llama_cpp.llama_supports_gpu_offload())
    threads = model_threads()  # what the gateway's serving process gives llama.cpp (one slot)
    return {"n_ctx": n_ctx, "n_threads": threads, "n_gpu_layers": -1 if gpu else 0, "gpu": gpu}


def raw_system(params: dict[str, Any]) -> tuple[Call, Any]:
    import llama_cpp

    llm = llama_cpp.Llama(model_path=str(MODEL_FILE), n_ctx=params["n_ctx"], n_threads=params["n_threads"],
                          n_gpu_layers=params["n_gpu_layers"], seed=0, verbose=False)  # fmt: skip
    lock = threading.Lock()

    def call(prompt: str, max_tokens: int) -> tuple[float, dict[str, Any]]:
        started = time.perf_counter()
        with lock:
            out = llm.create_chat_completion(messages=[{"role": "user", "content": prompt}], max_tokens=max_tokens,
                                             temperature=0.0)  # fmt: skip
        ms = (time.perf_counter() - started) * 1000
        return ms, {"text": (out["choices"][0]["message"].get("content") or "").strip(),
                    "completion_tokens": out["usage"]["completion_tokens"]}  # fmt: skip

    return call, llm


def start_process(argv: list[str], *, env: dict[str, str], log: Path, ready_url: str,
                  timeout: float) -> subprocess.Popen:  # fmt: skip
    # Our web server's WEB_CONCURRENCY is uvicorn's too (llama_cpp.server, LiteLLM): a peer given it would ask
    # for that many workers, which it cannot run from an app object, and exit. Each peer runs as it is set up.
    inherited = {k: v for k, v in os.environ.items() if k != "WEB_CONCURRENCY"}
    proc = subprocess.Popen(argv, cwd=ROOT, env={**inherited, **env}, stdout=log.open("wb"), stderr=subprocess.STDOUT,
                            start_new_session=True)  # fmt: skip

    def ready() -> bool:
        if proc.poll() is not None:
            raise RuntimeError(f"{argv[0]} exited with {proc.returncode}; see {log}")
        return requests.get(ready_url, timeout=2).status_code == 200

    wait_for(ready, timeout=timeout, interval=0.3, what=f"{Path(argv[0]).name} ready")
    return proc


def start_server(params: dict[str, Any], workdir: Path, name: str = "llama_server", *, model_file: Path = MODEL_FILE,
                 alias: str = MODEL_ALIAS) -> tuple[subprocess.Popen, int]:  # fmt: skip
    port = free_port()
    argv = [sys.executable, "-m", "llama_cpp.server", "--model", str(model_file), "--model_alias", alias,
            "--host", "127.0.0.1", "--port", str(port), "--n_ctx", str(params["n_ctx"]),
            "--n_threads", str(params["n_threads"]), "--n_gpu_layers", str(params["n_gpu_layers"]), "--seed", "0",
            "--verbose", "False"]  # fmt: skip
    proc = start_process(argv, env={}, log=workdir / f"{name}.log", ready_url=f"http://127.0.0.1:{port}/v1/models",
                         timeout=120)  # fmt: skip
    return proc, port


def start_litellm(litellm: str, server_port: int, workdir: Path, *, cache: bool,
                  alias: str = MODEL_ALIAS) -> tuple[subprocess.Popen, int]:  # fmt: skip
    """A LiteLLM proxy serving `alias` from the llama_cpp.server on `server_port` (`cache`: with LiteLLM's
    local in-memory cache)."""
    port = free_port()
    name = "litellm_cache" if cache else "litellm"
    config = {
        "model_list": [
            {
                "model_name": alias,
                "litellm_params": {
                    "model": f"openai/{alias}",
                    "api_base": f"http://127.0.0.1:{server_port}/v1",
                    "api_key": "none",
                },
            }
        ]
    }
    if cache:
        config["litellm_settings"] = {"cache": True, "cache_params": {"type": "local"}}
    path = workdir / f"{name}.yaml"
    path.write_text(json.dumps(config))  # JSON is YAML
    argv = [litellm, "--config", str(path), "--host", "127.0.0.1", "--port", str(port), "--num_workers", "1"]
    proc = start_process(argv, env=LITELLM_ENV, log=workdir / f"{name}.log",
                         ready_url=f"http://127.0.0.1:{port}/health/liveliness", timeout=180)  # fmt: skip
    return proc, port


def stop_process(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, 15)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, 9)
            proc.wait(10)


# --- measuring -----------------------------------------------------------------------------------


def interleaved(systems: dict[str, Call], *, rounds: int, prompts: list[str], max_tokens: int) -> dict[str, Any]:
    """Every round visits every prompt, and for each prompt every system in a rotated order."""
    names = list(systems)
    samples: dict[str, list[float]] = {n: [] for n in names}
    texts: dict[str, list[str]] = {n: [] for n in names}
    tokens: dict[str, list[Any]] = {n: [] for n in names}
    routes: dict[str, set[Any]] = {n: set() for n in names}
    paired: list[dict[str, float]] = []
    step = 0
    for _ in range(rounds):
        for prompt in prompts:
            order = names[step % len(names) :] + names[: step % len(names)]
            step += 1
            row = {}
            for name in order:
                ms, info = systems[name](prompt, max_tokens)
                samples[name].append(ms)
                texts[name].append(info["text"])
                tokens[name].append(info.get("completion_tokens"))
                routes[name].add(info.get("route"))
                row[name] = ms
            paired.append(row)
    return {"samples": samples, "texts": texts, "tokens": tokens, "routes": routes, "paired": paired}


def diff_stats(paired: list[dict[str, float]], a: str, b: str) -> dict[str, float]:
    """a - b per round (ms): how much a adds over b."""
    diffs = [row[a] - row[b] for row in paired]
    return {"median_ms": round(statistics.median(diffs), 2), "p95_ms": round(percentile(diffs, 0.95), 2)}


def ratio(a: dict[str, Any], b: dict[str, Any], key: str) -> float | None:
    return round(a[key] / b[key], 3) if a.get(key) and b.get(key) else None


def closed_loop(call: Callable[[], float], *, clients: int, seconds: float,
                max_requests: int = 200_000) -> dict[str, Any]:  # fmt: skip
    """`clients` threads calling back to back for `seconds`: completed requests per second."""
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    stop_at = time.perf_counter() + seconds

    def worker() -> None:
        while time.perf_counter() < stop_at:
            try:
                ms = call()
            except (OSError, RuntimeError, http.client.HTTPException) as exc:
                with lock:
                    errors.append(f"{type(exc).__name__}: {exc}"[:160])
                continue
            with lock:
                latencies.append(ms)
                if len(latencies) >= max_requests:
                    return

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(clients)]
    began = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join(seconds + 130)
    elapsed = time.perf_counter() - began
    return {
        "clients": clients,
        "seconds": round(elapsed, 2),
        "completed": len(latencies),
        "errors": len(errors),
        "first_errors": errors[:3],
        "rps": round(len(latencies) / elapsed, 1),
        "latency_ms": summary(latencies),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--litellm", default=str(ROOT / "var" / "venv-litellm" / "bin" / "litellm"))
    parser.add_argument("--rounds", type=int, default=3, help="phase A: rounds over the 10 prompts")
    parser.add_argument("--max-tokens", type=int, default=32)
    parser.add_argument("--overhead-rounds", type=int, default=60, help="phase B: rounds (one warm prompt)")
    parser.add_argument("--cache-rounds", type=int, default=50)
    parser.add_argument("--rps-seconds", type=float, default=8.0)
    parser.add_argument("--rps-clients", type=int, default=8)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    if not MODEL_FILE.exists():
        print(f"peers: {MODEL_FILE} is missing (make models)", file=sys.stderr)
        return 2
    workdir = Path(tempfile.mkdtemp(prefix="swarm-peers-"))
    params = llama_params()
    load_before = machine_load()
    procs: dict[str, subprocess.Popen] = {}
    live = None
    began = time.perf_counter()
    litellm_note = None
    try:
        print("peers: starting the gateway, llama_cpp.server and the LiteLLM proxies", flush=True)
        live = LiveStack.start(cloud=False)
        procs["server"], server_port = start_server(params, workdir)
        have_litellm = Path(args.litellm).exists()
        if have_litellm:
            # LiteLLM fronts a llama_cpp.server of its own, so that neither path warms the other's prompt cache.
            procs["server-behind-litellm"], backend_port = start_server(params, workdir, "llama_server_litellm")
            procs["litellm"], litellm_port = start_litellm(args.litellm, backend_port, workdir, cache=False)
            procs["litellm-cache"], litellm_cache_port = start_litellm(args.litellm, backend_port, workdir, cache=True)
        else:
            litellm_note = f"{args.litellm} not found: run `make peers` (it installs LiteLLM into var/venv-litellm)"
        raw_call, _llm = raw_system(params)
        gateway = Http(live.stack.port)
        # llama_cpp.server defaults repeat_penalty to 1.1 where Llama.create_chat_completion (raw, and our
        # worker) uses 1.0: ask for 1.0 so that every system makes the same greedy generation.
        same = {"repeat_penalty": 1.0}
        systems: dict[str, Call] = {"raw": raw_call, "server": _chat(Http(server_port), MODEL_ALIAS, **same),
                                    "gateway": _chat(gateway, MODEL_ALIAS)}  # fmt: skip
        if have_litellm:
            systems["litellm"] = _chat(Http(litellm_port), MODEL_ALIAS, **same)
        for call in systems.values():  # warm every system once
            call(PROMPTS[0], 4)
        startup_s = time.perf_counter() - began
        print(f"peers: all up in {startup_s:.1f}s; phase A (same generation, max_tokens {args.max_tokens})", flush=True)

        a = interleaved(systems, rounds=args.rounds, prompts=PROMPTS, max_tokens=args.max_tokens)
        a_stats = {name: summary(samples) for name, samples in a["samples"].items()}
        same_text = {name: round(sum(t == r for t, r in zip(a["texts"][name], a["texts"]["raw"], strict=True))
                                 / len(a["texts"]["raw"]), 3) for name in systems}  # fmt: skip
        phase_a = {
            "max_tokens": args.max_tokens, "requests_per_system": len(a["samples"]["raw"]),
            "latency_ms": a_stats,
            "samples_ms": {n: [round(v, 1) for v in vs] for n, vs in a["samples"].items()},
            "completion_tokens_median": {n: statistics.median([t for t in ts if t is not None] or [0])
                                         for n, ts in a["tokens"].items()},
            "share_of_answers_identical_to_raw": same_text,
            "gateway_route": sorted(str(r) for r in a["routes"]["gateway"]),
            "ratios": {
                "gateway/raw p50": ratio(a_stats["gateway"], a_stats["raw"], "p50_ms"),
                "gateway/raw p95": ratio(a_stats["gateway"], a_stats["raw"], "p95_ms"),
                "gateway/server p50": ratio(a_stats["gateway"], a_stats["server"], "p50_ms"),
                "gateway/server p95": ratio(a_stats["gateway"], a_stats["server"], "p95_ms"),
                "server/raw p50": ratio(a_stats["server"], a_stats["raw"], "p50_ms"),
                **({"litellm/server p50": ratio(a_stats["litellm"], a_stats["server"], "p50_ms"),
                    "litellm/server p95": ratio(a_stats["litellm"], a_stats["server"], "p95_ms"),
                    "gateway/litellm p50": ratio(a_stats["gateway"], a_stats["litellm"], "p50_ms")}
                   if have_litellm else {}),
            },
        }  # fmt: skip

        print("peers: phase B (pass-through overhead, max_tokens 1)", flush=True)
        # One prompt, repeated: every system's prompt cache is warm, so what differs is the path, not the model.
        b = interleaved(systems, rounds=args.overhead_rounds, prompts=[PROMPTS[0]], max_tokens=1)
        b_stats = {name: summary(samples) for name, samples in b["samples"].items()}
        phase_b = {
            "max_tokens": 1, "requests_per_system": len(b["samples"]["raw"]), "latency_ms": b_stats,
            "added_latency_ms": {
                "gateway over raw in-process model": diff_stats(b["paired"], "gateway", "raw"),
                "gateway over llama_cpp.server": diff_stats(b["paired"], "gateway", "server"),
                "llama_cpp.server over raw in-process model": diff_stats(b["paired"], "server", "raw"),
                **({"litellm over llama_cpp.server direct": diff_stats(b["paired"], "litellm", "server")}
                   if have_litellm else {}),
            },
        }  # fmt: skip

        print("peers: phase C (cache-hit path)", flush=True)
        cache_systems: dict[str, Call] = {"gateway exact cache (swarm-auto)": _chat(gateway, "swarm-auto")}
        if have_litellm:
            cache_systems["litellm local cache"] = _chat(Http(litellm_cache_port), MODEL_ALIAS)
        primed = {}
        for name, call in cache_systems.items():
            call(CACHE_PROMPT, 32)
            _, info = call(CACHE_PROMPT, 32)
            primed[name] = {
                "second_call_route": info.get("route"),
                "litellm_cache_key_header": info.get("headers", {}).get("x-litellm-cache-key"),
            }
        c = interleaved(cache_systems, rounds=args.cache_rounds, prompts=[CACHE_PROMPT], max_tokens=32)
        c_stats = {name: summary(samples) for name, samples in c["samples"].items()}
        phase_c = {
            "prompt": CACHE_PROMPT,
            "latency_ms": c_stats,
            "primed": primed,
            "gateway_routes": sorted(str(r) for r in c["routes"]["gateway exact cache (swarm-auto)"]),
        }
        if have_litellm:
            g, lc = c_stats["gateway exact cache (swarm-auto)"], c_stats["litellm local cache"]
            phase_c["ratios"] = {
                "gateway/litellm p50": ratio(g, lc, "p50_ms"),
                "gateway/litellm p95": ratio(g, lc, "p95_ms"),
            }
        else:
            phase_c["litellm"] = litellm_note

        print(f"peers: phase D (closed loop, {args.rps_clients} clients x {args.rps_seconds}s each)", flush=True)

        def loop_call(call: Call, prompt: str, max_tokens: int) -> Callable[[], float]:
            return lambda: call(prompt, max_tokens)[0]

        loops: dict[str, Callable[[], float]] = {
            "gateway cache hit": loop_call(_chat(gateway, "swarm-auto"), CACHE_PROMPT, 32),
            "gateway pass-through (local model, 1 token)": loop_call(_chat(gateway, MODEL_ALIAS), PROMPTS[0], 1),
            "llama_cpp.server direct (1 token)": loop_call(
                _chat(Http(server_port), MODEL_ALIAS, **same), PROMPTS[0], 1
            ),
        }
        if have_litellm:
            loops["litellm cache hit"] = loop_call(_chat(Http(litellm_cache_port), MODEL_ALIAS), CACHE_PROMPT, 32)
            loops["litellm pass-through (1 token)"] = loop_call(
                _chat(Http(litellm_port), MODEL_ALIAS, **same), PROMPTS[0], 1
            )
        phase_d = {name: closed_loop(fn, clients=args.rps_clients, seconds=args.rps_seconds)
                   for name, fn in loops.items()}  # fmt: skip
        memory = {"gateway": live.memory(), **{name: tree_rss(p.pid) for name, p in procs.items()},
                  "bench process (raw model in-process)": tree_rss(os.getpid())}  # fmt: skip
    finally:
        for proc in procs.values():
            stop_process(proc)
        if live:
            live.stop()

    report = {
        "benchmark": "peers",
        "when": datetime.now(UTC).isoformat(),
        "model_file": str(MODEL_FILE.relative_to(ROOT)),
        "llama_params": params,
        "method": ("all systems on loopback with the same model file, n_ctx, n_threads and GPU offload, greedy; "
                   "requests interleaved with a rotating order; HTTP clients use one keep-alive connection per "
                   "thread (http.client); latency = client wall time"),
        "systems": {
            "raw": "llama_cpp.Llama.create_chat_completion in the benchmark process (no HTTP)",
            "server": "python -m llama_cpp.server (uvicorn) over HTTP",
            "litellm": "LiteLLM proxy, model openai/smollm2-135m -> a second, identical llama_cpp.server",
            "gateway": "our stack: gunicorn (2 workers x 8 threads) -> Redis/Celery -> serving worker; POST "
                       "/v1/chat/completions model smollm2-135m (the local model alone, no cache)",
        },
        "litellm": litellm_note or "LiteLLM proxy 1.106.2 from var/venv-litellm (LITELLM_LOCAL_MODEL_COST_MAP=True)",
        "a_same_generation": phase_a,
        "b_pass_through_overhead": phase_b,
        "c_cache_hit_path": phase_c,
        "d_max_sustained_rps": phase_d,
        "rss": memory,
        "machine": {"before": load_before, "after": machine_load(),
                    "note": "shared 2-core machine: clients, servers and other work share the CPUs"},
        "wall_s": round(time.perf_counter() - began, 1),
        "workdir": str(workdir),
    }  # fmt: skip
    out = args.out or ROOT / "reports" / f"peers_{datetime.now(UTC):%Y%m%d}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2, default=str) + "\n")
    print_summary(report, out)
    return 0


def print_summary(report: dict[str, Any], out: Path) -> None:
    a, b, c, d = (report[k] for k in ("a_same_generation", "b_pass_through_overhead", "c_cache_hit_path",
                                      "d_max_sustained_rps"))  # fmt: skip
    print(f"A same generation (max_tokens {a['max_tokens']}, n={a['requests_per_system']} each):")
    for name, stats in a["latency_ms"].items():
        print(
            f"   {name:<8} p50 {stats['p50_ms']:>8} ms  p95 {stats['p95_ms']:>8} ms  "
            f"identical to raw {a['share_of_answers_identical_to_raw'][name]:.0%}"
        )
    print(f"   ratios {a['ratios']}")
    print("B added latency, 1-token completions (paired per round):")
    for name, stats in b["added_latency_ms"].items():
        print(f"   {name:<45} median {stats['median_ms']:>7} ms  p95 {stats['p95_ms']:>7} ms")
    print("C cache-hit path:")
    for name, stats in c["latency_ms"].items():
        print(f"   {name:<35} p50 {stats['p50_ms']:>7} ms  p95 {stats['p95_ms']:>7} ms")
    print(f"   {c.get('ratios') or c.get('litellm')}")
    print("D closed loop:")
    for name, stats in d.items():
        print(
            f"   {name:<45} {stats['rps']:>7} req/s  p50 {stats['latency_ms'].get('p50_ms')} ms  "
            f"errors {stats['errors']}"
        )
    print(f"report: {out}")


if __name__ == "__main__":
    raise SystemExit(main())
