"""The hot path under load (issue 18): our cache hit and head-answered requests against a bare Django +
DRF anchor and the LiteLLM proxy, and the 1-token pass-through against llama_cpp.server, with wrk, in
one run on one machine. Writes reports/hotpath_<date>.json.

Usage: python -m bench.hotpath [--quick] [--duration 10] [--connections 8] [--model smollm2-135m]
                               [--litellm var/venv-litellm/bin/litellm] [--redis-url URL] [--var-dir DIR]
                               [--out PATH]

What runs (all on loopback, started here and stopped at the end, on Ctrl-C and on SIGTERM):
- our stack (bench/titanic/live.py `LiveStack`: gunicorn with swarm_site/gunicorn.conf.py, the serving
  worker with SWARM_MODEL=<model>, the bookkeeping worker), cloud off, on a private redis-server (or
  --redis-url); requests carry an API key made on it with no rate or concurrency limit (and the
  anonymous loopback limits are off in that stack), so the access policy's limits never throttle wrk:
  every check still runs (key lookup, the Redis rate counter and concurrency slot);
- the anchor (bench/anchor/): Django + DRF, one APIView that takes a JSON POST and answers one Redis GET
  as JSON, served by gunicorn with our settings: swarm_site/gunicorn.conf.py evaluated under the same
  WEB_CONCURRENCY and SWARM_WEB_THREADS as our stack, less its hooks (bench/anchor/gunicorn_settings.py);
  it reads the same Redis as our stack;
- llama_cpp.server on the model's GGUF, and two LiteLLM proxies in front of it (bench/peers.py): one
  plain, one with LiteLLM's local in-memory cache.

Cases, each a wrk run of --duration seconds (2 with --quick) after a 1 s warm-up run that is not counted;
every response's body is checked by the wrk script (`missed` counts those that did not say what the
case is about):
  anchor                  POST /answer {"prompt":"hi"}                                     --connections
  orchestrate_cache_hit   POST /orchestrate {"prompt":"hi"}, primed: "cached": true         --connections
  v1_cache_hit            POST /v1/chat/completions, swarm-auto, "hi" as one user message    --connections
  litellm_cache_hit       the same through LiteLLM's local cache (the primed response's id)  --connections
  head_single_stream      POST /orchestrate "What is <n>*23?", n new on every request        1
  head_loaded             the same                                                           --connections
  pass_direct             llama_cpp.server, max_tokens 1                                     --pass-connections
  pass_gateway            our /v1/chat/completions with model=<the model's alias>, max_tokens 1
  pass_litellm            LiteLLM (no cache) -> that llama_cpp.server, max_tokens 1
Pass-through overhead = p50 through the gateway minus p50 of llama_cpp.server direct (and the same for
LiteLLM), from the same run.

Figures: rps, latency p50/p75/p90/p95/p99/max (wrk's histogram, via a Lua `done` hook: bench/wrk.py),
non_2xx (wrk's count of responses with a status >= 400), socket errors, and the load average before
and after each case. Targets (issue 18): cache hit rps >= 0.4x the anchor's and >= 3x LiteLLM's; a
head-answered request p50 <= 8 ms and p95 <= 15 ms single stream, >= 300 rps loaded; pass-through
overhead <= LiteLLM's. A measurement, not a gate: the exit status is 0 whatever the figures, 1 when the
benchmark itself broke, 2 when it could not start (wrk or the model file missing).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import redis  # noqa: E402
import requests  # noqa: E402

from bench import peers  # noqa: E402
from bench.anchor.gunicorn_settings import hooks, ours  # noqa: E402
from bench.humaneval import setup_django, stop_on_sigterm  # noqa: E402
from bench.reporting import shown_path, write_report  # noqa: E402
from bench.titanic.live import (  # noqa: E402
    LiveStack,
    children_cpu_s,
    cpu_ms_per_request,
    machine_busy_s,
    machine_load,
    tree_rss,
)
from bench.wrk import WrkMissing, WrkRun, json_field, lua_script, run_wrk, wrk_binary  # noqa: E402
from tests.stack import PrivateRedis, free_port  # noqa: E402

NAME = "hotpath"
DEFAULT_MODEL = "smollm2-135m"
DURATION_S, QUICK_DURATION_S, WARMUP_S = 10, 2, 1
ROUNDS = 3
PAIRED = ("anchor", "orchestrate_cache_hit", "v1_cache_hit", "litellm_cache_hit")  # measured in interleaved rounds
CONNECTIONS = 8
AUTO_MODEL = "swarm-auto"  # routing/openai_api.py AUTO_MODEL (not imported: that needs Django's app registry)
CACHE_PROMPT = "hi"
SEED_ANSWER = "Hello! How can I help you today?"  # the micro head's greeting, if the council does not cache "hi"
HEAD_PROMPT, HEAD_ANSWER = "What is 17*23?", "391"
HEAD_TEMPLATE = "What is %d*23?"
PASS_PROMPT = peers.PROMPTS[0]
LITELLM_MAX_TOKENS = 32
ANCHOR_KEY = "hotpath:anchor:answer"
OK, BROKE, REFUSED = 0, 1, 2

TARGETS = {
    "cache_hit_rps_vs_anchor_min": 0.4,
    "cache_hit_rps_vs_litellm_min": 3.0,
    "head_p50_ms_single_stream_max": 8.0,
    "head_p95_ms_single_stream_max": 15.0,
    "head_rps_loaded_min": 300.0,
    "pass_through_overhead": "the gateway's <= LiteLLM's (both over llama_cpp.server direct, p50)",
}


class Refused(RuntimeError):
    """The benchmark cannot start: a tool or a file is missing."""


class ExistingRedis(PrivateRedis):
    """A Redis database that already runs (--redis-url): checked at start, never started or stopped here."""

    def __init__(self, url: str) -> None:
        self._url = url
        self.port = urlparse(url).port or 6379
        self.dir = ""
        self.proc = None

    @property
    def url(self) -> str:
        return self._url

    def start(self) -> None:
        redis.Redis.from_url(self._url, socket_timeout=5).ping()

    def stop(self) -> None:
        return None


@dataclass
class Case:
    """One wrk run: what it measures, where, how many connections, its script and the script's argument."""

    name: str
    what: str
    url: str
    connections: int
    script: str
    body: str
    vary: bool = False  # the body varies per request (script_args: the base number)


