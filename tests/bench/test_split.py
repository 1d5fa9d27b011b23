"""The frozen tuning / held-out split (bench/split.py): pinned to digests, every category tested."""

from __future__ import annotations

import hashlib
from collections import defaultdict

from bench import split
from bench.titanic.suite import CATEGORIES, load_suite

SUITE = load_suite()
GROUPS = split.load_paraphrase_groups()
# A change to the rule, the fraction, the set names or the held-out data changes these: a new split
# must be a deliberate, recorded change (bench/README.md), never a side effect.
TITANIC_HELDOUT_IDS_SHA256 = "1460d5a3daba8b2a92f5c41cdb4b97fce9a0f39570200b52be9ad59d5b4b8c83"
TITANIC_HELDOUT_CONTENT_SHA256 = "a2c0437b7e462ea8bdf949c3a6673b32320a33d2d1d1adb0695c03bf08bdb043"
PARAPHRASES_HELDOUT_GROUPS_SHA256 = "2b3c43397fdf78e34cd0f9e3340153a96e983177f980f08a7cb671261a2dfae2"
TITANIC_COUNTS = {
    "tuning": {"total": 260, "algebra": 38, "arithmetic": 41, "chat": 26, "code": 25, "factual": 38,
               "paraphrase": 48, "reasoning": 23, "stub_trap": 21},
    "heldout": {"total": 120, "algebra": 12, "arithmetic": 19, "chat": 14, "code": 15, "factual": 22,
                "paraphrase": 12, "reasoning": 17, "stub_trap": 9},
}  # fmt: skip


def heldout_items():
    parts = SUITE.parts()
    return [item for item in SUITE.items if parts[item.id] == split.HELDOUT]


def test_the_titanic_heldout_ids_hash_to_the_committed_digest():
    assert split.heldout_digest(item.id for item in heldout_items()) == TITANIC_HELDOUT_IDS_SHA256


def test_the_titanic_heldout_items_prompts_and_references_are_frozen():
    lines = "\n".join(f"{i.id}\t{i.prompt}\t{i.reference}" for i in sorted(heldout_items(), key=lambda i: i.id))
    assert hashlib.sha256(lines.encode()).hexdigest() == TITANIC_HELDOUT_CONTENT_SHA256


def test_every_titanic_category_has_heldout_items_about_a_third_overall():
    parts = SUITE.parts()
    assert split.counts(parts, {i.id: i.category for i in SUITE.items}) == TITANIC_COUNTS
    assert set(TITANIC_COUNTS["heldout"]) - {"total"} == set(CATEGORIES)
    assert 0.28 <= TITANIC_COUNTS["heldout"]["total"] / len(SUITE.items) <= 0.38


def test_a_paraphrase_group_stays_on_one_side():
    parts = SUITE.parts()
    by_group: dict[str, set[str]] = defaultdict(set)
    for item in SUITE.items:
        if item.group:
            by_group[item.group].add(parts[item.id])
    assert by_group and all(len(sides) == 1 for sides in by_group.values())


def test_the_part_method_and_the_parts_map_agree():
    held, tuning = SUITE.part(split.HELDOUT), SUITE.part(split.TUNING)
    assert len(held) + len(tuning) == len(SUITE.items) and not {i.id for i in held} & {i.id for i in tuning}
    assert [i.id for i in held] == [i.id for i in heldout_items()]


def test_the_paraphrase_groups_and_their_near_misses_are_split_by_group_with_every_kind_held_out():
    parts = split.paraphrase_parts(GROUPS)
    assert split.heldout_digest(g for g, p in parts.items() if p == split.HELDOUT) == PARAPHRASES_HELDOUT_GROUPS_SHA256
    kinds = {str(g["id"]): str(g["kind"]) for g in GROUPS}
    counted = split.counts(parts, kinds)
    assert {k for k in counted["heldout"] if k != "total"} == set(kinds.values())
    assert (counted["tuning"]["total"], counted["heldout"]["total"]) == (35, 17)


def test_the_rule_is_the_first_digest_byte_below_85():
    assert split.HELDOUT_BELOW == 85 and round(split.HELDOUT_FRACTION, 3) == 0.332
    parts, shared = SUITE.parts(), split.shared_questions(SUITE.items, GROUPS)
    shared_keys = {split.titanic_key(i) for i in SUITE.items if i.id in shared}
    for item in SUITE.items:  # every Titanic category got held-out keys by the rule alone
        if split.titanic_key(item) not in shared_keys:
            by_rule = hashlib.sha256(f"titanic:{item.group or item.id}".encode()).digest()[0] < 85
            assert by_rule == (parts[item.id] == split.HELDOUT), item.id


def test_a_question_asked_in_both_sets_is_on_the_same_side_in_both():
    parts, groups = SUITE.parts(), split.paraphrase_parts(GROUPS)
    shared = split.shared_questions(SUITE.items, GROUPS)
    assert len(shared) == 24  # e.g. "What is the capital of Canada?" is a Titanic item and a paraphrase
    assert all(parts[item_id] == groups[group_id] for item_id, group_id in shared.items())
    assert {groups[g] for g in shared.values()} == {split.TUNING, split.HELDOUT}


def test_a_category_the_rule_leaves_without_heldout_gives_up_its_lowest_digest_key():
    # first digest bytes under "demo": k0 136, k3 149 (category a: none below 85); k1 69, k4 90 (category b)
    parts = split.split("demo", [("k0", "a"), ("k3", "a"), ("k1", "b"), ("k4", "b"), ("k1", "b")])
    assert parts == {"k0": "heldout", "k3": "tuning", "k1": "heldout", "k4": "tuning"}
    # a key that follows another set is not given up: the next free one is
    parts = split.split("demo", [("k0", "a"), ("k3", "a")], taken={"k0": "tuning"})
    assert parts == {"k0": "tuning", "k3": "heldout"}
