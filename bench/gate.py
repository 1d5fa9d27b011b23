#!/usr/bin/env python3
"""The release gate: every check a release must pass, one mark per stage, `ALL TARGETS MET` only when
every stage passed. Any failing stage makes the exit status non-zero.

Usage: python bench/gate.py [--stages a,b] [--fail-fast] [--out PATH]
  GATE_STAGES=a,b        run only these stages (same as --stages)
  GATE_FORCE_FAIL=a,b    mark these stages failed without running them (to test the gate itself)
  GATE_SOAK_QPS=120, GATE_SOAK_DURATION=20s, GATE_SOAK_P95_MS=150   the short soak
  GATE_TITANIC_MIN_LOCAL_ACCURACY_ALL=0.70, GATE_TITANIC_MAX_CONFIDENTLY_WRONG_RATE=0.01,
  GATE_TITANIC_MIN_ACCURACY_OF_LOCAL_ANSWERS=0.97   the titanic stage's held-out thresholds
  The stages' former names (loader-smoke, micro-titanic, short-soak, alert-drill, lora-dry-run) are
  accepted as aliases everywhere a stage is named.

Stages, in the run-book's order:
  pytest      `make test` (ruff, the unit and integration suites, the PostgreSQL concurrency run)
  loader      `make smoke-loader`: the default model through the registry (SHA-256 and size verified),
              its load time, the process RSS, on a GPU the VRAM in use against SWARM_VRAM_LIMIT_GB;
              one generation
  live-smoke  a fresh stack; 5 POST /orchestrate and 5 POST /vote over HTTP, answers checked, the
              council's heads and the first-token time of a streamed chat completion
  titanic     the held-out part of the Titanic suite (bench/split.py; `python -m bench.titanic --part
              heldout`) on a stack of its own, judged on what the gateway answered ON ITS OWN (the
              replay provider's answers never count; bench/titanic/headline.py): held-out
              local_accuracy_all >= 0.70, confidently_wrong_rate <= 0.01, accuracy_of_local_answers
              >= 0.97 (the named constants of bench/titanic/headline.py, HELDOUT_THRESHOLDS),
              effective success >= 97 % and the cost target scaled to the part; `FAIL titanic:` names
              each figure that missed and by how much
  soak        bench/soak/locustfile.py for GATE_SOAK_DURATION at GATE_SOAK_QPS (no failures, client p95 <= 150 ms,
              gateway p95 <= 50 ms, one interaction row per request)
  alerts      `make test-alerts-e2e`
  lora        the training app's queue-file drill (tests/integration/test_lora_drill.py: a
              tasks/lora_queue.json line is trained and hot-loaded)

The verdict. Under the table, one line gives every stage one mark, in this order:
  GATE: pytest ✔  loader ✔  live-smoke ✔  titanic ✔  soak ✘  alerts ✔  lora ✔
(✔ passed, ✘ failed, - skipped, n/a not applicable without a GPU, · not selected). Checks that need a
GPU (the loader's VRAM limit, the titanic p95 target on a GPU) are never passed silently on a machine
without one: the stage's log says `n/a (no GPU): <check>` and the gate lists those parts under the
line; a stage that is nothing but GPU checks is marked n/a. The rule: `ALL TARGETS MET` when every
stage ran and every check that can run on this machine passed; n/a (no GPU) parts and n/a stages do
not withhold it (the line above it names them), a failed stage fails the gate (exit 1), a skipped
stage withholds it (exit 0, NOT ALL TARGETS MET), and a subset (GATE_STAGES) says so instead.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
STAGES = ("pytest", "loader", "live-smoke", "titanic", "soak", "alerts", "lora")
ALIASES = {"loader-smoke": "loader", "micro-titanic": "titanic", "short-soak": "soak", "alert-drill": "alerts",
           "lora-dry-run": "lora"}  # fmt: skip
TIMEOUTS = {"pytest": 3600, "loader": 300, "live-smoke": 600, "titanic": 900, "soak": 600, "alerts": 900,
            "lora": 900}  # fmt: skip
MARKS = {"PASS": "✔ PASS", "FAIL": "✘ FAIL", "SKIPPED": "- SKIPPED", "N/A": "n/a (no GPU)"}
SHORT = {"PASS": "✔", "FAIL": "✘", "SKIPPED": "-", "N/A": "n/a"}
NOT_SELECTED = "·"
# The log line that best sums a stage up (else its last line).
DETAIL = {"pytest": r"\d+ (passed|failed)", "soak": r"^soak: \d+ requests", "titanic": r"^(PASS|FAIL) (titanic|micro):",
          "live-smoke": r"^(PASS|FAIL) smoke-live:", "loader": r"^(PASS|FAIL) smoke-loader:",
          "alerts": r"ALERT DRILL", "lora": r"\d+ (passed|failed)"}  # fmt: skip
# A stage's log names each GPU-only check it could not run: `n/a (no GPU): <check>`; a stage made of
# nothing else prints `STAGE n/a (no GPU)`.
NA_LINE = re.compile(r"^n/a \(no GPU\): (.+)$")
NA_STAGE = re.compile(r"^STAGE n/a \(no GPU\)")
LORA_DRILL = "tests/integration/test_lora_drill.py"


@dataclass
class StageResult:
    stage: str
    status: str  # PASS | FAIL | SKIPPED | N/A
    seconds: float
    detail: str
    log: str | None = None
    na: tuple[str, ...] = ()  # GPU-only checks this machine could not run


def canonical(name: str) -> str:
    return ALIASES.get(name, name)


# --- stage implementations (run in a child process: `gate.py --stage-impl NAME`) --------------------


def _django() -> None:
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "swarm_site.settings")
    import django

    django.setup()


def process_rss_bytes() -> int:
    """This process's resident set now (psutil; else the peak from getrusage, in KiB on Linux)."""
    try:
        import psutil

        return psutil.Process().memory_info().rss
    except ImportError:
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def loader_verdict(info: dict) -> tuple[bool, str]:
    """(passed, the `PASS|FAIL smoke-loader: ...` line) for the facts impl_loader_smoke gathered."""
    what = f"{info['model']} on {info['device']}, load {info['load_s']:.1f} s, RSS {info['rss_mb']:.0f} MB"
    problems = list(info.get("problems", []))
    if info.get("vram_used_gb") is None:
        limit = "(VRAM limit n/a (no GPU))"
    else:
        limit = f"VRAM {info['vram_used_gb']:.2f} GB in use (limit {info['vram_limit_gb']} GB)"
        if info["vram_used_gb"] > info["vram_limit_gb"]:
            problems.append(f"VRAM {info['vram_used_gb']:.2f} GB over SWARM_VRAM_LIMIT_GB={info['vram_limit_gb']}")
    if problems:
        return False, f"FAIL smoke-loader: {'; '.join(problems)} ({what})"
    return True, f"PASS smoke-loader: {what}{',' if limit.startswith('VRAM') else ''} {limit}"


