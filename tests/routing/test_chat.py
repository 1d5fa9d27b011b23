"""The small-talk classifier (MiniLM embeddings + the committed logistic regression) and the reply guard.

The phrasings here are general ones, written for this test: neither the corpus it was trained on
nor the benchmark suites."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from routing.chat import classifier_path, classify, load_classifier, reply_problem
from routing.heads.agent0 import UNTRUSTED_CHAT_CONFIDENCE, Agent0Head
from routing.heads.base import HeadContext
from tests.routing.test_agent0_distilled import model

pytestmark = pytest.mark.heavy


@pytest.mark.parametrize("prompt", ["how are you today?", "good afternoon!", "hey, how's your week been?",
                                    "you're pretty funny", "I'm so bored right now", "see you tomorrow",
                                    "who are you exactly?"])  # fmt: skip
def test_small_talk_is_recognised_beyond_any_list(prompt):
    assert classify(prompt).chat, classify(prompt)


@pytest.mark.parametrize("prompt", ["thank you so much, Swarm", "bye swarm", "hello Swarm!"])
def test_small_talk_that_names_the_assistant_is_recognised(prompt):
    # without the name taken out: 0.23, 0.35 and 0.89, all below the threshold
    assert classify(prompt).chat, classify(prompt)


@pytest.mark.parametrize("prompt", ["Swarm, what is the tallest mountain in Africa?", "what is a swarm?",
                                    "write a function that sorts a list, swarm"])  # fmt: skip
def test_a_question_that_names_the_assistant_is_still_a_question(prompt):
    assert not classify(prompt).chat, classify(prompt)


@pytest.mark.parametrize("prompt", ["What is the tallest mountain in Africa?", "Write a function that sorts a list",
                                    "How do I install numpy on Windows?", "Who painted the Sistine Chapel ceiling?",
                                    "Explain how vaccines work", "What year did the Berlin Wall fall?",
                                    " ".join(["word"] * 40)])  # fmt: skip
def test_requests_and_questions_are_not_small_talk(prompt):
    assert not classify(prompt).chat, classify(prompt)


def test_the_committed_classifier_carries_its_measured_held_out_precision():
    data = json.loads(classifier_path().read_text())
    model_ = load_classifier()
    assert model_.confidence == data["heldout"]["precision"] >= 0.9 and data["heldout"]["small_talk"] >= 50
    assert data["tuning"]["cv_precision"] >= data["min_precision"] and len(data["coef"]) == 384
    assert data["source"] == "chatterbot-corpus==1.3.3"


@pytest.mark.parametrize(
    ("reply", "problem"),
    [("I'm Dr. Elena Zephyra, a researcher.", "persona"), ("My name is Max and I love hiking.", "persona"),
     ("Call me Bob!", "persona"), ("", "empty"), ("I'm Swarm, an assistant. How can I help?", None),
     ("I'm doing well, thanks! And you?", None), ("Hello! I'm glad you asked.", None),
     ("I'm sorry, but I can't assist with that request.", "declines"), ("I cannot help with that.", "declines"),
     ("Sorry, I am unable to respond to that.", "declines"), ("I can't wait to hear more!", None),
     ("See you later! I'm always here to help.", None)],
)  # fmt: skip
def test_a_reply_that_invents_a_persona_or_declines_is_not_trusted(reply, problem):
    found = reply_problem(reply)
    assert (found is None) if problem is None else (problem in found)


@pytest.mark.parametrize(
    ("prompt", "about_the_user"),
    [("What is my bank account balance?", True), ("what's my name?", True), ("Where was my wallet?", True),
     ("So what did I say earlier?", True), ("How much was my bill?", True), ("How are you?", False),
     ("What do I need to bake bread?", False), ("How many cups do I need for a litre?", False),
     ("What did you do today?", False), ("What is your name?", False), ("Who is my favourite singer", True),
     ("What is in the photo I just sent you?", True), ("Tell me the exact time I will wake up tomorrow.", True),
     ("I just finished work, how are you?", False), ("How do I make tea?", False)],
)  # fmt: skip
def test_a_reply_about_the_user_s_own_life_is_not_trusted(prompt, about_the_user):
    found = reply_problem("You had eggs and a banana.", prompt)
    assert (found is not None and "user's own life" in found) if about_the_user else found is None


def test_agent0_trusts_small_talk_at_the_measured_precision_unless_the_reply_invents_someone():
    good = Agent0Head().answer(
        "how are you today?", HeadContext(generate=model("I'm doing well, thanks!", mean=0.9, least=0.5))
    )
    assert good.evidence["chat"] and good.confidence == load_classifier().confidence
    bad = Agent0Head().answer(
        "what is your name?", HeadContext(generate=model("I'm Dr. Elena Zephyra.", mean=0.9, least=0.5))
    )
    assert bad.evidence["chat"] and bad.confidence == UNTRUSTED_CHAT_CONFIDENCE < 0.75
    assert "persona" in bad.evidence["chat_problem"]


def test_training_again_reproduces_the_committed_classifier():
    done = subprocess.run([sys.executable, "-m", "bench.chat_classifier", "--check"], capture_output=True, text=True,
                          timeout=300)  # fmt: skip
    assert done.returncode == 0 and "PASS chat classifier" in done.stdout, done.stdout[-2000:] + done.stderr[-2000:]
