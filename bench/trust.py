#!/usr/bin/env python3
"""When may the council trust what the local model says? Calibrated on the tuning part, checked on the held-out.

agent0 answers every prompt no exact head took. Its factual answers are trusted (confidence above the
vote's floor, so no paid call) only on evidence that was measured, never on a list of phrasings:

- token confidence: greedy decoding, the least probability of any token the model chose
  (`Generation.min_token_prob`) and the geometric mean of them (`token_confidence`);
- agreement: a second, different model gives the same answer (the vote's agreement rule,
  routing.vote.answers_agree).

Data (nothing here is the Titanic suite's held-out part): the paraphrase groups of
mining/data/paraphrases.yaml (one reference answer per group, 4-5 wordings) and the Titanic suite's
factual items, each in its frozen part (bench/split.py). Correct: training.evaluation.is_correct for
the paraphrases (the adapter gate's rule), the suite's own scorer for its items.

For each model: every answer with its evidence; for each rule (min token probability at or above t,
the mean at or above t, either with agreement) the lowest threshold under which no tuning answer it
would trust is wrong, and what that threshold trusts, and gets wrong, on the held-out part. The rule
that trusts the most tuning answers with none wrong is recommended; its threshold is what the
registry's `trust` block (config/models.yaml) may carry, citing this report.

Usage: python -m bench.trust [--models a,b] [--limit N] [--out FILE]; writes reports/trust_<date>.json.
`--rescore REPORT` judges an earlier report's answers again (greedy answers do not change, the
correctness rule may) and fits the rules anew, without running a model.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

MAX_TOKENS = 64
MIN_TRUSTED = 5  # a rule must trust at least this many tuning answers to be recommended


@dataclass(frozen=True)
class Item:
    key: str  # unique: "<set>:<id>"
    prompt: str
    reference: str
    part: str
    kind: str
    scorer: str = ""  # a Titanic scorer name; "" -> training.evaluation.is_correct
    args: tuple[tuple[str, Any], ...] = ()


@dataclass
class Answer:
    model: str
    key: str
    part: str
    kind: str
    text: str
    correct: bool
    min_token_prob: float | None
    token_confidence: float | None
    finish_reason: str
    latency_ms: float
    agrees: bool | None = None  # with the other model's answer (None with one model)


def setup_django() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "swarm_site.settings")
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    import django

    django.setup()


def load_items() -> list[Item]:
    """Paraphrase-group wordings and the suite's factual items, each with its frozen part."""
    from bench import split
    from bench.titanic.suite import load_suite

    items = []
    groups = split.load_paraphrase_groups()
    group_part = split.paraphrase_parts(groups)
    for group in groups:
        for n, prompt in enumerate(group["paraphrases"]):
            items.append(
                Item(
                    f"paraphrases:{group['id']}:{n}",
                    prompt,
                    str(group["answer"]),
                    group_part[group["id"]],
                    f"paraphrase-{group.get('kind', 'fact')}",
                )
            )
    suite = load_suite()
    suite_part = suite.parts()
    for item in suite.items:
        if item.category != "factual":
            continue
        items.append(
            Item(
                f"titanic:{item.id}",
                item.prompt,
                str(item.reference),
                suite_part[item.id],
                "titanic-factual",
                item.scorer,
                tuple(sorted((item.args or {}).items())),
            )
        )
    return items


def is_right(item: Item, text: str) -> bool:
    if item.scorer:
        from bench.titanic.scorers import score

        return score(item.scorer, text, item.reference, dict(item.args)).passed
    from training.evaluation import is_correct

    return is_correct(item.reference, text)


