"""The exact heads alone on the Titanic suite, in-process: no servers, no model, no cache.

Every item's prompt goes through the council's first stage (`routing.cascade.fast_decision` with
`routing.heads.fast_heads()`: math, micro, knowledge), exactly as the API's `_from_fast_heads` runs
it. An item is **answered** when that stage returns a decision (a ballot at or above the verified
floor, `routing.cascade.VERIFIED` = 0.9); the answer is judged by the suite's own scorers
(`bench/titanic/scorers.py`). Per part (tuning, heldout; bench/split.py) and per category:

- `answered`: items the exact heads answered (confidence >= 0.9);
- `correct`: answered items that score 1;
- `confidently_wrong`: answered items that score below 1 (all answered items are above every floor);
- `below_floor`: items left to the model that an exact head still answered below 0.9 (e.g. an
  ambiguous unit at 0.7: it can win the worker's vote only if another head agrees), and how many
  of those answers would score 1.

    python -m bench.heads_offline [--baseline reports/heads_offline_<date>_before.json] [--out PATH]

Writes reports/heads_offline_<date>.json. The held-out part is only counted: its items' prompts and
answers are never printed nor written (bench/README.md: tune on the tuning part only); `--show`
prints the tuning part's answered-wrong items and, with `--misses`, its unanswered items.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from bench.reporting import shown_path, write_report
from bench.split import HELDOUT, PARTS, TUNING
from bench.titanic.scorers import score
from bench.titanic.suite import load_suite

NAME = "heads_offline"
FLOOR = 0.75  # SWARM_MIN_CONFIDENCE's default; the fast stage lifts it to VERIFIED (0.9) itself


def _tally(records: list[dict[str, Any]]) -> dict[str, Any]:
    answered = [r for r in records if r["answered"]]
    correct = sum(r["correct"] for r in answered)
    tentative = [r for r in records if r.get("below_floor")]
    return {
        "items": len(records),
        "answered": len(answered),
        "correct": correct,
        "confidently_wrong": len(answered) - correct,
        "below_floor": {"answers": len(tentative), "correct": sum(r["below_floor"]["correct"] for r in tentative)},
    }


def _summary(records: list[dict[str, Any]]) -> dict[str, Any]:
    by_category: dict[str, list[dict[str, Any]]] = defaultdict(list)
    by_head: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for record in records:
        by_category[record["category"]].append(record)
        if record["answered"]:
            by_head[record["head"]].append(record)
    return {
        **_tally(records),
        "by_category": {c: _tally(rs) for c, rs in sorted(by_category.items())},
        "by_head": {h: _tally(rs) for h, rs in sorted(by_head.items())},
    }


def _below_floor(heads: list[Any], item: Any) -> dict[str, Any] | None:
    """The most confident answer an exact head gave below the verified floor, judged; None if none."""
    from routing.heads import HeadContext

    ballots = [head.answer(item.prompt, HeadContext()) for head in heads if head.applies(item.prompt)]
    ballots = [b for b in ballots if b.answer and b.confidence > 0]
    if not ballots:
        return None
    best = max(ballots, key=lambda b: b.confidence)
    verdict = score(item.scorer, best.answer, item.reference, item.args, route="council")
    return {"head": best.head, "confidence": round(best.confidence, 4), "correct": verdict.passed}


def measure() -> tuple[dict[str, Any], list[dict[str, Any]], dict[str, str]]:
    """(summary per part, one record per item, item id -> prompt for the tuning part only)."""
    from routing.cascade import fast_decision
    from routing.heads import fast_heads

    heads = list(fast_heads())
    suite = load_suite()
    parts = suite.parts()
    records: list[dict[str, Any]] = []
    tuning_prompts: dict[str, str] = {}
    latencies: list[float] = []
    for item in suite.items:
        started = time.perf_counter()
        decision = fast_decision(item.prompt, fast_heads=heads, max_tokens=128, temperature=0.0, min_confidence=FLOOR)
        latencies.append((time.perf_counter() - started) * 1000)
        record: dict[str, Any] = {"id": item.id, "part": parts[item.id], "category": item.category}
        if decision is None:
            record.update(answered=False, correct=False, head=None, confidence=None)
            tentative = _below_floor(heads, item)
            if tentative is not None:
                record["below_floor"] = tentative
        else:
            verdict = score(item.scorer, decision.answer, item.reference, item.args, route=decision.route)
            record.update(answered=True, correct=verdict.passed, head=decision.winner_head,
                          confidence=round(decision.confidence, 4))  # fmt: skip
            if parts[item.id] == TUNING:
                record.update(answer=decision.answer, reason=verdict.reason)
        if parts[item.id] == TUNING:
            tuning_prompts[item.id] = item.prompt
        records.append(record)
    summary = {part: _summary([r for r in records if r["part"] == part]) for part in PARTS}
    summary["overall"] = _summary(records)
    latencies.sort()
    summary["latency_ms"] = {
        "median": round(latencies[len(latencies) // 2], 2),
        "p95": round(latencies[int(0.95 * (len(latencies) - 1))], 2),
        "max": round(latencies[-1], 2),
    }
    return summary, records, tuning_prompts


def _line(part: str, figures: dict[str, Any]) -> str:
    line = (
        f"{part:8} items {figures['items']:3}  answered {figures['answered']:3}  correct {figures['correct']:3}  "
        f"confidently wrong {figures['confidently_wrong']:2}"
    )
    below = figures.get("below_floor")
    return line + (f"  (below the floor: {below['answers']}, {below['correct']} right)" if below else "")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=None, help="default: reports/heads_offline_<date>.json")
    parser.add_argument("--baseline", type=Path, default=None, help="an earlier report to compare with")
    parser.add_argument("--label", default="", help="a note stored in the report (e.g. 'before')")
    parser.add_argument("--show", action="store_true", help="print the tuning part's wrong answers")
    parser.add_argument("--misses", action="store_true", help="with --show: the tuning part's unanswered items too")
    args = parser.parse_args(argv)

    summary, records, tuning_prompts = measure()
    report: dict[str, Any] = {"label": args.label, "floor": "routing.cascade.VERIFIED (0.9)", **summary}
    baseline = None
    if args.baseline is not None:
        baseline = json.loads(args.baseline.read_text())
        keys = ("items", "answered", "correct", "confidently_wrong", "below_floor")
        report["baseline"] = {"path": shown_path(args.baseline), "label": baseline.get("label", ""),
                              **{part: {k: baseline[part][k] for k in keys if k in baseline[part]}
                                 for part in (*PARTS, "overall")}}  # fmt: skip
    report["items"] = records
    path = write_report(NAME, report, args.out, echo=False)

    for part in (*PARTS, "overall"):
        print(_line(part, summary[part]))
        if baseline is not None:
            print(_line("  before", baseline[part]))
    print(f"latency per prompt: {summary['latency_ms']}")
    if args.show:
        for record in records:
            if record["part"] != TUNING:
                continue
            if record["answered"] and not record["correct"]:
                print(f"WRONG {record['id']} [{record['head']}] {tuning_prompts[record['id']]!r} -> "
                      f"{record['answer']!r} ({record['reason']})")  # fmt: skip
            elif not record["answered"] and args.misses:
                print(f"miss  {record['id']} ({record['category']}) {tuning_prompts[record['id']]!r}")
    print(f"report: {shown_path(path)}")
    wrong_heldout = summary[HELDOUT]["confidently_wrong"]
    if baseline is not None and wrong_heldout > baseline[HELDOUT]["confidently_wrong"]:
        print("confidently wrong went up on the held-out part", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