@dataclass
class Target:
    """The systems a run started and what priming them found."""

    gateway: str
    key: str
    anchor: str | None = None
    direct: str | None = None
    litellm: str | None = None
    litellm_cache: str | None = None


# --- requests ------------------------------------------------------------------------------------


def post(url: str, body: dict[str, Any], *, key: str | None = None) -> tuple[int, dict[str, Any], dict[str, str]]:
    """POST JSON; (status, JSON body or {"raw": ...}, lower-cased headers)."""
    headers = {"Content-Type": "application/json", **({"Authorization": f"Bearer {key}"} if key else {})}
    response = requests.post(url, data=json.dumps(body), headers=headers, timeout=120)
    try:
        payload = response.json()
    except ValueError:
        payload = {"raw": response.text[:300]}
    return response.status_code, payload, {k.lower(): v for k, v in response.headers.items()}


def chat_body(model: str, prompt: str, **extra: Any) -> dict[str, Any]:
    return {"model": model, "messages": [{"role": "user", "content": prompt}], **extra}


def _swarm(payload: dict[str, Any]) -> dict[str, Any]:
    """The fields that say how we answered: /orchestrate's top level, /v1's `swarm` object."""
    return payload.get("swarm") or payload


def _brief(status: int, payload: dict[str, Any]) -> str:
    s = _swarm(payload)
    return f"HTTP {status}, route {s.get('route')!r}, skill {s.get('skill_type')!r}, cached {s.get('cached')!r}"


# --- starting ------------------------------------------------------------------------------------


def start_anchor(live: LiveStack, workdir: Path) -> tuple[subprocess.Popen, str, dict[str, Any]]:
    """The anchor under our stack's gunicorn environment, on our stack's Redis: (process, base URL, the
    gunicorn settings both run with)."""
    port = free_port()
    same = {k: live.stack.env[k] for k in ("WEB_CONCURRENCY", "SWARM_WEB_THREADS") if k in live.stack.env}
    env = {**same, "SWARM_HOST": "127.0.0.1", "SWARM_PORT": str(port), "PYTHONUNBUFFERED": "1",
           "DJANGO_SETTINGS_MODULE": "bench.anchor.settings", "ANCHOR_REDIS_URL": live.redis.url,
           "ANCHOR_KEY": ANCHOR_KEY}  # fmt: skip
    anchor_settings = ours(env)
    gateway_settings = ours({k: v for k, v in live.stack.env.items() if k in ("WEB_CONCURRENCY", "SWARM_WEB_THREADS",
                                                                             "SWARM_HOST", "SWARM_PORT")})  # fmt: skip
    differ = {k for k in anchor_settings.keys() | gateway_settings.keys() if k != "bind"
              and anchor_settings.get(k) != gateway_settings.get(k)}  # fmt: skip
    if differ:
        raise RuntimeError(f"the anchor's gunicorn settings differ from the gateway's: {sorted(differ)}")
    argv = [sys.executable, "-m", "gunicorn", "bench.anchor.wsgi:application",
            "--config", "bench/anchor/gunicorn_conf.py"]  # fmt: skip
    proc = peers.start_process(argv, env=env, log=workdir / "anchor.log", ready_url=f"http://127.0.0.1:{port}/answer",
                               timeout=60)  # fmt: skip
    shown = {k: v for k, v in gateway_settings.items() if k != "bind"}
    return proc, f"http://127.0.0.1:{port}", {**shown, "hooks_the_anchor_leaves_out": hooks()}


