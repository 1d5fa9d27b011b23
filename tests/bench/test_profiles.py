"""bench/profiles.py without a stack or a model: the questions, the percentiles, the targets and the verdict."""

from __future__ import annotations

import pytest

from bench import profiles as pr
from bench.profiles import Sample


def samples(answer: list[float], first: list[float], raw: list[float], tokens: int = 20) -> list[Sample]:
    return [
        Sample(question=pr.question(i), answer_ms=a, completion_tokens=tokens, finish_reason="length", route="local",
               cached=False, first_token_ms=f, raw_answer_ms=r, raw_completion_tokens=tokens, raw_first_token_ms=f / 2)
        for i, (a, f, r) in enumerate(zip(answer, first, raw, strict=True))
    ]  # fmt: skip


def profile(answer: list[float], first: list[float], raw: list[float], **extra: object) -> dict:
    figs = pr.figures(samples(answer, first, raw))
    return {**figs, "targets_met": pr.targets_met(figs), **extra}


def test_twenty_distinct_questions_cycle_and_every_request_gets_its_own_nonce() -> None:
    assert len(set(pr.QUESTIONS)) == len(pr.QUESTIONS) == 20
    assert pr.WARMUP_QUESTION not in pr.QUESTIONS
    assert [pr.question(i) for i in (0, 19, 20, 41)] == [pr.QUESTIONS[0], pr.QUESTIONS[19], pr.QUESTIONS[0],
                                                         pr.QUESTIONS[1]]  # fmt: skip
    one, two = pr.messages_for("Q?"), pr.messages_for("Q?")
    assert [m["role"] for m in one] == ["system", "user"] and one[1] == {"role": "user", "content": "Q?"}
    assert one[0]["content"].startswith(pr.SYSTEM_PROMPT) and one[0] != two[0]
    assert pr.messages_for("Q?", "abc")[0]["content"] == f"{pr.SYSTEM_PROMPT} (probe abc)"


def test_p50_is_the_median_and_p95_the_nearest_rank() -> None:
    answer = [float(v) for v in range(100, 2100, 100)]  # 100 .. 2000 ms, 20 samples
    figs = pr.figures(samples(answer, [v / 10 for v in answer], [v / 2 for v in answer]))
    assert figs["answer_ms"]["n"] == 20
    assert figs["answer_ms"]["p50_ms"] == 1050.0  # median of an even count: the mean of the middle two
    assert figs["answer_ms"]["p95_ms"] == 1900.0  # rank round(0.95 * 19) = 18 (0-based)
    assert figs["first_token_ms"]["p95_ms"] == 190.0
    assert figs["raw"]["answer_ms"]["p50_ms"] == 525.0
    assert figs["raw"]["first_token_ms"]["p50_ms"] == 52.5
    assert figs["ratios"] == {"gateway_over_raw_p50": 2.0, "first_token_gateway_over_raw_p50": 2.0}
    assert figs["completion_tokens"]["median"] == 20 and len(figs["completion_tokens"]["per_answer"]) == 20
    assert figs["errors"] == figs["cache_hits"] == 0 and figs["routes"] == ["local"]
    assert figs["finish_reasons"] == {"length": 20}


def test_missing_samples_are_left_out_and_counted() -> None:
    data = samples([500.0, 700.0, 900.0], [100.0, 200.0, 300.0], [250.0, 350.0, 450.0])
    data.append(Sample(question="x", error="APIConnectionError: refused"))
    data[0].cached = True
    figs = pr.figures(data)
    assert figs["answer_ms"]["n"] == 3 and figs["answer_ms"]["p50_ms"] == 700.0
    assert figs["errors"] == 1 and figs["cache_hits"] == 1
    empty = pr.figures([Sample(question="x")])
    assert empty["answer_ms"] == {"n": 0} and empty["ratios"]["gateway_over_raw_p50"] is None
    assert pr.targets_met(empty) == {"answer_p50": False, "first_token_p95": False}


