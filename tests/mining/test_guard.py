"""The false-hit guard on its own: slots, and which prompts a head built from members may answer."""

from __future__ import annotations

import pytest

from mining.guard import HeadGuard, compile_guard, consistent, extract_slots, fold_word, merge_guards


def test_a_product_never_answers_another_product():
    assert consistent("What is 7*8?", "What is 7*8?", "What is 7 times 8?").ok
    result = consistent("What is 7*9?", "What is 7*8?", "What is 7 times 8?")
    assert not result.ok and "numbers" in result.reason
    assert not consistent("What is 7+8?", "What is 7*8?", "What is 7 times 8?").ok
    assert not consistent("What is 8*7*2?", "What is 8*7?").ok


def test_numbers_in_words_digits_and_forms_agree():
    assert extract_slots("What is seven times eight?").numbers == ("7", "8")
    assert extract_slots("What is 7 x 8?").numbers == extract_slots("Calculate 7x8.").numbers == ("7", "8")
    assert extract_slots("How many cm in 1,000 km?").numbers == ("1000",)
    assert extract_slots("What is 2.50 + 1/4?").numbers == ("2.5", "1/4")
    assert extract_slots("Simplify 6/8").numbers != extract_slots("Simplify 3/4").numbers
    assert extract_slots("What is -5 + 3?").numbers == ("-5", "3")
    assert extract_slots("What is 7-3?").ops == frozenset({"sub"})
    assert extract_slots("Who came 2nd?").numbers == ("2",)


def test_negation_flips_polarity():
    members = ("Is aspirin safe for children?", "Is it safe to give aspirin to children?")
    assert consistent("Is aspirin safe for children?", *members).ok
    negations = (
        "Is aspirin not safe for children?",
        "Isn't aspirin safe for children?",
        "Is aspirin never safe for children?",
        "Is aspirin safe for children without a prescription?",
    )
    for negated in negations:
        assert not consistent(negated, *members).ok, negated
    assert extract_slots("Is X not safe?").negated and not extract_slots("Is X safe?").negated
    assert extract_slots("Isn't it safe?").negated and extract_slots("Is it unsafe?").words == ("unsafe",)


def test_is_x_safe_never_answers_is_x_not_safe():
    assert not consistent("Is X not safe?", "Is X safe?").ok
    assert not consistent("Is X safe?", "Is X not safe?").ok


def test_entities_must_match():
    members = ("What is the capital of France?", "Which city is France's capital?", "Name the capital of France.")
    assert consistent("What is the capital city of France?", *members).ok
    assert consistent("what is the capital of france", *members).ok  # lower case still names France
    for other in ("What is the capital of Spain?", "What is the capital of Spain and France?",
                  "What is the largest city of France?", "What was the capital of France?"):  # fmt: skip
        assert not consistent(other, *members).ok, other


def test_a_member_phrasing_must_be_covered():
    members = ("What is the largest planet in our solar system?", "Which planet is the biggest in the solar system?")
    assert consistent("What is the biggest planet in the solar system?", *members).ok
    assert not consistent("How many planets are in our solar system?", *members).ok


def test_a_query_may_recombine_the_members_words_but_never_drop_one():
    members = (
        "What is the boiling point of water in Celsius?",
        "At what temperature does water boil in degrees Celsius?",
    )
    assert consistent("Water boils at how many degrees Celsius?", *members).ok  # "degrees" where one said "point"
    assert not consistent("At what temperature does water freeze in degrees Celsius?", *members).ok  # a new word
    assert not consistent("What is the temperature of water in degrees Celsius?", *members).ok  # "boil" is shared
    hamlet = ("Who wrote Hamlet?", "Who is the author of Hamlet?")
    assert consistent("Who wrote Hamlet, as its author?", *hamlet).ok
    result = consistent("Who is Hamlet?", *hamlet)
    assert not result.ok and "no member's words all present" in result.reason