def seed_code(prompt: str, answer: str) -> str:
    """Python for `manage.py shell -c`: store `answer` under the cache key the API looks `prompt` up by
    (default max_tokens, temperature 0, the serving adapter); prints the key."""
    return (
        "from django.conf import settings\nfrom routing import services\nfrom routing.cache import cache_put\n"
        f"ask = services.Ask(prompt={prompt!r}, max_tokens=settings.SWARM_DEFAULT_MAX_TOKENS, temperature=0.0)\n"
        "key, _, _ = services._lookup(ask)\n"
        f"cache_put(key, {{'answer': {answer!r}, 'route': 'council', 'skill_type': 'micro', 'confidence': 1.0}})\n"
        "print(key)\n"
    )


def prime_cache(live: LiveStack, key: str, prompt: str) -> dict[str, Any]:
    """Ask `prompt` until our exact cache answers it; when the council will not cache it (an unsure
    answer), seed the cache entry the API looks up (routing/services.py `_lookup`). What happened."""
    url = f"{live.url}/orchestrate"
    first_status, first, _ = post(url, {"prompt": prompt}, key=key)
    status, second, _ = post(url, {"prompt": prompt}, key=key)
    how = {"first": _brief(first_status, first), "second": _brief(status, second)}
    if status == 200 and second.get("cached") is True and second.get("route") == "cache":
        how["primed_by"] = "the API: the first answer was cached by the gateway"
        return {**how, "answer": second.get("answer")}
    answer = first.get("answer") if first_status == 200 and first.get("route") not in ("unsure", None) else SEED_ANSWER
    seeded = live.stack.manage("shell", "-c", seed_code(prompt, answer)).strip().splitlines()[-1]
    status, third, _ = post(url, {"prompt": prompt}, key=key)
    if not (status == 200 and third.get("cached") is True and third.get("route") == "cache"):
        raise RuntimeError(f"could not prime the cache with {prompt!r}: {_brief(status, third)}")
    how["primed_by"] = (f"a seeded entry ({seeded}): the council did not cache {prompt!r} ({how['first']}); "
                        "the cache-hit path served is the same")  # fmt: skip
    return {**how, "answer": third.get("answer")}


def verify(status: int, payload: dict[str, Any], what: str, **expected: Any) -> str:
    """A one-line account of a priming request; RuntimeError when it did not answer as `expected`."""
    fields = _swarm(payload)
    wrong = {k: fields.get(k) for k, v in expected.items() if fields.get(k) != v}
    if status != 200 or wrong:
        raise RuntimeError(f"{what}: expected HTTP 200 and {expected}, got {_brief(status, payload)}: "
                           f"{json.dumps(payload)[:300]}")  # fmt: skip
    return _brief(status, payload)


def completion_tokens(payload: dict[str, Any]) -> int | None:
    return (payload.get("usage") or {}).get("completion_tokens")


# --- the cases -----------------------------------------------------------------------------------


def json_headers(key: str | None = None) -> dict[str, str]:
    return {"Content-Type": "application/json", **({"Authorization": f"Bearer {key}"} if key else {})}


def build_cases(t: Target, *, alias: str, connections: int, pass_connections: int,
                litellm_id: str | None) -> list[Case]:  # fmt: skip
    """Every case this run can measure, in the order they run."""
    cached = (json_field("cached", "true"),)
    hi_v1 = json.dumps(chat_body(AUTO_MODEL, CACHE_PROMPT))
    head = json.dumps({"prompt": HEAD_TEMPLATE})  # a Lua string.format template: its one %d is n
    one_token = json_field("completion_tokens", "1")
    peer_pass = json.dumps(chat_body(alias, PASS_PROMPT, max_tokens=1, temperature=0.0, repeat_penalty=1.0))
    ours_pass = json.dumps(chat_body(alias, PASS_PROMPT, max_tokens=1, temperature=0.0))
    hi = json.dumps({"prompt": CACHE_PROMPT})
    cases: list[Case] = []

    def add(name: str, what: str, url: str, conns: int, body: str, *, key: str | None = None,
            expect: tuple[str, ...] = (), vary: bool = False) -> None:  # fmt: skip
        script = lua_script(method="POST", headers=json_headers(key), body=None if vary else body,
                            vary=body if vary else None, expect=expect)  # fmt: skip
        cases.append(Case(name, what, url, conns, script, body, vary))

    if t.anchor:
        add("anchor", "bare Django + DRF: JSON POST, one Redis GET, JSON answer", f"{t.anchor}/answer", connections,
            hi, expect=(json_field("cached", "true"),))  # fmt: skip
    add("orchestrate_cache_hit", "our exact cache: POST /orchestrate", f"{t.gateway}/orchestrate", connections, hi,
        key=t.key, expect=(*cached, json_field("route", '"cache"')))  # fmt: skip
    add("v1_cache_hit", f"our exact cache: POST /v1/chat/completions, model {AUTO_MODEL}",
        f"{t.gateway}/v1/chat/completions", connections, hi_v1, key=t.key, expect=cached)  # fmt: skip
    if t.litellm_cache and litellm_id:
        body = json.dumps(chat_body(alias, CACHE_PROMPT, max_tokens=LITELLM_MAX_TOKENS, temperature=0.0))
        add("litellm_cache_hit", "LiteLLM proxy, local in-memory cache", f"{t.litellm_cache}/v1/chat/completions",
            connections, body, expect=(json_field("id", json.dumps(litellm_id)),))  # fmt: skip
    head_expect = (json_field("skill_type", '"math"'), json_field("cached", "false"))
    add("head_single_stream", "math head, every request a cache miss (n new per request), one connection",
        f"{t.gateway}/orchestrate", 1, head, key=t.key, expect=head_expect, vary=True)  # fmt: skip
    add("head_loaded", "math head, every request a cache miss", f"{t.gateway}/orchestrate", connections, head,
        key=t.key, expect=head_expect, vary=True)  # fmt: skip
    if t.direct:
        add("pass_direct", "llama_cpp.server direct, max_tokens 1", f"{t.direct}/v1/chat/completions",
            pass_connections, peer_pass, expect=(one_token,))  # fmt: skip
    add("pass_gateway", f"our /v1/chat/completions, model {alias} (the local model alone), max_tokens 1",
        f"{t.gateway}/v1/chat/completions", pass_connections, ours_pass, key=t.key,
        expect=(one_token, json_field("cached", "false")))  # fmt: skip
    if t.litellm:
        add("pass_litellm", "LiteLLM proxy (no cache) -> the same llama_cpp.server, max_tokens 1",
            f"{t.litellm}/v1/chat/completions", pass_connections, peer_pass, expect=(one_token,))  # fmt: skip
    return cases