@pytest.mark.parametrize(
    ("answer_p50", "first_p95", "met"),
    [(700.0, 300.0, (True, True)), (700.1, 300.0, (False, True)), (650.0, 300.5, (True, False))],
)
def test_targets_are_inclusive_limits(answer_p50: float, first_p95: float, met: tuple[bool, bool]) -> None:
    figs = {"answer_ms": {"p50_ms": answer_p50}, "first_token_ms": {"p95_ms": first_p95}}
    assert pr.targets_met(figs) == {"answer_p50": met[0], "first_token_p95": met[1]}


def test_pass_line_names_each_figure_against_its_target() -> None:
    fast = profile([400.0] * 20, [100.0] * 20, [200.0] * 20)
    load = {"start": {"cpus": 2, "loadavg_1_5_15": [1.5, 2.0, 2.0]},
            "end": {"cpus": 2, "loadavg_1_5_15": [1.75, 2.0, 2.0]}}  # fmt: skip
    passed, line = pr.verdict_line({"smollm2-135m": fast}, load)
    assert passed
    assert line == (
        "PASS profiles: smollm2-135m: answer p50 400 ms (<= 700 ms met), first token p95 100 ms (<= 300 ms met); "
        "answer p95 400 ms, first token p50 100 ms, raw p50 200 ms (gateway/raw 2.0x), tokens median 20, n=20 "
        "(load avg 1.50 at start, 1.75 at end, 2 CPUs)"
    )


def test_one_target_missed_fails_the_run_and_says_which() -> None:
    fast = profile([400.0] * 20, [100.0] * 20, [200.0] * 20)
    slow = profile([900.0] * 20, [100.0] * 18 + [450.0, 500.0], [600.0] * 20)  # p95: the 19th of 20
    passed, line = pr.verdict_line({"smollm2-135m": fast, "qwen2.5-coder-0.5b": slow})
    assert not passed
    assert line.startswith("FAIL profiles: smollm2-135m: answer p50 400 ms (<= 700 ms met)")
    assert line.endswith(
        "; qwen2.5-coder-0.5b: answer p50 900 ms (<= 700 ms NOT met), first token p95 450 ms (<= 300 ms NOT met); "
        "answer p95 900 ms, first token p50 100 ms, raw p50 600 ms (gateway/raw 1.5x), tokens median 20, n=20"
    )


def test_errors_or_a_failed_profile_fail_the_run_even_when_the_figures_meet_the_targets() -> None:
    with_errors = profile([400.0] * 20, [100.0] * 20, [200.0] * 20)
    with_errors["errors"] = 1
    assert not pr.verdict_line({"m": with_errors})[0]
    assert "1 errors" in pr.verdict_line({"m": with_errors})[1]
    broken = {**profile([400.0], [100.0], [200.0]), "error_message": "TimeoutError: stack not healthy"}
    assert pr.verdict_line({"m": broken}) == (False, "FAIL profiles: m: TimeoutError: stack not healthy")
    assert pr.verdict_line({}) == (False, "FAIL profiles: no profile ran")


def test_the_cli_defaults_and_refuses_a_non_positive_n() -> None:
    args = pr.parse_args([])
    assert (args.models, args.n, args.max_tokens, args.out) == ("", 20, 20, None)
    assert pr.parse_args(["--models", "a,b", "--n", "5"]).n == 5
    with pytest.raises(SystemExit):
        pr.parse_args(["--n", "0"])


def test_gateway_and_raw_take_turns_and_a_failed_step_is_recorded_on_its_side() -> None:
    calls: list[str] = []

    def step(name: str, result: dict | None = None, fail: bool = False):
        def run(text: str) -> dict:
            calls.append(f"{name}:{text}")
            if fail:
                raise RuntimeError(f"{name} broke")
            return result or {}

        return run

    sample = Sample(question="Q?")
    steps = [
        ("gateway", step("answer", {"answer_ms": 410.0})),
        ("raw", step("raw-answer", fail=True)),
        ("gateway", step("stream", fail=True)),
        ("raw", step("raw-first", {"raw_first_token_ms": 90.0})),
    ]
    pr.measure(sample, steps, (RuntimeError,))
    assert calls == ["answer:Q?", "raw-answer:Q?", "stream:Q?", "raw-first:Q?"]
    assert (sample.answer_ms, sample.raw_first_token_ms) == (410.0, 90.0)
    assert sample.raw_error == "RuntimeError: raw-answer broke" and sample.error == "RuntimeError: stream broke"