def impl_loader_smoke() -> int:
    """Load the default model on the configured device: SHA-256 verified, load time, RSS after the load,
    on a GPU the VRAM in use (the fullest visible GPU) against SWARM_VRAM_LIMIT_GB; one generation."""
    _django()
    from django.conf import settings

    from inference.gpu import GIB, visible_gpus
    from inference.integrity import verify_file
    from inference.registry import active_model
    from inference.runtime import build_backend

    spec = active_model()
    info: dict = {"model": spec.alias, "device": "?", "load_s": 0.0, "rss_mb": process_rss_bytes() / 2**20,
                  "vram_limit_gb": settings.SWARM_VRAM_LIMIT_GB, "vram_used_gb": None, "problems": []}  # fmt: skip
    try:
        path = spec.local_path()
        started = time.perf_counter()
        verify_file(path, sha256=spec.sha256, size=spec.size)
        info["verify_s"] = round(time.perf_counter() - started, 2)
        backend = build_backend(spec)
        started = time.perf_counter()
        backend.load()
        info["load_s"] = round(time.perf_counter() - started, 2)
        info["device"] = getattr(backend, "device", "?")
        info["rss_mb"] = round(process_rss_bytes() / 2**20, 1)
        gpus = visible_gpus() if info["device"] != "cpu" else []
        if gpus:
            info["vram_used_gb"] = round(max(g.used_bytes for g in gpus) / GIB, 2)
        gen = backend.generate([{"role": "user", "content": "Say hello in one short sentence."}], max_tokens=16,
                               temperature=0.0)  # fmt: skip
        backend.unload()
        info.update(text=gen.text, completion_tokens=gen.completion_tokens, generate_ms=round(gen.latency_ms, 1))
        print(f"loaded {spec.alias} on {info['device']} in {info['load_s']}s (sha256 verified in "
              f"{info['verify_s']}s), {gen.completion_tokens} tokens in {info['generate_ms']} ms: "
              f"{gen.text[:40]!r}")  # fmt: skip
        if not gen.text.strip() or gen.completion_tokens <= 0:
            info["problems"].append("the model generated nothing")
    except Exception as exc:  # noqa: BLE001 - any failure to load is the verdict, said in one line
        info["problems"].append(f"{type(exc).__name__}: {exc}"[:300])
    if info["vram_used_gb"] is None:
        print(f"n/a (no GPU): VRAM limit {info['vram_limit_gb']} GB (the model runs on {info['device']})")
    print(json.dumps({k: v for k, v in info.items() if k != "problems"}))
    ok, line = loader_verdict(info)
    print(line, flush=True)
    return 0 if ok else 1


