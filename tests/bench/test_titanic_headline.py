"""The Titanic headline's arithmetic and the gate's held-out verdict, on made-up per-item results (no stack)."""

from __future__ import annotations

import pytest

from bench.gate import titanic_thresholds, titanic_verdict
from bench.titanic import headline
from bench.titanic.run import Outcome, aggregate, judge, targets
from bench.titanic.suite import Item


def rec(route: str, score: float, *, part: str = "heldout", category: str = "factual", confidence=0.9,
        provider=None, skill: str = "knowledge", answer: str = "an answer", ok: bool = True, cost: float = 0.0,
        must_abstain: bool = False) -> dict:  # fmt: skip
    return {"route": route, "score": score, "part": part, "category": category, "confidence": confidence,
            "provider": provider, "skill_type": skill, "answer": answer, "ok": ok, "cost_usd": cost,
            "must_abstain": must_abstain}  # fmt: skip


RECORDS = [
    rec("council", 1.0, confidence=0.9),  # local, right
    rec("council", 0.0, confidence=0.8, category="chat"),  # local, wrong, confident
    rec("pattern", 0.0, confidence=0.6, part="tuning"),  # local, wrong, below the floor
    rec("cloud", 1.0, provider="titanic-replay", skill="cloud", cost=0.002, confidence=None),  # replay
    rec("cache", 1.0, provider="titanic-replay", skill="cloud", part="tuning"),  # replay, through the cache
    rec("unsure", 0.0, answer="UNSURE", confidence=0.0, category="chat"),  # declined an answerable item
    rec("unsure", 1.0, answer="UNSURE", confidence=0.0, category="stub_trap", must_abstain=True),  # declined a trap
    rec("cache", 1.0, confidence=0.95, part="tuning"),  # local, right, from the cache
    rec("error", 0.0, ok=False, answer="", confidence=None),  # no answer
]


def test_the_origin_of_each_answer():
    assert [headline.origin(r) for r in RECORDS] == [
        "local", "local", "local", "cloud", "cloud", "unsure", "unsure", "local", "error"]  # fmt: skip
    assert headline.origin(rec("council", 0.0, answer=" UNSURE ")) == "unsure"
    assert headline.origin(rec("vibes", 1.0)) == "other"


def test_the_overall_figures_exclude_the_replay_and_count_unsure_and_confidently_wrong():
    overall = headline.headline(RECORDS)["overall"]
    assert overall["n"] == 9
    assert overall["local_accuracy_all"] == round(2 / 9, 4)  # 2 right local answers over ALL 9 items
    assert overall["accuracy_of_local_answers"] == 0.5  # 2 of 4 local answers
    assert overall["confidently_wrong_rate"] == round(1 / 9, 4)  # the pattern answer at 0.6 is below 0.75
    assert overall["escalation_rate"] == round(4 / 9, 4)  # 2 replay answers + 2 UNSURE
    assert overall["cost_usd"] == 0.002
    assert overall["counts"] == {"local_answers": 4, "local_right": 2, "confidently_wrong": 1,
                                 "local_wrong_below_floor": 1, "escalated": 4, "cloud": 2, "unsure": 2,
                                 "errors": 1, "other": 0, "declined_must_abstain": 1}  # fmt: skip
    assert headline.composite(RECORDS) == round(5 / 9, 4)  # the former headline counts the replay right


def test_each_part_and_category_has_the_same_figures():
    head = headline.headline(RECORDS)
    held, tuning = head["heldout"], head["tuning"]
    assert (held["n"], tuning["n"]) == (6, 3)
    assert held["local_accuracy_all"] == round(1 / 6, 4) and held["accuracy_of_local_answers"] == 0.5
    assert held["confidently_wrong_rate"] == round(1 / 6, 4) and held["escalation_rate"] == 0.5
    assert tuning["local_accuracy_all"] == round(1 / 3, 4) and tuning["confidently_wrong_rate"] == 0.0
    assert tuning["escalation_rate"] == round(1 / 3, 4)
    chat = held["by_category"]["chat"]
    assert (chat["n"], chat["local_accuracy_all"], chat["confidently_wrong_rate"], chat["escalation_rate"]) == (
        2, 0.0, 0.5, 0.5)  # fmt: skip
    assert held["by_category"]["stub_trap"]["accuracy_of_local_answers"] is None  # no local answer: no ratio
    assert set(head["overall"]["by_category"]) == {"chat", "factual", "stub_trap"}


def test_the_floor_is_inclusive_and_an_unknown_confidence_counts_as_confident():
    records = [rec("council", 0.0, confidence=0.75), rec("council", 0.0, confidence=None),
               rec("council", 0.0, confidence=0.7499)]  # fmt: skip
    assert headline.figures(records, floor=0.75)["counts"]["confidently_wrong"] == 2
    assert headline.figures(records, floor=0.5)["counts"]["confidently_wrong"] == 3


def test_the_replay_block_counts_the_paid_chain_apart():
    block = headline.replay(RECORDS)
    assert (block["answers"], block["share"], block["right"], block["via_cache"]) == (2, round(2 / 9, 4), 2, 1)
    assert block["providers"] == {"titanic-replay": 2}
    assert block["by_part"]["heldout"]["answers"] == 1 and block["by_part"]["tuning"]["answers"] == 1


