"""Score an adapter the way it will serve: llama.cpp, the GGUF base plus the GGUF LoRA, greedy.

An answer is correct when it agrees with the reference (routing.vote.answers_agree: same text, or a
short reference stated inside the answer, numbers compared by value) or, for long references,
when their content words overlap with F1 >= 0.7.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from typing import Any

from inference.backends.base import AdapterRef, Backend
from inference.registry import ModelTrust
from routing.vote import answers_agree
from training.datasets import Example
from training.record import TrainedRecord

MAX_TOKENS = 64
F1_CORRECT = 0.7
_WORD = re.compile(r"[a-z0-9]+")


def token_f1(reference: str, answer: str) -> float:
    ref, out = _WORD.findall(reference.casefold()), _WORD.findall(answer.casefold())
    if not ref or not out:
        return 0.0
    common = sum(min(ref.count(w), out.count(w)) for w in set(ref))
    if common == 0:
        return 0.0
    precision, recall = common / len(out), common / len(ref)
    return 2 * precision * recall / (precision + recall)


def is_correct(reference: str, answer: str) -> bool:
    return answers_agree(reference, answer) or token_f1(reference, answer) >= F1_CORRECT


@dataclass
class Score:
    adapter: str
    correct: int = 0
    total: int = 0
    trusted: int = 0  # answered locally (agent0's distilled trust), not escalated
    trusted_wrong: int = 0
    calibrated: int = 0  # trusted under the base model's calibrated rule (`score(..., calibrated=rule)`)
    calibrated_wrong: int = 0
    seconds: float = 0.0
    answers: list[dict[str, Any]] = field(default_factory=list)

    @property
    def accuracy(self) -> float:
        return self.correct / self.total if self.total else 0.0

    def as_dict(self, *, with_answers: bool = False) -> dict[str, Any]:
        total = self.total or 1
        body = {"adapter": self.adapter, "correct": self.correct, "total": self.total,
                "accuracy": round(self.accuracy, 4), "escalation_rate": round(1 - self.trusted / total, 4),
                "trusted_wrong_rate": round(self.trusted_wrong / total, 4),
                "calibrated": self.calibrated, "calibrated_wrong": self.calibrated_wrong,
                "seconds": round(self.seconds, 2)}  # fmt: skip
        if with_answers:
            body["answers"] = self.answers
        return body


def sure_false_hits(answers: list[dict[str, Any]], *, trusted: str = "trusted") -> int:
    """Near misses (scored against the trained answer) given the trained answer and trusted: the
    confidently wrong answers of a near-miss set. `trusted` names the answers' verdict to count by."""
    return sum(1 for a in answers if a[trusted] and a["correct"])


def score(
    backend: Backend, examples: list[Example], adapter: AdapterRef | None, *, trust: bool | None = None,
    record: TrainedRecord | None = None, calibrated: ModelTrust | None = None,
) -> Score:  # fmt: skip
    """Greedy answers of `backend` with `adapter` (None: the base model) against the references.

    Each answer also says whether agent0 would trust it without escalating (`trusted`: guarded
    distilled trust, routing.heads.agent0.distilled_trust: sure of every token and near a prompt of
    `record`, the adapter's training record, by default the stored one; `trust` None follows
    SWARM_DISTILLED_TRUST and the record's gate verdict, True measures the rule as if both allowed it).
    With `calibrated` (the base model's rule), each answer also says whether that rule trusts it
    (`calibrated`), read on this adapter's answers as if its gate had allowed it."""
    from routing.heads.agent0 import SYSTEM_PROMPT, calibrated_trust, distilled_trust, sure_tokens

    backend.use_adapter(adapter)
    result = Score(adapter=adapter.version if adapter else "base")
    started = time.perf_counter()
    for example in examples:
        messages = [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": example.prompt}]
        gen = backend.generate(messages, max_tokens=MAX_TOKENS, temperature=0.0)
        ok = is_correct(example.answer, gen.text)
        result.correct += ok
        result.total += 1
        verdict = distilled_trust(gen, adapter=adapter.version if adapter else None, prompt=example.prompt,
                                  record=record, enabled=trust)  # fmt: skip
        trusted = verdict.trusted
        similarity = round(verdict.match.similarity, 4) if verdict.match else None
        result.trusted += trusted
        result.trusted_wrong += trusted and not ok
        by_rule = calibrated is not None and calibrated_trust(gen, trust=calibrated, adapter=None)
        result.calibrated += by_rule
        result.calibrated_wrong += by_rule and not ok
        result.answers.append({"prompt": example.prompt, "reference": example.answer, "answer": gen.text,
                               "correct": ok, "trusted": trusted, "token_confidence": gen.token_confidence,
                               "min_token_prob": gen.min_token_prob, "sure_tokens": sure_tokens(gen),
                               "why_not": verdict.reason, "similarity": similarity,
                               "calibrated": by_rule})  # fmt: skip
    result.seconds = time.perf_counter() - started
    return result
