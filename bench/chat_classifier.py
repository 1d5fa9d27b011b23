#!/usr/bin/env python3
"""Train the small-talk classifier (routing/chat.py) and measure it on data it was not tuned on.

Usage: python -m bench.chat_classifier [--check] [--min-precision 0.97]
  writes config/chat_classifier.json (what the council loads) and reports/chat_classifier_<date>.json;
  --check: train again and fail unless the committed file's threshold and held-out figures come out
  the same (the training is deterministic).

Data: the English dialogues of the pinned `chatterbot-corpus` package (requirements/ml.txt). Every
user turn (the first line of each exchange and every other line after it) is an example, once
(normalized, duplicates dropped). Small talk: the categories greetings, conversations, emotion,
humor, botprofile and psychology; not small talk: trivia, science, history, computers, coding,
literature, money, movies, politics, sports and tech_support. Left out as neither: ai, food, gossip
and health (questions about the bot's nature mixed with knowledge questions).

Split: an example is held out by the project's one rule (bench/split.py) on the key
"chat_corpus:<normalized text>". The tuning part chooses the threshold: the lowest probability at
which the cross-validated (5-fold) predictions on the tuning part reach --min-precision; the model
is then fitted on the whole tuning part and the held-out part is only measured. The regularisation
(C) is chosen the same way, on the tuning part alone: the value whose cross-validated recall at that
precision is highest. The held-out precision is the confidence a chat reply gets.
"""

from __future__ import annotations

import argparse
import json
import sys
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from bench.split import HELDOUT, TUNING, held_out_by_rule

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "config" / "chat_classifier.json"
SOURCE = "chatterbot-corpus==1.3.3"
SET_NAME = "chat_corpus"
SMALL_TALK = ("greetings", "conversations", "emotion", "humor", "botprofile", "psychology")
NOT_SMALL_TALK = ("trivia", "science", "history", "computers", "coding", "literature", "money", "movies", "politics",
                  "sports", "tech_support")  # fmt: skip
SEED = 20261203
C_GRID = (0.5, 1.0, 4.0, 16.0, 64.0, 256.0)  # inverse regularisation strengths tried (cross-validated)


def _normalize(text: str) -> str:
    return " ".join(str(text).split())


def corpus_examples() -> list[tuple[str, bool, str]]:
    """(user turn, is small talk, category), each normalized text once (its first category wins)."""
    english = resources.files("chatterbot_corpus") / "data" / "english"
    seen: set[str] = set()
    examples = []
    for category, label in [(c, True) for c in SMALL_TALK] + [(c, False) for c in NOT_SMALL_TALK]:
        data = yaml.safe_load((english / f"{category}.yml").read_text(encoding="utf-8"))
        for exchange in data.get("conversations") or []:
            for turn in exchange[::2]:  # the user's lines; the others are the bot's replies
                text = _normalize(turn)
                if text and text.lower() not in seen and len(text.split()) <= 16:
                    seen.add(text.lower())
                    examples.append((text, label, category))
    return examples


def part_of(text: str) -> str:
    return HELDOUT if held_out_by_rule(SET_NAME, text.lower()) else TUNING


def _precision_recall(labels: np.ndarray, predicted: np.ndarray) -> tuple[float, float]:
    tp = int(np.sum(predicted & labels))
    precision = tp / max(1, int(np.sum(predicted)))
    recall = tp / max(1, int(np.sum(labels)))
    return round(precision, 4), round(recall, 4)


def train(min_precision: float) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the classifier file's content, the report)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    from mining.embeddings import embed

    examples = corpus_examples()
    texts = [t for t, _, _ in examples]
    vectors = embed(texts).astype(np.float64)
    labels = np.array([label for _, label, _ in examples])
    parts = np.array([part_of(t) for t in texts])
    tune, held = parts == TUNING, parts == HELDOUT

    def model(c: float) -> LogisticRegression:
        return LogisticRegression(C=c, class_weight="balanced", max_iter=5000)

    def cross_validated(c: float) -> tuple[float, float, np.ndarray]:
        """(recall at the lowest threshold reaching min_precision, that threshold, the predictions)."""
        folds = StratifiedKFold(n_splits=5, shuffle=True, random_state=SEED)
        cv = cross_val_predict(model(c), vectors[tune], labels[tune], cv=folds, method="predict_proba")[:, 1]
        threshold = next((float(t) for t in np.round(np.arange(0.5, 1.0, 0.01), 2)
                          if _precision_recall(labels[tune], cv >= t)[0] >= min_precision), 0.99)  # fmt: skip
        return _precision_recall(labels[tune], cv >= threshold)[1], threshold, cv

    # The regularisation too is chosen on the tuning part alone: the one that recalls most small talk
    # at the required precision, cross-validated.
    by_c = {c: cross_validated(c) for c in C_GRID}
    best_c = max(C_GRID, key=lambda c: (by_c[c][0], -c))
    _, threshold, cv = by_c[best_c]
    fitted = model(best_c).fit(vectors[tune], labels[tune])
    held_p = fitted.predict_proba(vectors[held])[:, 1]
    cv_precision, cv_recall = _precision_recall(labels[tune], cv >= threshold)
    precision, recall = _precision_recall(labels[held], held_p >= threshold)
    counts = {part: {"small_talk": int(np.sum(labels[parts == part])), "other": int(np.sum(~labels[parts == part]))}
              for part in (TUNING, HELDOUT)}  # fmt: skip
    classifier = {
        "source": SOURCE,
        "small_talk": list(SMALL_TALK),
        "not_small_talk": list(NOT_SMALL_TALK),
        "split": f"bench/split.py rule on '{SET_NAME}:<lowercased text>'",
        "min_precision": min_precision,
        "c": best_c,
        "cv_recall_by_c": {str(c): by_c[c][0] for c in C_GRID},
        "threshold": threshold,
        "tuning": {**counts[TUNING], "cv_precision": cv_precision, "cv_recall": cv_recall},
        "heldout": {**counts[HELDOUT], "precision": precision, "recall": recall},
        "intercept": round(float(fitted.intercept_[0]), 6),
        "coef": [round(float(c), 6) for c in fitted.coef_[0]],
    }
    held_texts = [t for t, p in zip(texts, parts, strict=True) if p == HELDOUT]
    held_labels = labels[held]
    mistakes = [{"prompt": t, "small_talk": bool(y), "probability": round(float(p), 3)}
                for t, y, p in zip(held_texts, held_labels, held_p, strict=True)
                if (p >= threshold) != bool(y)]  # fmt: skip
    report = {key: value for key, value in classifier.items() if key != "coef"}
    report["heldout_mistakes"] = mistakes
    return classifier, report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--check", action="store_true")
    parser.add_argument("--min-precision", type=float, default=0.97)
    args = parser.parse_args(argv)
    import django

    django.setup()
    classifier, report = train(args.min_precision)
    if args.check:
        committed = json.loads(OUT.read_text())
        keys = ("c", "threshold", "tuning", "heldout")
        same = all(committed[k] == classifier[k] for k in keys)
        print(("PASS" if same else "FAIL") + f" chat classifier: {', '.join(f'{k}={classifier[k]}' for k in keys)}")
        return 0 if same else 1
    OUT.write_text(json.dumps(classifier, indent=1) + "\n")
    from bench.reporting import write_report

    write_report("chat_classifier", report)
    return 0


if __name__ == "__main__":
    import os

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "swarm_site.settings")
    sys.exit(main())
