"""The spiral through a running stack: what the cloud answered on day 1 is mined into pattern heads
that answer day 2's never-seen paraphrases locally.

A stack of its own (private redis-server, gunicorn, the serving worker on the default model, the
bookkeeping worker; bench/titanic/live.py) with the reference-replay provider as the only paid
provider, answering each paraphrase with its group's reference (mining/data/paraphrases.yaml):

- day 1: the first 3 paraphrases of each group, POST /vote one by one (the cascade of /orchestrate,
  with the ballots, so the report can tell which rule trusted agent0's answer): the cascade answers
  them (council, or the cloud when the council is unsure), and the bookkeeping worker logs them;
- the mining job runs (`manage.py mine_once`, what the 6-hourly beat runs);
- with --distill: the nightly distillation job runs on the day-1 log (`manage.py evolution_once` on a
  trainer worker of the stack: PEFT LoRA, GGUF export, the gate, the training record), and a passing
  adapter is promoted (`manage.py canary promote`): the serving worker takes it on the next request,
  and agent0 answers under guarded distilled trust;
- day 2: the remaining paraphrases, never asked before, through the same running stack (no restart).

Each day reports its routes, escalations to the cloud, and accuracy: an answer is right when
`answers_agree` with the reference, or when the reference states numbers and the answer states
every one of them ("1 km = 1000 m" for "1000 meters"); an UNSURE answer counts as wrong. The replay
provider answers escalations right by construction, so the pattern route's own precision is
reported separately, and each half's share of day 2's local answers (`halves`: pattern heads, the
adapter's trusted answers). Every group belongs to a part of the frozen split (bench/split.py): each
day's figures also come `by_part`, and the held-out part's are those of groups nothing was tuned on.

Usage: python -m bench.spiral_live [--groups N] [--distill [--max-steps N]] [--out PATH]
       (default: all groups, heads only; reports/spiral_live_<date>.json)
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from bench.reporting import percentile
from bench.titanic.live import LiveStack
from tests.stack import ROOT, Stack, wait_for

SEEN = 3  # paraphrases per group asked on day 1; the rest are day 2's
ESCALATED = ("cloud", "unsure")


def pick_groups(groups: list[dict[str, Any]], n: int | None) -> list[dict[str, Any]]:
    """`n` groups spread evenly over the file (all kinds), or all of them."""
    if not n or n >= len(groups):
        return groups
    step = len(groups) / n
    return [groups[int(i * step)] for i in range(n)]


def judge(answer: str, reference: str) -> bool:
    """Right: the same answer (`answers_agree`), or every number of the reference stated in the answer."""
    from bench.titanic.scorers import numbers_in
    from routing.vote import answers_agree

    if answers_agree(answer, reference):
        return True
    expected = numbers_in(reference)
    return bool(expected) and set(expected) <= set(numbers_in(answer))


def ask_day(stack: Stack, name: str, items: list[tuple[str, str, str]]) -> dict[str, Any]:
    """POST each (prompt, reference, part) to /vote; the day's routes, escalations and accuracy,
    over all and per part."""
    routes: Counter[str] = Counter()
    latencies: list[float] = []
    wrong: list[dict[str, Any]] = []
    escalated_prompts: list[dict[str, str]] = []
    per_part: dict[str, Counter[str]] = {}
    adapter_rules: Counter[str] = Counter()
    right = pattern = pattern_right = adapter = adapter_right = base_model = 0
    for prompt, reference, part in items:
        started = time.perf_counter()
        response = stack.post("/vote", {"prompt": prompt})
        latencies.append((time.perf_counter() - started) * 1000)
        if response.status_code != 200:
            raise RuntimeError(f"{prompt!r}: HTTP {response.status_code}: {response.text[:300]}")
        body = response.json()
        routes[body["route"]] += 1
        ok = body["route"] != "unsure" and judge(body["answer"], reference)
        right += ok
        tally = per_part.setdefault(part, Counter())
        tally.update(prompts=1, right=int(ok), escalated=int(body["route"] in ESCALATED))
        if body["route"] in ESCALATED:
            escalated_prompts.append({"prompt": prompt, "part": part, "route": body["route"]})
        if body["route"] == "pattern":
            pattern += 1
            pattern_right += ok
        evidence = (body.get("winner") or {}).get("evidence") or {}
        if body["route"] == "council" and body.get("skill_type") == "agent0" and evidence.get("adapter"):
            # a distilled adapter's answer, trusted: near what it learned (guarded distilled trust), or
            # under the base model's calibrated rule where the adapter's gate kept it
            adapter += 1
            adapter_right += ok
            adapter_rules.update(["distilled" if evidence.get("distilled") else "calibrated"])
        if body["route"] == "council" and evidence.get("base_model"):
            base_model += 1  # the adapter's answer was not trusted; the base model's was, under its calibrated rule
        if not ok:
            wrong.append({"prompt": prompt, "part": part, "route": body["route"], "skill_type": body.get("skill_type"),
                          "answer": body["answer"][:200], "reference": reference})  # fmt: skip
    n = len(items)
    escalated = sum(routes[r] for r in ESCALATED)
    return {
        "day": name,
        "prompts": n,
        "routes": dict(routes),
        "escalated": escalated,
        "escalation_rate": round(escalated / n, 4),
        "accuracy": round(right / n, 4),
        "pattern_answers": pattern,
        "pattern_precision": round(pattern_right / pattern, 4) if pattern else None,
        "adapter_answers": adapter,
        "adapter_answers_by_rule": dict(adapter_rules),
        "base_model_answers": base_model,
        "adapter_precision": round(adapter_right / adapter, 4) if adapter else None,
        "latency_ms": {"p50": round(statistics.median(latencies), 1), "p95": round(percentile(latencies, 0.95), 1)},
        "by_part": {
            part: {
                "prompts": t["prompts"],
                "escalated": t["escalated"],
                "escalation_rate": round(t["escalated"] / t["prompts"], 4),
                "accuracy": round(t["right"] / t["prompts"], 4),
            }
            for part, t in sorted(per_part.items())
        },
        "escalated_prompts": escalated_prompts,
        "wrong": wrong,
        # a local answer (not escalated, not UNSURE) that is wrong: the council and the pattern heads answer
        # only at or above the confidence floor, so every such answer was given as sure
        "confidently_wrong": sum(1 for w in wrong if w["route"] not in ESCALATED),
    }


def logged_interactions(stack: Stack) -> int:
    out = stack.manage("shell", "-c", "from routing.models import Interaction; print(Interaction.objects.count())")
    return int(out.split()[-1])


def run_distillation(stack: Stack, *, max_steps: int | None) -> dict[str, Any]:
    """The nightly distillation job on the log so far, on a trainer worker of the stack; a passing
    adapter is promoted to serve everyone. What the job and the gate said."""
    stack.start_train_worker()
    params = ["--param", f"max_steps={max_steps}"] if max_steps else []
    out = stack.manage("evolution_once", "--name", "spiral", *params, "--wait", "5400")
    job = json.loads(out[out.index("{") :])
    status = json.loads(stack.manage("shell", "-c", (
        "import json; from training.models import AdapterVersion as A; a = A.objects.order_by('-number').first(); "
        "print(json.dumps(a and {'version': a.version, 'status': a.status, 'detail': a.detail, "
        "'trust': a.record.get('trust'), 'gate': a.record.get('gate')}))")).strip().splitlines()[-1])  # fmt: skip
    promoted = bool(status) and status["status"] == "canary"
    if promoted:
        stack.manage("canary", "promote")
    return {"job": job, "adapter": status, "promoted": promoted}


def run_spiral(
    stack: Stack, groups: list[dict[str, Any]], *, distill: bool = False, max_steps: int | None = None
) -> dict[str, Any]:
    """Day 1, mine (and with `distill`, distil an adapter), day 2 on a running stack; the
    report's days and what mining and distillation did."""
    from bench.split import paraphrase_parts

    parts = paraphrase_parts(groups)
    day1_items = [(p, g["answer"], parts[g["id"]]) for g in groups for p in g["paraphrases"][:SEEN]]
    day2_items = [(p, g["answer"], parts[g["id"]]) for g in groups for p in g["paraphrases"][SEEN:]]
    day1 = ask_day(stack, "day 1: first 3 paraphrases per group", day1_items)
    # The bookkeeping worker logs each answer after it is sent: mine once all of day 1 is in.
    wait_for(lambda: logged_interactions(stack) >= len(day1_items), timeout=120, interval=1.0,
             what="day 1's interactions in the log")  # fmt: skip
    mined = stack.manage("mine_once").strip().splitlines()
    distilled = run_distillation(stack, max_steps=max_steps) if distill else None
    day2 = ask_day(stack, "day 2: unseen paraphrases", day2_items)
    return {"days": [day1, day2], "mining_output": mined[-5:], "distillation": distilled,
            "cloud_calls_saved": day1["escalation_rate"] * day2["prompts"] - day2["escalated"]}  # fmt: skip


