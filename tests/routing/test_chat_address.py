"""The assistant's name taken out of a prompt where it only addresses the assistant (routing.chat.without_address).

Phrasings written for this test, not taken from the corpus or the benchmark suites."""

from __future__ import annotations

import pytest

from routing.chat import without_address


@pytest.mark.parametrize(("prompt", "expected"), [
    ("hi swarm", "hi"),
    ("thanks swarm", "thanks"),
    ("thank you so much, Swarm", "thank you so much"),
    ("bye swarm!", "bye!"),
    ("good morning Swarm.", "good morning."),
    ("thanks,swarm", "thanks"),
    ("Swarm, how are you?", "how are you?"),
    ("swarm: what's 2+2", "what's 2+2"),
    ("hey swarm, what's up?", "hey, what's up?"),
    ("how are you doing today, swarm?", "how are you doing today?"),
])  # fmt: skip
def test_the_name_said_to_the_assistant_is_taken_out(prompt, expected):
    assert without_address(prompt) == expected


@pytest.mark.parametrize("prompt", [
    "what is a swarm?", "tell me about the swarm", "how does a bee swarm form", "in a swarm, bees fly",
    "swarm intelligence", "Swarm", "what do you call a group of bees? a swarm",
    "why do locusts gather in such a huge and dangerous swarm",  # last, but after a long clause: not an address
])  # fmt: skip
def test_the_name_as_a_word_of_the_sentence_stays(prompt):
    assert without_address(prompt) == prompt