def answer_all(alias: str, items: list[Item], progress: Callable[[int], None] | None = None) -> list[Answer]:
    """Each item asked as agent0 asks it: its system prompt, greedy, MAX_TOKENS."""
    from inference.registry import load_registry
    from inference.runtime import build_backend
    from routing.heads.agent0 import SYSTEM_PROMPT

    backend = build_backend(load_registry().get(alias))
    backend.load()
    answers = []
    try:
        for n, item in enumerate(items):
            messages = [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": item.prompt}]
            gen = backend.generate(messages, max_tokens=MAX_TOKENS, temperature=0.0)
            answers.append(
                Answer(
                    alias,
                    item.key,
                    item.part,
                    item.kind,
                    gen.text,
                    is_right(item, gen.text),
                    gen.min_token_prob,
                    gen.token_confidence,
                    gen.finish_reason,
                    gen.latency_ms,
                )
            )
            if progress:
                progress(n + 1)
    finally:
        backend.unload()
    return answers


# --- rules and thresholds ---------------------------------------------------------------------------

RULES: dict[str, tuple[str, bool]] = {
    # name: (the registry's rule whose evidence is compared with the threshold, whether the other model must agree)
    "min_token_prob": ("min_token_prob", False),
    "token_confidence": ("token_confidence", False),
    "min_token_prob+agreement": ("min_token_prob", True),
    "token_confidence+agreement": ("token_confidence", True),
}


def evidence(answer: Answer, rule: str) -> float:
    """The answer's evidence under `rule`, as agent0 reads it (-1 when not measured)."""
    from routing.heads.agent0 import trust_evidence

    value = trust_evidence(answer, RULES[rule][0])
    return -1.0 if value is None else value


def trusted(answer: Answer, rule: str, threshold: float) -> bool:
    """Whether agent0 would trust `answer` under `rule` at `threshold` (its own check, routing.heads.agent0)."""
    from inference.registry import ModelTrust
    from routing.heads.agent0 import calibrated_trust

    base_rule, needs_agreement = RULES[rule]
    if needs_agreement and not answer.agrees:
        return False
    return calibrated_trust(answer, trust=ModelTrust(base_rule, threshold, report=""), adapter=None)


def outcome(answers: Iterable[Answer], rule: str, threshold: float) -> dict[str, Any]:
    answers = list(answers)
    picked = [a for a in answers if trusted(a, rule, threshold)]
    wrong = [a for a in picked if not a.correct]
    total = len(answers) or 1
    return {
        "items": len(answers),
        "trusted": len(picked),
        "trusted_right": len(picked) - len(wrong),
        "trusted_wrong": len(wrong),
        "coverage": round(len(picked) / total, 4),
        "confidently_wrong_rate": round(len(wrong) / total, 4),
        "precision": round((len(picked) - len(wrong)) / len(picked), 4) if picked else None,
        "wrong_examples": [{"key": a.key, "text": a.text[:120]} for a in wrong[:5]],
    }


def fit(answers: list[Answer], rule: str) -> float | None:
    """The lowest threshold under which no tuning answer the rule trusts is wrong (None: none exists)."""
    candidates = sorted({round(evidence(a, rule), 6) for a in answers if a.part == "tuning"})
    for threshold in candidates:
        if threshold < 0:
            continue
        result = outcome((a for a in answers if a.part == "tuning"), rule, threshold)
        if result["trusted_wrong"] == 0:
            return threshold if result["trusted"] >= MIN_TRUSTED else None
    return None


def calibrate(answers: list[Answer]) -> dict[str, Any]:
    """Per rule: its fitted threshold and what it does on each part; the recommended rule."""
    has_agreement = any(a.agrees is not None for a in answers)
    rules = {}
    for rule, (_, needs_agreement) in RULES.items():
        if needs_agreement and not has_agreement:
            continue
        threshold = fit(answers, rule)
        body: dict[str, Any] = {"threshold": threshold}
        if threshold is not None:
            for part in ("tuning", "heldout"):
                body[part] = outcome((a for a in answers if a.part == part), rule, threshold)
        rules[rule] = body
    fitted = {r: b for r, b in rules.items() if b["threshold"] is not None}
    best = max(fitted, key=lambda r: (fitted[r]["tuning"]["trusted"], -fitted[r]["threshold"]), default=None)
    return {"rules": rules, "recommended": {"rule": best, **fitted[best]} if best else None}


def accuracy(answers: list[Answer]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for part in ("tuning", "heldout"):
        chosen = [a for a in answers if a.part == part]
        out[part] = {
            "n": len(chosen),
            "correct": sum(a.correct for a in chosen),
            "accuracy": round(sum(a.correct for a in chosen) / len(chosen), 4) if chosen else None,
        }
    kinds = sorted({a.kind for a in answers})
    out["by_kind"] = {
        k: round(sum(a.correct for a in answers if a.kind == k) / sum(a.kind == k for a in answers), 4) for k in kinds
    }
    return out


def _progress(alias: str, total: int) -> Callable[[int], None]:
    return lambda n: print(f"\r{alias}: {n}/{total}", end="", file=sys.stderr, flush=True)


def run(models: list[str], limit: int | None) -> dict[str, Any]:
    from bench.reporting import percentile
    from routing.vote import answers_agree

    items = load_items()[:limit] if limit else load_items()
    per_model: dict[str, list[Answer]] = {}
    for alias in models:
        started = time.perf_counter()
        per_model[alias] = answer_all(alias, items, progress=_progress(alias, len(items)))
        print(f"\r{alias}: {len(items)} answers in {time.perf_counter() - started:.0f} s", file=sys.stderr)
    if len(models) == 2:
        first, second = (per_model[m] for m in models)
        for a, b in zip(first, second, strict=True):
            a.agrees = b.agrees = answers_agree(a.text, b.text)
    latency = {}
    for alias, answers in per_model.items():
        latencies = [a.latency_ms for a in answers]
        latency[alias] = {"p50": round(percentile(latencies, 0.5), 1), "p95": round(percentile(latencies, 0.95), 1)}
    return report_of(per_model, items=len(items), max_tokens=MAX_TOKENS, latency_ms=latency)


def report_of(
    per_model: dict[str, list[Answer]], *, items: int, max_tokens: int, latency_ms: dict[str, dict[str, float]]
) -> dict[str, Any]:
    """The report on judged answers: the run's settings, then per model its accuracy, latency, each
    rule's calibration and every answer."""
    from bench import split
    from bench.titanic.live import machine_load

    report: dict[str, Any] = {
        "benchmark": "trust",
        "max_tokens": max_tokens,
        "min_trusted": MIN_TRUSTED,
        "split": split.describe(),
        "machine": machine_load(),
        "items": items,
        "models": {},
    }
    for alias, answers in per_model.items():
        report["models"][alias] = {
            "accuracy": accuracy(answers),
            "latency_ms": latency_ms[alias],
            "calibration": calibrate(answers),
            "answers": [asdict(a) for a in answers],
        }
    return report


def rescore(path: Path) -> dict[str, Any]:
    """`path`'s report with every stored answer judged again by is_right and every rule fitted anew."""
    import json

    earlier = json.loads(path.read_text())
    items = {item.key: item for item in load_items()}
    per_model: dict[str, list[Answer]] = {}
    changed: dict[str, int] = {}
    for alias, body in earlier["models"].items():
        per_model[alias] = [Answer(**a) for a in body["answers"] if a["key"] in items]
        changed[alias] = 0
        for a in per_model[alias]:
            item = items[a.key]
            a.part = item.part
            right = is_right(item, a.text)
            changed[alias] += right != a.correct
            a.correct = right
    latency = {alias: body["latency_ms"] for alias, body in earlier["models"].items()}
    report = report_of(per_model, items=earlier["items"], max_tokens=earlier["max_tokens"], latency_ms=latency)
    report["rescored_from"] = str(path.relative_to(ROOT) if path.is_relative_to(ROOT) else path)
    for alias, n in changed.items():
        report["models"][alias]["judged_differently"] = n
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--models",
        default="",
        help="comma-separated registry aliases (default: every model present, not prefetch: false)",
    )
    parser.add_argument("--limit", type=int, default=None, help="first N items only (a quick look)")
    parser.add_argument("--rescore", type=Path, default=None, help="judge REPORT's stored answers again; no model")
    parser.add_argument("--out", type=Path, default=None, help="where to write (default: reports/trust_<date>.json)")
    args = parser.parse_args(argv)
    setup_django()
    from bench.humaneval import prefetched_models
    from bench.reporting import write_report

    if args.rescore:
        report = rescore(args.rescore.resolve())
    else:
        report = run([m for m in args.models.split(",") if m] or prefetched_models(), args.limit)
    path = write_report("trust", report, args.out)
    for alias, body in report["models"].items():
        rec = body["calibration"]["recommended"]
        acc = body["accuracy"]
        line = f"{alias}: accuracy tuning {acc['tuning']['accuracy']} heldout {acc['heldout']['accuracy']}; "
        if rec:
            line += (
                f"recommended {rec['rule']} >= {rec['threshold']}: tuning trusts {rec['tuning']['trusted']} "
                f"(0 wrong), heldout trusts {rec['heldout']['trusted']}/{rec['heldout']['items']} with "
                f"{rec['heldout']['trusted_wrong']} wrong"
            )
        else:
            line += "no rule trusts any answer without a wrong one on the tuning part"
        print(line)
    print(f"report: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