def headline(days: list[dict[str, Any]], *, distilled: bool = False) -> dict[str, Any]:
    """The top-level figures: day 2's escalation rate over day 1's, confidently wrong answers on both
    days, and what each half answered locally on day 2 (the pattern heads answer first; the adapter,
    under guarded distilled trust, answers what reaches the council)."""
    day1, day2 = days
    ratio = day2["escalation_rate"] / day1["escalation_rate"] if day1["escalation_rate"] else None
    adapter = day2.get("adapter_answers", 0)
    halves: dict[str, Any] = {"pattern_answers": day2["pattern_answers"], "adapter_answers": adapter,
                              "other_local_answers": day2["routes"].get("council", 0) - adapter,
                              "escalated": day2["escalated"]}  # fmt: skip
    if not distilled:
        halves["note"] = "pattern heads only: no adapter was distilled between the days (--distill runs both halves)"
    by_part = {part: round(second["escalation_rate"] / day1["by_part"][part]["escalation_rate"], 4)
               for part, second in day2["by_part"].items()
               if day1["by_part"].get(part, {}).get("escalation_rate")}  # fmt: skip
    return {"day2_over_day1_escalations": round(ratio, 4) if ratio is not None else None,
            "day2_over_day1_escalations_by_part": by_part,
            "confidently_wrong": sum(day.get("confidently_wrong", 0) for day in days), "halves": halves}  # fmt: skip


