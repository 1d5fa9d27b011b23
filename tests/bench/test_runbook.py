"""The run-book's commands, command for command: each ends with one PASS or FAIL line and its exit status.

smoke-loader loads the real model (about a second); smoke-live runs against the session's stack;
the cost guard starts a stack of its own (about 15 s) and stops at the first call over the cap."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.stack import ROOT

pytestmark = pytest.mark.integration


def run(*argv: str, env: dict[str, str] | None = None, timeout: float = 300) -> tuple[int, list[str]]:
    proc = subprocess.run([sys.executable, *argv], cwd=ROOT, env={**os.environ, **(env or {})}, capture_output=True,
                          text=True, timeout=timeout)  # fmt: skip
    lines = [line for line in proc.stdout.splitlines() if line.strip()]
    return proc.returncode, lines


def test_smoke_loader_prints_its_pass_line_on_the_real_model():
    code, lines = run("-m", "bench.gate", "--stage-impl", "loader")
    assert code == 0, lines
    from inference.registry import load_registry

    served = os.environ.get("SWARM_MODEL") or load_registry().default  # the model the loader loads
    assert lines[-1].startswith(f"PASS smoke-loader: {served} on "), lines[-1]
    assert " load " in lines[-1] and " RSS " in lines[-1]
    if " on cpu," in lines[-1]:
        assert lines[-1].endswith("(VRAM limit n/a (no GPU))")
        assert any(line.startswith("n/a (no GPU): VRAM limit") for line in lines)
    else:
        assert "VRAM " in lines[-1] and "GB in use (limit" in lines[-1]


def test_smoke_live_against_the_running_stack(stack):
    code, lines = run("-m", "bench.gate", "--stage-impl", "live-smoke", "--url", stack.url,
                      env={"SWARM_API_KEY": stack.key})  # fmt: skip
    assert code == 0, "\n".join(lines)
    assert lines[-1].startswith("PASS smoke-live: 10/10 calls ok, first token "), lines[-1]
    assert lines[-1].endswith(" ms")
    banner = "\n".join(lines)
    assert f"council at {stack.url}: " in banner and "serving worker(s)" in banner
    heads = next(line for line in lines if line.strip().startswith("heads that voted ("))
    assert "math" in heads and "knowledge" in heads, heads


def test_smoke_live_says_fail_when_the_stack_refuses_it(stack):
    code, lines = run("-m", "bench.gate", "--stage-impl", "live-smoke", "--url", stack.url,
                      env={"SWARM_API_KEY": ""})  # fmt: skip  # this stack refuses anonymous callers
    assert code == 1
    assert lines[-1].startswith("FAIL smoke-live: 0/10 calls ok, no first token (HTTP 40"), lines[-1]


def test_strict_cost_aborts_the_micro_run_at_the_first_call_over_the_cap(tmp_path):
    out = tmp_path / "micro.json"
    code, lines = run("-m", "bench.micro", "--openai-cost", "0.05", "--strict-cost", "--out", str(out),
                      env={"SWARM_CLOUD_ENABLED": "true"})  # fmt: skip
    assert code == 1, "\n".join(lines)
    assert lines[-1].startswith("FAIL micro: cost per request exceeded 0.02 (titanic-replay $0.05)"), lines[-1]
    report = json.loads(out.read_text())
    aborted = report["aborted"]
    assert aborted["strict_cost"] and aborted["items_sent"] < aborted["items_planned"] == 40
    assert report["refused_by_cap"] >= 1 and report["cost_usd"] == 0  # the cap refused before any paid call
    assert report["stack"]["provider"]["worst_case_usd_per_call"] == "0.05"
