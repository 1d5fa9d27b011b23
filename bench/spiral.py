#!/usr/bin/env python3
"""The "spiral": traffic answered by the cloud today becomes pattern heads that answer tomorrow's paraphrases.

Simulated cascade (no stack, no model server, no paid calls), on mining/data/paraphrases.yaml:

- every prompt first goes to `pattern_lookup`: a hit is answered locally by the pattern route;
- a miss is "escalated": counted as one cloud call answered with the group's reference answer and
  logged as a route "cloud" interaction (what the bookkeeping worker would write) - the local council
  is left out, as if it were unsure on all of these;
- day 1: the first 3 paraphrases of every group; then the mining job runs (as the 6-hourly beat would);
- day 2: the remaining, never-seen paraphrases, plus every near miss (same wording, another number /
  entity / unit direction / negation: its right outcome is an escalation, a pattern answer is wrong);
- then a second mining run (what day 2 adds), and day 3 asks every paraphrase once more.

Accuracy counts a pattern answer right when `answers_agree` it with the reference, and an escalated
answer right by construction (the simulated cloud answers with the reference), so the pattern route's own
precision is reported separately and is the number that matters.

Every day's numbers are also given per part of the frozen split (bench/split.py: a group, with its
paraphrases and near misses, is tuning or heldout): mining thresholds and guards are tuned on the
tuning groups only, and a gap between the parts is overfitting.

Usage: python bench/spiral.py [--redis-url redis://127.0.0.1:6379/12]; writes reports/spiral_<date>.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pattern_lookup import ROOT, setup_django  # the sibling script (bench/ need not be a package)

from bench.split import PARTS, paraphrase_parts

SEEN = 3
SIMULATION = (
    "pattern_lookup hit -> answered by the pattern route; miss -> escalated: one simulated cloud call answered with "
    "the reference answer and logged as a route 'cloud' interaction; the local council is not run. Escalated answers "
    "count as right by construction; pattern_precision is the pattern route's own precision."
)


def run_day(name: str, items: list[dict[str, Any]], *, when: datetime) -> dict[str, Any]:
    """items: {prompt, reference (None for a near miss), group, part}; returns the day's numbers."""
    from mining.evaluation import log_cloud_answer
    from mining.runtime import pattern_lookup
    from routing.vote import answers_agree

    rows: list[dict[str, Any]] = []
    started = time.perf_counter()
    for item in items:
        hit = pattern_lookup(item["prompt"])
        if hit is not None:
            ok = item["reference"] is not None and answers_agree(hit.answer, item["reference"])
            rows.append({"part": item["part"], "pattern": True, "right": ok, "prompt": item["prompt"],
                         "answer": hit.answer, "group": item["group"]})  # fmt: skip
            continue
        # the simulated cloud answers with the reference; a near miss escalating is the right outcome
        rows.append({"part": item["part"], "pattern": False, "right": True})
        if item["reference"] is not None:
            log_cloud_answer(item["prompt"], item["reference"], when=when)
    return {"day": name, **day_numbers(rows), "seconds": round(time.perf_counter() - started, 2),
            "by_part": {part: day_numbers([r for r in rows if r["part"] == part]) for part in PARTS}}  # fmt: skip


def day_numbers(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """prompts, pattern answers, escalations, accuracy and the pattern route's precision of a day's rows."""
    n = len(rows)
    pattern = [r for r in rows if r["pattern"]]
    wrong = [{k: r[k] for k in ("prompt", "answer", "group", "part")} for r in pattern if not r["right"]]
    return {
        "prompts": n,
        "pattern_answers": len(pattern),
        "escalated_cloud_calls": n - len(pattern),
        "escalation_rate": round((n - len(pattern)) / n, 4) if n else None,
        "accuracy": round(sum(r["right"] for r in rows) / n, 4) if n else None,
        "pattern_precision": round((len(pattern) - len(wrong)) / len(pattern), 4) if pattern else None,
        "wrong_pattern_answers": wrong,
    }


def mine(label: str) -> dict[str, Any]:
    from mining.models import PatternHead
    from mining.services import MiningParams, run_mining, summary

    result = summary(run_mining(MiningParams()))
    result["heads_enabled_after"] = PatternHead.objects.filter(enabled=True).count()
    result["after"] = label
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/12")
    args = parser.parse_args()
    setup_django(args.redis_url)
    from mining.evaluation import load_groups

    groups = load_groups()
    parts = paraphrase_parts(groups)
    now = datetime.now(UTC)

    def item(prompt: str, reference: str | None, group: dict[str, Any]) -> dict[str, Any]:
        return {"prompt": prompt, "reference": reference, "group": group["id"], "part": parts[group["id"]]}

    day1 = [item(p, g["answer"], g) for g in groups for p in g["paraphrases"][:SEEN]]
    day2_fresh = [item(p, g["answer"], g) for g in groups for p in g["paraphrases"][SEEN:]]
    day2_near = [item(p, None, g) for g in groups for p in g.get("near_misses", [])]

    d1 = run_day("day 1: first 3 paraphrases per group", day1, when=now - timedelta(days=1))
    mined1 = mine("day 1")
    d2 = run_day("day 2: unseen paraphrases", day2_fresh, when=now)
    d2n = run_day("day 2: near misses (right outcome: escalate)", day2_near, when=now)
    d2_all = run_day_totals("day 2: all", [d2, d2n])
    mined2 = mine("day 2")
    d3 = run_day("day 3: every paraphrase again", day1 + day2_fresh, when=now + timedelta(hours=6))
    report = {
        "benchmark": "spiral",
        "when": now.isoformat(),
        "data": f"{len(groups)} groups from mining/data/paraphrases.yaml",
        "split": {part: sorted(g for g, p in parts.items() if p == part) for part in PARTS},
        "simulation": SIMULATION,
        "days": [d1, d2, d2n, d2_all, d3],
        "mining": [mined1, mined2],
        "cloud_calls_saved_day2": d2["pattern_answers"],
    }
    out = ROOT / "reports" / f"spiral_{now:%Y%m%d}.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))


def run_day_totals(name: str, days: list[dict[str, Any]]) -> dict[str, Any]:
    """The sum of several days' numbers, overall and per part."""

    def total(blocks: list[dict[str, Any]]) -> dict[str, Any]:
        n = sum(b["prompts"] for b in blocks)
        escalated = sum(b["escalated_cloud_calls"] for b in blocks)
        pattern = sum(b["pattern_answers"] for b in blocks)
        wrong = [w for b in blocks for w in b["wrong_pattern_answers"]]
        return {
            "prompts": n,
            "pattern_answers": pattern,
            "escalated_cloud_calls": escalated,
            "escalation_rate": round(escalated / n, 4) if n else None,
            "accuracy": round((n - len(wrong)) / n, 4) if n else None,
            "pattern_precision": round((pattern - len(wrong)) / pattern, 4) if pattern else None,
            "wrong_pattern_answers": wrong,
        }

    return {"day": name, **total(days), "by_part": {part: total([d["by_part"][part] for d in days]) for part in PARTS}}


if __name__ == "__main__":
    main()
