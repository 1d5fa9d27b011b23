#!/usr/bin/env python3
"""Distillation: after a LoRA is trained on cloud answers, does the local model answer those questions
(and paraphrases it never saw) correctly more often, and escalate less, without trusting wrong answers?

Data: mining/data/paraphrases.yaml (52 groups, short reference answers). For the first `--groups`
groups, the first `--seen` paraphrases answered with the reference (as the paid chain answered them)
are the training set; their other paraphrases are the held-out set. Two sets check for harm: the
groups' near misses (another country, number, negation: a sure answer equal to the trained one is a
false hit) and the paraphrases of the groups left out of training ("unrelated").

Both arms run in llama.cpp, greedy, as served: the base model, then base + the GGUF LoRA trained by
the production trainer (training/trainer.py, exported by training/gguf_lora.py). Correct: the gate's
rule (training/evaluation.py). Escalated: agent0 would not trust the answer (the base model's facts
never are; an adapter's are when it was sure of every token: routing.heads.agent0.distilled_trust,
measured here as if SWARM_DISTILLED_TRUST were on; it is off by default, and then every arm
escalates all of these), so the council says UNSURE and the paid chain answers; for these factual
prompts no other head answers.

Usage: python bench/distill.py [--groups 40] [--seen 3] [--max-steps N]; writes reports/distill_<date>.json.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # torch and llama.cpp share one process (training/hf.py)


def setup_django() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "swarm_site.settings")
    import django

    django.setup()


def build_sets(groups: list[dict[str, Any]], *, n_groups: int, seen: int) -> dict[str, list]:
    from training.datasets import Example

    trained, others = groups[:n_groups], groups[n_groups:]
    return {
        "trained": [Example(p, g["answer"], "cloud") for g in trained for p in g["paraphrases"][:seen]],
        "heldout": [Example(p, g["answer"], "cloud") for g in trained for p in g["paraphrases"][seen:]],
        # reference = the trained group's answer: "correct" here means a false hit (the wrong answer)
        "near_miss": [Example(p, g["answer"], "cloud") for g in trained for p in g.get("near_misses", [])],
        "unrelated": [Example(p, g["answer"], "cloud") for g in others for p in g["paraphrases"]],
    }


def _figures(name: str, answers: list[dict[str, Any]], key: str) -> dict[str, Any]:
    """A set's figures when `key` ("trusted": guarded trust; "sure_tokens": the token rule alone) says
    what agent0 would trust."""
    from training.evaluation import sure_false_hits

    total = len(answers) or 1
    trusted = [a for a in answers if a[key]]
    if name == "near_miss":  # agreeing with the trained group's answer is the mistake here
        return {"total": len(answers), "false_hits": sum(a["correct"] for a in answers),
                "sure_false_hits": sure_false_hits(answers, trusted=key),
                "escalation_rate": round(1 - len(trusted) / total, 4)}  # fmt: skip
    return {"total": len(answers), "accuracy": round(sum(a["correct"] for a in answers) / total, 4),
            "escalation_rate": round(1 - len(trusted) / total, 4),
            "trusted_wrong": sum(1 for a in trusted if not a["correct"]),
            "trusted_wrong_rate": round(sum(1 for a in trusted if not a["correct"]) / total, 4)}  # fmt: skip


def summarize(name: str, score, parts: dict[str, str]) -> dict[str, Any]:
    """The set's figures under guarded trust (what agent0 does), under the token rule alone, and per
    part of the tuning / held-out split (bench/split.py: a group's paraphrases and near misses go with it)."""
    body = {**_figures(name, score.answers, "trusted"), "seconds": round(score.seconds, 2)}
    body["token_rule_only"] = _figures(name, score.answers, "sure_tokens")
    from bench.split import PARTS

    body["by_part"] = {part: _figures(name, [a for a in score.answers if parts.get(a["prompt"]) == part], "trusted")
                       for part in PARTS}  # fmt: skip
    return body


def prompt_parts(groups: list[dict[str, Any]]) -> dict[str, str]:
    """Each paraphrase and near miss -> its group's part (tuning | heldout)."""
    from bench.split import paraphrase_parts

    by_group = paraphrase_parts(groups)
    return {p: by_group[str(g["id"])] for g in groups for p in [*g["paraphrases"], *g.get("near_misses", [])]}


def run(*, n_groups: int, seen: int, params_overrides: dict[str, Any], out_dir: Path) -> dict[str, Any]:
    from inference.backends.base import AdapterRef
    from inference.registry import active_model
    from inference.runtime import build_backend
    from mining.evaluation import load_groups
    from training import evaluation
    from training.gguf_lora import export_gguf_lora
    from training.record import TrainedRecord, build_record
    from training.trainer import TrainParams, train_lora

    groups = load_groups()
    parts = prompt_parts(groups)
    sets = build_sets(groups, n_groups=n_groups, seen=seen)
    record = TrainedRecord(build_record(sets["trained"]))
    params = TrainParams.from_settings(**params_overrides)
    started = time.perf_counter()
    result = train_lora(sets["trained"], params)
    spec = active_model()
    path = out_dir / "adapter.gguf"
    ref = AdapterRef(
        version="distill-bench", path=path, sha256=export_gguf_lora(result.model, path, base_path=spec.local_path())
    )
    train_s = time.perf_counter() - started
    del result.model
    backend = build_backend(spec)
    backend.load()
    arms: dict[str, dict[str, Any]] = {"base": {}, "adapter": {}}
    samples: list[dict[str, Any]] = []
    try:
        for name, examples in sets.items():  # both arms on one set, side by side
            base = evaluation.score(backend, examples, None, trust=True)
            tuned = evaluation.score(backend, examples, ref, trust=True, record=record)
            arms["base"][name], arms["adapter"][name] = summarize(name, base, parts), summarize(name, tuned, parts)
            samples += [{"set": name, **row} for row in tuned.answers[:4]]
    finally:
        backend.unload()
    return {
        "model": spec.alias, "device": result.device, "trained_groups": n_groups, "seen_per_group": seen,
        "sizes": {k: len(v) for k, v in sets.items()}, "params": params.as_dict(), "steps": result.steps,
        "stopped_by": result.stopped_by, "seconds_per_step": round(result.seconds_per_step, 3),
        "train_and_export_s": round(train_s, 1), "loss_first": round(result.losses[0], 4),
        "loss_last": round(result.losses[-1], 4), "arms": arms, "samples": samples,
        "method": __doc__.split("Usage:")[0].strip(),
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--groups", type=int, default=40)
    parser.add_argument("--seen", type=int, default=3)
    parser.add_argument("--max-steps", type=int, default=None)
    parser.add_argument("--rank", type=int, default=None)
    parser.add_argument("--batch-size", type=int, default=None)
    args = parser.parse_args()
    setup_django()
    from bench.reporting import write_report

    overrides = {k: v for k, v in {"max_steps": args.max_steps, "rank": args.rank,
                                   "batch_size": args.batch_size}.items() if v is not None}  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="swarm-distill-") as tmp:
        report = run(n_groups=args.groups, seen=args.seen, params_overrides=overrides, out_dir=Path(tmp))
    write_report("distill", report)


if __name__ == "__main__":
    main()
