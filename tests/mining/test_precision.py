"""(a) Mine heads from 3 answered paraphrases per group; unseen paraphrases hit precisely, near misses never."""

from __future__ import annotations

import json

import pytest
import redis

from mining import state
from mining.evaluation import evaluate
from mining.models import MiningRun, PatternHead
from mining.runtime import get_index, pattern_lookup, pattern_stats
from mining.services import MiningParams, run_mining
from routing.vote import answers_agree
from tests.mining.conftest import SEEN, requires_ml, seed_groups

pytestmark = [requires_ml, pytest.mark.django_db]

MIN_PRECISION = 0.99
MIN_RECALL = 0.5  # measured ~0.6 on this data set (see the printed report); a regression guard, not a goal


def test_unseen_paraphrases_hit_precisely_and_near_misses_never(mining_redis, paraphrase_groups):
    seeded = seed_groups(paraphrase_groups)
    run = run_mining(MiningParams())
    assert run.status == MiningRun.Status.OK, run.notes
    assert run.interactions_seen == seeded
    assert run.heads_created >= 0.9 * len(paraphrase_groups), run.notes
    assert run.patterns_version is not None and int(mining_redis.get("swarm:patterns:version")) >= 1

    measured = evaluate(paraphrase_groups, pattern_lookup, seen=SEEN)
    hits, wrong, false_hits = measured["hits"], measured["wrong"], measured["false_hits"]
    precision, recall = measured["precision"] or 1.0, measured["recall"]

    seen_ok = sum(
        bool((hit := pattern_lookup(p)) and answers_agree(hit.answer, g["answer"]))
        for g in paraphrase_groups
        for p in g["paraphrases"][:SEEN]
    )
    report = {"groups": len(paraphrase_groups), "heads": run.heads_created, **measured,
              "seen_paraphrases_answered": f"{seen_ok}/{seeded}"}  # fmt: skip
    print("\npattern precision report:", json.dumps(report, indent=2))

    assert not wrong, wrong
    assert precision >= MIN_PRECISION
    assert recall >= MIN_RECALL
    assert not false_hits, false_hits
    assert seen_ok >= 0.9 * seeded

    stats = pattern_stats()
    assert stats["heads_enabled"] == run.heads_created == stats["index_heads"]
    assert stats["hits"] >= hits and stats["version"] == str(run.patterns_version)


def test_hits_are_counted_in_redis_and_flushed_by_the_next_run(mining_redis, paraphrase_groups):
    seed_groups(paraphrase_groups[:4])
    run_mining(MiningParams())
    group = paraphrase_groups[0]
    hit = pattern_lookup(group["paraphrases"][0])
    assert hit is not None and answers_agree(hit.answer, group["answer"])
    # Counted in memory; the next version check (here: every lookup) adds the counts to Redis.
    assert mining_redis.hget("swarm:patterns:hits", str(hit.head_id)) is None
    pattern_lookup(group["paraphrases"][1])
    assert int(mining_redis.hget("swarm:patterns:hits", str(hit.head_id))) == 1
    assert PatternHead.objects.get(pk=hit.head_id).hits == 0  # no database write on the hot path

    second = run_mining(MiningParams())
    assert second.hits_flushed >= 2
    assert PatternHead.objects.get(pk=hit.head_id).hits >= 2
    assert mining_redis.hget("swarm:patterns:hits", str(hit.head_id)) is None
    # Nothing new: no head changes, no version bump, every embedding comes from the cache.
    assert second.heads_created == second.heads_updated == second.heads_retired == 0
    assert second.patterns_version is None and "12 reused, 0 computed" in second.notes


def test_hit_counts_wait_in_memory_while_redis_is_down(mining_redis, paraphrase_groups, monkeypatch):
    seed_groups(paraphrase_groups[:2])
    run_mining(MiningParams())
    prompt = paraphrase_groups[0]["paraphrases"][0]
    hit = pattern_lookup(prompt)
    assert hit is not None
    index = get_index()
    real = state.version_after_hits

    def down(hits):
        raise redis.ConnectionError("Redis is down")

    monkeypatch.setattr(state, "version_after_hits", down)
    assert pattern_lookup(prompt) is not None  # the old index keeps answering; both counts stay in memory
    monkeypatch.setattr(state, "version_after_hits", real)
    assert mining_redis.hget("swarm:patterns:hits", str(hit.head_id)) is None
    assert index.flush_hits() == 2
    assert int(mining_redis.hget("swarm:patterns:hits", str(hit.head_id))) == 2
    assert index.flush_hits() == 0


def test_a_mined_head_answers_a_synonym_of_its_members_word_and_not_another_word(mining_redis):
    """The index's word prefilter lets a synonym through to the guard (mining/synonyms.py)."""
    group = {
        "id": "highest",
        "answer": "Mount Everest",
        "paraphrases": [
            "What is the highest mountain in the world?",
            "Which mountain is the highest in the world?",
            "Name the highest mountain in the world.",
        ],
    }
    seed_groups([group])
    run = run_mining(MiningParams())
    assert run.status == MiningRun.Status.OK and run.heads_created == 1, run.notes
    hit = pattern_lookup("Which is the highest mountain on Earth?")
    assert hit is not None and hit.answer == "Mount Everest"
    assert pattern_lookup("Which is the highest mountain on Mars?") is None
    assert pattern_lookup("Which is the highest mountain in Europe?") is None
