"""The release gate's verdict and exit status, on stage subsets so the test stays fast."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from tests.stack import ROOT

GATE = [sys.executable, str(ROOT / "bench" / "gate.py")]


def run_gate(tmp_path, **env: str) -> tuple[subprocess.CompletedProcess, dict]:
    out = tmp_path / "gate.json"
    proc = subprocess.run([*GATE, "--out", str(out)], cwd=ROOT, env={**os.environ, **env}, capture_output=True,
                          text=True, timeout=300)  # fmt: skip
    return proc, json.loads(out.read_text()) if out.exists() else {}


def test_a_stage_forced_to_fail_fails_the_gate(tmp_path):
    proc, report = run_gate(tmp_path, GATE_STAGES="loader,lora", GATE_FORCE_FAIL="loader,lora")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "✘ FAIL" in proc.stdout and "GATE FAILED: loader, lora" in proc.stdout
    assert "GATE: pytest ·  loader ✘  live-smoke ·  titanic ·  soak ·  alerts ·  lora ✘" in proc.stdout
    assert "ALL TARGETS MET" not in proc.stdout
    assert report["exit_code"] == 1
    assert [s["status"] for s in report["stages"]] == ["FAIL", "FAIL"]


def test_the_old_stage_names_are_aliases(tmp_path):
    proc, report = run_gate(tmp_path, GATE_STAGES="lora-dry-run,micro-titanic", GATE_FORCE_FAIL="micro-titanic,lora")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert [s["stage"] for s in report["stages"]] == ["titanic", "lora"]  # the run-book's order, new names


def test_a_passing_subset_exits_zero_without_claiming_all_targets(tmp_path):
    proc, report = run_gate(tmp_path, GATE_STAGES="loader")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "✔ PASS" in proc.stdout and "ALL SELECTED STAGES PASSED" in proc.stdout
    assert "ALL TARGETS MET" not in proc.stdout
    assert "GATE: pytest ·  loader ✔  live-smoke ·" in proc.stdout
    stage = report["stages"][0]
    assert stage["status"] == "PASS" and stage["detail"].startswith("PASS smoke-loader: ")
    if "on cpu" in stage["detail"]:  # no GPU here: the VRAM limit is named n/a, never passed silently
        assert stage["na"] and stage["na"][0].startswith("VRAM limit")
        assert "n/a (no GPU), not checked here: loader: VRAM limit" in proc.stdout


def test_unknown_stage_is_refused(tmp_path):
    proc, _ = run_gate(tmp_path, GATE_STAGES="nonsense")
    assert proc.returncode == 2 and "unknown stage" in proc.stderr