def test_empty_parts_give_no_ratios():
    figures = headline.figures([])
    assert figures["n"] == 0 and figures["local_accuracy_all"] is None and figures["escalation_rate"] is None


def item(scorer: str = "contains", category: str = "factual") -> Item:
    return Item(id="factual-001", category=category, prompt="What is the capital of Japan?", reference="Tokyo",
                scorer=scorer)  # fmt: skip


def raw(**body) -> dict:
    return {"status": 200, "body": body, "latency_ms": 12.0, "error": None}


def test_judge_records_the_route_confidence_provider_and_part():
    local = judge(item(), raw(answer="Tokyo", route="council", skill_type="knowledge", confidence=0.9), part="heldout")
    assert (local.part, local.confidence, local.provider, local.escalated, local.score) == (
        "heldout", 0.9, None, False, 1.0)  # fmt: skip
    cloud = judge(item(), raw(answer="Tokyo", route="cloud", skill_type="cloud", confidence=0.9,
                              provider="titanic-replay", cost_usd=0.001), part="tuning")  # fmt: skip
    assert cloud.escalated and cloud.provider == "titanic-replay" and cloud.cost_usd == 0.001
    unsure = judge(item(), raw(answer="UNSURE", route="unsure", confidence=0.0), part="heldout")
    assert unsure.escalated and unsure.score == 0.0
    trap = judge(item("must_be_unsure", "stub_trap"), raw(answer="UNSURE", route="unsure"), part="heldout")
    assert trap.must_abstain and trap.score == 1.0


def outcome(r: dict, i: int) -> Outcome:
    return Outcome(id=f"x-{i}", category=r["category"], part=r["part"], group=None, ok=r["ok"], status=200,
                   route=r["route"], skill_type=r["skill_type"], latency_ms=10.0, server_latency_ms=None,
                   cost_usd=r["cost_usd"], cached=r["route"] == "cache", escalated=False, score=r["score"],
                   reason="", answer=r["answer"], detail=None, error=None if r["ok"] else "HTTP 502",
                   confidence=r["confidence"], provider=r["provider"], must_abstain=r["must_abstain"])  # fmt: skip


def report_for(records: list[dict]) -> dict:
    result = aggregate([outcome(r, i) for i, r in enumerate(records)], n_suite=380)
    return {**result, "targets": targets(result, gpu=False, n_suite=380)}


def test_the_report_keeps_the_old_composite_under_clear_names():
    report = report_for(RECORDS)
    assert report["composite_with_replay"] == report["composite_accuracy"] == round(5 / 9, 4)
    assert report["headline"]["overall"]["local_accuracy_all"] == round(2 / 9, 4)
    assert report["replay"]["answers"] == 2
    assert "composite_accuracy >= 85%" not in report["targets"]
    assert report["targets"]["heldout local_accuracy_all >= 70%"]["status"] == "not met"


def good(part: str = "heldout") -> dict:
    return rec("council", 1.0, part=part)


def test_the_gate_passes_the_held_out_figures_and_names_them():
    report = report_for([good() for _ in range(100)])
    ok, lines = titanic_verdict(report, titanic_thresholds({}))
    assert ok and lines[-1].startswith("PASS titanic: local_accuracy_all 100.0% >= 70%")
    assert "100 held-out items" in lines[-1]


def test_the_gate_says_which_held_out_figure_missed_and_by_how_much():
    # 100 held-out items: 60 right local, 2 confidently wrong, 38 replay answers (not counted); tuning perfect
    records = [good() for _ in range(60)] + [rec("council", 0.0) for _ in range(2)]
    records += [rec("cloud", 1.0, provider="titanic-replay", skill="cloud") for _ in range(38)]
    records += [good("tuning") for _ in range(50)]
    ok, lines = titanic_verdict(report_for(records), titanic_thresholds({}))
    assert not ok
    assert lines[-1].startswith(
        "FAIL titanic: held-out local_accuracy_all 60.0% < 70% (short by 10.0 pts); "
        "held-out confidently_wrong_rate 2.0% > 1% (over by 1.0 pts); "
        "held-out accuracy_of_local_answers 96.8% < 97% (short by 0.2 pts)"
    ), lines[-1]
    assert "replay answers 38 not counted" in lines[-1]
    assert any(line.startswith("n/a (no GPU): p95") for line in lines)


def test_the_gate_thresholds_are_named_constants_overridable_by_the_environment():
    assert titanic_thresholds({}) == {"local_accuracy_all": 0.70, "confidently_wrong_rate": 0.01,
                                      "accuracy_of_local_answers": 0.97}  # fmt: skip
    env = {"GATE_TITANIC_MIN_LOCAL_ACCURACY_ALL": "0.5", "GATE_TITANIC_MAX_CONFIDENTLY_WRONG_RATE": "0.05",
           "GATE_TITANIC_MIN_ACCURACY_OF_LOCAL_ANSWERS": "0.9"}  # fmt: skip
    records = [good() for _ in range(60)] + [rec("council", 0.0) for _ in range(2)]
    records += [rec("cloud", 1.0, provider="titanic-replay", skill="cloud") for _ in range(38)]
    ok, lines = titanic_verdict(report_for(records), titanic_thresholds(env))
    assert ok, lines[-1]
    with pytest.raises(SystemExit):
        titanic_thresholds({"GATE_TITANIC_MIN_LOCAL_ACCURACY_ALL": "most"})
