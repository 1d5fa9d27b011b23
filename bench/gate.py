#!/usr/bin/env python3
"""The release gate: every check a release must pass, one mark per stage, `ALL TARGETS MET` only when
every stage passed. Any failing stage makes the exit status non-zero.

Usage: python bench/gate.py [--stages a,b] [--fail-fast] [--out PATH]
  GATE_STAGES=a,b        run only these stages (same as --stages)
  GATE_FORCE_FAIL=a,b    mark these stages failed without running them (to test the gate itself)
  GATE_SOAK_QPS=120, GATE_SOAK_DURATION=20s, GATE_SOAK_P95_MS=200   the short soak

Stages, in order:
  pytest         `make test` (ruff, the unit and integration suites, the PostgreSQL concurrency run)
  loader-smoke   load the default model through the registry: SHA-256 and size verified, one generation
  live-smoke     a fresh stack; 5 POST /orchestrate and 5 POST /vote over HTTP, answers checked
  micro-titanic  the 40-item stratified Titanic slice; passes at effective success >= 97 % and
                 composite accuracy >= 85 % (and the cost target scaled to 40 items)
  short-soak     bench/soak/locustfile.py for GATE_SOAK_DURATION at GATE_SOAK_QPS (fail ratio <= 1 %, p95 target)
  alert-drill    `make test-alerts-e2e`
  lora-dry-run   the training app's LoRA dry run, when it has one; SKIPPED ("not built yet") otherwise.
                 A skipped stage does not fail the gate, but it is not a pass: no ALL TARGETS MET then.
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
STAGES = ("pytest", "loader-smoke", "live-smoke", "micro-titanic", "short-soak", "alert-drill", "lora-dry-run")
TIMEOUTS = {"pytest": 3600, "loader-smoke": 300, "live-smoke": 600, "micro-titanic": 900, "short-soak": 600,
            "alert-drill": 900, "lora-dry-run": 900}  # fmt: skip
MARKS = {"PASS": "✔ PASS", "FAIL": "✘ FAIL", "SKIPPED": "- SKIPPED"}
# The log line that best sums a stage up (else its last line).
DETAIL = {"pytest": r"\d+ (passed|failed)", "short-soak": r"^soak: \d+ requests",
          "micro-titanic": r"^composite accuracy\s+[\d.]+%", "live-smoke": r"calls ok", "loader-smoke": r"^loaded ",
          "alert-drill": r"ALERT DRILL"}  # fmt: skip


@dataclass
class StageResult:
    stage: str
    status: str  # PASS | FAIL | SKIPPED
    seconds: float
    detail: str
    log: str | None = None


# --- stage implementations (run in a child process: `gate.py --stage-impl NAME`) --------------------


def impl_loader_smoke() -> int:
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "swarm_site.settings")
    import django

    django.setup()
    from inference.integrity import verify_file
    from inference.registry import active_model
    from inference.runtime import build_backend

    spec = active_model()
    path = spec.local_path()
    started = time.perf_counter()
    verify_file(path, sha256=spec.sha256, size=spec.size)
    verified_s = time.perf_counter() - started
    backend = build_backend(spec)
    started = time.perf_counter()
    backend.load()
    load_s = time.perf_counter() - started
    gen = backend.generate([{"role": "user", "content": "Say hello in one short sentence."}], max_tokens=16,
                           temperature=0.0)  # fmt: skip
    backend.unload()
    info = {"model": spec.alias, "file": str(path), "sha256": spec.sha256, "verify_s": round(verified_s, 2),
            "load_s": round(load_s, 2), "device": getattr(backend, "device", "?"), "text": gen.text,
            "completion_tokens": gen.completion_tokens, "generate_ms": round(gen.latency_ms, 1)}  # fmt: skip
    print(json.dumps(info))
    print(f"loaded {spec.alias} on {info['device']} in {info['load_s']}s (sha256 verified in {info['verify_s']}s), "
          f"{gen.completion_tokens} tokens in {info['generate_ms']} ms: {gen.text[:40]!r}")  # fmt: skip
    if not gen.text.strip() or gen.completion_tokens <= 0:
        print("the model generated nothing", file=sys.stderr)
        return 1
    return 0


SMOKE_PROMPTS = [("What is 7*8?", r"\b56\b"), ("What is the capital of France?", r"Paris"), ("hello", r"\S"),
                 ("convert 10 km to miles", r"6\.2137"), ("Solve 2x + 3 = 11", r"x = 4")]  # fmt: skip


def impl_live_smoke() -> int:
    sys.path.insert(0, str(ROOT))
    import requests

    from bench.titanic.live import LiveStack

    failures = []
    with LiveStack.start(cloud=False) as live:
        print(f"stack up in {live.started_s:.1f}s at {live.url}", flush=True)
        session = requests.Session()
        for endpoint in ("/orchestrate", "/vote"):
            for prompt, pattern in SMOKE_PROMPTS:
                started = time.perf_counter()
                response = session.post(f"{live.url}{endpoint}", json={"prompt": prompt}, timeout=120)
                ms = (time.perf_counter() - started) * 1000
                body = (
                    response.json() if response.headers.get("content-type", "").startswith("application/json") else {}
                )
                problems = []
                if response.status_code != 200:
                    problems.append(f"HTTP {response.status_code}")
                if body.get("route") not in ("cache", "council", "cloud", "unsure"):
                    problems.append(f"route {body.get('route')!r}")
                if not re.search(pattern, str(body.get("answer", ""))):
                    problems.append(f"answer {str(body.get('answer'))[:80]!r} does not match {pattern!r}")
                if endpoint == "/vote" and not isinstance(body.get("ballots"), list):
                    problems.append("no ballots")
                mark = "ok" if not problems else "; ".join(problems)
                print(
                    f"{endpoint:<13} {prompt!r:<36} {response.status_code} {body.get('route')}:"
                    f"{body.get('skill_type')} {ms:7.1f} ms  {mark}",
                    flush=True,
                )
                if problems:
                    failures.append(f"{endpoint} {prompt!r}: {mark}")
    print(f"{10 - len(failures)}/10 calls ok")
    return 1 if failures else 0


def impl_micro_titanic() -> int:
    sys.path.insert(0, str(ROOT))
    from bench.titanic.run import TARGETS
    from bench.titanic.run import main as titanic

    out = ROOT / "reports" / f"titanic_{datetime.now(UTC):%Y%m%d}_micro.json"
    code = titanic(["--micro", "--out", str(out)])
    if code:
        return code
    report = json.loads(out.read_text())
    cost_target = next(t for name, t in report["targets"].items() if name.startswith("cost"))
    checks = {
        "effective success >= 97%": report["effective_success"] >= TARGETS["effective_success"],
        "composite accuracy >= 85%": report["composite_accuracy"] >= TARGETS["composite_accuracy"],
        "cost within the scaled target": cost_target["status"] == "met",
    }
    for name, ok in checks.items():
        print(f"gate check {name}: {'pass' if ok else 'FAIL'}")
    return 0 if all(checks.values()) else 1


IMPLS = {"loader-smoke": impl_loader_smoke, "live-smoke": impl_live_smoke, "micro-titanic": impl_micro_titanic}


# --- the gate ------------------------------------------------------------------------------------


def lora_command() -> list[str] | None:
    """`manage.py <cmd> --dry-run` if the training app ships a command with a dry run."""
    commands = ROOT / "training" / "management" / "commands"
    for path in sorted(commands.glob("*.py")) if commands.is_dir() else []:
        if path.name != "__init__.py" and re.search(r"--dry[-_]run", path.read_text(encoding="utf-8")):
            return [sys.executable, "manage.py", path.stem, "--dry-run"]
    return None


def stage_command(stage: str) -> list[str] | None:
    make = os.environ.get("MAKE", "make")
    soak = [sys.executable, str(ROOT / "bench" / "soak" / "locustfile.py"), "--qps",
            os.environ.get("GATE_SOAK_QPS", "120"), "--duration", os.environ.get("GATE_SOAK_DURATION", "20s"),
            "--p95-target-ms", os.environ.get("GATE_SOAK_P95_MS", "200"),
            "--out", str(ROOT / "reports" / f"soak_{datetime.now(UTC):%Y%m%d}_gate.json")]  # fmt: skip
    commands = {
        "pytest": [make, "--no-print-directory", "test"],
        "alert-drill": [make, "--no-print-directory", "test-alerts-e2e"],
        "short-soak": soak,
        "lora-dry-run": lora_command(),
    }
    if stage in IMPLS:
        return [sys.executable, str(Path(__file__).resolve()), "--stage-impl", stage]
    return commands[stage]


def run_stage(stage: str, *, forced: set[str], logdir: Path) -> StageResult:
    if stage in forced:
        return StageResult(stage, "FAIL", 0.0, "forced to fail by GATE_FORCE_FAIL")
    argv = stage_command(stage)
    if argv is None:
        return StageResult(stage, "SKIPPED", 0.0, "not built yet: the training app has no LoRA dry-run command")
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
    seconds = time.perf_counter() - started
    lines = log.read_text(errors="replace").strip().splitlines()
    tail = lines[-12:]
    status = "PASS" if code == 0 else "FAIL"
    summary = [line for line in lines if re.search(DETAIL.get(stage, "$^"), line.strip())]
    detail = (summary[-1].strip() if summary else tail[-1] if tail else "")[:200]
    if status == "FAIL":
        detail = f"exit {code}: {detail}"
        print("\n".join(f"    | {line}" for line in tail), flush=True)
    return StageResult(stage, status, round(seconds, 1), detail, str(log))


def summary_lines(results: list[StageResult], *, subset: bool) -> tuple[list[str], int]:
    lines = ["", "RELEASE GATE", "=" * 72]
    for r in results:
        lines.append(f"  {MARKS[r.status]:<10} {r.stage:<14} {r.seconds:>7.1f}s  {r.detail[:90]}")
    lines.append("=" * 72)
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
    return [s.strip() for s in (text or "").split(",") if s.strip()]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="The release gate")
    parser.add_argument("--stages", default=os.environ.get("GATE_STAGES"), help="comma-separated subset")
    parser.add_argument("--fail-fast", action="store_true")
    parser.add_argument("--out", type=Path, help="the JSON report (default reports/gate_<date>.json)")
    parser.add_argument("--stage-impl", choices=sorted(IMPLS), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.stage_impl:
        return IMPLS[args.stage_impl]()
    stages = _names(args.stages) or list(STAGES)
    forced = set(_names(os.environ.get("GATE_FORCE_FAIL")))
    unknown = [s for s in [*stages, *forced] if s not in STAGES]
    if unknown:
        print(f"gate: unknown stage(s) {', '.join(unknown)}; stages are {', '.join(STAGES)}", file=sys.stderr)
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
                               "verdict": lines[-1], "wall_s": round(time.perf_counter() - began, 1),
                               "forced_to_fail": sorted(forced), "logs": str(logdir),
                               "stages": [asdict(r) for r in results]}, indent=2) + "\n")  # fmt: skip
    return code


if __name__ == "__main__":
    raise SystemExit(main())
