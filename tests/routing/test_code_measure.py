"""The code head's trust measured on the Titanic suite's code items with the real local model.

`python -m tests.routing.test_code_measure tuning|heldout|humaneval [--model ALIAS] [--cache FILE] [--only IDS]` runs
the head in this process (the real model, the real sandbox) over one part's code items (bench/split.py),
or the first --limit HumanEval problems wrapped as bench/humaneval.py wraps them, and scores every
answer it would trust (confidence >= the council's floor) on the hidden tests: trusted-and-passes vs
trusted-and-fails. Constants are tuned on the tuning part only; the held-out
part is only measured. `--cache` keeps the model's replies (keyed by the request) so that the
confidence rules can be re-scored without generating again.

As a test it runs only when SWARM_MEASURE_CODE names a part (it takes minutes on a CPU).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from bench.model_cache import caching
from routing.heads.base import HeadContext
from routing.heads.code import CodeHead
from routing.vote import DEFAULT_MIN_CONFIDENCE

MODEL = "qwen2.5-coder-0.5b"


def measure(
    part: str, *, model: str = MODEL, cache: Path | None = None, limit: int = 20, only: frozenset[str] = frozenset()
) -> dict[str, Any]:
    from bench.titanic.scorers import score_code_tests
    from bench.titanic.suite import load_suite
    from inference.registry import load_registry
    from inference.runtime import build_backend

    if part == "humaneval":  # an outside benchmark: never tuned on
        from bench.humaneval import MAX_TOKENS, grade, load_problems, wrap_prompt

        problems = [p for p in load_problems() if p["task_id"] in only] if only else load_problems()[:limit]
        cases = [
            (p["task_id"], wrap_prompt(p["prompt"]), lambda answer, p=p: grade(p, answer).passed) for p in problems
        ]
        max_tokens = MAX_TOKENS
    else:
        items = [item for item in load_suite().part(part) if item.category == "code" and (not only or item.id in only)]
        cases = [
            (i.id, i.prompt, lambda answer, i=i: score_code_tests(answer, i.reference, i.args).passed) for i in items
        ]
        max_tokens = 256
    backend = build_backend(load_registry().get(model))
    backend.load()
    generate = caching(backend.generate, cache)
    rows = []
    try:
        for case_id, prompt, passes in cases:
            began = time.perf_counter()
            ballot = CodeHead().answer(prompt, HeadContext(generate=generate, max_tokens=max_tokens))
            trusted = ballot.confidence >= DEFAULT_MIN_CONFIDENCE
            hidden = bool(ballot.answer) and passes(ballot.answer)
            diff = ballot.evidence.get("differential") or {}
            rows.append({"id": case_id, "confidence": ballot.confidence, "trusted": trusted, "hidden_pass": hidden,
                         "prompt_tests": len(ballot.evidence.get("tests") or []),
                         "probes_run": diff.get("probes_run"), "probes_agreed": diff.get("probes_agreed"),
                         "second_error": diff.get("second_error"), "disagreement": diff.get("disagreement"),
                         "witnesses_drawn": diff.get("witnesses_drawn"),
                         "seconds": round(time.perf_counter() - began, 1)})  # fmt: skip
            print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    finally:
        backend.unload()
    counts = {
        "items": len(rows),
        "trusted": sum(r["trusted"] for r in rows),
        "trusted_pass": sum(r["trusted"] and r["hidden_pass"] for r in rows),
        "trusted_fail": sum(r["trusted"] and not r["hidden_pass"] for r in rows),
        "untrusted_but_passes": sum(not r["trusted"] and r["hidden_pass"] for r in rows),
    }
    return {"part": part, "model": model, **counts, "rows": rows}


@pytest.mark.skipif(not os.environ.get("SWARM_MEASURE_CODE"), reason="minutes of CPU: set SWARM_MEASURE_CODE=part")
def test_no_trusted_code_fails_its_hidden_tests() -> None:
    result = measure(os.environ["SWARM_MEASURE_CODE"])
    assert result["trusted_fail"] == 0, [r for r in result["rows"] if r["trusted"] and not r["hidden_pass"]]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("part", choices=("tuning", "heldout", "humaneval"))
    parser.add_argument("--limit", type=int, default=20, help="humaneval: the first N problems")
    parser.add_argument("--only", default="", help="comma-separated ids (HumanEval/87, code-014): these alone")
    parser.add_argument("--model", default=MODEL)
    parser.add_argument("--cache", type=Path, default=None)
    args = parser.parse_args(argv)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "swarm_site.settings")
    import django

    django.setup()
    only = frozenset(i for i in args.only.split(",") if i)
    result = measure(args.part, model=args.model, cache=args.cache, limit=args.limit, only=only)
    print(json.dumps({k: v for k, v in result.items() if k != "rows"}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
