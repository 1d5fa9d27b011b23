"""Run the Titanic suite through the live HTTP API and write reports/titanic_<date>.json.

Usage: python -m bench.titanic [--budget 0.10] [--cap 0.02] [--concurrency 4] [--micro | --limit N]
                               [--part all|tuning|heldout] [--min-confidence 0.75]
                               [--openai-cost USD] [--strict-cost] [--url http://127.0.0.1:8000] [--out PATH]

Without --url it starts a stack of its own (private redis-server, gunicorn, serving worker with the
real model, bookkeeping worker) with SWARM_CLOUD_ENABLED=true and the reference-replay provider
(bench/replay_provider.py) as the ONLY paid provider, the budget pool set to --budget and the
per-request cap to --cap; it stops everything at the end. With --url it uses a running stack as
configured (its providers are then whatever that stack has).

The cost guard: --openai-cost USD prices the loopback provider so that one call's worst case (what the
gateway reserves before the call) is exactly USD: $0 per prompt token and USD / max_tokens per
completion token. Above --cap the gateway refuses the call ("cost per request exceeded <cap>") and
the item ends UNSURE; the report counts these refusals (refused_by_cap). With --strict-cost the run
stops sending items at the first refusal, writes the report with `aborted` set and exits 3.

The headline (bench/titanic/headline.py; its definitions are written into the report) is what the
gateway got right ON ITS OWN, for the tuning part, the held-out part (bench/split.py) and overall:
local_accuracy_all (right local answers over all items), accuracy_of_local_answers,
confidently_wrong_rate (wrong local answers served at or above the confidence floor, over all items),
escalation_rate (items that went to the paid chain or ended UNSURE) and cost, each by category too.
The paid chain's answers (the replay provider's: right by construction) are counted apart, in
`replay`. The former headline, the mean score with those answers counted right, stays as
`composite_with_replay` (and under its old name `composite_accuracy`).

Other definitions (also written into the report):
- effective success: the share of items answered with HTTP 200 and an answer; an honest UNSURE
  counts as success (the request worked), an HTTP error or timeout does not.
- composite with replay: the mean item score over all items: answerable items score with their
  scorer (an UNSURE answer scores 0); must-be-unsure items (stub traps) score 1 when the answer is
  UNSURE or a refusal; errors score 0; the replay's answers score 1 by construction.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import requests

from bench import split
from bench.reporting import FairTurns, auth_headers, post_admitted
from bench.titanic import headline
from bench.titanic.live import DATA_PATH, PRICE_IN, PRICE_OUT, GpuSampler, LiveStack, machine_load, summary
from bench.titanic.scorers import SCORERS, score
from bench.titanic.suite import MICRO_SIZE, Item, load_suite, stratified, validate

ROOT = Path(__file__).resolve().parent.parent.parent
ABORTED = 3  # the exit status of a --strict-cost run stopped by the per-request cap
CAP_REFUSAL = "cost per request exceeded"
TARGETS = {"effective_success": 0.97, "composite_accuracy": 0.85, "cost_usd_full_suite": 0.07, "p95_ms_gpu": 200.0}
REPLAY_NOTE = ("Escalations (route 'cloud') were answered by the reference-replay provider "
               "(bench/replay_provider.py) on loopback, which returns the suite's own reference answer: they are "
               "correct by construction and NOT answers of a real cloud model. Cost is what the gateway billed for "
               "them at the configured price per token.")  # fmt: skip
DEFINITIONS = {
    **headline.DEFINITIONS,
    "effective_success": "share of items answered with HTTP 200 and an answer; an honest UNSURE counts as success",
    "composite_accuracy": (
        "the same figure as composite_with_replay, under its old name: mean item score in [0,1] over all items: "
        "answerable items by their scorer (UNSURE scores 0), must-be-unsure items 1 when UNSURE or refused, "
        "errors 0, the replay's answers 1 by construction"
    ),
    "part": "tuning or heldout: the frozen split of bench/split.py (heads and thresholds are tuned on tuning only)",
    "latency": (
        "client-side wall time of each POST /orchestrate on loopback (ms), by the route that answered; "
        "with one serving worker (concurrency 1) and several clients it includes the wait in the queue"
    ),
    "paraphrase_consistency": "share of paraphrase groups whose members all got the same score",
}


@dataclass
class Outcome:
    id: str
    category: str
    part: str
    group: str | None
    ok: bool
    status: int | None
    route: str
    skill_type: str
    latency_ms: float
    server_latency_ms: float | None
    cost_usd: float
    cached: bool
    escalated: bool
    score: float
    reason: str
    answer: str
    detail: str | None
    error: str | None
    confidence: float | None = None
    provider: str | None = None
    must_abstain: bool = False
    retries: int = 0  # 429/503 refusals waited out (Retry-After) before this answer


def ask(
    session: requests.Session, url: str, item: Item, *, max_tokens: int, timeout_s: float,
    turns: FairTurns | None = None,
) -> dict[str, Any]:  # fmt: skip
    started = time.perf_counter()
    try:
        response, retries = post_admitted(
            session, f"{url}/orchestrate", {"prompt": item.prompt, "max_tokens": max_tokens}, timeout_s=timeout_s,
            turns=turns,
        )  # fmt: skip
        elapsed = (time.perf_counter() - started) * 1000
        try:
            body = response.json()
        except ValueError:
            body = {}
        return {"status": response.status_code, "body": body, "latency_ms": elapsed, "retries": retries, "error": None
                if response.ok else f"HTTP {response.status_code}: {json.dumps(body)[:200]}"}  # fmt: skip
    except requests.RequestException as exc:
        return {"status": None, "body": {}, "latency_ms": (time.perf_counter() - started) * 1000,
                "error": f"{type(exc).__name__}: {exc}"[:300]}  # fmt: skip


def judge(item: Item, raw: dict[str, Any], *, part: str) -> Outcome:
    body = raw["body"] if isinstance(raw["body"], dict) else {}
    answer = body.get("answer")
    ok = raw["error"] is None and isinstance(answer, str)
    route = str(body.get("route", "error")) if ok else "error"
    detail = body.get("detail")
    if ok:
        verdict = score(item.scorer, answer, item.reference, item.args, route=route)
        value, reason = verdict.score, verdict.reason
    else:
        value, reason = 0.0, raw["error"] or "no answer"
    return Outcome(
        id=item.id, category=item.category, part=part, group=item.group, ok=ok, status=raw["status"], route=route,
        skill_type=str(body.get("skill_type", "")), latency_ms=round(raw["latency_ms"], 2),
        server_latency_ms=body.get("latency_ms"),
        cost_usd=float(body.get("cost_usd") or 0.0),
        cached=bool(body.get("cached")),
        escalated=headline.origin({"route": route, "ok": ok, "answer": answer, "provider": body.get("provider"),
                                   "skill_type": body.get("skill_type")}) in (headline.CLOUD, headline.UNSURE),
        score=value, reason=reason, answer=(answer or "")[:300], detail=detail, error=raw["error"],
        confidence=_number(body.get("confidence")), provider=body.get("provider") or None,
        must_abstain=item.scorer == "must_be_unsure", retries=int(raw.get("retries", 0)),
    )  # fmt: skip


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def refused_by_cap(outcome: Outcome) -> bool:
    """The gateway made no paid call for this item because its worst case passed the per-request cap."""
    return CAP_REFUSAL in (outcome.detail or "")


def price_out_for(openai_cost: str, max_tokens: int) -> str:
    """USD per 1M completion tokens so that max_tokens of them (and free prompt tokens) cost `openai_cost`."""
    try:
        usd = Decimal(openai_cost)
    except InvalidOperation:
        raise ValueError(f"openai_cost {openai_cost!r} is not a price in USD") from None
    if usd <= 0:
        raise ValueError(f"openai_cost {openai_cost!r} must be above 0")
    return str((usd * 1_000_000 / max_tokens).quantize(Decimal("0.00000001")).normalize())


def _mean(values: list[float]) -> float | None:
    return round(statistics.fmean(values), 4) if values else None


def aggregate(outcomes: list[Outcome], *, n_suite: int, floor: float = headline.DEFAULT_FLOOR) -> dict[str, Any]:
    n = len(outcomes)
    by_category: dict[str, list[Outcome]] = defaultdict(list)
    by_route: dict[str, list[Outcome]] = defaultdict(list)
    groups: dict[str, list[Outcome]] = defaultdict(list)
    for o in outcomes:
        by_category[o.category].append(o)
        by_route[o.route].append(o)
        if o.group:
            groups[o.group].append(o)
    cost = round(sum(o.cost_usd for o in outcomes), 6)
    records = [asdict(o) for o in outcomes]
    all_latency = [o.latency_ms for o in outcomes]
    consistent = [len({o.score for o in members}) == 1 for members in groups.values() if len(members) > 1]
    composite = headline.composite(records)
    return {
        "headline": headline.headline(records, floor=floor),
        "replay": headline.replay(records),
        "composite_with_replay": composite,
        "n": n,
        "effective_success": round(sum(o.ok for o in outcomes) / n, 4),
        "composite_accuracy": composite,
        "cloud_answers": sum(o.route == "cloud" for o in outcomes),
        "refused_by_cap": sum(refused_by_cap(o) for o in outcomes),
        "cost_usd": cost,
        "cost_usd_per_item": round(cost / n, 8),
        "cost_usd_scaled_to_full_suite": round(cost * n_suite / n, 6),
        "routes": dict(Counter(o.route for o in outcomes).most_common()),
        "skills": dict(Counter(f"{o.route}:{o.skill_type}" for o in outcomes).most_common()),
        "latency_ms_all": summary(all_latency),
        "latency_ms_by_route": {r: summary([o.latency_ms for o in os]) for r, os in sorted(by_route.items())},
        "composite_with_replay_by_category": {
            c: {"n": len(os), "accuracy": _mean([o.score for o in os]),
                "routes": dict(Counter(o.route for o in os).most_common())}
            for c, os in sorted(by_category.items())
        },
        "accuracy_by_route": {r: {"n": len(os), "accuracy": _mean([o.score for o in os])}
                              for r, os in sorted(by_route.items())},
        "paraphrase_consistency": round(sum(consistent) / len(consistent), 4) if consistent else None,
        "paraphrase_groups_all_correct": sum(all(o.score >= 1 for o in m) for m in groups.values()),
        "paraphrase_groups": len(groups),
        "errors": [{"id": o.id, "error": o.error} for o in outcomes if not o.ok][:20],
        # 429/503 refusals (the model saturated by this run's own concurrency) the client waited out and
        # sent again, as the OpenAI client does; an item still refused when its timeout ran out is an error.
        "admission_retries": {"items": sum(o.retries > 0 for o in outcomes), "total": sum(o.retries for o in outcomes)},
    }  # fmt: skip


def targets(result: dict[str, Any], *, gpu: bool, n_suite: int) -> dict[str, Any]:
    scale = result["n"] / n_suite
    p95 = result["latency_ms_all"].get("p95_ms")
    cost_target = round(TARGETS["cost_usd_full_suite"] * scale, 6)

    def mark(met: bool) -> str:
        return "met" if met else "not met"

    heldout = {}
    for check in headline.check_heldout(result):
        name = f"heldout {check['figure']} {check['op']} {check['target']:.0%}"
        heldout[name] = {"value": check["value"], "status": mark(check["met"]) if check["value"] is not None
                         else "n/a: no held-out item in this run"}  # fmt: skip
    return {
        "effective_success >= 97%": {"value": result["effective_success"],
                                     "status": mark(result["effective_success"] >= TARGETS["effective_success"])},
        **heldout,
        f"cost <= ${cost_target} (${TARGETS['cost_usd_full_suite']} for 380 items, scaled)": {
            "value": result["cost_usd"], "status": mark(result["cost_usd"] <= cost_target)},
        "p95 <= 200 ms on a GPU": {"value": p95, "status": mark(p95 is not None and p95 <= TARGETS["p95_ms_gpu"])
                                   if gpu else f"n/a: no GPU on this machine (p95 here {p95} ms)"},
    }  # fmt: skip


def run_items(url: str, items: list[Item], *, concurrency: int, max_tokens: int, timeout_s: float,
              parts: dict[str, str], stop_when: Callable[[Outcome], bool] | None = None) -> list[Outcome]:  # fmt: skip
    """Every item's outcome, in order (`parts`: item id -> its part of the split); once an outcome meets
    `stop_when` no further item is sent (the calls already in flight finish) and the outcomes end there."""
    sessions: dict[int, requests.Session] = {}
    stop = threading.Event()
    turns = FairTurns()  # the threads' refused requests go first (one client, fair to itself)

    def one(item: Item) -> Outcome | None:
        if stop.is_set():
            return None
        session = sessions.setdefault(threading.get_ident(), requests.Session())
        session.headers.update(auth_headers())
        raw = ask(session, url, item, max_tokens=max_tokens, timeout_s=timeout_s, turns=turns)
        outcome = judge(item, raw, part=parts[item.id])
        if stop_when is not None and stop_when(outcome):
            stop.set()
        return outcome

    with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="titanic") as pool:
        return [o for o in pool.map(one, items) if o is not None]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Titanic: the suite through the live HTTP API")
    parser.add_argument("--budget", default="0.10", help="daily pool, USD (the replay provider's spend)")
    parser.add_argument("--cap", default="0.02", help="per-request cap, USD")
    parser.add_argument("--price-in", default=PRICE_IN, help="replay provider price, USD per 1M prompt tokens")
    parser.add_argument("--price-out", default=PRICE_OUT, help="replay provider price, USD per 1M completion tokens")
    parser.add_argument("--openai-cost", help="price the loopback provider so that one call's worst case costs USD")
    parser.add_argument("--strict-cost", action="store_true", help="stop at the first call refused by the cap")
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--max-tokens", type=int, default=128)
    parser.add_argument("--timeout", type=float, default=120.0)
    parser.add_argument("--limit", type=int, help="a stratified slice of N items")
    parser.add_argument("--micro", action="store_true", help=f"the CI slice: {MICRO_SIZE} items, stratified")
    parser.add_argument(
        "--part",
        choices=("all", *split.PARTS),
        default="all",
        help="run one part of the frozen split only (bench/split.py); --limit/--micro slice it",
    )
    parser.add_argument(
        "--min-confidence",
        type=float,
        default=float(os.environ.get("SWARM_MIN_CONFIDENCE", headline.DEFAULT_FLOOR)),
        help="the gateway's confidence floor, for confidently_wrong_rate (SWARM_MIN_CONFIDENCE)",
    )
    parser.add_argument("--data", type=Path, default=DATA_PATH)
    parser.add_argument("--url", help="use a running stack instead of starting one")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    if args.openai_cost:
        if args.url:
            parser.error("--openai-cost prices the provider of the stack this run starts: not with --url")
        try:
            args.price_in, args.price_out = "0", price_out_for(args.openai_cost, args.max_tokens)
        except ValueError as exc:
            parser.error(str(exc))

    began = time.perf_counter()
    load_before = machine_load()
    suite = load_suite(args.data)
    problems = validate(suite, set(SCORERS))
    if problems:
        print("suite is not valid:\n  " + "\n  ".join(problems), file=sys.stderr)
        return 2
    limit = MICRO_SIZE if args.micro else args.limit
    parts = suite.parts()
    pool = list(suite.items) if args.part == "all" else suite.part(args.part)
    items = stratified(pool, limit) if limit else pool
    print(f"titanic: {len(items)} of {len(suite.items)} items ({args.part}), concurrency {args.concurrency}",
          flush=True)  # fmt: skip

    live = None
    try:
        if args.url:
            url, stack_info = args.url.rstrip("/"), {"mode": "running stack", "url": args.url}
        else:
            live = LiveStack.start(cloud=True, budget=args.budget, cap=args.cap, price_in=args.price_in,
                                   price_out=args.price_out, data=args.data)  # fmt: skip
            url = live.url
            stack_info = {"mode": "own stack (private redis, gunicorn x2, serving worker, bookkeeping worker)",
                          "start_s": round(live.started_s, 1), "logs": str(live.stack.logdir),
                          "provider": {"name": "titanic-replay", "base_url": live.replay_url,
                                       "price_in_per_mtok": args.price_in, "price_out_per_mtok": args.price_out,
                                       "worst_case_usd_per_call": args.openai_cost, "only_provider": True},
                          "budget_pool_usd": args.budget, "per_request_cap_usd": args.cap}  # fmt: skip
            print(f"titanic: stack up in {live.started_s:.1f}s at {url}", flush=True)
        run_started = time.perf_counter()
        stop_when = refused_by_cap if args.strict_cost else None
        with GpuSampler() as gpu:
            outcomes = run_items(url, items, concurrency=args.concurrency, max_tokens=args.max_tokens,
                                 timeout_s=args.timeout, parts=parts, stop_when=stop_when)  # fmt: skip
        run_s = time.perf_counter() - run_started
        replay_stats = live.replay_stats() if live else None
    finally:
        if live:
            live.stop()

    result = aggregate(outcomes, n_suite=len(suite.items), floor=args.min_confidence)
    goals = targets(result, gpu=gpu.available, n_suite=len(suite.items))
    refusal = next((o for o in outcomes if refused_by_cap(o)), None) if args.strict_cost else None
    aborted = None
    if refusal is not None:
        aborted = {"reason": refusal.detail.removeprefix("BudgetExceeded: "), "item": refusal.id,
                   "items_sent": len(outcomes), "items_planned": len(items), "strict_cost": True}  # fmt: skip
    slice_name = "micro (stratified)" if args.micro else (f"stratified {limit}" if limit else "full")
    report = {
        "benchmark": "titanic",
        "when": datetime.now(UTC).isoformat(),
        "headline": result.pop("headline"),
        "confidence_floor": args.min_confidence,
        "prices_usd_per_mtok": {"in": args.price_in, "out": args.price_out} if not args.url else "the stack's own",
        "replay": {**result.pop("replay"), "note": REPLAY_NOTE},
        "composite_with_replay": result.pop("composite_with_replay"),
        "definitions": DEFINITIONS,
        "split": {"rule": split.RULE,
                  "part_run": args.part, "items_by_part": dict(Counter(o.part for o in outcomes)),
                  "suite_by_part": {p: len(suite.part(p)) for p in split.PARTS}},
        "suite": {"version": suite.version, "path": str(args.data.relative_to(ROOT)) if args.data.is_relative_to(ROOT)
                  else str(args.data), "sha256": suite.sha256, "items_total": len(suite.items),
                  "items_run": len(items), "slice": slice_name + ("" if args.part == "all" else f" of {args.part}")},
        "escalations_answered_by": REPLAY_NOTE,
        "replay_provider_stats": replay_stats,
        "stack": stack_info,
        "aborted": aborted,
        "method": (f"POST /orchestrate for every item, {args.concurrency} client threads, max_tokens "
                   f"{args.max_tokens}, loopback; scored by bench/titanic/scorers.py"),
        **result,
        "gpu": gpu.report(),
        "machine": {"before": load_before, "after": machine_load(),
                    "note": "shared 2-core machine: other work ran alongside; latencies include that noise"},
        "wall_s": {"suite_run": round(run_s, 1), "total_including_stack_start_stop": round(
            time.perf_counter() - began, 1)},
        "targets": goals,
        "items": [asdict(o) for o in outcomes],
    }  # fmt: skip
    suffix = ("_micro" if limit else "") + ("" if args.part == "all" else f"_{args.part}")
    out = args.out or ROOT / "reports" / f"titanic_{datetime.now(UTC):%Y%m%d}{suffix}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    print_summary(report, out)
    if aborted:
        print(f"titanic: aborted (--strict-cost) at item {aborted['item']}, {aborted['items_sent']} of "
              f"{aborted['items_planned']} sent: {aborted['reason']}", flush=True)  # fmt: skip
        return ABORTED
    return 0


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def headline_lines(report: dict[str, Any]) -> list[str]:
    """The headline table: per part and overall, then per category (held-out | overall)."""
    head = report["headline"]
    replay = report["replay"]
    lines = [
        f"  HEADLINE: answered right by the gateway on its own (replay answers excluded; confidence floor "
        f"{report['confidence_floor']})",
        "    part      items  local_accuracy_all  accuracy_of_local_answers  confidently_wrong_rate  escalation_rate"
        "  cost",
    ]
    for part in (*split.PARTS, "overall"):
        b = head[part]
        lines.append(f"    {part:<8} {b['n']:>6}  {_pct(b['local_accuracy_all']):>18}  "
                     f"{_pct(b['accuracy_of_local_answers']):>25}  {_pct(b['confidently_wrong_rate']):>22}  "
                     f"{_pct(b['escalation_rate']):>15}  ${b['cost_usd']:.6f}")  # fmt: skip
    lines.append("    by category, heldout | overall: local_accuracy_all / accuracy_of_local_answers / "
                 "confidently_wrong_rate / escalation_rate")  # fmt: skip
    for cat, b in head["overall"]["by_category"].items():
        h = head["heldout"]["by_category"].get(cat)
        held = (f"n={h['n']:<3} {_pct(h['local_accuracy_all'])} / {_pct(h['accuracy_of_local_answers'])} / "
                f"{_pct(h['confidently_wrong_rate'])} / {_pct(h['escalation_rate'])}") if h else "n=0"  # fmt: skip
        lines.append(f"      {cat:<11} {held:<46} | n={b['n']:<3} {_pct(b['local_accuracy_all'])} / "
                     f"{_pct(b['accuracy_of_local_answers'])} / {_pct(b['confidently_wrong_rate'])} / "
                     f"{_pct(b['escalation_rate'])}")  # fmt: skip
    counts = head["overall"]["counts"]
    lines.append(f"    {counts['declined_must_abstain']} must-be-unsure items declined by the council (right, "
                 f"not local answers); {counts['unsure']} UNSURE; {counts['errors']} errors")  # fmt: skip
    lines.append(
        f"  replay: {replay['answers']} answers ({_pct(replay['share'])}) by the paid chain "
        f"{replay['providers']}, right by construction, NOT in the headline; ${replay['cost_usd']:.6f}"
    )
    lines.append(f"  composite with replay (the former headline): {_pct(report['composite_with_replay'])}")
    return lines


def print_summary(report: dict[str, Any], out: Path) -> None:
    lines = [
        f"titanic {report['suite']['version']} ({report['suite']['items_run']} items, {report['suite']['slice']})",
        *headline_lines(report),
        f"  effective success   {report['effective_success']:.1%}",
        f"  cloud answers {report['cloud_answers']}   refused by the per-request cap {report['refused_by_cap']}",
        f"  cost                ${report['cost_usd']:.6f}",
        f"  latency p50/p95/p99 {report['latency_ms_all'].get('p50_ms')}/{report['latency_ms_all'].get('p95_ms')}/"
        f"{report['latency_ms_all'].get('p99_ms')} ms",
    ]
    for route, stats in report["latency_ms_by_route"].items():
        lines.append(
            f"    {route:<8} n={stats['n']:<4} p50 {stats.get('p50_ms')} p95 {stats.get('p95_ms')} "
            f"p99 {stats.get('p99_ms')} ms  accuracy {report['accuracy_by_route'][route]['accuracy']}"
        )
    lines.append(f"  gpu                 {report['gpu']}")
    lines.append(f"  wall                {report['wall_s']}")
    for name, target in report["targets"].items():
        lines.append(f"  target {name}: {target['status']} ({target['value']})")
    lines.append(f"  NOTE: {report['escalations_answered_by']}")
    lines.append(f"  report: {out}")
    print("\n".join(lines), flush=True)


if __name__ == "__main__":
    raise SystemExit(main())
