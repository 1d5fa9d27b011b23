#!/usr/bin/env python3
"""May the council trust the model's answer read from WordNet's notes? Fitted on tuning, checked on held-out.

agent0 asks for a grounded answer (routing/reference.py) when the model's own answer was not trusted:
the nearest WordNet notes go before the question, and the answer counts only when it stands on one
note that covers the question. This measures, per model, on the items bench/trust.py uses (the paraphrase
groups' wordings and the Titanic suite's factual items, each in its frozen part) and on the groups'
near misses ("What is the largest city in Australia?" beside the capital's group). Each is asked twice, as
agent0 asks: first without the notes (its own answer; when that is trusted under the calibrated rule, the
notes are not asked), then with them:

- every grounded answer with its evidence: the supporting note, the share of the question it covers,
  whether the model's own answer already said it, the least token probability;
- the rule: the lowest coverage and least token probability under which no tuning answer trusted is
  wrong and the most are trusted (a near miss answered with its group's answer counts as wrong: a false
  hit), and what that rule trusts, and gets wrong, on the held-out part.

A near miss has no reference answer of its own: every one the rule trusts is listed for reading.

Usage: python -m bench.reference [--model ALIAS] [--parts tuning,heldout] [--limit N] [--answers-from REPORT]...
[--out FILE]; writes reports/reference_<date>.json. `--answers-from` reuses greedy answers already given (a
trust report's own answers, an earlier reference report's): greedy decoding gives them again, and each is
judged and checked anew.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.trust import Item, is_right, load_items, setup_django  # noqa: E402
from inference.backends.base import Generation  # noqa: E402

MAX_TOKENS = 64
MIN_TRUSTED = 5
COVERAGES = (0.5, 0.6, 2 / 3, 0.75, 0.8, 1.0)


@dataclass
class Grounded:
    key: str
    part: str
    kind: str
    prompt: str
    reference: str
    own_text: str  # the model's answer without the notes (agent0's prompt, greedy)
    own_min_token_prob: float | None
    own_trusted: bool  # under the model's calibrated rule: then agent0 does not ask the notes
    text: str  # the answer with the notes ("" when no note was near)
    correct: bool | None  # of `text`; None: a near miss not answered with its group's answer (no reference)
    grounded: bool
    agreed: bool
    reason: str | None
    coverage: float
    note: str | None
    min_token_prob: float | None
    finish_reason: str
    notes: int
    latency_ms: float


def near_miss_items() -> list[Item]:
    """The paraphrase groups' near misses; `reference` is the group's answer (which would be a false hit)."""
    from bench import split

    groups = split.load_paraphrase_groups()
    parts = split.paraphrase_parts(groups)
    return [
        Item(f"near:{g['id']}:{n}", prompt, str(g["answer"]), parts[g["id"]], "near-miss")
        for g in groups
        for n, prompt in enumerate(g.get("near_misses", []))
    ]


def judge(item: Item, text: str) -> bool | None:
    if item.kind == "near-miss":
        from routing.vote import answers_agree

        return False if answers_agree(text, item.reference) else None
    return is_right(item, text)


def cached_answers(path: Path | None, alias: str) -> dict[str, dict[str, Any]]:
    """Greedy answers already given by `alias`, by item key: a trust report's (the model's own) or this
    bench's report (both answers). Greedy decoding gives the same answer again, so it is not asked twice."""
    if path is None:
        return {}
    import json

    body = json.loads(path.read_text())
    if body.get("benchmark") == "trust":
        return {a["key"]: {"own_text": a["text"], "own_min_token_prob": a["min_token_prob"],
                           "own_finish": a["finish_reason"]} for a in body["models"][alias]["answers"]}  # fmt: skip
    return {a["key"]: a for a in body["answers"]}


def cached(text: str, min_token_prob: float | None, finish_reason: str, latency_ms: float = 0.0) -> Generation:
    """A greedy answer given before, as the rules read it (token counts are not kept)."""
    return Generation(text, 0, 0, finish_reason, latency_ms, min_token_prob=min_token_prob)