SMOKE_PROMPTS = [("What is 7*8?", r"\b56\b"), ("What is the capital of France?", r"Paris"), ("hello", r"\S"),
                 ("convert 10 km to miles", r"6\.2137"), ("Solve 2x + 3 = 11", r"x = 4")]  # fmt: skip


def first_token_ms(session, url: str) -> tuple[float | None, str | None]:
    """Time to the first SSE chunk with content of a streamed /v1/chat/completions (swarm-auto, "hello")."""
    body = {"model": "swarm-auto", "messages": [{"role": "user", "content": "hello"}], "stream": True,
            "max_tokens": 16}  # fmt: skip
    started = time.perf_counter()
    try:
        with session.post(f"{url}/v1/chat/completions", json=body, stream=True, timeout=120) as response:
            if response.status_code != 200:
                return None, f"HTTP {response.status_code}: {response.text[:120]}"
            for raw in response.iter_lines():
                line = raw.decode("utf-8", "replace").strip()
                if not line.startswith("data:") or line == "data: [DONE]":
                    continue
                chunk = json.loads(line.removeprefix("data:"))
                delta = (chunk.get("choices") or [{}])[0].get("delta") or {}
                if delta.get("content"):
                    return (time.perf_counter() - started) * 1000, None
    except (OSError, ValueError) as exc:  # requests' errors are OSErrors; bad JSON a ValueError
        return None, f"{type(exc).__name__}: {exc}"[:160]
    return None, "the stream ended without content"


def council_banner(session, url: str, heads: list[str], ttft: float | None, ttft_error: str | None) -> list[str]:
    """Who answered: the serving workers' model and device (/health), the heads that voted, the first token."""
    try:
        health = session.get(f"{url}/health", timeout=10).json()
        workers = health.get("checks", {}).get("workers", {}).get("workers") or []
        sandbox = health.get("sandbox") or {}
    except (OSError, ValueError, AttributeError):
        workers, sandbox = [], {}
    models = sorted({f"{w.get('model')} on {w.get('device')}" for w in workers}) or ["unknown (no heartbeat read)"]
    first = f"{ttft:.0f} ms" if ttft is not None else f"none ({ttft_error})"
    return ["=" * 72,
            f"council at {url}: {', '.join(models)}, {len(workers)} serving worker(s)",
            f"  heads that voted ({len(heads)}): {', '.join(heads) or 'none'}"
            + (f"; the code head is off: {sandbox.get('reason')}" if sandbox and not sandbox.get("ok") else ""),
            f"  first token: {first} (streamed POST /v1/chat/completions, model swarm-auto, 'hello')",
            "=" * 72]  # fmt: skip


