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

from pattern_lookup import ROOT, setup_django  # the sibling script (bench/ need not be a package)

SEEN = 3
SIMULATION = (
    "pattern_lookup hit -> answered by the pattern route; miss -> escalated: one simulated cloud call answered with "
    "the reference answer and logged as a route 'cloud' interaction; the local council is not run. Escalated answers "
    "count as right by construction; pattern_precision is the pattern route's own precision."
)


def run_day(name: str, items: list[dict[str, Any]], *, when: datetime) -> dict[str, Any]:
    """items: {prompt, reference (None for a near miss), group}; returns the day's numbers."""
    from mining.evaluation import log_cloud_answer
    from mining.runtime import pattern_lookup
    from routing.vote import answers_agree

    pattern = pattern_right = escalated = right = 0
    wrong: list[dict[str, str]] = []
    started = time.perf_counter()
    for item in items:
        hit = pattern_lookup(item["prompt"])
        if hit is not None:
            pattern += 1
            ok = item["reference"] is not None and answers_agree(hit.answer, item["reference"])
            pattern_right += ok
            right += ok
            if not ok:
                wrong.append({"prompt": item["prompt"], "answer": hit.answer, "group": item["group"]})
            continue
        escalated += 1
        right += 1  # the simulated cloud answers with the reference; a near miss escalating is the right outcome
        if item["reference"] is not None:
            log_cloud_answer(item["prompt"], item["reference"], when=when)
    n = len(items)
    return {
        "day": name,
        "prompts": n,
        "pattern_answers": pattern,
        "escalated_cloud_calls": escalated,
        "escalation_rate": round(escalated / n, 4),
        "accuracy": round(right / n, 4),
        "pattern_precision": round(pattern_right / pattern, 4) if pattern else None,
        "wrong_pattern_answers": wrong,
        "seconds": round(time.perf_counter() - started, 2),
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
    now = datetime.now(UTC)
    day1 = [{"prompt": p, "reference": g["answer"], "group": g["id"]} for g in groups for p in g["paraphrases"][:SEEN]]
    day2_fresh = [{"prompt": p, "reference": g["answer"], "group": g["id"]} for g in groups
                  for p in g["paraphrases"][SEEN:]]  # fmt: skip
    day2_near = [{"prompt": p, "reference": None, "group": g["id"]} for g in groups for p in g.get("near_misses", [])]

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
        "simulation": SIMULATION,
        "days": [d1, d2, d2n, d2_all, d3],
        "mining": [mined1, mined2],
        "cloud_calls_saved_day2": d2["pattern_answers"],
    }
    out = ROOT / "reports" / f"spiral_{now:%Y%m%d}.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))


def run_day_totals(name: str, parts: list[dict[str, Any]]) -> dict[str, Any]:
    n = sum(p["prompts"] for p in parts)
    escalated = sum(p["escalated_cloud_calls"] for p in parts)
    pattern = sum(p["pattern_answers"] for p in parts)
    wrong = [w for p in parts for w in p["wrong_pattern_answers"]]
    return {
        "day": name,
        "prompts": n,
        "pattern_answers": pattern,
        "escalated_cloud_calls": escalated,
        "escalation_rate": round(escalated / n, 4),
        "accuracy": round((n - len(wrong)) / n, 4),
        "pattern_precision": round((pattern - len(wrong)) / pattern, 4) if pattern else None,
        "wrong_pattern_answers": wrong,
    }


if __name__ == "__main__":
    main()
