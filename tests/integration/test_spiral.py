"""The spiral through a running stack (bench/spiral_live.py): day 1's cloud answers, mined, answer
day 2's unseen paraphrases locally: fewer escalations, no lost accuracy."""

from __future__ import annotations

import json

import pytest

from bench.spiral_live import judge
from bench.spiral_live import main as spiral

pytestmark = pytest.mark.integration


def test_the_judge_accepts_the_same_numbers_and_nothing_else():
    assert judge("1 km = 1000 m", "1000 meters")
    assert judge("299,792,458 m/s", "299,792,458 metres per second")
    assert judge("Canberra.", "Canberra")
    assert not judge("1 km = 100 m", "1000 meters")
    assert not judge("Sydney", "Canberra")


def test_day_two_escalates_less_and_is_as_accurate(tmp_path):
    out = tmp_path / "spiral.json"
    assert spiral(["--groups", "8", "--out", str(out)]) == 0
    report = json.loads(out.read_text())
    day1, day2 = report["days"]
    assert day1["escalated"] > 0, day1  # the cloud answered some of day 1: something to learn from
    assert "pattern" not in day1["routes"]
    assert day2["pattern_answers"] > 0 and day2["pattern_precision"] == 1.0, day2
    assert day2["escalation_rate"] < day1["escalation_rate"], (day1["routes"], day2["routes"])
    assert day2["accuracy"] >= day1["accuracy"], (day1["wrong"], day2["wrong"])
    for day in (day1, day2):  # every prompt counted in its group's part of the frozen split
        assert set(day["by_part"]) <= {"tuning", "heldout"}, day["by_part"]
        assert sum(p["prompts"] for p in day["by_part"].values()) == day["prompts"]
        assert sum(p["escalated"] for p in day["by_part"].values()) == day["escalated"]