def measure(case: Case, *, duration_s: int, warmup_s: int, wrk_threads: int, workdir: Path,
            bases: list[int], processes: Callable[[], dict[str, Any]] | None = None) -> dict[str, Any]:  # fmt: skip
    """A warm-up run (not counted), then the timed run; the figures, the load before and after, and
    where the CPU went: milliseconds per request of each of `processes` (name -> `tree_rss`), wrk's,
    the machine's in all, and `other` (what none of those explain: the machine is shared)."""
    script_path = workdir / f"{case.name}.lua"

    def one(seconds: int) -> dict[str, Any]:
        args = (str(bases.pop(0)),) if case.vary else ()
        return run_wrk(WrkRun(url=case.url, script=case.script, connections=case.connections, duration_s=seconds,
                              threads=wrk_threads, script_args=args), script_path)  # fmt: skip

    if warmup_s > 0:
        one(warmup_s)
    before = machine_load()["loadavg_1_5_15"]
    procs_before = processes() if processes else {}
    wrk_before, busy_before = children_cpu_s(), machine_busy_s()
    result = one(duration_s)
    busy, wrk = machine_busy_s() - busy_before, children_cpu_s() - wrk_before
    result.update(what=case.what, url=case.url, body=case.body if not case.vary else f"{case.body} (%d: n per request)",
                  load_before=before, load_after=machine_load()["loadavg_1_5_15"])  # fmt: skip
    if processes and result.get("requests"):
        n = result["requests"]
        cpu = cpu_ms_per_request(procs_before, processes(), n)
        cpu["wrk"] = round(wrk * 1000 / n, 3)
        cpu["machine"] = round(busy * 1000 / n, 3)
        cpu["other"] = round(cpu["machine"] - sum(v for k, v in cpu.items() if k != "machine"), 3)
        result["cpu_ms_per_request"] = cpu
    return result


# --- figures -------------------------------------------------------------------------------------


def _ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 3) if a is not None and b else None


