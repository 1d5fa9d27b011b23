"""bench/wrk.py and bench/hotpath.py without wrk, a stack or a model: wrk's output read back, the Lua
scripts, and the hot-path figures and targets from made-up results."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench import hotpath
from bench.wrk import MARKER, WrkRun, json_field, lua_plain, lua_script, lua_string, parse_wrk

TEXT = """Running 2s test @ http://127.0.0.1:8000/orchestrate
  1 threads and 8 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     5.27ms    1.90ms  31.02ms   88.12%
    Req/Sec     1.53k   120.44     1.71k    75.00%
  Latency Distribution
     50%    4.91ms
     75%    5.60ms
     90%    6.88ms
     99%   12.40ms
  3046 requests in 2.00s, 1.21MB read
  Non-2xx or 3xx responses: 3
  Socket errors: connect 0, read 2, write 0, timeout 1
Requests/sec:   1521.87
Transfer/sec:    617.91KB
"""

DONE = {
    "requests": 3046,
    "duration_us": 2001520,
    "bytes": 1268000,
    "errors": {"connect": 0, "read": 2, "write": 0, "status": 3, "timeout": 1},
    "latency_us": {
        "min": 812,
        "max": 31020,
        "mean": 5270.4,
        "stdev": 1900.2,
        "percentiles": {"50": 4910, "75": 5600, "90": 6880, "95": 8120, "99": 12400},
    },
    "checked": 3046,
    "missed": 0,
}


def test_the_done_hook_line_gives_every_percentile_in_ms_and_the_counts() -> None:
    out = parse_wrk(TEXT + MARKER + json.dumps(DONE) + "\n")
    assert out["source"] == "done hook"
    assert out["requests"] == 3046 and out["duration_s"] == 2.002
    assert out["rps"] == round(3046 / 2.00152, 1)
    assert out["latency_ms"]["p50_ms"] == 4.91 and out["latency_ms"]["p95_ms"] == 8.12
    assert out["latency_ms"]["p99_ms"] == 12.4 and out["latency_ms"]["max_ms"] == 31.02
    assert list(out["latency_ms"])[:5] == ["p50_ms", "p75_ms", "p90_ms", "p95_ms", "p99_ms"]
    assert out["non_2xx"] == 3  # wrk's status errors: responses >= 400
    assert out["errors"] == 3 and out["socket_errors"] == {"connect": 0, "read": 2, "write": 0, "timeout": 1}
    assert (out["checked"], out["missed"]) == (3046, 0)


def test_without_the_hook_the_text_summary_is_read_and_has_no_p95() -> None:
    out = parse_wrk(TEXT)
    assert out["source"] == "text summary"
    assert (out["requests"], out["duration_s"], out["rps"]) == (3046, 2.0, 1521.87)
    assert out["latency_ms"] == {"max_ms": 31.02, "mean_ms": 5.27, "p50_ms": 4.91, "p75_ms": 5.6, "p90_ms": 6.88,
                                 "p99_ms": 12.4, "stdev_ms": 1.9}  # fmt: skip
    assert out["non_2xx"] == 3 and out["errors"] == 3
    assert out["checked"] is None


def test_text_units_are_converted_and_a_clean_run_has_no_errors() -> None:
    text = TEXT.replace("4.91ms", "850.00us").replace("12.40ms", "1.20s").replace("  Non-2xx or 3xx responses: 3\n", "")
    text = text.replace("  Socket errors: connect 0, read 2, write 0, timeout 1\n", "")
    out = parse_wrk(text)
    assert out["latency_ms"]["p50_ms"] == 0.85 and out["latency_ms"]["p99_ms"] == 1200.0
    assert out["non_2xx"] == 0 and out["errors"] == 0


def test_lua_strings_and_patterns_survive_any_text() -> None:
    assert lua_string("a]]b") == "[=[a]]b]=]" and lua_string("plain") == "[[plain]]"
    assert lua_string("1[^%d.]") == "[=[1[^%d.]]=]"  # a closing ] of its own
    assert lua_plain("chatcmpl-1a.b") == "chatcmpl%-1a%.b"
    assert json_field("cached", "true") == '%"cached%":%s*true'
    assert json_field("route", '"cache"') == '%"route%":%s*%"cache%"'
    assert json_field("completion_tokens", "1") == '%"completion_tokens%":%s*1[^%d.]'  # 1, not 12


def test_scripts_vary_the_body_per_request_and_check_every_response() -> None:
    static = lua_script(method="POST", headers={"Authorization": "Bearer k"}, body='{"prompt":"hi"}')
    assert 'wrk.body = [[{"prompt":"hi"}]]' in static and "function request" not in static
    assert "function response" not in static and "function done" in static and MARKER in static
    varied = lua_script(method="POST", body=None, vary='{"prompt":"What is %d*23?"}', expect=("a", "b"))
    assert "function request()" in varied and "wrk.body" not in varied
    assert "tonumber(args[1])" in varied and "function response(status, headers, body)" in varied
    run = WrkRun(url="http://h/x", script=varied, connections=1, duration_s=2, threads=4, script_args=("7",))
    assert run.wrk_threads == 1  # never more threads than connections
    argv = run.argv("wrk", Path("s.lua"))
    assert argv[:7] == ["wrk", "-t", "1", "-c", "1", "-d", "2s"] and argv[-2:] == ["--", "7"]
    assert "--latency" in argv


def _case(rps: float, p50: float = 1.0, p95: float = 2.0) -> dict:
    return {"rps": rps, "connections": 8, "latency_ms": {"p50_ms": p50, "p95_ms": p95}}


def test_hotpath_ratios_overheads_and_targets() -> None:
    cases = {
        "anchor": _case(1000.0),
        "orchestrate_cache_hit": _case(500.0),
        "v1_cache_hit": _case(300.0),
        "litellm_cache_hit": _case(100.0),
        "head_single_stream": _case(150.0, p50=6.0, p95=16.0),
        "head_loaded": _case(320.0),
        "pass_direct": _case(20.0, p50=40.0),
        "pass_gateway": _case(18.0, p50=46.5),
        "pass_litellm": _case(15.0, p50=52.0),
    }
    figs = hotpath.figures(cases)
    assert figs["ratios"]["cache_hit_rps_vs_anchor"] == {"orchestrate": 0.5, "v1": 0.3}
    assert figs["ratios"]["cache_hit_rps_vs_litellm"] == {"orchestrate": 5.0, "v1": 3.0}
    assert figs["pass_through"]["gateway_overhead_ms"] == 6.5 and figs["pass_through"]["litellm_overhead_ms"] == 12.0
    t = {name: target["met"] for name, target in figs["targets"].items()}
    assert t == {
        "cache_hit_orchestrate_vs_anchor": True,
        "cache_hit_orchestrate_vs_litellm": True,
        "cache_hit_v1_vs_anchor": False,
        "cache_hit_v1_vs_litellm": True,
        "head_p50_ms_single_stream": True,
        "head_p95_ms_single_stream": False,
        "head_rps_loaded": True,
        "pass_through_overhead_vs_litellm": True,
    }


def test_a_case_not_measured_leaves_its_targets_open() -> None:
    figs = hotpath.figures({"anchor": _case(1000.0), "orchestrate_cache_hit": _case(500.0)})
    assert figs["targets"]["cache_hit_orchestrate_vs_anchor"]["met"] is True
    assert figs["targets"]["cache_hit_orchestrate_vs_litellm"]["met"] is None
    assert figs["targets"]["pass_through_overhead_vs_litellm"]["met"] is None


@pytest.mark.parametrize("argv, duration", [([], 10), (["--quick"], 2), (["--quick", "--duration", "5"], 5)])
def test_quick_is_two_seconds_a_case_unless_a_duration_is_given(argv: list[str], duration: int) -> None:
    assert hotpath.parse_args(argv).duration == duration
