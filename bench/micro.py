"""`make micro`: the 40-item micro Titanic slice on a stack of its own, ending with one verdict line.

Usage: python -m bench.micro [--budget 0.10] [--cap 0.02] [--openai-cost USD] [--strict-cost] [--out PATH]
  (make micro reads BUDGET, CAP, openai_cost and STRICT_COST=on from the make command line or the environment)

The stack is the one `make titanic MICRO=1` starts (bench/titanic/live.py): the model, the workers, a
private redis-server and, as the only paid provider, the reference-replay provider on loopback, so
escalations are real OpenAI-compatible calls under the real cost guard. `--openai-cost USD` prices
that provider so that one call's worst case costs USD; the per-request cap stays --cap ($0.02).

- Without --strict-cost a call the cap refuses ends UNSURE, is counted (refused_by_cap) and the run
  goes on; the verdict is the gate's: effective success >= 97 %, composite accuracy >= 85 % and the
  cost target scaled to 40 items -> `PASS micro: ...` or `FAIL micro: ...`.
- With --strict-cost the run stops at the first call the cap refuses and prints
  `FAIL micro: cost per request exceeded 0.02 (titanic-replay $0.05) ...`, exit 1.

The p95 latency target is a GPU target: without a GPU the run prints `n/a (no GPU): ...` for it.
SWARM_CLOUD_ENABLED=false in the environment is refused (exit 2): this stack escalates by design.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
OFF = {"0", "false", "no", "off"}


def checks(report: dict[str, Any]) -> dict[str, bool]:
    """The micro slice's pass criteria (the release gate's titanic stage)."""
    from bench.titanic.run import TARGETS

    cost_target = next(t for name, t in report["targets"].items() if name.startswith("cost"))
    return {
        "effective success >= 97%": report["effective_success"] >= TARGETS["effective_success"],
        "composite accuracy >= 85%": report["composite_accuracy"] >= TARGETS["composite_accuracy"],
        "cost within the scaled target": cost_target["status"] == "met",
    }


def verdict(report: dict[str, Any]) -> tuple[bool, list[str]]:
    """(passed, the lines to print, the `PASS micro:` / `FAIL micro:` line last)."""
    lines = [f"n/a (no GPU): {name}" for name, t in report["targets"].items() if str(t["status"]).startswith("n/a")]
    aborted = report.get("aborted")
    if aborted:
        lines.append(f"FAIL micro: {aborted['reason']}; STRICT_COST=on: aborted at item {aborted['item']} "
                     f"({aborted['items_sent']} of {aborted['items_planned']} items sent)")  # fmt: skip
        return False, lines
    results = checks(report)
    lines += [f"gate check {name}: {'pass' if ok else 'FAIL'}" for name, ok in results.items()]
    facts = (f"{report['n']} items, effective success {report['effective_success']:.1%}, composite accuracy "
             f"{report['composite_accuracy']:.1%}, cost ${report['cost_usd']:.6f}, "
             f"{report.get('refused_by_cap', 0)} refused by the per-request cap")  # fmt: skip
    failed = [name for name, ok in results.items() if not ok]
    lines.append(f"FAIL micro: {', '.join(failed)} not met ({facts})" if failed else f"PASS micro: {facts}")
    return not failed, lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="The micro Titanic slice with a PASS/FAIL line")
    parser.add_argument("--budget", default="0.10", help="daily pool, USD")
    parser.add_argument("--cap", default="0.02", help="per-request cap, USD")
    parser.add_argument("--openai-cost", help="what one call's worst case costs at the loopback provider, USD")
    parser.add_argument("--strict-cost", action="store_true", help="abort at the first call refused by the cap")
    parser.add_argument("--out", type=Path, help="the report (default reports/titanic_<date>_micro.json)")
    args = parser.parse_args(argv)
    if os.environ.get("SWARM_CLOUD_ENABLED", "").strip().lower() in OFF:
        print("FAIL micro: SWARM_CLOUD_ENABLED is off, but the micro stack escalates to its loopback provider "
              "by design; unset it or set it to true", flush=True)  # fmt: skip
        return 2
    sys.path.insert(0, str(ROOT))
    from bench.titanic.run import ABORTED
    from bench.titanic.run import main as titanic

    out = args.out or ROOT / "reports" / f"titanic_{datetime.now(UTC):%Y%m%d}_micro.json"
    titanic_argv = ["--micro", "--budget", args.budget, "--cap", args.cap, "--out", str(out)]
    if args.openai_cost:
        titanic_argv += ["--openai-cost", args.openai_cost]
    if args.strict_cost:
        titanic_argv.append("--strict-cost")
    code = titanic(titanic_argv)
    if code not in (0, ABORTED):
        print(f"FAIL micro: the Titanic run exited {code} (see above)", flush=True)
        return code
    ok, lines = verdict(json.loads(out.read_text()))
    print("\n".join(lines), flush=True)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
