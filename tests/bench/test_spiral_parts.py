"""The spiral's per-part numbers (bench/spiral.py), on made-up rows (no stack, no model)."""

from __future__ import annotations

from bench import spiral


def row(part: str, pattern: bool, right: bool) -> dict:
    return {"part": part, "pattern": pattern, "right": right, "prompt": "p", "answer": "a", "group": "g"}


def test_a_day_counts_each_part_apart_and_the_totals_add_up():
    rows = [row("tuning", True, True), row("tuning", True, False), row("heldout", False, True),
            row("heldout", True, True)]  # fmt: skip
    day = spiral.day_numbers(rows)
    assert (day["prompts"], day["pattern_answers"], day["escalated_cloud_calls"]) == (4, 3, 1)
    assert day["accuracy"] == 0.75 and day["pattern_precision"] == round(2 / 3, 4)
    assert day["wrong_pattern_answers"] == [{"prompt": "p", "answer": "a", "group": "g", "part": "tuning"}]
    first = {"day": "a", **day, "by_part": {p: spiral.day_numbers([r for r in rows if r["part"] == p])
                                           for p in ("tuning", "heldout")}}  # fmt: skip
    assert first["by_part"]["heldout"]["pattern_precision"] == 1.0
    assert first["by_part"]["tuning"]["escalation_rate"] == 0.0
    totals = spiral.run_day_totals("both", [first, first])
    assert totals["prompts"] == 8 and totals["by_part"]["tuning"]["prompts"] == 4
    assert totals["by_part"]["heldout"]["accuracy"] == 1.0 and totals["accuracy"] == 0.75
    assert spiral.day_numbers([])["accuracy"] is None
