"""The code head's trust measured on the Titanic suite's code items with the real local model.

`python -m tests.routing.test_code_measure tuning|heldout [--model ALIAS] [--cache FILE]` runs the head
in this process (the real model, the real sandbox) over one part's code items (bench/split.py) and
scores every answer it would trust (confidence >= the council's floor) on the item's hidden tests:
trusted-and-passes vs trusted-and-fails. Constants are tuned on the tuning part only; the held-out
part is only measured. `--cache` keeps the model's replies (keyed by the request) so that the
confidence rules can be re-scored without generating again.

As a test it runs only when SWARM_MEASURE_CODE names a part (it takes minutes on a CPU).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from inference.backends.base import Generation
from routing.heads.base import Generate, HeadContext
from routing.heads.code import CodeHead
from routing.vote import DEFAULT_MIN_CONFIDENCE

MODEL = "qwen2.5-coder-0.5b"


def caching(generate: Generate, path: Path | None) -> Generate:
    """`generate` remembering each reply in `path` (JSON), keyed by the messages and parameters."""
    store: dict[str, dict[str, Any]] = json.loads(path.read_text()) if path and path.is_file() else {}

    def call(messages: list[dict[str, str]], **params: Any) -> Generation:
        key = hashlib.sha256(json.dumps([messages, params], sort_keys=True).encode()).hexdigest()
        if key not in store:
            store[key] = generate(messages, **params).__dict__
            if path:
                path.write_text(json.dumps(store))
        return Generation(**store[key])

    return call


def measure(part: str, *, model: str = MODEL, cache: Path | None = None) -> dict[str, Any]:
    from bench.titanic.scorers import score_code_tests
    from bench.titanic.suite import load_suite
    from inference.registry import load_registry
    from inference.runtime import build_backend

    items = [item for item in load_suite().part(part) if item.category == "code"]
    backend = build_backend(load_registry().get(model))
    backend.load()
    generate = caching(backend.generate, cache)
    rows = []
    try:
        for item in items:
            began = time.perf_counter()
            ballot = CodeHead().answer(item.prompt, HeadContext(generate=generate, max_tokens=256))
            trusted = ballot.confidence >= DEFAULT_MIN_CONFIDENCE
            hidden = score_code_tests(ballot.answer, item.reference, item.args).passed if ballot.answer else False
            diff = ballot.evidence.get("differential") or {}
            rows.append({"id": item.id, "confidence": ballot.confidence, "trusted": trusted, "hidden_pass": hidden,
                         "prompt_tests": len(ballot.evidence.get("tests") or []),
                         "probes_run": diff.get("probes_run"), "probes_agreed": diff.get("probes_agreed"),
                         "second_error": diff.get("second_error"), "disagreement": diff.get("disagreement"),
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
    parser.add_argument("part", choices=("tuning", "heldout"))
    parser.add_argument("--model", default=MODEL)
    parser.add_argument("--cache", type=Path, default=None)
    args = parser.parse_args(argv)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "swarm_site.settings")
    import django

    django.setup()
    result = measure(args.part, model=args.model, cache=args.cache)
    print(json.dumps({k: v for k, v in result.items() if k != "rows"}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