def answer_all(alias: str, items: list[Item], cache: dict[str, dict[str, Any]]) -> list[Grounded]:
    from inference.registry import load_registry
    from inference.runtime import build_backend
    from routing import reference
    from routing.heads.agent0 import SYSTEM_PROMPT, calibrated_trust

    spec = load_registry().get(alias)
    backend = build_backend(spec)
    backend.load()
    out = []
    try:
        for n, item in enumerate(items):
            known = cache.get(item.key, {})
            if "own_text" in known:
                own = cached(known["own_text"], known["own_min_token_prob"], known.get("own_finish", "stop"))
            else:
                messages = [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": item.prompt}]
                own = backend.generate(messages, max_tokens=MAX_TOKENS, temperature=0.0)
            own_trusted = calibrated_trust(own, trust=spec.trust, adapter=None)
            notes = reference.notes_for(item.prompt)
            if "text" in known:
                gen = cached(known["text"], known["min_token_prob"], known["finish_reason"], known["latency_ms"])
            elif notes:
                gen = backend.generate(reference.messages(item.prompt, notes), max_tokens=MAX_TOKENS, temperature=0.0)
            else:
                gen = cached("", None, "")
            g = reference.grounding(item.prompt, gen.text, notes)
            out.append(
                Grounded(
                    item.key, item.part, item.kind, item.prompt, item.reference, own.text, own.min_token_prob,
                    own_trusted, gen.text, judge(item, gen.text) if gen.text else None, g.grounded,
                    reference.agrees(item.prompt, gen.text, own.text), g.reason, round(g.coverage, 4),
                    g.note.text[:200] if g.note else None, gen.min_token_prob, gen.finish_reason, len(notes),
                    round(gen.latency_ms, 1),
                )
            )  # fmt: skip
            print(f"\r{alias}: {n + 1}/{len(items)}", end="", file=sys.stderr, flush=True)
    finally:
        backend.unload()
    print(file=sys.stderr)
    return out


def trusted(a: Grounded, coverage: float, min_prob: float) -> bool:
    from routing.reference import trusted_grounding

    return trusted_grounding(
        a.grounded, a.agreed, a.coverage, a.min_token_prob, a.finish_reason, a.text,
        min_coverage=coverage, min_token_prob=min_prob,
    )  # fmt: skip


def outcome(answers: list[Grounded], coverage: float, min_prob: float) -> dict[str, Any]:
    """What the rule trusts among the answers agent0 asks the notes for (its own answer was not trusted)."""
    picked = [a for a in answers if not a.own_trusted and trusted(a, coverage, min_prob)]
    wrong = [a for a in picked if a.correct is False]
    unjudged = [a for a in picked if a.correct is None]
    return {
        "items": len(answers),
        "trusted": len(picked),
        "trusted_wrong": len(wrong),
        "trusted_unjudged": len(unjudged),
        "wrong": [{"key": a.key, "prompt": a.prompt, "text": a.text[:160], "note": a.note} for a in wrong],
        "unjudged": [{"key": a.key, "prompt": a.prompt, "text": a.text[:160], "note": a.note} for a in unjudged],
    }


def fit(answers: list[Grounded]) -> dict[str, Any] | None:
    """The (coverage, probability) trusting the most tuning answers with none wrong; ties: the stricter."""
    tuning = [a for a in answers if a.part == "tuning"]
    probs = sorted({round(a.min_token_prob, 6) for a in tuning if a.grounded and a.min_token_prob is not None})
    probs = [0.0, *probs]
    best = None
    for coverage in COVERAGES:
        for p in probs:
            result = outcome(tuning, coverage, p)
            if result["trusted_wrong"]:
                continue
            key = (result["trusted"] - result["trusted_unjudged"], coverage, p)
            if result["trusted"] >= MIN_TRUSTED and (best is None or key > best[0]):
                best = (key, coverage, p)
            break  # a higher probability only trusts fewer
    if best is None:
        return None
    _, coverage, p = best
    return {"min_coverage": round(coverage, 4), "min_token_prob": p}


def report_of(alias: str, answers: list[Grounded], settings: dict[str, Any]) -> dict[str, Any]:
    from bench import split
    from bench.titanic.live import machine_load

    rule = fit(answers)
    body: dict[str, Any] = {"benchmark": "reference", "model": alias, **settings, "split": split.describe()}
    body["machine"] = machine_load()
    body["fitted"] = rule
    parts = sorted({a.part for a in answers})
    for part in parts:
        chosen = [a for a in answers if a.part == part]
        body[part] = {
            "items": len(chosen),
            "grounded": sum(a.grounded for a in chosen),
            "right_answers": sum(a.correct is True for a in chosen),
            **({"rule": outcome(chosen, rule["min_coverage"], rule["min_token_prob"])} if rule else {}),
        }
    body["answers"] = [asdict(a) for a in answers]
    return body


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="qwen2.5-coder-0.5b")
    parser.add_argument("--parts", default="tuning,heldout", help="which frozen parts to ask (comma-separated)")
    parser.add_argument("--limit", type=int, default=None, help="first N items only (a quick look)")
    parser.add_argument(
        "--answers-from",
        type=Path,
        action="append",
        default=[],
        help="reuse the greedy answers of a trust report (the model's own) or of an earlier reference report",
    )
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    setup_django()
    import json

    from bench.reporting import write_report

    parts = set(args.parts.split(","))
    items = [i for i in [*load_items(), *near_miss_items()] if i.part in parts][: args.limit]
    cache = {}
    for path in args.answers_from:
        for key, known in cached_answers(path, args.model).items():
            cache.setdefault(key, {}).update(known)
    started = time.perf_counter()
    answers = answer_all(args.model, items, cache)
    alias = args.model
    settings = {
        "max_tokens": MAX_TOKENS,
        "wall_s": round(time.perf_counter() - started, 1),
        "answers_from": [str(p) for p in args.answers_from],
    }
    report = report_of(alias, answers, settings)
    path = write_report("reference", report, args.out)
    print(json.dumps({k: v for k, v in report.items() if k != "answers"}, indent=1)[:6000])
    print(f"report: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
