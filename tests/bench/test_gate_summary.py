"""The gate's summary line and its n/a (no GPU) rule, on made-up stage results (no process runs)."""

from __future__ import annotations

from bench.gate import STAGES, StageResult, gate_line, loader_verdict, stage_command, stage_result, summary_lines


def results(**status: str) -> list[StageResult]:
    return [StageResult(stage, status.get(stage, "PASS"), 1.0, "ok") for stage in STAGES]


def test_the_summary_line_names_the_run_book_stages_in_order_one_mark_each():
    lines, code = summary_lines(results(soak="FAIL"), subset=False)
    assert "GATE: pytest ✔  loader ✔  live-smoke ✔  titanic ✔  soak ✘  alerts ✔  lora ✔" in lines
    assert code == 1 and lines[-1] == "GATE FAILED: soak" and "ALL TARGETS MET" not in lines
    table = lines.index("GATE: pytest ✔  loader ✔  live-smoke ✔  titanic ✔  soak ✘  alerts ✔  lora ✔")
    assert any("✘ FAIL" in line and "soak" in line for line in lines[:table])  # the detailed table stays above


def test_all_targets_met_only_when_every_stage_passed():
    lines, code = summary_lines(results(), subset=False)
    assert (code, lines[-1]) == (0, "ALL TARGETS MET")
    lines, code = summary_lines(results(lora="SKIPPED"), subset=False)
    assert code == 0 and lines[-1].startswith("NOT ALL TARGETS MET") and "lora -" in lines[-2]


def test_gpu_only_parts_are_named_n_a_and_do_not_withhold_all_targets_met():
    parts = results()
    parts[1].na = ("VRAM limit 10.5 GB (the model runs on cpu)",)
    parts[3].status = "N/A"  # a stage made only of GPU checks
    lines, code = summary_lines(parts, subset=False)
    assert "GATE: pytest ✔  loader ✔  live-smoke ✔  titanic n/a  soak ✔  alerts ✔  lora ✔" in lines
    na = "n/a (no GPU), not checked here: loader: VRAM limit 10.5 GB (the model runs on cpu); titanic: the whole stage"
    assert na in lines
    assert any("n/a (no GPU)" in line and "titanic" in line for line in lines[: 3 + len(STAGES)])
    assert (code, lines[-1]) == (0, "ALL TARGETS MET")


def test_a_stage_log_marks_its_gpu_checks_n_a():
    log = ["n/a (no GPU): VRAM limit 10.5 GB", "PASS smoke-loader: m on cpu, load 0.1 s, RSS 9 MB"]
    result = stage_result("loader", 0, 1.0, log, None)
    assert result.status == "PASS" and result.na == ("VRAM limit 10.5 GB",)
    assert result.detail.startswith("PASS smoke-loader")
    assert stage_result("titanic", 0, 1.0, ["STAGE n/a (no GPU)"], None).status == "N/A"
    assert stage_result("titanic", 1, 1.0, ["STAGE n/a (no GPU)", "FAIL micro: x"], None).status == "FAIL"


def test_the_subset_line_marks_stages_not_selected():
    line = gate_line([StageResult("alerts", "PASS", 1.0, "ok")])
    assert line == "GATE: pytest ·  loader ·  live-smoke ·  titanic ·  soak ·  alerts ✔  lora ·"


def test_the_lora_stage_runs_the_queue_file_drill():
    argv = stage_command("lora")
    assert argv is not None and "tests/integration/test_lora_drill.py" in argv and "queue_file" in argv


def test_the_loader_verdict_checks_vram_on_a_gpu_and_says_n_a_without_one():
    info = {"model": "m", "device": "cpu", "load_s": 0.21, "rss_mb": 312.4, "vram_limit_gb": 10.5, "vram_used_gb": None}
    ok, line = loader_verdict(info)
    assert ok and line == "PASS smoke-loader: m on cpu, load 0.2 s, RSS 312 MB (VRAM limit n/a (no GPU))"
    ok, line = loader_verdict({**info, "device": "gpu", "vram_used_gb": 11.0})
    assert not ok and line.startswith("FAIL smoke-loader: VRAM 11.00 GB over SWARM_VRAM_LIMIT_GB=10.5")
    ok, line = loader_verdict({**info, "device": "gpu", "vram_used_gb": 1.25})
    assert ok and line.endswith("RSS 312 MB, VRAM 1.25 GB in use (limit 10.5 GB)")
    ok, line = loader_verdict({**info, "problems": ["FileNotFoundError: no model"]})
    assert not ok and line.startswith("FAIL smoke-loader: FileNotFoundError: no model")
