"""The reasoning head's trust measured on one part of the titanic suite, with the real local model.

`python -m bench.reasoning_measure tuning|heldout [--model ALIAS] [--cache FILE] [--out FILE]` runs, in this
process (the real model, the real sandbox), every item of the part that reaches the reasoning head the way
the council would send it there: the head applies and the exact heads did not answer it first. Each answer
is scored with the suite's own scorer, and so are the program's number and the worked steps' number on
their own. It reports how often each was right, how often the two agreed (right and wrong), and what the
head's rule trusts (trusted right, trusted wrong, of which must-abstain items). The head's constants are
chosen on the tuning part only; the held-out part is only measured.
`--cache` keeps the model's replies, so the rule can be re-scored without generating again.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

from bench.model_cache import caching

MODEL = "qwen2.5-coder-0.5b"


def measure(part: str, *, model: str = MODEL, cache: Path | None = None) -> dict[str, Any]:
    from bench.titanic.scorers import score
    from bench.titanic.suite import load_suite
    from inference.registry import load_registry
    from inference.runtime import build_backend
    from routing.cascade import fast_decision
    from routing.heads import HeadContext, fast_heads
    from routing.heads.reasoning import ReasoningHead, format_number
    from routing.vote import DEFAULT_MIN_CONFIDENCE

    head = ReasoningHead()
    items = [
        item for item in load_suite().part(part)
        if head.applies(item.prompt) and fast_decision(item.prompt, fast_heads=list(fast_heads()), max_tokens=128,
                                                       temperature=0.0, min_confidence=DEFAULT_MIN_CONFIDENCE) is None
    ]  # fmt: skip
    backend = build_backend(load_registry().get(model))
    backend.load()
    generate = caching(backend.generate, cache)
    rows = []
    for item in items:
        began = time.perf_counter()
        ballot = head.answer(item.prompt, HeadContext(generate=generate))
        right = bool(ballot.answer) and score(item.scorer, ballot.answer, item.reference, item.args).passed
        program, words = ballot.evidence.get("program") or {}, ballot.evidence.get("words") or {}

        def scored(value: float | None, item: Any = item) -> bool:
            return value is not None and score(item.scorer, format_number(value), item.reference, item.args).passed

        rows.append({
            "id": item.id, "category": item.category, "must_abstain": item.scorer == "must_be_unsure",
            "answer": ballot.answer, "reference": item.reference, "right": right,
            "confidence": ballot.confidence, "trusted": ballot.confidence >= DEFAULT_MIN_CONFIDENCE,
            "agree": bool(ballot.evidence.get("agree")),
            "program": {k: program.get(k) for k in ("result", "error", "unfounded")},
            "program_right": scored(program.get("result")),
            "words": {k: words.get(k) for k in ("result", "finish_reason")}, "words_right": scored(words.get("result")),
            "seconds": round(time.perf_counter() - began, 2),
        })  # fmt: skip
        print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    outcomes = Counter(("agree" if row["agree"] else "differ", "right" if row["right"] else "wrong") for row in rows)
    trusted = [row for row in rows if row["trusted"]]
    return {
        "part": part, "model": model, "n_reaching_head": len(rows),
        "program_right": sum(row["program_right"] for row in rows),
        "words_right": sum(row["words_right"] for row in rows),
        "outcomes": {f"{agreement}, {verdict}": n for (agreement, verdict), n in sorted(outcomes.items())},
        "trusted": len(trusted), "trusted_right": sum(row["right"] for row in trusted),
        "trusted_wrong": sum(not row["right"] for row in trusted),
        "trusted_must_abstain": sum(row["must_abstain"] for row in trusted),
        "rows": rows,
    }  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("part", choices=("tuning", "heldout"))
    parser.add_argument("--model", default=MODEL)
    parser.add_argument("--cache", type=Path)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    from bench.trust import setup_django

    setup_django()
    report = measure(args.part, model=args.model, cache=args.cache)
    text = json.dumps(report, indent=1)
    if args.out:
        args.out.write_text(text + "\n")
    summary = {k: v for k, v in report.items() if k != "rows"}
    print(json.dumps(summary, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