def median_round(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """One case's figures: its only run, or the run with the median RPS of its rounds, which keeps every
    round's RPS in `rounds_rps` (the paired ratios are taken round by round)."""
    if len(runs) == 1:
        return runs[0]
    ranked = sorted(runs, key=lambda r: r.get("rps") or 0.0)
    return {**ranked[len(ranked) // 2], "rounds_rps": [r.get("rps") for r in runs]}


def _paired(a: dict[str, Any] | None, b: dict[str, Any] | None) -> float | None:
    """a's RPS over b's: the median of the ratios of the rounds they ran side by side, else of one run each."""
    ra, rb = (a or {}).get("rounds_rps"), (b or {}).get("rounds_rps")
    if ra and rb and len(ra) == len(rb) and all(x is not None and y for x, y in zip(ra, rb, strict=True)):
        ratios = sorted(x / y for x, y in zip(ra, rb, strict=True))
        return round(ratios[len(ratios) // 2], 3)
    return _ratio(_rps(a), _rps(b))


def _p(case: dict[str, Any] | None, q: int) -> float | None:
    return ((case or {}).get("latency_ms") or {}).get(f"p{q}_ms")


def _rps(case: dict[str, Any] | None) -> float | None:
    return (case or {}).get("rps")


def figures(cases: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Ratios, the head's figures, pass-through overheads and the targets from the cases' results."""
    c = cases.get
    ratios = {
        "cache_hit_rps_vs_anchor": {"orchestrate": _paired(c("orchestrate_cache_hit"), c("anchor")),
                                    "v1": _paired(c("v1_cache_hit"), c("anchor"))},
        "cache_hit_rps_vs_litellm": {
            "orchestrate": _paired(c("orchestrate_cache_hit"), c("litellm_cache_hit")),
            "v1": _paired(c("v1_cache_hit"), c("litellm_cache_hit"))},
    }  # fmt: skip
    head = {"p50_ms_single_stream": _p(c("head_single_stream"), 50),
            "p95_ms_single_stream": _p(c("head_single_stream"), 95),
            "rps_single_stream": _rps(c("head_single_stream")),
            "rps_loaded": _rps(c("head_loaded")), "connections_loaded": (c("head_loaded") or {}).get("connections"),
            "p50_ms_loaded": _p(c("head_loaded"), 50), "p95_ms_loaded": _p(c("head_loaded"), 95)}  # fmt: skip
    direct = _p(c("pass_direct"), 50)

    def over(name: str) -> float | None:
        mine = _p(c(name), 50)
        return round(mine - direct, 3) if mine is not None and direct is not None else None

    passing = {"direct_p50_ms": direct, "gateway_p50_ms": _p(c("pass_gateway"), 50),
               "litellm_p50_ms": _p(c("pass_litellm"), 50), "gateway_overhead_ms": over("pass_gateway"),
               "litellm_overhead_ms": over("pass_litellm"),
               "definition": "p50 through the gateway (or LiteLLM) minus p50 of llama_cpp.server direct, "
                             "max_tokens 1, same run"}  # fmt: skip
    return {"ratios": ratios, "head_answered": head, "pass_through": passing,
            "targets": targets(ratios, head, passing)}  # fmt: skip


def _target(value: float | None, op: str, limit: float) -> dict[str, Any]:
    met = None if value is None else (value >= limit if op == ">=" else value <= limit)
    return {"value": value, "target": f"{op} {limit:g}", "met": met}


def targets(ratios: dict[str, Any], head: dict[str, Any], passing: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Each target of issue 18: the value, the target, met (None: not measured in this run)."""
    out: dict[str, dict[str, Any]] = {}
    for endpoint in ("orchestrate", "v1"):
        out[f"cache_hit_{endpoint}_vs_anchor"] = _target(ratios["cache_hit_rps_vs_anchor"][endpoint], ">=",
                                                         TARGETS["cache_hit_rps_vs_anchor_min"])  # fmt: skip
        out[f"cache_hit_{endpoint}_vs_litellm"] = _target(ratios["cache_hit_rps_vs_litellm"][endpoint], ">=",
                                                          TARGETS["cache_hit_rps_vs_litellm_min"])  # fmt: skip
    out["head_p50_ms_single_stream"] = _target(head["p50_ms_single_stream"], "<=",
                                               TARGETS["head_p50_ms_single_stream_max"])  # fmt: skip
    out["head_p95_ms_single_stream"] = _target(head["p95_ms_single_stream"], "<=",
                                               TARGETS["head_p95_ms_single_stream_max"])  # fmt: skip
    out["head_rps_loaded"] = _target(head["rps_loaded"], ">=", TARGETS["head_rps_loaded_min"])
    gateway, litellm = passing["gateway_overhead_ms"], passing["litellm_overhead_ms"]
    out["pass_through_overhead_vs_litellm"] = {
        "value": gateway, "target": f"<= {litellm} (LiteLLM's overhead, ms)",
        "met": None if gateway is None or litellm is None else gateway <= litellm,
    }  # fmt: skip
    return out


# --- the run -------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.hotpath", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_DURATION_S} s per case (a smoke run)")
    parser.add_argument("--duration", type=int, default=None, help=f"seconds per case (default {DURATION_S})")
    parser.add_argument("--connections", type=int, default=CONNECTIONS, help="connections of the loaded cases")
    parser.add_argument("--pass-connections", type=int, default=1, help="connections of the pass-through cases")
    parser.add_argument("--wrk-threads", type=int, default=1, help="wrk threads (it shares the CPUs with the servers)")
    parser.add_argument("--warmup", type=int, default=WARMUP_S, help="seconds of uncounted warm-up per case")
    parser.add_argument("--rounds", type=int, default=ROUNDS,
                        help="the cache-hit cases and the anchor run interleaved this many times; each ratio is "
                             "the median of the rounds' ratios (the machine's speed moves within minutes)")  # fmt: skip
    parser.add_argument("--model", default=DEFAULT_MODEL, help=f"registry alias (default {DEFAULT_MODEL})")
    parser.add_argument("--litellm", default=str(ROOT / "var" / "venv-litellm" / "bin" / "litellm"))
    parser.add_argument("--redis-url", default=None, help="an existing Redis DB (default: a private redis-server)")
    parser.add_argument("--var-dir", type=Path, default=None, help="the stack's SWARM_VAR_DIR and this run's files")
    parser.add_argument("--out", type=Path, default=None, help="write here instead of reports/hotpath_<date>.json")
    args = parser.parse_args(argv)
    args.duration = args.duration or (QUICK_DURATION_S if args.quick else DURATION_S)
    sizes = (args.duration, args.connections, args.pass_connections, args.wrk_threads, args.rounds)
    if min(sizes) < 1 or args.warmup < 0:
        parser.error("--duration, --connections, --pass-connections, --wrk-threads and --rounds must be >= 1, "
                     "--warmup >= 0")  # fmt: skip
    return args


def model_file(alias: str) -> tuple[Path, int]:
    """The model's GGUF and its n_ctx, from the registry; Refused when unknown or not fetched."""
    from inference.registry import RegistryError, load_registry

    try:
        spec = load_registry().get(alias)
    except RegistryError as exc:
        raise Refused(str(exc)) from None
    path = spec.local_path()
    if not path.is_file():
        raise Refused(f"{alias}: {path} is missing (make models)")
    return path, int(spec.params.get("n_ctx", peers.N_CTX))


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        wrk_binary()
        setup_django()
        path, n_ctx = model_file(args.model)
    except (WrkMissing, Refused) as exc:
        print(f"hotpath: cannot run: {exc}", file=sys.stderr, flush=True)
        return REFUSED
    from django.conf import settings

    stop_on_sigterm()
    if args.var_dir:
        args.var_dir.mkdir(parents=True, exist_ok=True)
        workdir = Path(tempfile.mkdtemp(prefix="hotpath-", dir=args.var_dir))
    else:
        workdir = Path(tempfile.mkdtemp(prefix="swarm-hotpath-"))
    began = time.perf_counter()
    load_before = machine_load()
    procs: dict[str, subprocess.Popen] = {}
    live: LiveStack | None = None
    results: dict[str, dict[str, Any]] = {}
    priming: dict[str, Any] = {}
    notes: list[str] = []
    params: dict[str, Any] = {}
    gunicorn: dict[str, Any] = {}
    try:
        print(f"hotpath: starting our stack ({args.model}), the anchor, llama_cpp.server and LiteLLM", flush=True)
        env = {"SWARM_MODEL": args.model, "SWARM_MODEL_DIR": str(settings.SWARM_MODEL_DIR)}
        if args.var_dir:
            env["SWARM_VAR_DIR"] = str(args.var_dir)
        redis_server = ExistingRedis(args.redis_url) if args.redis_url else None
        live = LiveStack.start(cloud=False, web_concurrency=int(ours({})["workers"]), redis_server=redis_server,
                               **env)  # fmt: skip
        key = live.stack.create_key("bench-hotpath")  # no rate and no concurrency limit
        target = Target(gateway=live.url, key=key)

        priming["cache"] = prime_cache(live, key, CACHE_PROMPT)
        status, payload, _ = post(f"{live.url}/v1/chat/completions", chat_body(AUTO_MODEL, CACHE_PROMPT), key=key)
        priming["v1"] = verify(status, payload, "v1 cache hit", cached=True, route="cache")
        redis.Redis.from_url(live.redis.url).set(ANCHOR_KEY, priming["cache"]["answer"] or SEED_ANSWER)
        procs["anchor"], target.anchor, gunicorn = start_anchor(live, workdir)
        status, payload, _ = post(f"{target.anchor}/answer", {"prompt": CACHE_PROMPT})
        priming["anchor"] = verify(status, payload, "anchor", cached=True)

        status, payload, _ = post(f"{live.url}/orchestrate", {"prompt": HEAD_PROMPT}, key=key)
        priming["head"] = verify(status, payload, "math head", skill_type="math")
        n = random.randrange(1000, 9999)
        status, payload, _ = post(f"{live.url}/orchestrate", {"prompt": HEAD_TEMPLATE % n}, key=key)
        priming["head_varied"] = verify(status, payload, f"math head on {HEAD_TEMPLATE % n!r}", skill_type="math",
                                        cached=False)  # fmt: skip
        if str(n * 23) not in str(payload.get("answer")):
            notes.append(f"the math head answered {HEAD_TEMPLATE % n!r} with {payload.get('answer')!r}")

        params = peers.llama_params(n_ctx)
        procs["llama_server"], port = peers.start_server(params, workdir, model_file=path, alias=args.model)
        target.direct = f"http://127.0.0.1:{port}"
        litellm_id = None
        if Path(args.litellm).exists():
            procs["litellm"], lport = peers.start_litellm(args.litellm, port, workdir, cache=False, alias=args.model)
            procs["litellm_cache"], cport = peers.start_litellm(args.litellm, port, workdir, cache=True,
                                                                alias=args.model)  # fmt: skip
            target.litellm, target.litellm_cache = f"http://127.0.0.1:{lport}", f"http://127.0.0.1:{cport}"
            body = chat_body(args.model, CACHE_PROMPT, max_tokens=LITELLM_MAX_TOKENS, temperature=0.0)
            _, first, _ = post(f"{target.litellm_cache}/v1/chat/completions", body)
            status, second, headers = post(f"{target.litellm_cache}/v1/chat/completions", body)
            litellm_id = second.get("id")
            hit = status == 200 and litellm_id is not None and litellm_id == first.get("id")
            priming["litellm_cache"] = {"hit": hit, "id": litellm_id,
                                        "x-litellm-cache-key": headers.get("x-litellm-cache-key")}  # fmt: skip
            if not hit:
                notes.append("LiteLLM's cache did not answer a repeated request (new id): litellm_cache_hit skipped")
                litellm_id = None
        else:
            notes.append(f"{args.litellm} not found: the LiteLLM cases are skipped (`make hotpath` installs it)")

        pass_ours = chat_body(args.model, PASS_PROMPT, max_tokens=1, temperature=0.0)
        pass_peer = {**pass_ours, "repeat_penalty": 1.0}
        for name, url, body, auth in (("pass_direct", target.direct, pass_peer, None),
                                      ("pass_gateway", live.url, pass_ours, key),
                                      ("pass_litellm", target.litellm, pass_peer, None)):  # fmt: skip
            if url:
                status, payload, _ = post(f"{url}/v1/chat/completions", body, key=auth)
                if status != 200 or completion_tokens(payload) != 1:
                    raise RuntimeError(f"{name}: expected one completion token, got {_brief(status, payload)}: "
                                       f"{json.dumps(payload)[:300]}")  # fmt: skip
                priming[name] = f"{_brief(status, payload) if auth else 'HTTP 200'}, 1 completion token"

        cases = build_cases(target, alias=args.model, connections=args.connections,
                            pass_connections=args.pass_connections, litellm_id=litellm_id)  # fmt: skip
        run_base = random.randrange(1, 200) * 10**7  # below 2**31 with every offset: a Lua %d stays exact
        bases = [run_base + i * 10**6 for i in range(8)]
        print(f"hotpath: all up in {time.perf_counter() - began:.0f} s; {len(cases)} cases x {args.duration} s "
              f"(+{args.warmup} s warm-up each)", flush=True)  # fmt: skip

        def processes() -> dict[str, Any]:  # every server of the run, by name
            return {**live.memory(), **{name: tree_rss(p.pid) for name, p in procs.items()}}

        paired = [c for c in cases if c.name in PAIRED]
        order = [*[c for _ in range(args.rounds) for c in paired], *[c for c in cases if c.name not in PAIRED]]
        rounds: dict[str, list[dict[str, Any]]] = {}
        for case in order:
            try:
                result = measure(case, duration_s=args.duration, warmup_s=args.warmup, wrk_threads=args.wrk_threads,
                                 workdir=workdir, bases=bases, processes=processes)  # fmt: skip
            except (RuntimeError, subprocess.SubprocessError, OSError) as exc:
                result = {"what": case.what, "url": case.url, "error": str(exc)[:500]}
            rounds.setdefault(case.name, []).append(result)
            print(f"  {summary_line(case.name, result)}", flush=True)
        results.update({name: median_round(runs) for name, runs in rounds.items()})
        memory = {"gateway": live.memory(), **{name: tree_rss(p.pid) for name, p in procs.items()}}
    except (RuntimeError, OSError, subprocess.SubprocessError, TimeoutError, requests.RequestException,
            redis.RedisError) as exc:  # fmt: skip
        print(f"hotpath: the benchmark broke: {exc}", file=sys.stderr, flush=True)
        if live:
            print(f"hotpath: logs in {live.stack.logdir} and {workdir}", file=sys.stderr, flush=True)
        return BROKE
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # a second TERM must not cut the cleanup short
        for proc in procs.values():
            peers.stop_process(proc)
        if live:
            with contextlib.suppress(redis.RedisError):
                redis.Redis.from_url(live.redis.url, socket_timeout=2).delete(ANCHOR_KEY)
            live.stop()
        if reaped := reap_children():
            print(f"hotpath: stopped {len(reaped)} process(es) a start cut short left running: {reaped}", flush=True)

    figs = figures(results)
    report = {
        "quick": args.quick,
        "model": args.model,
        "model_file": str(path),
        "duration_s_per_case": args.duration,
        "rounds": args.rounds,
        "warmup_s_per_case": args.warmup,
        "connections": args.connections,
        "pass_connections": args.pass_connections,
        "wrk": {"threads": args.wrk_threads, "version": _wrk_version(),
                "note": "wrk runs on the same CPUs as every server: a closed loop, figures are lower bounds"},
        "method": __doc__.split("\n\n", 1)[1],
        "access": ("requests to our stack carry an API key made for the run with no rate limit and no concurrency "
                   "limit (manage.py create_api_key --rate 0 --concurrency 0), and the stack's anonymous loopback "
                   "limits are off (tests/stack.py): the limits never throttle wrk, their checks still run"),
        "gunicorn": gunicorn,
        "redis": "existing: " + args.redis_url if args.redis_url else "a private redis-server (tests/stack.py)",
        "llama_params": params,
        "litellm": "LiteLLM proxy from " + args.litellm + " (bench/peers.py start_litellm, --num_workers 1)",
        "priming": priming,
        "cases": results,
        **figs,
        "machine": {"cpus": os.cpu_count(), "before": load_before, "after": machine_load(),
                    "note": "a shared machine: the load average says how busy it was"},
        "memory": memory,
        "notes": notes,
        "wall_s": round(time.perf_counter() - began, 1),
        "workdir": str(workdir),
    }  # fmt: skip
    where = write_report(NAME, report, args.out, echo=False)
    print_summary(report, where)
    return OK


def reap_children() -> list[int]:
    """Kill what this process started and is still running, each with its process group: the processes
    of a start that was interrupted half-way (Ctrl-C, SIGTERM during LiveStack.start), which nothing
    else holds. Their pids."""
    import psutil  # requirements/bench.txt

    alive = []
    for child in psutil.Process().children():
        with contextlib.suppress(psutil.Error):
            if child.status() != psutil.STATUS_ZOMBIE:
                alive.append(child)
    for child in alive:
        with contextlib.suppress(ProcessLookupError, PermissionError, psutil.Error):
            if os.getpgid(child.pid) == child.pid:  # started in a session of its own: its workers too
                os.killpg(child.pid, signal.SIGKILL)
            else:
                child.kill()
    psutil.wait_procs(alive, timeout=10)
    return [c.pid for c in alive]


def _wrk_version() -> str | None:
    with contextlib.suppress(OSError, subprocess.SubprocessError, WrkMissing):
        out = subprocess.run([wrk_binary(), "--version"], capture_output=True, text=True, timeout=10)
        return (out.stdout or out.stderr).splitlines()[0].strip()
    return None


# --- the summary ---------------------------------------------------------------------------------


def _fmt(value: Any, digits: int = 1) -> str:
    if value is None:
        return "-"
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def summary_line(name: str, result: dict[str, Any]) -> str:
    """One row of the summary table: a case's rps, latency and error counts."""
    if "error" in result:
        return f"{name:<22} ERROR {result['error'][:150]}"
    lat = result.get("latency_ms") or {}
    return (f"{name:<22} {result.get('connections', '-'):>5} {_fmt(result.get('rps')):>9} "
            f"{_fmt(lat.get('p50_ms'), 2):>8} {_fmt(lat.get('p95_ms'), 2):>8} {_fmt(lat.get('p99_ms'), 2):>8} "
            f"{_fmt(result.get('non_2xx')):>7} {_fmt(result.get('errors')):>6} "
            f"{_fmt(result.get('missed')):>6}")  # fmt: skip


HEADER = (f"{'case':<22} {'conns':>5} {'rps':>9} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'non2xx':>7} "
          f"{'errors':>6} {'missed':>6}")  # fmt: skip


def print_summary(report: dict[str, Any], where: Path) -> None:
    quick = " (--quick: short and noisy)" if report["quick"] else ""
    print(f"\nhotpath{quick}: {report['duration_s_per_case']} s per case, model {report['model']}, "
          f"{report['machine']['cpus']} CPUs, load {report['machine']['before']['loadavg_1_5_15']} -> "
          f"{report['machine']['after']['loadavg_1_5_15']}")  # fmt: skip
    print(HEADER)
    for name, result in report["cases"].items():
        print(summary_line(name, result))
    r, p = report["ratios"], report["pass_through"]
    print(
        f"cache hit rps / anchor: orchestrate {_fmt(r['cache_hit_rps_vs_anchor']['orchestrate'], 3)}, "
        f"v1 {_fmt(r['cache_hit_rps_vs_anchor']['v1'], 3)}; / LiteLLM cache: orchestrate "
        f"{_fmt(r['cache_hit_rps_vs_litellm']['orchestrate'], 3)}, v1 {_fmt(r['cache_hit_rps_vs_litellm']['v1'], 3)}"
    )
    print(f"pass-through overhead over llama_cpp.server (p50): gateway {_fmt(p['gateway_overhead_ms'], 2)} ms, "
          f"LiteLLM {_fmt(p['litellm_overhead_ms'], 2)} ms (direct p50 {_fmt(p['direct_p50_ms'], 2)} ms)")  # fmt: skip
    print("targets:")
    for name, t in report["targets"].items():
        verdict = {True: "met", False: "MISSED", None: "not measured"}[t["met"]]
        print(f"  {name:<36} {_fmt(t['value'], 3):>10}  {t['target']:<40} {verdict}")
    for note in report["notes"]:
        print(f"note: {note}")
    print(f"report: {shown_path(where)}", flush=True)


if __name__ == "__main__":
    raise SystemExit(main())