def default_model() -> str:
    """The model the stack serves: SWARM_MODEL when set, else the registry's default (config/models.yaml)."""
    registry = yaml.safe_load((ROOT / "config" / "models.yaml").read_text(encoding="utf-8"))
    return os.environ.get("SWARM_MODEL") or registry["default"]


def references_file(groups: list[dict[str, Any]], directory: Path) -> Path:
    """The replay provider's data: every paraphrase with its group's reference answer."""
    items = [{"prompt": p, "reference": g["answer"]} for g in groups for p in g["paraphrases"]]
    path = directory / "spiral_references.yaml"
    path.write_text(yaml.safe_dump({"items": items}, allow_unicode=True))
    return path


def setup_django() -> None:
    """This process only reads the paraphrase file and compares answers; the stack has its own settings."""
    from django.apps import apps

    if not apps.ready:
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "swarm_site.settings")
        import django

        django.setup()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--groups", type=int, default=None, help="how many paraphrase groups (default: all)")
    parser.add_argument("--distill", action="store_true", help="distil an adapter on day 1's log before day 2")
    parser.add_argument("--max-steps", type=int, default=None, help="with --distill: training steps (default: nightly)")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    setup_django()
    from mining.evaluation import load_groups

    groups = pick_groups(load_groups(), args.groups)
    now = datetime.now(UTC)
    with tempfile.TemporaryDirectory() as tmp:
        live = LiveStack.start(cloud=True, data=references_file(groups, Path(tmp)), web_concurrency=1)
        try:
            result = run_spiral(live.stack, groups, distill=args.distill, max_steps=args.max_steps)
            replay = live.replay_stats()
        finally:
            live.stop()
    report = {
        "benchmark": "spiral_live",
        "when": now.isoformat(),
        "data": f"{len(groups)} groups from mining/data/paraphrases.yaml ({', '.join(g['id'] for g in groups)})",
        "method": __doc__.split("\n\n")[1].replace("\n", " "),
        "model": default_model(),
        "stack_start_s": round(live.started_s, 1),
        **headline(result["days"], distilled=args.distill),
        **result,
        "replay_provider_stats": replay,
    }
    out = args.out or ROOT / "reports" / f"spiral_live_{now:%Y%m%d}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    for day in report["days"]:
        print(f"{day['day']}: {day['prompts']} prompts, routes {day['routes']}, escalation rate "
              f"{day['escalation_rate']:.0%}, accuracy {day['accuracy']:.0%}")  # fmt: skip
    print(f"report: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
