"""An adapter's training record: its prompts grouped by answer with their guards, matched by
embedding and guard; and the near misses the gate asks it (real MiniLM embeddings and guard)."""

from __future__ import annotations

from training.datasets import Example
from training.record import TrainedRecord, answer_key, build_record, near_misses

TRAINED = [
    Example("What is the capital of France?", "Paris", "cloud"),
    Example("Which city is the capital of France?", "Paris.", "cloud"),
    Example("What is the capital of Japan?", "Tokyo", "cloud"),
    Example("How many legs does a spider have?", "8", "cloud"),
    Example("What is 12 times 12?", "144", "cloud"),
]


def test_prompts_are_grouped_by_their_answer_each_group_with_a_guard():
    record = build_record(TRAINED)
    assert record["v"] == 1 and record["trust"] is False  # the gate decides
    answers = [g["answer"] for g in record["groups"]]
    assert answers == ["Paris", "Tokyo", "8", "144"]  # "Paris." is Paris
    assert record["groups"][0]["prompts"] == ["What is the capital of France?", "Which city is the capital of France?"]
    assert all(g["guard"]["v"] for g in record["groups"])
    assert answer_key(" PARIS. ") == answer_key("paris")


def test_a_paraphrase_matches_its_group_and_a_near_miss_does_not():
    record = TrainedRecord(build_record(TRAINED))
    hit = record.match("Which city is France's capital?")
    assert hit.near and hit.answer == "Paris" and hit.similarity >= record.min_similarity
    for miss in ("What is the largest city in France?", "How many legs does an ant have?", "What is 13 times 12?",
                 "What is the capital of Peru?", "Who painted the Mona Lisa?"):  # fmt: skip
        verdict = record.match(miss)
        assert not verdict.near and verdict.reason, (miss, verdict)


def test_near_misses_change_a_number_or_swap_an_entity_and_keep_the_trained_answer():
    misses = near_misses(TRAINED)
    prompts = [p for p, _ in misses]
    assert ("What is 27 times 12?", "144") in misses  # 12 -> 27
    assert ("Which city is the capital of Japan?", "Paris.") in misses  # France -> Japan, with the trained answer
    assert ("What is the capital of France?", "Tokyo") not in misses  # a trained prompt is no near miss
    assert not set(prompts) & {e.prompt for e in TRAINED}
    assert len(near_misses(TRAINED, limit=2)) == 2


def test_a_database_that_cannot_be_read_means_not_trusted_and_is_asked_again(monkeypatch):
    from django.db import OperationalError

    from training.models import AdapterVersion
    from training.record import _records, forget_records, record_for

    def down(*args, **kwargs):
        raise OperationalError("the database is down")

    forget_records()
    monkeypatch.setattr(AdapterVersion.objects, "filter", down)
    assert record_for("lora-v9") is None and "lora-v9" not in _records  # not remembered: read again next time