def smoke_calls(url: str, headers: dict[str, str]) -> int:
    """The 10 smoke calls and the banner against `url`; prints `PASS|FAIL smoke-live: ...` last."""
    import requests

    session = requests.Session()
    session.headers.update(headers)
    ttft, ttft_error = first_token_ms(session, url)
    failures, heads = [], []
    for endpoint in ("/orchestrate", "/vote"):
        for prompt, pattern in SMOKE_PROMPTS:
            started = time.perf_counter()
            try:
                response = session.post(f"{url}{endpoint}", json={"prompt": prompt}, timeout=120)
            except requests.RequestException as exc:
                failures.append(f"{endpoint} {prompt!r}: {type(exc).__name__}")
                print(f"{endpoint:<13} {prompt!r:<36} {type(exc).__name__}: {exc}"[:200], flush=True)
                continue
            ms = (time.perf_counter() - started) * 1000
            try:
                body = response.json()
            except ValueError:
                body = {}
            body = body if isinstance(body, dict) else {}
            problems = []
            if response.status_code != 200:
                problems.append(f"HTTP {response.status_code}")
            if body.get("route") not in ("cache", "council", "cloud", "unsure"):
                problems.append(f"route {body.get('route')!r}")
            if not re.search(pattern, str(body.get("answer", ""))):
                problems.append(f"answer {str(body.get('answer'))[:80]!r} does not match {pattern!r}")
            if endpoint == "/vote":
                if not isinstance(body.get("ballots"), list):
                    problems.append("no ballots")
                else:
                    heads += [b["head"] for b in body["ballots"] if isinstance(b, dict) and b.get("head") not in heads]
            mark = "ok" if not problems else "; ".join(problems)
            print(f"{endpoint:<13} {prompt!r:<36} {response.status_code} {body.get('route')}:"
                  f"{body.get('skill_type')} {ms:7.1f} ms  {mark}", flush=True)  # fmt: skip
            if problems:
                failures.append(f"{endpoint} {prompt!r}: {mark}")
    print("\n".join(council_banner(session, url, heads, ttft, ttft_error)))
    ok_calls = 2 * len(SMOKE_PROMPTS) - len(failures)
    first = f"first token {ttft:.0f} ms" if ttft is not None else f"no first token ({ttft_error})"
    passed = not failures and ttft is not None
    print(f"{ok_calls}/{2 * len(SMOKE_PROMPTS)} calls ok")
    print(f"{'PASS' if passed else 'FAIL'} smoke-live: {ok_calls}/{2 * len(SMOKE_PROMPTS)} calls ok, {first}"
          + (f"; first failure: {failures[0]}" if failures else ""), flush=True)  # fmt: skip
    return 0 if passed else 1


def impl_live_smoke(url: str | None = None) -> int:
    """Against the running stack at `url` (SWARM_API_KEY when set, else the anonymous loopback caller),
    or, without one, a fresh stack of its own (what the gate does)."""
    sys.path.insert(0, str(ROOT))
    from bench.reporting import auth_headers

    if url:
        return smoke_calls(url.rstrip("/"), auth_headers())
    from bench.titanic.live import LiveStack

    with LiveStack.start(cloud=False) as live:
        print(f"stack up in {live.started_s:.1f}s at {live.url}", flush=True)
        return smoke_calls(live.url, {})


def titanic_thresholds(env: dict[str, str] | None = None) -> dict[str, float]:
    """figure -> the held-out threshold: the named constants of bench/titanic/headline.py
    (MIN_LOCAL_ACCURACY_ALL, MAX_CONFIDENTLY_WRONG_RATE, MIN_ACCURACY_OF_LOCAL_ANSWERS), each overridable
    by its GATE_TITANIC_* variable."""
    sys.path.insert(0, str(ROOT))
    from bench.titanic.headline import HELDOUT_THRESHOLDS

    env = os.environ if env is None else env
    out = {}
    for threshold in HELDOUT_THRESHOLDS:
        raw = env.get(threshold.env, "").strip()
        try:
            out[threshold.figure] = float(raw) if raw else threshold.value
        except ValueError:
            raise SystemExit(f"gate: {threshold.env}={raw!r} is not a number") from None
    return out


def _points(value: float) -> str:
    return f"{value * 100:.1f} pts"


def titanic_verdict(report: dict, thresholds: dict[str, float]) -> tuple[bool, list[str]]:
    """(passed, the lines to print with `PASS titanic:` / `FAIL titanic:` last) for a held-out run's report."""
    from bench.titanic.headline import check_heldout
    from bench.titanic.run import TARGETS

    lines = [f"n/a (no GPU): {name}" for name, t in report["targets"].items() if str(t["status"]).startswith("n/a")]
    held = report["headline"]["heldout"]
    misses, facts = [], []
    for check in check_heldout(report, thresholds):
        shown = "none" if check["value"] is None else f"{check['value']:.1%}"
        facts.append(f"{check['figure']} {shown} {check['op']} {check['target']:.0%}")
        lines.append(f"gate check held-out {check['figure']} {check['op']} {check['target']}: "
                     f"{'pass' if check['met'] else 'FAIL'} ({check['value']})")  # fmt: skip
        if not check["met"]:
            below = check["op"] == ">="
            gap = (
                ""
                if check["short_by"] is None
                else f" ({'short' if below else 'over'} by {_points(check['short_by'])})"
            )
            misses.append(f"held-out {check['figure']} {shown} {'<' if below else '>'} {check['target']:.0%}{gap}")
    success = report["effective_success"]
    if success < TARGETS["effective_success"]:
        misses.append(f"effective success {success:.1%} < {TARGETS['effective_success']:.0%}")
    cost = next((t for name, t in report["targets"].items() if name.startswith("cost")), None)
    if cost is not None and cost["status"] != "met":
        misses.append(f"cost ${cost['value']:.6f} over the scaled target")
    about = (f"{held['n']} held-out items, escalation {held['escalation_rate']:.1%}, cost ${held['cost_usd']:.6f}, "
             f"replay answers {report['replay']['answers']} not counted")  # fmt: skip
    if misses:
        lines.append(f"FAIL titanic: {'; '.join(misses)} ({about})")
    else:
        lines.append(f"PASS titanic: {', '.join(facts)} ({about})")
    return not misses, lines


