"""Small talk, told apart by a classifier on the MiniLM embeddings, not by a list of phrasings.

The classifier (config/chat_classifier.json) is a logistic regression over the sentence embeddings
the project already runs (mining/embeddings.py), trained by `python -m bench.chat_classifier` on the
dialogue corpus of the pinned `chatterbot-corpus` package: the user turns of its small-talk
categories against those of its question categories, split into a tuning and a held-out part by the
project's one rule (bench/split.py). Its threshold is fitted on the tuning part (cross-validated, so
no prompt is judged by a model that saw it) for precision; the held-out precision it then measured
is the confidence a chat reply gets (`ChatClassifier.confidence`), if the reply itself passes
`reply_problem`: a reply that invents a persona, or is empty, or answers a question about the user's
own life (which only the user can know: any answer is made up), is not trusted.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from django.conf import settings

MAX_CHAT_WORDS = 16  # longer prompts are requests, not small talk: no embedding spent on them
ASSISTANT_NAME = "Swarm"

# The assistant addressed by its name ("thanks, Swarm!", "hi swarm", "Swarm, how are you?"): the corpus the
# classifier learnt from never names the bot, and the unknown word drags a plain thank-you below the threshold
# ("thank you so much, Swarm" 0.23, without the name 0.997). The name is an address when it is set off: first and
# followed by a comma, colon or "!", after the first word and followed by a comma, or last after a comma or after a
# short phrase (at most MAX_ADDRESS_WORDS words). Never after a determiner or a preposition ("what is a swarm?",
# "tell me about the swarm"): there it is a noun of the sentence.
MAX_ADDRESS_WORDS = 3
_NAME = re.escape(ASSISTANT_NAME)
_ADDRESS_FIRST = re.compile(rf"^\s*{_NAME}\s*[,:!]\s*(?=\S)", re.IGNORECASE)
_ADDRESS_SECOND = re.compile(rf"^(\s*[\w']+)\s+{_NAME}\s*,\s*(?=\S)", re.IGNORECASE)
_ADDRESS_LAST = re.compile(rf"^(.*?\S)(,|\s*,\s+|\s+){_NAME}\s*([.!?]*)\s*$", re.IGNORECASE | re.DOTALL)
_NOT_BEFORE_ADDRESS = frozenset({
    "a", "an", "the", "this", "that", "these", "those", "my", "your", "our", "their", "his", "her", "its", "some",
    "any", "every", "each", "no", "which", "what", "whose", "of", "about", "in", "into", "on", "at", "for", "to",
    "with", "from", "by", "like", "as", "than", "under", "over", "near",
})  # fmt: skip

# "I'm Dr. Elena Zephyra", "My name is Max": a name the assistant gave itself. Swarm is its name; the
# other capitalised words that may follow "I'm" mid-sentence are not names.
_PERSONA = re.compile(r"\b(?:I'm|I am|[Mm]y name is|[Cc]all me)\s+(?:(?:Dr|Mr|Mrs|Ms|Prof)\.?\s+)?([A-Z][a-z]+)")
_NOT_NAMES = frozenset({"Swarm", "AI", "A", "An", "The", "Here", "Not", "Just", "So", "Sorry", "Happy", "Glad", "Fine",
                        "Good", "Doing", "Well", "Great", "Always", "Also", "Really", "Very", "Still", "Only", "Your",
                        "Afraid", "Sure", "Ready", "Excited", "Delighted", "Thrilled", "Pleased", "Okay", "OK",
                        "Alright", "Going", "Feeling", "Designed", "Built", "Made", "Trained", "Programmed",
                        "Swarm's", "Swarmbot"})  # fmt: skip
# A reply that declines: "I'm sorry, but I can't assist with that request." (to "see you"). A model that
# refuses small talk has not answered it, however sure the classifier is that the prompt was small talk.
_REFUSAL = re.compile(
    r"\b(?:I\s+(?:can ?not|can[\u2019']t|am unable to|'m unable to|am not able to|'m not able to|won't|will not)"
    r"\s+(?:assist|help|comply|respond|answer|do that|fulfil+|provide|engage)|I must decline)\b",
    re.IGNORECASE,
)

# A question about the user's own life: "What did I eat this morning?", "What is my bank balance?", "What is in
# the photo I just sent you?", "Tell me the time I will wake up tomorrow": the user's past, plans and belongings.
# A question or "tell me" whose clause has the user as the subject of a past or future verb, or as a possessor.
# Generic-you questions ("What do I need to bake bread?", "How do I make tea?") are not matched: present tense
# (an "-ed" after an "e" is no past tense: need, feed).
_ABOUT_THE_USER = re.compile(
    r"^\s*(?:(?:and|so|but|ok|okay|hey)\b[\s,]*)?"
    r"(?:what|where|when|who|whom|which|why|how(?:\s+(?:many|much|old|long))?|tell\s+me|guess)\b"
    r"[^?.!]*?(?:\b(?:did|was|were|had)\s+i\b|\b(?:is|was|are|were)\s+my\b|'s\s+my\b"
    r"|\bi\s+(?:just\s+|already\s+)?(?:will|'ll|\w*[^e\W]ed|sent|ate|had|did|said|told|wrote|went|saw|bought|got|made|took"
    r"|gave|left|put|kept|lost|met|ran|slept|woke|drank|heard|thought|felt|wore)\b)",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class ChatClassifier:
    coef: tuple[float, ...]
    intercept: float
    threshold: float  # probability at or above which a prompt is small talk
    confidence: float  # held-out precision at that threshold: what a chat reply is trusted at
    source: str

    def probability(self, vector: Any) -> float:
        z = self.intercept + sum(c * float(v) for c, v in zip(self.coef, vector, strict=True))
        return 1.0 / (1.0 + math.exp(-z))


def classifier_path() -> Path:
    return Path(settings.BASE_DIR) / "config" / "chat_classifier.json"


@lru_cache(maxsize=1)
def load_classifier(path: Path | None = None) -> ChatClassifier:
    data = json.loads((path or classifier_path()).read_text())
    return ChatClassifier(coef=tuple(float(c) for c in data["coef"]), intercept=float(data["intercept"]),
                          threshold=float(data["threshold"]), confidence=float(data["heldout"]["precision"]),
                          source=str(data["source"]))  # fmt: skip


@dataclass(frozen=True)
class ChatVerdict:
    chat: bool
    probability: float | None  # None: not measured (too long to be small talk)


def without_address(prompt: str) -> str:
    """`prompt` without the assistant's name where it only addresses the assistant (the rule is above ASSISTANT_NAME):
    "hi swarm" -> "hi", "Swarm, how are you?" -> "how are you?", "hey swarm, what's up?" -> "hey, what's up?";
    "what is a swarm?" is left as it is."""
    if first := _ADDRESS_FIRST.match(prompt):
        return prompt[first.end() :]
    second = _ADDRESS_SECOND.match(prompt)
    if second and second.group(1).strip().lower() not in _NOT_BEFORE_ADDRESS:
        return f"{second.group(1)}, {prompt[second.end() :]}"
    if last := _ADDRESS_LAST.match(prompt):
        before, separator, marks = last.groups()
        previous = re.findall(r"[\w']+", before.lower())
        if (
            previous
            and previous[-1] not in _NOT_BEFORE_ADDRESS
            and ("," in separator or len(previous) <= MAX_ADDRESS_WORDS)
        ):
            return before + marks
    return prompt


def classify(prompt: str) -> ChatVerdict:
    """Whether `prompt` is small talk, by the classifier (one embedding, ~3 ms), the assistant's name taken out
    where it only addresses the assistant (without_address)."""
    if len(prompt.split()) > MAX_CHAT_WORDS or not prompt.strip():
        return ChatVerdict(chat=False, probability=None)
    from mining.embeddings import embed

    model = load_classifier()
    probability = model.probability(embed([without_address(prompt)])[0])
    return ChatVerdict(chat=probability >= model.threshold, probability=round(probability, 4))


def reply_problem(reply: str, prompt: str = "") -> str | None:
    """Why a small-talk reply (to `prompt`) must not be trusted (None: nothing found): empty, a refusal,
    a persona invented, or an answer to a question about the user's own life."""
    if not reply.strip():
        return "empty reply"
    if refusal := _REFUSAL.search(reply):
        return f"the reply declines ({refusal.group(0)!r})"
    if _ABOUT_THE_USER.search(prompt):
        return "the question is about the user's own life: only the user knows"
    for match in _PERSONA.finditer(reply):
        if match.group(1) not in _NOT_NAMES:
            return f"the reply invents a persona ({match.group(0)!r})"
    return None


def warm_up() -> None:
    """Load the classifier and the embedding model before the first request."""
    load_classifier()
    classify("hello there")
