"""The unknowable head: what it declines, and that it declines nothing answerable the project holds."""

from __future__ import annotations

import datetime as dt
from importlib import resources
from pathlib import Path

import pytest
import yaml

from bench.titanic.scorers import REFUSAL
from routing.cascade import fast_decision
from routing.heads import fast_heads
from routing.heads.base import HeadContext
from routing.heads.unknowable import CONFIDENCE, UnknowableHead, unknowable

ROOT = Path(__file__).resolve().parents[2]
TODAY = dt.date(2026, 12, 7)


@pytest.mark.parametrize(
    ("prompt", "kind"),
    [
        ("Who will win the 2034 World Cup?", "future"),
        ("Who won the 2090 Olympic marathon?", "future"),
        ("What will the price of gold be on 4 July 2031?", "future"),
        ("Which party will win the election in 2045?", "future"),
        ("What will the weather be like in Oslo tomorrow?", "future"),
        ("Who will be next year's champion?", "future"),
        ("Tell me tomorrow's lottery results.", "future"),
        ("What is my credit card number?", "private"),
        ("What's my sister's home address?", "private"),
        ("How much money is in my savings account?", "private"),
        ("What is my password?", "private"),
        ("Describe the picture I uploaded.", "absent"),
        ("Please summarize the attached report.", "absent"),
        ("Translate the text I pasted.", "absent"),
        ("What does the screenshot I just shared show?", "absent"),
        ("How many people are exactly online right now?", "now"),
        ("What is the exact number of ants alive at this moment?", "now"),
        ("What number am I thinking of?", "mind"),
        ("When will I die?", "mind"),
        ("What will the next coin toss be, heads or tails?", "chance"),
        ("Which number comes up on the next roll of the dice?", "chance"),
        ("Write a function that returns the live price of a stock right now.", "live"),
        ("Write a Python function that returns tomorrow's weather in a city.", "future"),
        ("Write a function that decides whether any program halts.", "undecidable"),
    ],
)
def test_it_declines_what_no_model_can_know(prompt, kind):
    found = unknowable(prompt, today=TODAY)
    assert (found and found[0]) == kind


@pytest.mark.parametrize(
    "prompt",
    [
        "Who won the 2018 World Cup?",  # the past
        "Who won the 2026 World Cup?",  # this year: it may be over
        "Who was the president of France in 1999?",
        "What day of the week is 1 March 2031?",  # a calendar question about a future date
        "How many days are there between 1 January 2030 and 1 March 2031?",
        "When is the next total solar eclipse visible from Europe?",
        "What will the population of Earth be in 2050?",  # projections exist; no contest or price
        "Which countries won the bid to host the 2030 World Cup?",  # decided ahead of the event
        "Who are the candidates running for president in 2028?",
        "If a stock costs 12 dollars today and rises 3 dollars tomorrow, what will it cost?",  # arithmetic
        "If a share's price is sixty dollars today and seventeen more tomorrow, what will its price be?",
        "How do I reset my password?",  # a how-to about a private thing
        "What is a good password for my email?",
        "Where can I find my bank account number?",
        "What is the exchange rate formula?",
        "Translate the text I pasted: bonjour le monde",  # the material is there
        "Summarize this document:\nThe meeting moved to Tuesday.",
        "What is the exact value of pi?",
        "How many people live in Tokyo?",
        "Write a function that fetches the live Bitcoin price from the CoinGecko API.",  # a data source named
        "Write a Python function that returns the next day's date.",
        "Write a function that returns True if a number is prime.",
        "How old am I if I was born in 1990?",
        "What is the probability that the next coin toss is heads?",  # the odds are known
        "What am I thinking of doing wrong when I cook rice?",
        "What is the capital of Veltaria?",  # unknown to the head, not shown unknowable: the model decides
    ],
)
def test_it_leaves_answerable_questions_alone(prompt):
    assert unknowable(prompt, today=TODAY) is None


def test_only_a_year_after_the_current_one_is_the_future():
    assert unknowable("Who will win the 2027 Super Bowl?", today=dt.date(2026, 12, 31))
    assert unknowable("Who will win the 2027 Super Bowl?", today=dt.date(2027, 1, 1)) is None


def _answerable_prompts() -> list[str]:
    """Every answerable prompt the project holds: the titanic suite less its must-abstain items, and
    every question and near miss of the paraphrase sets."""
    suite = yaml.safe_load((ROOT / "bench" / "data" / "titanic_v1.yaml").read_text(encoding="utf-8"))
    prompts = [item["prompt"] for item in suite["items"] if item["scorer"] != "must_be_unsure"]
    sets = yaml.safe_load((ROOT / "mining" / "data" / "paraphrases.yaml").read_text(encoding="utf-8"))

    def strings(node):
        if isinstance(node, str):
            yield node
        elif isinstance(node, dict):
            for value in node.values():
                yield from strings(value)
        elif isinstance(node, list):
            for value in node:
                yield from strings(value)

    return prompts + [text for text in strings(sets) if " " in text]


def _corpus_turns() -> list[str]:
    """Every line of the pinned chatterbot-corpus's English dialogues (small talk, trivia, science,
    history, money, sports...): ordinary questions and replies, none of them about the unknowable."""
    english = resources.files("chatterbot_corpus") / "data" / "english"
    turns = []
    for path in english.iterdir():
        if path.name.endswith(".yml"):
            for exchange in yaml.safe_load(path.read_text(encoding="utf-8")).get("conversations") or []:
                turns += [" ".join(str(turn).split()) for turn in exchange]
    return turns


def test_nothing_answerable_in_the_suite_the_paraphrase_sets_or_a_dialogue_corpus_is_declined():
    prompts = _answerable_prompts() + _corpus_turns()
    assert len(prompts) > 5000
    declined = [(p, found) for p in prompts if (found := unknowable(p, today=TODAY))]
    assert declined == []


def test_the_must_abstain_items_it_declines_are_scored_as_refusals():
    suite = yaml.safe_load((ROOT / "bench" / "data" / "titanic_v1.yaml").read_text(encoding="utf-8"))
    traps = [item["prompt"] for item in suite["items"] if item["scorer"] == "must_be_unsure"]
    declined = [p for p in traps if unknowable(p, today=TODAY)]
    assert declined  # the head's reason for being
    ballot = UnknowableHead().answer(declined[0], HeadContext())
    assert ballot.confidence == CONFIDENCE and REFUSAL.search(ballot.answer), ballot


def test_its_decline_is_the_council_s_verified_first_stage_and_yields_to_an_exact_answer():
    decision = fast_decision("Which horse will win the Kentucky Derby in 2099?", fast_heads=list(fast_heads()),
                             max_tokens=64, temperature=0.0, min_confidence=0.75)  # fmt: skip
    assert decision is not None and decision.winner_head == "unknowable" and decision.route == "council"
    assert decision.answer.startswith("I cannot answer that: it asks about 2099")
    exact = fast_decision("What day of the week is 4 July 2099?", fast_heads=list(fast_heads()), max_tokens=64,
                          temperature=0.0, min_confidence=0.75)  # fmt: skip
    assert exact is not None and exact.winner_head == "micro"


def test_the_head_abstains_on_a_question_it_cannot_show_unknowable():
    ballot = UnknowableHead().answer("What is the capital of France?", HeadContext())
    assert ballot.confidence == 0.0 and ballot.answer == ""