def impl_titanic() -> int:
    """The held-out part on a stack of its own (reports/titanic_<date>_heldout_gate.json), then the verdict."""
    sys.path.insert(0, str(ROOT))
    from bench.titanic.run import main as titanic

    thresholds = titanic_thresholds()
    out = ROOT / "reports" / f"titanic_{datetime.now(UTC):%Y%m%d}_heldout_gate.json"
    code = titanic(["--part", "heldout", "--out", str(out)])
    if code != 0:
        print(f"FAIL titanic: the Titanic run exited {code} (see above)", flush=True)
        return code
    ok, lines = titanic_verdict(json.loads(out.read_text()), thresholds)
    print("\n".join(lines), flush=True)
    return 0 if ok else 1


IMPLS = {"loader": impl_loader_smoke, "live-smoke": impl_live_smoke, "titanic": impl_titanic}


# --- the gate ------------------------------------------------------------------------------------


def stage_command(stage: str) -> list[str] | None:
    make = os.environ.get("MAKE", "make")
    soak = [sys.executable, str(ROOT / "bench" / "soak" / "locustfile.py"), "--qps",
            os.environ.get("GATE_SOAK_QPS", "120"), "--duration", os.environ.get("GATE_SOAK_DURATION", "20s"),
            "--p95-target-ms", os.environ.get("GATE_SOAK_P95_MS", "150"),
            "--out", str(ROOT / "reports" / f"soak_{datetime.now(UTC):%Y%m%d}_gate.json")]  # fmt: skip
    lora = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", LORA_DRILL, "-k", "queue_file", "-q"]
    commands = {
        "pytest": [make, "--no-print-directory", "test"],
        "alerts": [make, "--no-print-directory", "test-alerts-e2e"],
        "soak": soak,
        "lora": lora if (ROOT / LORA_DRILL).exists() else None,
    }
    if stage in IMPLS:
        return [sys.executable, str(Path(__file__).resolve()), "--stage-impl", stage]
    return commands[stage]


def stage_result(stage: str, code: int | str, seconds: float, lines: list[str], log: str | None) -> StageResult:
    """A stage's verdict from its exit status and its log lines."""
    na = tuple(dict.fromkeys(m.group(1).strip() for line in lines if (m := NA_LINE.match(line.strip()))))
    status = "PASS" if code == 0 else "FAIL"
    if status == "PASS" and any(NA_STAGE.match(line.strip()) for line in lines):
        status = "N/A"
    summary = [line for line in lines if re.search(DETAIL.get(stage, "$^"), line.strip())]
    detail = (summary[-1].strip() if summary else lines[-1] if lines else "")[:200]
    if status == "FAIL":
        detail = f"exit {code}: {detail}"
    return StageResult(stage, status, round(seconds, 1), detail, log, na)


def run_stage(stage: str, *, forced: set[str], logdir: Path) -> StageResult:
    if stage in forced:
        return StageResult(stage, "FAIL", 0.0, "forced to fail by GATE_FORCE_FAIL")
    argv = stage_command(stage)
    if argv is None:
        return StageResult(stage, "SKIPPED", 0.0, f"not built: {LORA_DRILL} is missing")
    log = logdir / f"{stage}.log"
    started = time.perf_counter()
    print(f"gate: {stage} ... ({' '.join(Path(a).name if a.startswith('/') else a for a in argv)})", flush=True)
    try:
        with log.open("wb") as fh:
            proc = subprocess.run(argv, cwd=ROOT, stdout=fh, stderr=subprocess.STDOUT, timeout=TIMEOUTS[stage],
                                  check=False)  # fmt: skip
        code: int | str = proc.returncode
    except subprocess.TimeoutExpired:
        code = f"timed out after {TIMEOUTS[stage]}s"
    lines = log.read_text(errors="replace").strip().splitlines()
    result = stage_result(stage, code, time.perf_counter() - started, lines, str(log))
    if result.status == "FAIL":
        print("\n".join(f"    | {line}" for line in lines[-12:]), flush=True)
    return result