def test_unit_direction_matters():
    members = ("What is 0 degrees Celsius in Fahrenheit?", "Convert 0 °C to Fahrenheit.")
    assert consistent("How much is 0 °C in °F?", *members).ok
    assert not consistent("What is 0 degrees Fahrenheit in Celsius?", *members).ok
    cm = ("How many centimeters are in an inch?", "How many cm are in one inch?")
    assert consistent("An inch is how many centimetres?", *cm).ok
    assert not consistent("How many inches are in a centimeter?", *cm).ok
    assert not consistent("How many centimeters are in 3 inches?", *cm).ok


def test_argument_order_matters_in_comparisons_and_yes_no_questions():
    members = ("Is a blue whale bigger than an elephant?", "Are blue whales bigger than elephants?")
    assert consistent("Is the blue whale bigger than an elephant?", *members).ok
    assert not consistent("Is an elephant bigger than a blue whale?", *members).ok


def test_tense_is_a_slot():
    assert not consistent("What was the capital of Brazil?", "What is the capital of Brazil?").ok


FOLDS = [("capitals", "capital"), ("Australia's", "australia"), ("octopuses", "octopus"), ("tomatoes", "tomato"),
         ("Celsius", "celsius"), ("metres", "meter"), ("biggest", "largest"), ("boiling", "boil")]  # fmt: skip


@pytest.mark.parametrize(("word", "folded"), FOLDS)
def test_fold_word(word, folded):
    assert fold_word(word) == folded


def test_guards_merge_as_a_union_and_survive_json():
    a = compile_guard([extract_slots("What is the capital of Japan?")])
    b = compile_guard([extract_slots("Which city is Japan's capital?")])
    merged = HeadGuard(merge_guards(a, b))
    assert merged.check(extract_slots("Which city is the capital of Japan?")).ok
    assert not merged.check(extract_slots("Which city is the capital of China?")).ok
    with pytest.raises(ValueError):
        HeadGuard({"v": 0})


def test_near_misses_of_the_data_set_never_pass_their_group_guard(paraphrase_groups):
    for group in paraphrase_groups:
        guard = HeadGuard(compile_guard(extract_slots(p) for p in group["paraphrases"][:3]))
        for prompt in group["paraphrases"][:3]:
            assert guard.check(extract_slots(prompt)).ok, prompt
        for prompt in group.get("near_misses", []):
            assert not guard.check(extract_slots(prompt)).ok, (group["id"], prompt)


def test_order_is_checked_when_the_members_cared_about_it():
    assert not consistent("Who is Zeus the father of?", "Who is the father of Zeus?").ok
    members = ("Is a blue whale bigger than an elephant?", "Are blue whales bigger than elephants?")
    assert not consistent("Elephant or blue whale: which is bigger?", *members).ok
    assert consistent("What is CPU short for?", "What does CPU stand for?", "What is CPU short for?").ok


def test_a_synonym_in_a_common_sense_stands_for_a_members_word():
    members = ("What is the highest mountain in the world?", "Which mountain is the highest in the world?")
    assert not consistent("Which is the highest mountain on Venus?", *members).ok
    assert consistent("Which is the highest mountain on Earth?", *members).ok  # Earth, world: the planet
    assert consistent("Who penned Hamlet?", "Who wrote Hamlet?", "Hamlet was written by whom?").ok
    # Words that share only a rare sense, antonyms, kinds, units and quoted words stand for nothing.
    assert not consistent("Who is the mother of Zeus?", "Who is the father of Zeus?").ok  # share "beget" only
    assert not consistent("What is the smallest planet?", "What is the largest planet?").ok
    assert not consistent("What does a bee take?", "What does a bee make?").ok
    assert not consistent("How many seconds are in an hour?", "How many minutes are in an hour?").ok
    assert not consistent('What does "earth" mean in Python?', 'What does "world" mean in Python?').ok


def test_without_wordnet_no_word_has_a_synonym(monkeypatch):
    from mining import synonyms

    monkeypatch.setattr(synonyms, "lexicon", lambda: None)
    synonyms.common_senses.cache_clear()
    try:
        members = ("What is the highest mountain in the world?", "Which mountain is the highest in the world?")
        assert not consistent("Which is the highest mountain on Earth?", *members).ok
    finally:
        synonyms.common_senses.cache_clear()
