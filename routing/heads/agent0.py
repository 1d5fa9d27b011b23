"""agent0: the local LLM as a generalist. Trusted for small talk (routing/chat.py); elsewhere only on measured evidence.

Its factual answers are unverified (below the vote's floor) unless the model was sure of every token
under a rule calibrated for that model (`calibrated_trust`, bench/trust.py), or a distilled adapter
answers what it learned, near a prompt it was trained on (`distilled_trust`), or, asked again with
WordNet's nearest notes before the question, the base model's answer stands on one note and repeats
what it said on its own (`grounded_answer`, routing/reference.py, under the model's fitted
`trust.reference`). An adapter moves what the model is sure of, so the calibrated rule does not hold
for its answers (unless its gate measured that it does); when an adapter's answer is not trusted, the
base model answers alone and its answer is trusted under the calibrated rule as it would be with no
adapter on (the ballot's `base_model` evidence)."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

from routing import reference
from routing.chat import ChatVerdict, classify, load_classifier, reply_problem
from routing.heads.base import Ballot, Head, HeadContext
from routing.heads.code import is_code_request
from routing.stubguard import stub_marker
from training.record import Match, TrainedRecord, record_for

log = logging.getLogger(__name__)

SYSTEM_PROMPT = "You are Swarm, a concise and helpful assistant. Answer in a few sentences."
# Small talk gets what Swarm is as well: asked "who are you?" or "what can you do?" under SYSTEM_PROMPT
# alone, Qwen2.5-Coder described a container orchestrator or a social network, and small talk is trusted
# on the classifier's precision. The facts follow SYSTEM_PROMPT word for word (the model's prompt cache
# keeps the common prefix); questions keep SYSTEM_PROMPT alone, under which the calibrated trust rule
# (config/models.yaml) was fitted. Chosen on the suite's tuning part: its 17 small-talk items all pass
# (16 with SYSTEM_PROMPT alone: chat-033, Docker Swarm; 16 with a rewritten prompt: chat-011).
CHAT_SYSTEM_PROMPT = (
    SYSTEM_PROMPT + " You run on small language models on this computer; Swarm is not container or cluster software."
)
# What a prompt must fit in the model's context beside (routing.services checks it before any head runs).
LONGEST_SYSTEM_PROMPT = max(SYSTEM_PROMPT, CHAT_SYSTEM_PROMPT, key=len)

# Small talk (routing/chat.py's classifier) is trusted at the classifier's held-out precision
# (config/chat_classifier.json), when the reply passes routing.chat.reply_problem; otherwise at this:
UNTRUSTED_CHAT_CONFIDENCE = 0.3
UNVERIFIED_CONFIDENCE = 0.45  # a 135M model's unchecked claim: below the floor unless others agree
# A distilled adapter answering what it learned: every token chosen with high probability, and the
# prompt near one it was trained on (training/record.py). Only with an adapter (trained on verified
# and paid answers) and greedy decoding (bench/distill.py measures how often the rule trusts a wrong answer).
DISTILLED_CONFIDENCE = 0.8
# The base model's own answer, under its calibrated trust rule (config/models.yaml `trust`): a rule
# bench/trust.py fitted on the tuning part with no wrong answer trusted, and checked on the held-out part.
CALIBRATED_CONFIDENCE = 0.8
# The base model's answer read from WordNet's notes, standing on one note that covers the question, under
# the model's fitted `trust.reference` rule (routing/reference.py, bench/reference.py).
GROUNDED_CONFIDENCE = 0.8


@dataclass(frozen=True)
class DistilledTrust:
    """agent0's verdict on a distilled adapter's answer: trusted, and the evidence either way."""

    trusted: bool
    reason: str | None = None  # why not
    match: Match | None = None  # how near the prompt is to what the adapter learned

    def as_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {"trusted": self.trusted, "reason": self.reason}
        if self.match is not None:
            body["match"] = self.match.as_dict()
        return body


def sure_tokens(gen) -> bool:
    """Greedy, finished, and sure of every token (SWARM_DISTILLED_MIN_TOKEN_CONFIDENCE / _PROB)."""
    from django.conf import settings

    if gen.token_confidence is None or gen.min_token_prob is None:
        return False
    return (
        gen.token_confidence >= settings.SWARM_DISTILLED_MIN_TOKEN_CONFIDENCE
        and gen.min_token_prob >= settings.SWARM_DISTILLED_MIN_TOKEN_PROB
        and gen.finish_reason == "stop"
    )


def distilled_trust(
    gen, *, adapter: str | None, prompt: str, record: TrainedRecord | None = None, enabled: bool | None = None
) -> DistilledTrust:
    """Guarded distilled trust: an adapter's answer (see DISTILLED_CONFIDENCE) is trusted when it was
    sure of every token AND the prompt is near a prompt it was trained on, passing that group's
    false-hit guard (training/record.py). `record` defaults to the adapter's own (AdapterVersion.record).

    `enabled` None: SWARM_DISTILLED_TRUST (on by default) and the adapter's gate said its guarded
    trust held (record.trust); True measures the rule as if both were so (the gate, the benchmark)."""
    from django.conf import settings

    if not adapter:
        return DistilledTrust(False, "the base model")
    if enabled is None and not settings.SWARM_DISTILLED_TRUST:
        return DistilledTrust(False, "SWARM_DISTILLED_TRUST is off")
    if not sure_tokens(gen):
        return DistilledTrust(False, "not sure of every token")
    if record is None:
        record = record_for(adapter)
    if record is None:
        return DistilledTrust(False, f"{adapter} has no training record")
    if enabled is None and not record.trust:
        return DistilledTrust(False, f"{adapter}'s gate did not let its answers be trusted")
    try:
        match = record.match(prompt)
    except (RuntimeError, OSError, ValueError) as exc:  # no embedding model
        return DistilledTrust(False, f"the prompt could not be matched: {type(exc).__name__}: {exc}")
    return DistilledTrust(match.near, match.reason, match)


def calibrated_trust(gen, *, trust, adapter: str | None, record: TrainedRecord | None = None) -> bool:
    """True when the model's greedy answer meets the base model's calibrated rule (`trust`:
    inference.registry.ModelTrust).

    The rule was fitted on the base model: an adapter changes what the model is sure of, so under an
    adapter it holds only when that adapter's gate measured it and found no wrong answer trusted
    (its training record says `calibrated`; `record` defaults to the adapter's own). Only greedy
    decoding (the evidence is the probability of each chosen token), only a finished answer, and never
    a reply that ends in a question: a small model sure of echoing the question back ("How do I read
    a file in Python?") has answered nothing."""
    if trust is None or not trust.has_own_rule:
        return False
    if gen.finish_reason != "stop" or not gen.text.strip() or gen.text.rstrip().endswith("?"):
        return False
    if adapter:
        record = record if record is not None else record_for(adapter)
        if record is None or not record.calibrated:
            return False
    evidence = trust_evidence(gen, trust.rule)
    return evidence is not None and evidence >= trust.threshold


@dataclass(frozen=True)
class GroundedAnswer:
    """The base model's answer with WordNet's notes before the question, and whether it is trusted."""

    gen: Any  # inference.backends.base.Generation
    grounding: reference.Grounding
    agreed: bool  # the model's own answer already said what this one adds
    trusted: bool

    def as_dict(self) -> dict[str, Any]:
        return {
            "trusted": self.trusted,
            "reply": self.gen.text[:200],
            "agreed": self.agreed,
            **self.grounding.as_dict(),
        }


def grounded_answer(prompt: str, ctx: HeadContext, *, own: str) -> GroundedAnswer | None:
    """Ask the base model again with the notes nearest the question (routing/reference.py), when the model has a
    fitted `trust.reference` rule, the prompt is a short question with notes near it, and time is left; `own`
    is the model's answer without the notes, which must already say what the grounded one adds.
    None: not asked."""
    rule = ctx.trust.reference if ctx.trust else None
    generate = ctx.base_generate if ctx.adapter else ctx.generate
    if rule is None or generate is None or not reference.asks_for_fact(prompt):
        return None
    if ctx.deadline is not None and time.perf_counter() >= ctx.deadline:
        return None
    try:
        notes = reference.notes_for(prompt)
    except (ImportError, OSError, ValueError) as exc:  # WordNet or scikit-learn missing
        log.warning("the reference notes are unavailable: %s: %s", type(exc).__name__, exc)
        return None
    if not notes:
        return None
    gen = generate(reference.messages(prompt, notes), max_tokens=ctx.max_tokens, temperature=0.0)
    found = reference.grounding(prompt, gen.text, notes)
    agreed = reference.agrees(prompt, gen.text, own)
    trusted = reference.trusted_grounding(
        found.grounded,
        agreed,
        found.coverage,
        gen.min_token_prob,
        gen.finish_reason,
        gen.text,
        min_coverage=rule.min_coverage,
        min_token_prob=rule.min_token_prob,
    )
    return GroundedAnswer(gen, found, agreed, trusted and not stub_marker(gen.text))


def trust_evidence(gen, rule: str) -> float | None:
    """What a trust rule (inference.registry.TRUST_RULES) compares with its threshold; None: not measured."""
    return gen.min_token_prob if rule == "min_token_prob" else gen.token_confidence


def is_chat(prompt: str) -> ChatVerdict:
    """Small talk or not, by the classifier; not small talk when it cannot run (logged)."""
    try:
        return classify(prompt)
    except (RuntimeError, OSError, ValueError, KeyError) as exc:  # no embedding model or classifier file
        log.warning("the small-talk classifier is unavailable: %s: %s", type(exc).__name__, exc)
        return ChatVerdict(chat=False, probability=None)


def chat_confidence(reply: str, prompt: str = "") -> tuple[float, str | None]:
    """(confidence, why not trusted) of a small-talk reply to `prompt`."""
    problem = reply_problem(reply, prompt)
    return (UNTRUSTED_CHAT_CONFIDENCE, problem) if problem else (load_classifier().confidence, None)


class Agent0Head(Head):
    name = "agent0"
    skill_type = "agent0"
    timeout_s = 30.0

    def applies(self, prompt: str) -> bool:
        return not is_code_request(prompt)  # the code head asks the same model, and tests what it writes

    def answer(self, prompt: str, ctx: HeadContext) -> Ballot:
        started = time.perf_counter()
        if ctx.generate is None:
            return self.abstain(started, "no local model")
        verdict = is_chat(prompt)
        chat = verdict.chat
        # Small talk is agent0's to answer, so its tokens can go to the client as they come.
        generate = ctx.stream if chat and ctx.stream else ctx.generate
        system = CHAT_SYSTEM_PROMPT if chat else SYSTEM_PROMPT
        messages = [{"role": "system", "content": system}, {"role": "user", "content": prompt}]
        gen = generate(messages, max_tokens=ctx.max_tokens, temperature=ctx.temperature)
        confidence, problem = chat_confidence(gen.text, prompt) if chat else (UNVERIFIED_CONFIDENCE, None)
        guarded = None if chat or not ctx.adapter else distilled_trust(gen, adapter=ctx.adapter, prompt=prompt)
        distilled = guarded is not None and guarded.trusted
        calibrated = not chat and not distilled and calibrated_trust(gen, trust=ctx.trust, adapter=ctx.adapter)
        adapter, adapter_reply = ctx.adapter, None
        has_rule = ctx.trust is not None and ctx.trust.has_own_rule
        if not chat and not distilled and not calibrated and ctx.adapter and ctx.base_generate and has_rule:
            # The adapter's answer is not trusted, and an adapter moves what the model is sure of: ask the
            # base model, whose own sure answers the calibrated rule trusts as they would be without an adapter.
            base = ctx.base_generate(messages, max_tokens=ctx.max_tokens, temperature=ctx.temperature)
            if calibrated_trust(base, trust=ctx.trust, adapter=None):
                adapter_reply, gen, adapter, calibrated = gen.text[:200], base, None, True
        grounded = None
        if not chat and not distilled and not calibrated:
            grounded = grounded_answer(prompt, ctx, own=gen.text)
            if grounded is not None and grounded.trusted:
                gen, adapter = grounded.gen, None
        if distilled:
            confidence = DISTILLED_CONFIDENCE
        elif calibrated:
            confidence = CALIBRATED_CONFIDENCE
        elif grounded is not None and grounded.trusted:
            confidence = GROUNDED_CONFIDENCE
        if not gen.text or stub_marker(gen.text):
            confidence = 0.0
        elif gen.finish_reason == "length" and not chat:
            confidence *= 0.8
        return self.ballot(
            gen.text,
            confidence,
            started,
            chat=chat,
            chat_probability=verdict.probability,
            chat_problem=problem,
            streamed=generate is ctx.stream,
            finish_reason=gen.finish_reason,
            prompt_tokens=gen.prompt_tokens,
            completion_tokens=gen.completion_tokens,
            token_confidence=gen.token_confidence,
            adapter=adapter,  # the adapter that wrote this answer (None: the base model)
            distilled=distilled,
            **({"distilled_trust": guarded.as_dict()} if guarded else {}),
            calibrated=calibrated,
            **({"grounded": grounded.as_dict()} if grounded else {}),
            min_token_prob=gen.min_token_prob,
            **({} if adapter_reply is None else {"base_model": {"adapter": ctx.adapter, "reply": adapter_reply}}),
        )