def gate_line(results: list[StageResult]) -> str:
    """`GATE: pytest ✔  loader ✔  ...`: every stage in order, one mark each (· for one not selected)."""
    by_stage = {r.stage: r for r in results}
    marks = [f"{stage} {SHORT[by_stage[stage].status] if stage in by_stage else NOT_SELECTED}" for stage in STAGES]
    return "GATE: " + "  ".join(marks)


def summary_lines(results: list[StageResult], *, subset: bool) -> tuple[list[str], int]:
    lines = ["", "RELEASE GATE", "=" * 72]
    for r in results:
        note = f" [n/a (no GPU): {'; '.join(r.na)}]" if r.na else ""
        lines.append(f"  {MARKS[r.status]:<12} {r.stage:<11} {r.seconds:>7.1f}s  {r.detail[:90]}{note}")
    lines.append("=" * 72)
    lines.append(gate_line(results))
    na = [f"{r.stage}: {part}" for r in results for part in r.na]
    na += [f"{r.stage}: the whole stage" for r in results if r.status == "N/A" and not r.na]
    if na:
        lines.append(f"n/a (no GPU), not checked here: {'; '.join(na)}")
    failed = [r.stage for r in results if r.status == "FAIL"]
    skipped = [r.stage for r in results if r.status == "SKIPPED"]
    if failed:
        lines.append(f"GATE FAILED: {', '.join(failed)}")
        return lines, 1
    if skipped:
        lines.append(f"NOT ALL TARGETS MET: skipped {', '.join(skipped)} (every stage that ran passed)")
    elif subset:
        lines.append(f"ALL SELECTED STAGES PASSED ({', '.join(r.stage for r in results)}; not the full gate)")
    else:
        lines.append("ALL TARGETS MET")
    return lines, 0


def _names(text: str | None) -> list[str]:
    return [canonical(s.strip()) for s in (text or "").split(",") if s.strip()]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="The release gate")
    parser.add_argument("--stages", default=os.environ.get("GATE_STAGES"), help="comma-separated subset")
    parser.add_argument("--fail-fast", action="store_true")
    parser.add_argument("--out", type=Path, help="the JSON report (default reports/gate_<date>.json)")
    parser.add_argument("--stage-impl", choices=sorted({*IMPLS, *(a for a, s in ALIASES.items() if s in IMPLS)}),
                        help="run one stage's check here and now (make smoke-loader, smoke-live)")  # fmt: skip
    parser.add_argument("--url", help="with --stage-impl live-smoke: the running stack (else a stack of its own)")
    args = parser.parse_args(argv)
    if args.stage_impl:
        stage = canonical(args.stage_impl)
        return impl_live_smoke(args.url) if stage == "live-smoke" else IMPLS[stage]()
    requested = _names(args.stages)
    stages = [s for s in STAGES if s in requested] if requested else list(STAGES)
    forced = set(_names(os.environ.get("GATE_FORCE_FAIL")))
    unknown = [s for s in [*requested, *forced] if s not in STAGES]
    if unknown:
        print(f"gate: unknown stage(s) {', '.join(unknown)}; stages are {', '.join(STAGES)} "
              f"(old names: {', '.join(ALIASES)})", file=sys.stderr)  # fmt: skip
        return 2
    logdir = Path(tempfile.mkdtemp(prefix="swarm-gate-"))
    began = time.perf_counter()
    results: list[StageResult] = []
    for stage in stages:
        result = run_stage(stage, forced=forced, logdir=logdir)
        results.append(result)
        print(f"gate: {stage}: {MARKS[result.status]} ({result.seconds}s)", flush=True)
        if args.fail_fast and result.status == "FAIL":
            break
    lines, code = summary_lines(results, subset=set(stages) != set(STAGES))
    print("\n".join(lines), flush=True)
    out = args.out or ROOT / "reports" / f"gate_{datetime.now(UTC):%Y%m%d}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"benchmark": "gate", "when": datetime.now(UTC).isoformat(), "exit_code": code,
                               "summary": gate_line(results), "verdict": lines[-1],
                               "wall_s": round(time.perf_counter() - began, 1),
                               "forced_to_fail": sorted(forced), "logs": str(logdir),
                               "stages": [asdict(r) for r in results]}, indent=2) + "\n")  # fmt: skip
    return code


if __name__ == "__main__":
    raise SystemExit(main())
